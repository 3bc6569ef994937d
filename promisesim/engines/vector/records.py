"""Stage 4: records. Request records or counts of a batch, written into the run's columns."""

from __future__ import annotations

import numpy as np

from ..base import OUTCOMES, REQUEST_COLUMNS, count_requests

#: Target number of request records and state changes per batch of replications (bounds memory).
_BATCH_RECORDS = 2_000_000


class _GrowingColumns:
    """Columns written batch by batch into their final arrays, so records are written
    once. The first batch sizes the arrays for all (``expected``: its rows scaled to the
    whole run, plus a margin); if that falls short they grow by half, and the end trims
    them (``ndarray.resize`` shrinks in place)."""

    def __init__(self, schema: dict[str, type]) -> None:
        self.arrays = {k: np.empty(0, dtype=t) for k, t in schema.items()}
        self.size = 0

    def append(self, n: int, expected: float) -> dict[str, np.ndarray]:
        """Room for ``n`` more rows: views of it, to be filled before the next call."""
        need = self.size + n
        capacity = self.arrays["arrival"].size
        if need > capacity:
            capacity = max(need, int(expected) if capacity == 0 else capacity + capacity // 2)
            for k, a in self.arrays.items():
                grown = np.empty(capacity, dtype=a.dtype)
                grown[:self.size] = a[:self.size]
                self.arrays[k] = grown
        views = {k: a[self.size:need] for k, a in self.arrays.items()}
        self.size = need
        return views

    def finish(self) -> dict[str, np.ndarray]:
        for a in self.arrays.values():
            if a.size > self.size:
                a.resize(self.size, refcheck=False)
        return self.arrays


def _columns(parts: dict[str, list[np.ndarray]], schema: dict[str, type]) -> dict[str, np.ndarray]:
    """One array per column from its parts, releasing each column's parts once joined (so
    the peak holds the result and one column's parts, not two copies of everything)."""
    out = {}
    for k, dtype in schema.items():
        chunks = parts[k]
        out[k] = chunks[0].astype(dtype, copy=False) if len(chunks) == 1 else \
            np.concatenate(chunks, dtype=dtype) if chunks else np.empty(0, dtype=dtype)
        parts[k] = []
    return out


class Records:
    """The records stage of a batch (:class:`~promisesim.engines.vector.batch._Batch`).

    Reads ``runs`` and ``arrivals`` after :meth:`_requests` has computed them.
    """

    def write_records(self, columns: _GrowingColumns, scale: float = 1.0) -> None:
        """Append the batch's request records (node by node) to ``columns``; ``scale``: the
        whole run's replications over this batch's (to size the columns)."""
        self._requests()
        reps = self.reps.astype(np.int32)
        arrived = [run.arrival < self.horizon for run in self.runs]
        # a call still in flight at the horizon never arrived: no record, as in an event loop
        every = [bool(a.all()) for a in arrived]
        sizes = [run.reach.size if e else int(np.count_nonzero(a))
                 for run, a, e in zip(self.runs, arrived, every)]
        total = sum(sizes)
        views = columns.append(total, total * scale * 1.05 + 1024)
        lo = 0
        for run, a, e, n in zip(self.runs, arrived, every, sizes):
            arr = self.arrivals[run.workload]
            reach, arrival, latency, outcome = run.reach, run.arrival, run.latency, run.outcome
            if not e:
                reach, arrival, latency, outcome = (x[a] for x in (reach, arrival, latency, outcome))
            at = slice(lo, lo + n)
            np.take(reps, arr.rep[reach], out=views["replication"][at], mode="clip")
            views["promise"][at] = run.node.promise
            views["workload"][at] = run.workload
            np.take(arr.index, reach, out=views["index"][at], mode="clip")
            views["attempt"][at] = run.node.attempt
            views["arrival"][at] = arrival
            views["latency"][at] = latency
            views["outcome"][at] = outcome
            lo += n

    def counts(self, window: float | None = None) -> dict[str, list[np.ndarray]]:
        """Requests per (replication, promise, outcome), zero counts left out, sorted (as
        :func:`~promisesim.engines.base.count_requests` gives them), without building records;
        with ``window``, computed in windows of that length (:meth:`count_windows`)."""
        n_rep = self.reps.size
        if np.unique(self.reps).size != n_rep:
            records = _GrowingColumns(REQUEST_COLUMNS)
            self.write_records(records)
            return {k: [v] for k, v in count_requests(records.finish()).items()}
        if window is None or window >= self.horizon:
            self._requests()
            table = self._count_table(None)
        else:
            table = self.count_windows(window)
        table = table[np.argsort(self.reps)]
        r, p, o = np.nonzero(table)
        return {"replication": [np.sort(self.reps)[r].astype(np.int32)],
                "promise": [p.astype(np.int32)], "outcome": [o.astype(np.int8)],
                "count": [table[r, p, o]]}

    def _count_table(self, cut: np.ndarray | None) -> np.ndarray:
        """Requests per (replication, promise, outcome) of the requests computed last whose
        root arrived before ``cut`` (per replication; None: all)."""
        n_rep, n_promises, n_outcomes = self.reps.size, len(self.spec.promises), len(OUTCOMES)
        table = np.zeros((n_rep, n_promises, n_outcomes), dtype=np.int64)
        for run in self.runs:
            arrived = run.arrival < self.horizon
            arr = self.arrivals[run.workload]
            rep = arr.rep[run.reach]
            if cut is not None:
                arrived &= arr.time[run.reach] < cut[rep]
            key = rep * n_outcomes + run.outcome
            if not arrived.all():
                key = key[arrived]
            table[:, run.node.promise, :] += np.bincount(
                key, minlength=n_rep * n_outcomes).reshape(n_rep, n_outcomes)
        return table
