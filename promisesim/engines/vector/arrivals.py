"""Arrivals: each workload's requests in a batch, over the whole horizon or window by window.

Arrival instants are running sums of drawn gaps (a renewal process, every
replication at once); in time windows the sums are continued from where each
replication's process stood, so the instants are the same bits either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..._renewal import renewal_instants as _renewal_instants
from ...random import Streams


@dataclass
class _Requests:
    """Arrivals of one workload in a batch: flat arrays sorted by (replication, index)."""

    rep: np.ndarray
    index: np.ndarray
    time: np.ndarray


class Arrivals:
    """The arrival stage of a batch (:class:`~promisesim.engines.vector.batch._Batch`).

    Reads ``spec``, ``horizon``, ``streams`` and ``reps``.
    """

    def _arrivals(self, w: int) -> _Requests:
        workload = self.spec.workloads[w]
        end = self.horizon if workload.end is None else min(workload.end, self.horizon)
        rep, time, _ = _renewal_instants([self.streams.keys(self.reps, "arrival", workload.label)],
                                         [workload.gaps], end, start=workload.start)
        # index of each arrival within its replication
        starts = np.searchsorted(rep, np.arange(self.reps.size))
        index = np.arange(rep.size) - starts[rep]
        return _Requests(rep, index, time)

    def _window_arrivals(self, w: int, last: np.ndarray, nxt: np.ndarray, hi: float) -> _Requests:
        """Arrivals of workload ``w`` from each replication's ``last`` instant (draw ``nxt``
        next) up to ``hi`` (exclusive), advancing ``last`` and ``nxt`` in place: the same
        running sums as :func:`~promisesim._renewal.renewal_instants` over the whole horizon."""
        workload = self.spec.workloads[w]
        end = self.horizon if workload.end is None else min(workload.end, self.horizon)
        end = min(end, hi)
        k0, k1 = self.streams.keys(self.reps, "arrival", workload.label)
        rows = np.flatnonzero(last < end)
        out_rep, out_index, out_time = [], [], []
        expected = (end - float(last.min(initial=end))) / workload.gaps.mean if rows.size else 0.0
        width = int(expected + 3 * math.sqrt(expected) + 16)
        while rows.size:
            idx = nxt[rows][:, None] + np.arange(width)[None, :]
            gaps = Streams.draw_at(workload.gaps, k0[rows][:, None], k1[rows][:, None],
                                   idx.astype(np.uint64))
            gaps[:, 0] += last[rows]
            instants = np.cumsum(gaps, axis=1, out=gaps)
            inside = instants < end
            count = np.count_nonzero(inside, axis=1)
            out_rep.append(np.repeat(rows, count))
            out_index.append(idx[inside])
            out_time.append(instants[inside])
            some = count > 0
            last[rows[some]] = instants[some, count[some] - 1]
            nxt[rows] += count
            rows = rows[count == width]
        if not out_rep:
            return _Requests(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
        rep, index, time = (np.concatenate(x) for x in (out_rep, out_index, out_time))
        order = np.lexsort((index, rep))
        return _Requests(rep[order], index[order], time[order])


def _merge_requests(a: _Requests, b: _Requests) -> _Requests:
    """Two sets of one workload's arrivals (``a``'s before ``b``'s in each replication),
    sorted by (replication, index)."""
    if a.rep.size == 0:
        return b
    if b.rep.size == 0:
        return a
    rep = np.concatenate([a.rep, b.rep])
    order = np.argsort(rep, kind="stable")
    return _Requests(rep[order], np.concatenate([a.index, b.index])[order],
                     np.concatenate([a.time, b.time])[order])

