"""What every engine shares: the :class:`Engine` protocol and the :class:`Trace` it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from ..model.spec import ModelSpec
from ..random import Streams

__all__ = ["Engine", "Trace", "OUTCOMES", "CAUSES", "TIMELINE_COLUMNS", "BREAKER_STATES",
           "count_requests", "request_order", "INSTANCE_COLUMNS"]

#: Request outcomes, by code. ``kept``: answered within the deadline;
#: ``late``: answered after it (or still unanswered when the horizon came
#: after the deadline had passed); ``promiser_down``: refused on arrival;
#: ``condition_failed``: a call its conditions needed was not kept;
#: ``lost``: the promiser went down while the request was inside it;
#: ``rejected``: the promiser already held as many requests as its hidden
#: capacity limit allows;
#: ``unfinished``: unanswered at the horizon with its deadline still ahead
#: (excluded from kept fractions, counted separately);
#: ``error``: answered, but the answer was an error (the agent's error
#: probability, a burst or a degradation);
#: ``partitioned``: the request could not reach the promiser: a network
#: partition cut it off from its caller;
#: ``breaker_open``: the caller's circuit breaker on this provider was open
#: (or half-open with its trial calls out), so the call failed at once
#: without reaching the promiser;
#: ``degraded``: answered within the deadline, but kept only thanks to a
#: fallback (its own, or one below it): counted apart from ``kept``.
OUTCOMES = ("kept", "late", "promiser_down", "condition_failed", "lost", "rejected", "unfinished",
            "error", "partitioned", "breaker_open", "degraded")
(KEPT, LATE, PROMISER_DOWN, CONDITION_FAILED, LOST, REJECTED, UNFINISHED, ERROR, PARTITIONED,
 BREAKER_OPEN, DEGRADED) = range(len(OUTCOMES))

#: Why an agent changed state: its own failure process or an injected outage.
CAUSES = ("failure", "outage")

AGENT_CHANGE_COLUMNS = {
    "replication": np.int32,
    "time": np.float64,
    "agent": np.int32,
    "up": np.bool_,
    "cause": np.int8,
}
REQUEST_COLUMNS = {
    "replication": np.int32,
    "promise": np.int32,
    "workload": np.int32,
    "index": np.int64,
    "attempt": np.int16,
    "arrival": np.float64,
    "latency": np.float64,
    "outcome": np.int8,
}

#: States of a circuit breaker, by code.
BREAKER_STATES = ("closed", "open", "half_open")
#: One row per change of a breaker's state: the caller's promise and the provider's.
BREAKER_COLUMNS = {
    "replication": np.int32,
    "promise": np.int32,
    "provider": np.int32,
    "time": np.float64,
    "state": np.int8,
}


#: One row per instance started or stopped at an agent with a ``keep_alive``: ``change`` is +1
#: (started for a request: a cold start) or -1 (stopped: idle for the keep-alive, or a crash).
INSTANCE_COLUMNS = {
    "replication": np.int32,
    "agent": np.int32,
    "time": np.float64,
    "change": np.int8,
}


def _empty(columns: dict[str, type]) -> dict[str, np.ndarray]:
    return {name: np.empty(0, dtype=dtype) for name, dtype in columns.items()}


COUNT_COLUMNS = {"replication": np.int32, "promise": np.int32, "outcome": np.int8, "count": np.int64}
#: Per (replication, promise) metrics of a promise's standing timeline, kept in place of the
#: changes of state when a run does not record them (see :func:`promisesim.results.summarise`).
TIMELINE_COLUMNS = {
    "replication": np.int32,
    "promise": np.int32,
    "kept_fraction": np.float64,
    "broken_time": np.float64,
    "breaks": np.int64,
    "longest_break": np.float64,
    "mean_time_to_restore": np.float64,
}


@dataclass
class Trace:
    """Raw output of an engine: equal-length numpy columns, no pandas.

    Attributes
    ----------
    agent_changes : dict of str to numpy.ndarray
        One row per change of an agent's up/down state (columns
        :data:`AGENT_CHANGE_COLUMNS`), in time order within each replication.
        Every agent is up at time 0 unless a row at time 0 says otherwise.
        None when the run kept only ``promise_metrics``.
    requests : dict of str to numpy.ndarray, or None
        One row per request that arrived before the horizon, at any promise
        (columns :data:`REQUEST_COLUMNS`); ``latency`` is NaN unless answered.
        None when the run did not record requests (see ``request_counts``).
    request_counts : dict of str to numpy.ndarray, or None
        Requests per (replication, promise, outcome) (columns
        :data:`COUNT_COLUMNS`). Engines that do not record every request
        fill it in; otherwise it is computed from ``requests``.
    promise_metrics : dict of str to numpy.ndarray, or None
        Per (replication, promise) metrics of the promises' standing timelines
        (columns :data:`TIMELINE_COLUMNS`), for a run that did not keep
        ``agent_changes``; None otherwise.
    computed_by : str or None
        The engine that computed it, when not the one that was asked (an engine
        may hand a model it would run slowly to another that gives the same
        results); None otherwise.
    breakers : dict of str to numpy.ndarray, or None
        One row per change of state of a circuit breaker (columns
        :data:`BREAKER_COLUMNS`; every breaker is closed at time 0), in time
        order within each replication; None for a model without breakers.
    instances : dict of str to numpy.ndarray, or None
        Starts and stops of the instances of agents with a ``keep_alive`` (columns
        :data:`INSTANCE_COLUMNS`; none runs at time 0), in time order within each
        replication and agent; None for a model without such agents.
    """

    agent_changes: dict[str, np.ndarray] | None = field(
        default_factory=lambda: _empty(AGENT_CHANGE_COLUMNS))
    requests: dict[str, np.ndarray] | None = field(default_factory=lambda: _empty(REQUEST_COLUMNS))
    request_counts: dict[str, np.ndarray] | None = None
    promise_metrics: dict[str, np.ndarray] | None = None
    computed_by: str | None = None
    breakers: dict[str, np.ndarray] | None = None
    instances: dict[str, np.ndarray] | None = None

    def counts(self) -> dict[str, np.ndarray]:
        """Requests per (replication, promise, outcome), rows with a zero count left out."""
        if self.request_counts is not None:
            return self.request_counts
        assert self.requests is not None
        return count_requests(self.requests)

    def without_requests(self) -> "Trace":
        """The same trace keeping only the request counts (memory no longer grows with traffic)."""
        return Trace(self.agent_changes, None, self.counts(), self.promise_metrics,
                     self.computed_by, self.breakers, self.instances)

    @staticmethod
    def from_lists(agent_changes: dict[str, list], requests: dict[str, list],
                   breakers: dict[str, list] | None = None,
                   instances: dict[str, list] | None = None) -> "Trace":
        """Build a trace from column lists (converted to the schema's dtypes)."""
        return Trace(
            {k: np.asarray(agent_changes[k], dtype=t) for k, t in AGENT_CHANGE_COLUMNS.items()},
            {k: np.asarray(requests[k], dtype=t) for k, t in REQUEST_COLUMNS.items()},
            breakers=None if breakers is None else
            {k: np.asarray(breakers[k], dtype=t) for k, t in BREAKER_COLUMNS.items()},
            instances=None if instances is None else
            {k: np.asarray(instances[k], dtype=t) for k, t in INSTANCE_COLUMNS.items()},
        )

    @staticmethod
    def concat(traces: Sequence["Trace"]) -> "Trace":
        """Stack traces of disjoint replications."""
        if not traces:
            return Trace()
        recorded = all(t.requests is not None for t in traces)
        changes = all(t.agent_changes is not None for t in traces)
        if not changes and any(t.promise_metrics is None for t in traces):
            raise ValueError("cannot stack traces with changes of state and traces without")
        return Trace(
            {k: np.concatenate([t.agent_changes[k] for t in traces])  # type: ignore[index]
             for k in AGENT_CHANGE_COLUMNS} if changes else None,
            {k: np.concatenate([t.requests[k] for t in traces]) for k in REQUEST_COLUMNS}  # type: ignore[index]
            if recorded else None,
            None if recorded else
            {k: np.concatenate([t.counts()[k] for t in traces]) for k in COUNT_COLUMNS},
            None if changes else
            {k: np.concatenate([t.promise_metrics[k] for t in traces])  # type: ignore[index]
             for k in TIMELINE_COLUMNS},
            ", ".join(sorted({t.computed_by for t in traces if t.computed_by})) or None,
            None if all(t.breakers is None for t in traces) else
            {k: np.concatenate([t.breakers[k] for t in traces if t.breakers is not None])
             for k in BREAKER_COLUMNS},
            None if all(t.instances is None for t in traces) else
            {k: np.concatenate([t.instances[k] for t in traces if t.instances is not None])
             for k in INSTANCE_COLUMNS},
        )


def count_requests(requests: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Aggregate request records into counts per (replication, promise, outcome), in that
    order: one ``bincount`` over a combined key (linear in the records)."""
    rep = requests["replication"].astype(np.int64)
    if rep.size == 0:
        return _empty(COUNT_COLUMNS)
    promise = requests["promise"].astype(np.int64)
    outcome = requests["outcome"].astype(np.int64)
    n_p, n_o = int(promise.max()) + 1, len(OUTCOMES)
    counts = np.bincount((rep * n_p + promise) * n_o + outcome)
    key = np.flatnonzero(counts)
    return {"replication": (key // (n_p * n_o)).astype(np.int32),
            "promise": (key // n_o % n_p).astype(np.int32),
            "outcome": (key % n_o).astype(np.int8), "count": counts[key].astype(np.int64)}


def request_order(req: dict[str, np.ndarray]) -> np.ndarray:
    """The order of request records by (replication, workload, index, promise, attempt,
    arrival, outcome, latency): one sort of the integer keys packed into one, then the
    few records they leave tied sorted by the rest (as ``numpy.lexsort`` of all eight)."""
    keys = [req[k].astype(np.int64) for k in ("replication", "workload", "index", "promise",
                                               "attempt")]
    if keys[0].size == 0:
        return np.arange(0)
    packed, room = np.zeros(keys[0].size, dtype=np.int64), 1
    for k in keys:
        size = int(k.max()) + 1
        room *= size
        if room >= 2**62 or int(k.min()) < 0:   # too wide to pack: sort by all eight keys
            return np.lexsort((req["latency"], req["outcome"], req["arrival"],
                               *reversed(keys)))
        packed = packed * size + k
    order = np.argsort(packed, kind="stable")
    tied = packed[order]
    tied = tied[1:] == tied[:-1]
    if tied.any():
        inside = np.zeros(order.size, dtype=bool)
        inside[1:] |= tied
        inside[:-1] |= tied
        sub = order[inside]
        order[inside] = sub[np.lexsort((req["latency"][sub], req["outcome"][sub],
                                        req["arrival"][sub], packed[sub]))]
    return order


class Engine(Protocol):
    """An engine turns a spec into a trace. It never mutates the spec or reads global state."""

    name: str

    def unsupported(self, spec: ModelSpec) -> list[str]:
        """Features of ``spec`` this engine cannot run (empty when it can run it)."""
        ...

    def batch_size(self, spec: ModelSpec, horizon: float, record_requests: bool = True) -> int:
        """How many replications the engine computes together: a caller that runs blocks
        of replications (to show progress) loses nothing with blocks of this size."""
        ...

    def run(self, spec: ModelSpec, *, horizon: float, streams: Streams,
            replications: Sequence[int], record_requests: bool = True,
            record_changes: bool = True) -> Trace:
        """Simulate ``replications`` (their indices, ascending) of ``spec`` over ``[0, horizon)``.

        With ``record_requests=False`` the trace keeps only request counts; with
        ``record_changes=False`` it keeps the promises' timeline metrics in place of the
        changes of state (:func:`promisesim.results.summarise`)."""
        ...
