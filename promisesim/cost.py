"""What a run will cost, estimated before it starts.

:func:`estimate` counts, from the model's rates, means, intervals and sizes, the events a run
will simulate (requests, including the calls each request makes and its retries and hedges;
changes of state; maintenance runs, checks and autoscaler decisions) and the memory its
request records take. :func:`~promisesim.simulate` refuses a run whose estimate is over
``max_events``, naming the element that makes it large, before drawing anything: a rate of
1e30 or an interval of 1e-9 is a clear error, not an exhausted machine.

The estimate uses means (a Poisson workload of rate ``r`` sends ``r * horizon`` requests on
average) and upper bounds where choices make it random (a fallback may call every item), so
it is a guide for refusing what cannot be meant, not a prediction of the run time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ScenarioError, _real
from .model.spec import CallCondition, CallNode, ModelSpec

__all__ = ["Cost", "estimate", "offered_load", "check", "memory", "records_fit",
           "DEFAULT_MAX_EVENTS", "REQUEST_RECORD_BYTES"]

#: The most events :func:`~promisesim.simulate` runs unless given a larger ``max_events``
#: (about 20 seconds of the vector engine on one core; half an hour of the reference engine).
DEFAULT_MAX_EVENTS = 100_000_000
#: Bytes of one request record (``Result.trace.requests``), without the tables built from it.
REQUEST_RECORD_BYTES = 39


@dataclass(frozen=True)
class Cost:
    """An estimate of a run's size.

    Attributes
    ----------
    events : float
        Requests and changes of state over all replications (may be ``inf``).
    requests : float
        Requests (calls included) over all replications.
    request_bytes : float
        Memory of one record per request.
    parts : list of (str, float)
        Each element's share of ``events``, largest first: ``("workload 'w'", 2e9)``.
    """

    events: float
    requests: float
    request_bytes: float
    parts: list[tuple[str, float]] = field(default_factory=list)

    def largest(self) -> str:
        """The element that adds the most events, in words."""
        return self.parts[0][0] if self.parts else "the model"


def _calls(item: CallNode | CallCondition) -> float:
    """Requests (and state checks) one arrival at ``item`` can cause, at most."""
    if isinstance(item, CallNode):
        own = 1.0 + sum(_calls(r) for r in item.retries)
        return own + (_calls(item.condition) if item.condition is not None else 0.0)
    sizes = sorted((_calls(i) for i in item.items), reverse=True)
    if item.rule in ("any", "split") and item.k == 1:   # one item called (two if hedged)
        return sum(sizes[:2 if item.hedge is not None else 1])
    return sum(sizes)


def _rate(w: Any) -> float:
    """A workload's arrivals per unit of time."""
    if w.rate is not None:
        return float(w.rate)
    mean = float(w.interarrival.mean)
    return 1.0 / mean if mean > 0 else math.inf


def offered_load(spec: ModelSpec) -> dict[str, float]:
    """Each agent's offered load: the requests its workloads send it per unit of time, times
    its mean service time, over its servers (1 or more: more work than it can serve).

    An estimate from means, to choose an engine by, not a queueing result: every call a
    request's tree makes counts (first attempts: retries, hedges and fallbacks beyond the
    first item only add work when calls fail); ``all_of`` and ``k_of`` call every item, an
    ``any_of`` or ``split`` spreads its calls evenly over its items (``choose="first"``: all
    to the first); a workload counts as if it ran all the time (a burst's peak load).
    """
    calls = [0.0] * len(spec.agents)

    def visit(item: CallNode | CallCondition, rate: float) -> None:
        if isinstance(item, CallNode):
            if item.is_request:
                calls[spec.agent_index[spec.promises[item.promise].promiser]] += rate
            if item.condition is not None:
                visit(item.condition, rate)
            return
        n = len(item.items)
        for j, sub in enumerate(item.items):
            if item.rule in ("all", "k"):
                share = rate
            elif item.rule == "fallback" or item.choose == "first":
                share = rate if j == 0 else 0.0
            else:
                share = rate / n
            visit(sub, share)

    for w, tree in zip(spec.workloads, spec.call_trees):
        visit(tree, _rate(w))
    return {a.name: c * float(a.service_time.mean) / a.servers if c else 0.0
            for a, c in zip(spec.agents, calls)}


def _per(horizon: float, mean: float) -> float:
    """How many intervals of ``mean`` fit in ``horizon`` (inf for a zero or tiny mean)."""
    if not mean > 0:
        return math.inf
    return horizon / mean


def estimate(spec: ModelSpec, horizon: float, replications: int) -> Cost:
    """Estimate the events and request records of running ``spec`` (see the module)."""
    parts: dict[str, float] = {}
    requests = 0.0
    for w, tree in zip(spec.workloads, spec.call_trees):
        rate = _rate(w)
        end = horizon if w.end is None else min(float(w.end), horizon)
        span = max(0.0, end - float(w.start))
        n = rate * span * _calls(tree)
        requests += n
        parts[f"workload {w.label!r}"] = n
    for a in spec.agents:
        n = 0.0
        f = a.failures
        if f is not None:
            up = float(f.time_to_failure.mean)
            if f.maintenance is not None:
                n += _per(horizon, float(f.maintenance.interval.mean))
                n += 2 * _per(horizon, up)
            else:
                n += 2 * _per(horizon, up + float(f.time_to_repair.mean))
        bursts = getattr(a.errors, "rate", None)
        if bursts is not None:
            n += 2 * _per(horizon, 1.0 / float(bursts) + float(a.errors.mean_duration))
        if n:
            parts[f"agent {a.name!r}"] = n
    for o in spec.observers:
        if o.interval is not None:
            parts[f"observer {o.name!r}"] = _per(horizon, float(o.interval.mean))
    for g in spec.scaled:
        policy: Any = g.policy
        parts[f"autoscaler of {policy.target!r}"] = (
            _per(horizon, float(policy.interval)) * (1 + len(g.members)))
    fixed = float(len(spec.agents) + len(spec.promises) + len(spec.outages))
    parts = {k: v * replications for k, v in parts.items()}
    parts["replications"] = fixed * replications
    events = sum(parts.values())
    requests *= replications
    ordered = sorted(parts.items(), key=lambda kv: -kv[1])
    return Cost(events, requests, requests * REQUEST_RECORD_BYTES, ordered)


def memory() -> float:
    """The memory this process may use, in bytes: the machine's physical memory, or the
    process's address-space limit (``ulimit -v``) where that is lower; inf where neither
    can be read."""
    out = math.inf
    try:
        out = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):   # pragma: no cover - not POSIX
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            out = min(out, float(soft))
    except (ImportError, ValueError, OSError):      # pragma: no cover - not POSIX
        pass
    return out


def records_fit(cost: Cost) -> bool:
    """Whether one record per request fits in a third of :func:`memory` (the tables built
    from the records, and the engine's work on them, take the rest)."""
    return cost.request_bytes <= memory() / 3


def _words(x: float) -> str:
    return "infinitely many" if not math.isfinite(x) else f"{x:.3g}"


def check_limit(max_events: object) -> float:
    """``max_events`` as a float, or a ScenarioError unless it is a positive number."""
    if not _real(max_events) or not max_events > 0:  # type: ignore[operator]
        raise ScenarioError(f"max_events={max_events!r} must be a positive number")
    return float(max_events)


def check(spec: ModelSpec, horizon: float, replications: int, record_requests: bool,
          max_events: float) -> Cost:
    """Refuse a run over ``max_events`` or whose request records would not fit in memory
    (a third of it: the tables built from them take more), with the estimate and the
    element to blame. Returns the estimate."""
    cost = estimate(spec, horizon, replications)
    if not cost.events <= max_events:
        name, events = cost.parts[0]
        raise ScenarioError(
            f"this run would simulate about {_words(cost.events)} events ({name}: "
            f"{_words(events)} over {replications} replication(s) of {horizon:g}); the limit is "
            f"max_events={max_events:.3g}: shorten the horizon, lower the rate or the "
            "replications, or raise max_events (--max-events on the command line)")
    if record_requests and not records_fit(cost):
        raise ScenarioError(
            f"one record per request would take about {cost.request_bytes / 2**30:.3g} GiB "
            f"({_words(cost.requests)} requests, most from {cost.largest()}) of the "
            f"{memory() / 2**30:.3g} GiB this process may use: keep counts only "
            "(record_requests=False, promisesim run --no-requests)")
    return cost
