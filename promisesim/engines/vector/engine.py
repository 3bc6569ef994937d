"""The vector engine: replications in batches, each batch through the stages.

See the package docstring (:mod:`promisesim.engines.vector`) for the semantics.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Sequence

import numpy as np

from ...random import Streams
from ...results import summarise
from ...model.spec import ModelSpec
from ..base import (AGENT_CHANGE_COLUMNS, COUNT_COLUMNS, INSTANCE_COLUMNS, REQUEST_COLUMNS,
                    TIMELINE_COLUMNS, Trace)
from ..reference import ReferenceEngine
from .autoscale import run_autoscaled
from .batch import _Batch, _Unsettled
from .records import _BATCH_RECORDS, _GrowingColumns, _columns
from .structure import _agent_order, _sends_later, _tree_size

__all__ = ["VectorEngine"]

#: Without request records, a replication with more than this many is computed in windows
#: of time of about this many records each (memory then does not grow with the horizon).
_WINDOW_RECORDS = 1 << 19


#: Model features (:attr:`ModelSpec.features`) this engine does not run (none now: the
#: structural limits are found by :meth:`VectorEngine.unsupported`).
_UNSUPPORTED: frozenset[str] = frozenset()


_pages_lock = threading.Lock()
_pages_depth = 0
_pages_previous = True


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """Inside: numpy does not ask the kernel for huge pages for its large arrays.

    numpy advises huge (2 MiB) pages for arrays of 4 MiB and more. Where the kernel then
    compacts memory to find them (transparent huge pages set to ``madvise``, common), a
    run's many fresh large arrays stall on it: the scaling benchmark's first run in a
    process took 3.1 to 3.9 s with the advice and 1.8 to 2.1 s without (later runs, which
    reuse memory, 1.4 to 1.6 s either way). Only the advice changes, never a result. The
    setting is numpy's, for the whole process: it is restored when the last of any
    concurrent runs ends."""
    global _pages_depth, _pages_previous
    try:
        from numpy._core.multiarray import _set_madvise_hugepage as setter  # numpy >= 2
    except ImportError:   # pragma: no cover - numpy 1.x
        try:
            from numpy.core.multiarray import _set_madvise_hugepage as setter  # type: ignore[no-redef]
        except ImportError:
            setter = None
    if setter is None:   # pragma: no cover
        yield
        return
    with _pages_lock:
        if _pages_depth == 0:
            _pages_previous = setter(False)
        _pages_depth += 1
    try:
        yield
    finally:
        with _pages_lock:
            _pages_depth -= 1
            if _pages_depth == 0:
                setter(_pages_previous)


def _batch(spec: ModelSpec, horizon: float) -> tuple[int, float]:
    """Replications per batch (about :data:`_BATCH_RECORDS` records and state changes),
    and the request records a replication makes."""
    per_replication = 1.0
    for agent in spec.agents:   # state changes: two per failure cycle
        f = agent.failures
        if f is not None:
            cycle = f.time_to_failure.mean + (f.time_to_repair.mean if f.time_to_repair is not None
                                              else f.maintenance.interval.mean)  # type: ignore[union-attr]
            per_replication += 4.0 * horizon / cycle   # the instants and their sorting copies
    records = 0.0   # request records per replication
    for workload, tree in zip(spec.workloads, spec.call_trees):
        rate = 1.0 / workload.gaps.mean
        end = horizon if workload.end is None else min(workload.end, horizon)
        records += rate * max(end - workload.start, 0.0) * _tree_size(tree)
    per_replication += records
    return max(1, int(_BATCH_RECORDS // per_replication)), records


class VectorEngine:
    """Computes replications in batches with numpy. See the module docstring."""

    name = "vector"

    def unsupported(self, spec: ModelSpec) -> list[str]:
        missing = sorted(spec.features & _UNSUPPORTED)
        _, cycle = _agent_order(spec)
        if cycle:
            missing.append(f"requests that call back into an agent they came through "
                           f"({' -> '.join(cycle)})")
        for a in spec.agents:   # the queue kernels take a duration fixed when service starts
            if a.order == "around" and a.slowdown:
                missing.append(f"order 'around' with a load-dependent slowdown (agent {a.name!r})")
            if a.order == "before" and a.limit is not None:
                missing.append(f"order 'before' with a capacity limit (agent {a.name!r})")
            if a.order != "after" and a.keep_alive is not None:
                missing.append(f"order {a.order!r} with instances started on demand "
                               f"(agent {a.name!r})")
        for p in spec.promises:   # (found by the random family; the reference engine runs it)
            a = spec.agents[spec.agent_index[p.promiser]]
            if a.order == "before" and p.retries and p.conditions is not None and any(
                    c.rule == "fallback" for c in p.conditions.conditions()):
                missing.append(f"order 'before' with retried fallbacks (promise {p.name!r})")
                break
        slowed = {p.name: p.promiser for p in spec.promises
                  if spec.agents[spec.agent_index[p.promiser]].slowdown}
        for p in spec.promises:   # (found by the random family; the reference engine runs it)
            if p.retries and p.conditions is not None:
                hit = next((slowed[n] for n in p.conditions.promises() if n in slowed), None)
                if hit is not None:
                    missing.append(f"retried calls to an agent with a load-dependent "
                                   f"slowdown (agent {hit!r})")
                    break
        if spec.scaled and any(a.order != "after" for a in spec.agents):
            missing.append("an autoscaler in a model with order 'around' or 'before'")
        budgeted = [p.name for p in spec.promises if p.budget is not None]
        if budgeted:   # whether a retry is sent depends on the retries before it, everywhere
            missing.append(f"retry budgets (promise {budgeted[0]!r})")
        guarded = [p.name for p in spec.promises if p.breaker is not None]
        if guarded:    # whether a call is sent depends on how the calls before it ended
            missing.append(f"circuit breakers (promise {guarded[0]!r})")
        hedged = [p.name for p in spec.promises if p.conditions is not None and any(
            c.hedge is not None and not all(isinstance(i, str) for i in c.items)
            for c in p.conditions.conditions())]
        if hedged:   # (a request's copy and another's first choice share the item's run)
            missing.append(f"hedged requests over nested conditions (promise {hedged[0]!r})")
        return missing

    def batch_size(self, spec: ModelSpec, horizon: float, record_requests: bool = True) -> int:
        batch, records = _batch(spec, horizon)
        if not record_requests and records > _WINDOW_RECORDS:
            return 1
        return batch

    def run(self, spec: ModelSpec, *, horizon: float, streams: Streams,
            replications: Sequence[int], record_requests: bool = True,
            record_changes: bool = True) -> Trace:
        try:
            with _small_pages():
                return self._run(spec, horizon=horizon, streams=streams,
                                 replications=replications, record_requests=record_requests,
                                 record_changes=record_changes)
        except _Unsettled:   # (see _MAX_CALL_PASSES) the same results, from the event loop
            trace = ReferenceEngine().run(spec, horizon=horizon, streams=streams,
                                          replications=replications,
                                          record_requests=record_requests,
                                          record_changes=record_changes)
            trace.computed_by = "reference"
            return trace

    def _run(self, spec: ModelSpec, *, horizon: float, streams: Streams,
             replications: Sequence[int], record_requests: bool,
             record_changes: bool) -> Trace:
        if spec.scaled:   # autoscalers: a fixed point of whole runs (see .autoscale)
            trace = run_autoscaled(_Batch, spec, horizon=horizon, streams=streams,
                                   replications=replications, record_requests=record_requests)
            if not record_changes:
                trace = summarise(spec, trace, np.sort(np.asarray(list(replications))), horizon)
            return trace
        reps = np.asarray(list(replications), dtype=np.int64)
        batch, records = _batch(spec, horizon)
        # Without records, a replication with more requests than a window holds is computed
        # in windows of time, so memory does not grow with the horizon (see _Batch.count_windows).
        window = None
        if not record_requests and records > _WINDOW_RECORDS and all(
                a.order == "after" and a.keep_alive is None and a.max_wait is None
                for a in spec.agents) and not \
                _sends_later(spec):   # (calls found in passes, running instances: no windows)
            batch = 1
            window = horizon * _WINDOW_RECORDS / records
        changes: dict[str, list[np.ndarray]] = {k: [] for k in AGENT_CHANGE_COLUMNS}
        metrics: dict[str, list[np.ndarray]] = {k: [] for k in TIMELINE_COLUMNS}
        requests = _GrowingColumns(REQUEST_COLUMNS)
        counts: dict[str, list[np.ndarray]] = {k: [] for k in COUNT_COLUMNS}
        pools = any(a.keep_alive is not None for a in spec.agents)
        instances: dict[str, list[np.ndarray]] = {k: [] for k in INSTANCE_COLUMNS}
        for i in range(0, reps.size, batch):
            b = _Batch(spec, horizon, streams, reps[i:i + batch])
            batch_changes = b.run()
            if record_changes:
                for k, v in batch_changes.items():
                    changes[k].append(v)
            else:   # the batch's timeline metrics, computed now: memory stays one batch's
                summary = summarise(spec, Trace(batch_changes, None, None), np.sort(b.reps), horizon)
                for k, v in summary.promise_metrics.items():  # type: ignore[union-attr]
                    metrics[k].append(v)
            del batch_changes
            if not spec.workloads:
                continue
            if record_requests:
                b.write_records(requests, reps.size / b.reps.size)
            else:   # without records, memory holds one batch's requests at a time
                for k, v in b.counts(window).items():
                    counts[k].extend(v)
            for agent, (pos, time, change) in b.instance_log.items():
                for k, v in zip(INSTANCE_COLUMNS, (b.reps[pos], np.full(pos.size, agent), time,
                                                   change)):
                    instances[k].append(v)
            del b
        kept_changes = _columns(changes, AGENT_CHANGE_COLUMNS) if record_changes else None
        kept_metrics = None if record_changes else _columns(metrics, TIMELINE_COLUMNS)
        pool_log = None
        if pools:   # in order of (replication, agent, time, change), as the reference's
            pool_log = _columns(instances, INSTANCE_COLUMNS)
            order = np.lexsort((pool_log["change"], pool_log["time"], pool_log["agent"],
                                pool_log["replication"]))
            pool_log = {k: v[order] for k, v in pool_log.items()}
        if not spec.workloads:
            no_requests = {k: np.empty(0, dtype=t) for k, t in REQUEST_COLUMNS.items()}
            return Trace(kept_changes, no_requests if record_requests else None,
                         None if record_requests else _columns(counts, COUNT_COLUMNS), kept_metrics,
                         instances=pool_log)
        if record_requests:
            return Trace(kept_changes, requests.finish(), None, kept_metrics, instances=pool_log)
        return Trace(kept_changes, None, _columns(counts, COUNT_COLUMNS), kept_metrics,
                     instances=pool_log)
