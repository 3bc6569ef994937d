"""Tidy results: from an engine's :class:`~promisesim.engines.base.Trace` to pandas, once.

Tables (all long/tidy, one row per observation; provenance in ``.attrs``):

``Result.promises``
    One row per (replication, promise): ``kept_fraction`` (share of the horizon the
    promise was standing), ``broken_time``, ``breaks`` (broken periods, one under way at
    time 0 included), ``longest_break``, ``mean_time_to_restore`` (mean length of breaks
    that ended before the horizon; NaN if none did), ``requests`` (answered, refused or
    lost requests that arrived before the horizon), ``requests_kept``,
    ``request_kept_fraction``, ``requests_unfinished`` (still inside at the horizon with
    their deadline ahead: excluded from the others), ``requests_degraded`` (answered in
    time only thanks to a fallback: counted in ``requests``, not ``requests_kept``), and
    ``delivered_fraction``: the kept fraction (of requests for latency promises with
    traffic, of time otherwise) if the promisee accepted the promise, 0 for an imposition.
``Result.intervals``
    Piecewise-constant states per (replication, entity): agents ``up`` or
    ``down``, promises ``kept`` or ``broken``, with ``start`` and ``end``.
``Result.events``
    Each change of state with its ``cause``: an agent going down through
    ``failure`` or ``outage``; a promise breaking because its promiser is
    down or because a condition broke.
``Result.requests``
    One row per request (root and calls), with its outcome.
``Result.summary()``
    Across replications: mean, standard error, 95% confidence interval.
Members of a resized super-agent that never started in any replication (``Result.absent``)
are left out of every table: they never existed in the run.
"""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import alerts, attribution, observing, rollouts, sizes as _sizes, slo
from .attribution import _distinct_rows
from ._timeline import Timelines, at_least, slice_count
from .analytic import t_quantile
from .engines.base import (BREAKER_COLUMNS, BREAKER_STATES, CAUSES, DEGRADED, KEPT, OUTCOMES, TIMELINE_COLUMNS,
                           UNFINISHED, Trace, request_order)
from .model.promises import Condition, Latency
from .model.spec import ModelSpec

__all__ = ["Result", "PROMISE_METRICS", "summarise", "load_result"]

PROMISE_METRICS = (
    "kept_fraction", "broken_time", "breaks", "longest_break", "mean_time_to_restore",
    "requests", "requests_kept", "request_kept_fraction", "requests_unfinished",
    "requests_degraded", "delivered_fraction",
)


#: Metrics of a promise's standing timeline (the rest of PROMISE_METRICS come from requests).
_TIMELINE_METRICS = tuple(k for k in TIMELINE_COLUMNS if k not in ("replication", "promise"))


def summarise(spec: ModelSpec, trace: Trace, replications: np.ndarray | list[int],
              horizon: float) -> Trace:
    """``trace`` with its changes of state replaced by the promises' timeline metrics.

    ``replications`` are the (ascending) indices of the replications in ``trace``. The
    metrics are those of :attr:`Result.promises`, computed exactly as it computes them (a
    replication's metrics depend only on its own changes), so an engine can summarise
    batch by batch and keep memory independent of the horizon.
    """
    reps = np.asarray(replications, dtype=np.int64)
    if reps.size > 1 and bool((np.diff(reps) <= 0).any()):
        raise ValueError("replications must be ascending and distinct")
    assert trace.agent_changes is not None
    changes = dict(trace.agent_changes)
    changes["replication"] = np.searchsorted(reps, changes["replication"]).astype(np.int32)
    local = Result(spec, Trace(changes, None, _NO_COUNTS), horizon=horizon,
                   replications=reps.size, engine="", entropy=0)
    columns = local._timeline_columns()
    n_p = len(spec.promises)
    metrics = {"replication": np.repeat(reps.astype(np.int32), n_p),
               "promise": np.tile(np.arange(n_p, dtype=np.int32), reps.size)}
    metrics.update({k: columns[k].astype(TIMELINE_COLUMNS[k]) for k in _TIMELINE_METRICS})
    return Trace(None, trace.requests, trace.request_counts if trace.requests is None else None,
                 metrics, trace.computed_by, trace.breakers, trace.instances)


_NO_COUNTS = {"replication": np.empty(0, np.int32), "promise": np.empty(0, np.int32),
              "outcome": np.empty(0, np.int8), "count": np.empty(0, np.int64)}


def _entities(spec: ModelSpec, codes: np.ndarray) -> pd.Categorical:
    """Agents then promises by index (agents first) as one categorical of names."""
    names = [a.name for a in spec.agents] + [p.name for p in spec.promises]
    categories = list(dict.fromkeys(names))   # an agent and a promise may share a name
    position = {name: i for i, name in enumerate(categories)}
    remap = np.array([position[name] for name in names], dtype=np.int64)
    return pd.Categorical.from_codes(remap[codes] if codes.size else codes.astype(np.int64),
                                     categories=categories)


def _labels(codes: np.ndarray, labels: list[str]) -> pd.Categorical:
    """Codes into a list of labels that may repeat, as a categorical of distinct labels."""
    categories = list(dict.fromkeys(labels))
    position = {label: i for i, label in enumerate(categories)}
    remap = np.array([position[label] for label in labels], dtype=np.int64)
    return pd.Categorical.from_codes(remap[codes] if codes.size else codes.astype(np.int64),
                                     categories=categories)


class Result:
    """What a simulation returns. Tables are built on first access and cached.

    Attributes
    ----------
    spec : ModelSpec
    horizon : float
    replications : int
    engine : str
        The engine that ran (after ``engine="auto"`` chose; ``"reference"`` where the vector
        engine handed over a model it would compute slowly: see
        :class:`~promisesim.engines.vector.VectorEngine`).
    engine_reason : str
        Why that engine ran: asked for, or what ``engine="auto"`` weighed (a feature only
        the reference engine runs, a model the vector engine is known to run slower).
    entropy : int
        Root seed entropy: ``simulate(..., seed=entropy)`` reproduces the run.
    spawn_key : tuple of int
        The root ``SeedSequence``'s spawn key when it was a spawned child (else
        empty): ``seed=SeedSequence(entropy, spawn_key=spawn_key)`` reproduces it.
    trace : Trace
        The engine's raw output.
    """

    def __init__(self, spec: ModelSpec, trace: Trace, *, horizon: float, replications: int,
                 engine: str, entropy: int, spawn_key: tuple[int, ...] = (),
                 seed_sequence: np.random.SeedSequence | None = None,
                 engine_reason: str = "") -> None:
        self.spec = spec
        self.trace = trace
        self.horizon = float(horizon)
        self.replications = int(replications)
        self.engine = engine
        self.engine_reason = str(engine_reason)
        self.entropy = int(entropy)
        self.spawn_key = tuple(int(k) for k in spawn_key)
        # The root the engine drew from (it may have a non-default pool size); observers
        # recompute maintenance runs from it.
        self.seed_sequence = seed_sequence if seed_sequence is not None else \
            np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key)

    def __repr__(self) -> str:
        return (f"Result(model={self.spec.name!r}, engine={self.engine!r}, "
                f"replications={self.replications}, horizon={self.horizon!r})")

    # -- saving -------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the result to the folder ``path``: the model as a scenario file, the
        engine's raw output as Parquet, the run's provenance as JSON. Needs pyarrow.

        :func:`load_result` reads it back with every table equal to this result's. A
        folder that already holds a saved result is replaced only with ``overwrite=True``;
        any other non-empty folder is refused.

        Returns
        -------
        pathlib.Path
            The folder.

        Examples
        --------
        >>> import tempfile, promisesim as ps
        >>> m = ps.Model("one server")
        >>> s = m.agent("server", failures=ps.Failures(
        ...     time_to_failure=ps.Exponential(mean=100.0), time_to_repair=1.0))
        >>> p = m.promise(s, to=m.agent("user"), body=ps.Availability(), name="up")
        >>> result = ps.simulate(m, horizon=1_000.0, replications=2, seed=1)
        >>> folder = result.save(tempfile.mkdtemp() + "/run")
        >>> again = ps.load_result(folder)
        >>> again.promises.equals(result.promises)
        True
        """
        from . import _saving

        return _saving.save(self, path, overwrite)

    # -- provenance ---------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        from . import __version__

        return {
            "model": self.spec.name,
            "engine": self.engine,
            "engine_reason": self.engine_reason,
            "promisesim_version": __version__,
            "entropy": self.entropy,
            "spawn_key": self.spawn_key,
            "horizon": self.horizon,
            "replications": self.replications,
            "time_unit": self.spec.time_unit,
        }

    def _frame(self, data: dict[str, Any]) -> pd.DataFrame:
        frame = pd.DataFrame(data)
        frame.attrs.update(self.attrs)
        return frame

    # -- timelines ----------------------------------------------------------------
    def _changes(self, table: str) -> dict[str, np.ndarray]:
        """The trace's changes of state, or a clear error naming ``table`` when the run kept
        only per-promise metrics."""
        if self.trace.agent_changes is None:
            raise ValueError(f"Result.{table} needs every change of state, but this run kept only "
                             "per-promise metrics (record_changes=False); run again with "
                             "record_changes=True for it")
        return self.trace.agent_changes

    @cached_property
    def _agent_timelines(self) -> list[Timelines]:
        ch = self._changes("intervals (and .events, .causes, .absorbed, .observations)")
        n_agents = len(self.spec.agents)
        order = np.argsort(ch["agent"], kind="stable")
        bounds = np.searchsorted(ch["agent"][order], np.arange(n_agents + 1))
        out = []
        for a in range(n_agents):
            mine = order[bounds[a]:bounds[a + 1]]
            out.append(Timelines.from_changes(ch["replication"][mine], ch["time"][mine], ch["up"][mine],
                                              self.replications, self.horizon))
        return out

    @cached_property
    def _promise_timelines(self) -> list[Timelines]:
        """Each promise is standing while its promiser is up and its conditions hold."""
        spec = self.spec
        agents = self._agent_timelines
        standing: list[Timelines] = []

        def condition(c: Condition) -> Timelines:
            parts = [condition(i) if isinstance(i, Condition) else standing[spec.promise_index[i]]
                     for i in c.items]
            if c.rule == "split":   # a version that carries no traffic breaks nobody
                parts = [at_least([part, self._idle_timeline(c, j)], 1)
                         for j, part in enumerate(parts)]
            return at_least(parts, c.k)

        for p in spec.promises:  # dependency order: conditions come first
            own = agents[spec.agent_index[p.promiser]]
            standing.append(own if p.conditions is None else at_least([own, condition(p.conditions)], 2))
        condition = None  # type: ignore[assignment]  # refers to itself: breaks the cycle
        return standing

    def _idle_timeline(self, c: Condition, j: int) -> Timelines:
        """When item ``j`` of a split carries no traffic (the same in every replication)."""
        assert c.shares is not None
        knots = np.array(sorted({float(k[0]) for k in c.shares}))
        idle = c.idle(j, knots)
        n = self.replications
        return Timelines.from_changes(np.repeat(np.arange(n), knots.size), np.tile(knots, n),
                                      np.tile(idle, n), n, self.horizon)

    # -- tables ---------------------------------------------------------------------
    @cached_property
    def promises(self) -> pd.DataFrame:
        """Per (replication, promise) metrics; see the module docstring. Members of a resized
        super-agent that never started in any replication are left out (see
        :attr:`absent`)."""
        return self._present(self._all_promises)

    @cached_property
    def absent(self) -> tuple[str, ...]:
        """Members of resized super-agents (an autoscaler's ``max_size``, a ``ScaleTo``'s
        size) that never started in any replication, left out of the tables with their
        promises: every promise they make stood for no time and got no request."""
        spec = self.spec
        candidates = dict.fromkeys([m for g in spec.scaled for m in g.members]
                                   + [s.target for s in spec.startups])
        if not candidates:
            return ()
        table = self._all_promises
        idle = ((table["kept_fraction"] == 0) & (table["requests"] == 0)
                & (table["requests_unfinished"] == 0)).to_numpy()
        idle = idle.reshape(self.replications, len(spec.promises)).all(axis=0)
        made: dict[str, list[int]] = {}
        for i, p in enumerate(spec.promises):
            if p.promiser in candidates:
                made.setdefault(p.promiser, []).append(i)
        return tuple(name for name in candidates if name in made and idle[made[name]].all())

    @cached_property
    def _absent_promises(self) -> frozenset[str]:
        absent = set(self.absent)
        return frozenset(p.name for p in self.spec.promises if p.promiser in absent)

    def _present(self, frame: pd.DataFrame, column: str = "promise") -> pd.DataFrame:
        """``frame`` without the rows of :attr:`absent` members' promises (their categories
        removed too)."""
        gone = self._absent_promises
        if not gone or column not in frame:
            return frame
        keep = ~frame[column].astype(object).isin(gone).to_numpy()
        out = frame.loc[keep].reset_index(drop=True)
        for name, names in ((column, gone), ("promiser", self.absent), ("promisee", self.absent)):
            if name in out and isinstance(out[name].dtype, pd.CategoricalDtype):
                drop = [c for c in out[name].cat.categories if c in names]
                out[name] = out[name].cat.remove_categories(drop)
        out.attrs.update(frame.attrs)
        return out

    def _present_entities(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A table with ``kind`` and ``entity`` columns without :attr:`absent` members."""
        if not self.absent:
            return frame
        kind = frame["kind"].astype(object).to_numpy()
        entity = frame["entity"].astype(object).to_numpy()
        gone = (((kind == "agent") & np.isin(entity, list(self.absent)))
                | ((kind == "promise") & np.isin(entity, list(self._absent_promises))))
        out = frame.loc[~gone].reset_index(drop=True)
        out.attrs.update(frame.attrs)
        return out

    @cached_property
    def _all_promises(self) -> pd.DataFrame:
        spec, n_r = self.spec, self.replications
        n_p = len(spec.promises)
        columns = self._timeline_columns()
        counts = self._request_counts()
        total = (counts.sum(axis=2) - counts[:, :, UNFINISHED]).ravel()
        kept_requests = counts[:, :, KEPT].ravel()
        columns["requests"] = total
        columns["requests_kept"] = kept_requests
        columns["requests_unfinished"] = counts[:, :, UNFINISHED].ravel()
        columns["requests_degraded"] = counts[:, :, DEGRADED].ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            request_fraction = np.where(total > 0, kept_requests / np.maximum(total, 1), np.nan)
        columns["request_kept_fraction"] = request_fraction
        accepted = np.tile(np.array([p.accepted for p in spec.promises], dtype=bool), n_r)
        is_latency = np.tile(np.array([isinstance(p.body, Latency) for p in spec.promises], dtype=bool),
                             n_r)
        # Delivered on one basis per promise: requests for latency promises that some workload
        # calls (NaN in a replication without requests), time otherwise.
        requested = spec.requested()
        use_requests = np.tile(requested, n_r) & is_latency
        delivered = np.where(use_requests, request_fraction, columns["kept_fraction"])
        columns["delivered_fraction"] = np.where(accepted, delivered, 0.0)
        names = [p.name for p in spec.promises]
        agent_names = [a.name for a in spec.agents]
        codes = np.tile(np.arange(n_p), n_r)
        promiser = np.array([spec.agent_index[p.promiser] for p in spec.promises], dtype=np.int64)
        promisee = np.array([spec.agent_index[p.promisee] for p in spec.promises], dtype=np.int64)
        body = np.array([1 if isinstance(p.body, Latency) else 0 for p in spec.promises], dtype=np.int64)
        frame = {
            "replication": np.repeat(np.arange(n_r, dtype=np.int32), n_p),
            "promise": pd.Categorical.from_codes(codes, categories=names),
            "promiser": pd.Categorical.from_codes(promiser[codes], categories=agent_names),
            "promisee": pd.Categorical.from_codes(promisee[codes], categories=agent_names),
            "body": pd.Categorical.from_codes(body[codes], categories=["availability", "latency"]),
            "accepted": accepted,
        }
        integer = ("breaks", "requests", "requests_kept", "requests_unfinished", "requests_degraded")
        frame.update({m: columns[m].astype(np.int64 if m in integer else np.float64)
                      for m in PROMISE_METRICS})
        return self._frame(frame)

    def _timeline_columns(self) -> dict[str, np.ndarray]:
        """Timeline metrics, replication-major (from the trace's summary when it has one)."""
        n_r, n_p = self.replications, len(self.spec.promises)
        kept = self.trace.promise_metrics
        if kept is not None:
            key = kept["replication"].astype(np.int64) * n_p + kept["promise"]
            if key.size != n_r * n_p or not np.array_equal(np.sort(key), np.arange(n_r * n_p)):
                raise ValueError("the trace's promise metrics do not cover every (replication, "
                                 "promise) exactly once")
            order = np.argsort(key, kind="stable")
            return {m: kept[m][order] for m in _TIMELINE_METRICS}
        # built promise-major, then reordered replication-major
        per_promise = [t.metrics(self.horizon) for t in self._promise_timelines]
        columns: dict[str, np.ndarray] = {}
        for metric in _TIMELINE_METRICS:
            stacked = np.stack([m[metric] for m in per_promise]) if n_p else np.empty((0, n_r))
            columns[metric] = stacked.T.ravel()
        return columns

    def _request_counts(self) -> np.ndarray:
        counts = self.trace.counts()
        n_p = len(self.spec.promises)
        flat = (counts["replication"].astype(np.int64) * n_p + counts["promise"]) * len(OUTCOMES) \
            + counts["outcome"]
        out = np.bincount(flat, weights=counts["count"], minlength=self.replications * n_p * len(OUTCOMES))
        return out.astype(np.int64).reshape(self.replications, n_p, len(OUTCOMES))

    @cached_property
    def intervals(self) -> pd.DataFrame:
        return self._present_entities(self._all_intervals)

    @cached_property
    def _all_intervals(self) -> pd.DataFrame:
        """States per (replication, entity) as ``start, end`` intervals, in model order."""
        spec, horizon = self.spec, self.horizon
        n_a = len(spec.agents)
        parts = []
        for code, timelines in enumerate(self._agent_timelines + self._promise_timelines):
            rep, start, end, value = timelines.segments(horizon)
            is_agent = code < n_a
            state = np.where(value, 0 if is_agent else 2, 1 if is_agent else 3)
            parts.append((rep, np.full(rep.size, code), state, start, end))
        rep, entity, state, start, end = (np.concatenate([p[i] for p in parts]) if parts
                                          else np.empty(0) for i in range(5))
        # each timeline's segments are in (replication, start) order, entities in model order
        order = np.argsort(rep, kind="stable")
        entity = entity[order].astype(np.int64)
        return self._frame({
            "replication": rep[order].astype(np.int32),
            "kind": pd.Categorical.from_codes((entity >= n_a).astype(np.int64),
                                              categories=["agent", "promise"]),
            "entity": _entities(spec, entity),
            "state": pd.Categorical.from_codes(state[order].astype(np.int64),
                                               categories=["up", "down", "kept", "broken"]),
            "start": start[order].astype(np.float64),
            "end": end[order].astype(np.float64),
        })

    @cached_property
    def events(self) -> pd.DataFrame:
        return self._present_entities(self._all_events)

    @cached_property
    def _all_events(self) -> pd.DataFrame:
        """Changes of state with their causes, sorted by replication, time, kind (agents
        first) and entity (in model order)."""
        spec = self.spec
        n_a = len(spec.agents)
        ch = self._changes("events")
        rep = [ch["replication"].astype(np.int64)]
        time = [ch["time"]]
        entity = [ch["agent"].astype(np.int64)]
        event = [np.where(ch["up"], 1, 0)]
        cause = [ch["cause"].astype(np.int64)]            # codes into CAUSES
        labels = list(CAUSES)
        for index, (p, timeline) in enumerate(zip(spec.promises, self._promise_timelines)):
            rep.append(timeline.rep)
            time.append(timeline.time)
            entity.append(np.full(timeline.time.size, n_a + index))
            event.append(np.where(timeline.value, 3, 2))
            codes, texts = self._causes(p, timeline, len(labels))
            labels.extend(texts)
            cause.append(codes)
        rep_, time_, entity_, event_, cause_ = (np.concatenate(x) for x in (rep, time, entity, event, cause))
        order = np.lexsort((entity_, time_, rep_))   # agents (codes below n_a) first
        entity_ = entity_[order]
        frame = pd.DataFrame({
            "replication": rep_[order].astype(np.int32),
            "time": time_[order].astype(np.float64),
            "kind": pd.Categorical.from_codes((entity_ >= n_a).astype(np.int64),
                                              categories=["agent", "promise"]),
            "entity": _entities(spec, entity_),
            "event": pd.Categorical.from_codes(event_[order].astype(np.int64),
                                               categories=["down", "up", "broken", "restored"]),
            "cause": _labels(cause_[order], labels),
        })
        frame.attrs.update(self.attrs)
        return frame

    def _causes(self, p, timeline: Timelines, offset: int) -> tuple[np.ndarray, list[str]]:  # type: ignore[no-untyped-def]
        """For each change of ``p``: a code into labels (offset on) naming why it broke."""
        n = timeline.time.size
        codes = np.full(n, offset, dtype=np.int64)
        texts = [""]                                         # restored: no cause
        broken = np.flatnonzero(~timeline.value)
        if broken.size == 0:
            return codes, texts
        rep, t = timeline.rep[broken], timeline.time[broken]
        down, names, matrix = attribution._links(self, p, rep, t)
        table = np.column_stack([down, matrix])
        first, inverse = _distinct_rows(table)
        for row in table[first]:
            if row[0]:
                texts.append(f"agent {p.promiser!r} down")
            elif row[1:].any():
                texts.append("promise " + ", ".join(repr(q) for q, b in zip(names, row[1:]) if b)
                             + " broken")
            else:
                texts.append("")
        codes[broken] = offset + 1 + inverse
        return codes, texts

    @cached_property
    def requests(self) -> pd.DataFrame:
        """One row per request (root and calls) with ``kept`` and ``outcome``, in order of
        replication, workload, arrival index, promise, ``attempt`` (0: a call's first
        attempt; 1, 2, ...: its retries, each a request of its own), arrival instant, outcome
        and latency."""
        req = self.trace.requests
        if req is None:
            raise ValueError("requests were not recorded: run simulate(..., record_requests=True) "
                             "to get one row per request")
        # A canonical order, whatever order the engine finished requests in.
        # (calls under different attempts of a retried call share their other keys: the
        # later attempt's come later, and at one instant the outcome and latency decide)
        order = request_order(req)
        req = {k: v[order] for k, v in req.items()}
        promises = [p.name for p in self.spec.promises]
        workloads = [w.label for w in self.spec.workloads]
        return self._frame({
            "replication": req["replication"],
            "promise": pd.Categorical.from_codes(req["promise"], categories=promises),
            "workload": pd.Categorical.from_codes(req["workload"], categories=workloads),
            "index": req["index"],
            "attempt": req["attempt"],
            "arrival": req["arrival"],
            "latency": req["latency"],
            "kept": req["outcome"] == KEPT,
            "outcome": pd.Categorical.from_codes(req["outcome"].astype(np.int64), categories=list(OUTCOMES)),
        })

    @cached_property
    def _falls_back(self) -> bool:
        """Whether a condition of the model has fallbacks (so answers can be degraded)."""
        return "fallbacks" in self.spec.features

    @cached_property
    def breakers(self) -> pd.DataFrame:
        """One row per change of state of a circuit breaker: ``replication``, ``promise``
        (the caller's promise, whose :class:`~promisesim.model.promises.Breaker` it is),
        ``provider`` (the promise it guards calls to), ``time`` and ``state``
        (``closed``, ``open``, ``half_open``), in time order within each replication. Every
        breaker is closed at time 0; a model without breakers gives no rows."""
        log = self.trace.breakers
        if log is None:
            log = {k: np.empty(0, dtype=t) for k, t in BREAKER_COLUMNS.items()}
        order = np.lexsort((np.arange(log["time"].size), log["time"], log["replication"]))
        log = {k: v[order] for k, v in log.items()}
        promises = [p.name for p in self.spec.promises]
        return self._frame({
            "replication": log["replication"],
            "promise": pd.Categorical.from_codes(log["promise"].astype(np.int64), categories=promises),
            "provider": pd.Categorical.from_codes(log["provider"].astype(np.int64),
                                                  categories=promises),
            "time": log["time"],
            "state": pd.Categorical.from_codes(log["state"].astype(np.int64),
                                               categories=list(BREAKER_STATES)),
        })

    # -- internal communication ---------------------------------------------------------
    @cached_property
    def messages(self) -> pd.DataFrame:
        """Internal messages of each super-agent per replication: a request to a member and
        its answer are two messages (with ``rule="all_to_all"``, ``n + 1``: the member also
        exchanges one with each of the other ``n - 1``) (a member that is down still receives the request and
        answers that it refuses). Columns ``replication, super_agent, requests, messages``,
        where ``requests`` counts the members' interior requests."""
        spec = self.spec
        groups = [g for g in dict.fromkeys(spec.interior.values()) if g in spec.messages_per_call]
        counts = self._request_counts().sum(axis=2)          # replication x promise
        rows = []
        for group in groups:
            members = [spec.promise_index[p] for p, g in spec.interior.items() if g == group]
            per_rep = counts[:, members].sum(axis=1)
            each = spec.messages_per_call.get(group, 2)
            for r in range(self.replications):
                rows.append((r, group, int(per_rep[r]), each * int(per_rep[r])))
        frame = pd.DataFrame(rows, columns=["replication", "super_agent", "requests", "messages"])
        frame.attrs.update(self.attrs)
        return frame

    def slices(self, width: float) -> pd.DataFrame:
        """Each promise's standing slice by slice: one row per (replication, promise, slice
        of ``width`` time units from 0).

        ``kept_fraction`` is the share of the slice the promise was standing (its
        promiser up and its conditions holding: what a monitor of states sees);
        ``requests``, ``requests_kept`` and ``request_kept_fraction`` count the requests to
        it that arrived in the slice (unfinished ones left out; NaN without requests), so
        a slowdown, errors or a partition show as broken time even while every agent is up.
        Needs the changes of state (``record_changes=True``) and, for the request columns,
        the requests (``record_requests=True``; else they are left out).
        """
        if isinstance(width, bool) or not isinstance(width, (int, float, np.integer, np.floating)) \
                or not 0 < float(width) < math.inf:
            raise ValueError(f"width={width!r} must be a positive, finite time")
        width = float(width)
        n_slices = slice_count(self.horizon, width)
        if n_slices > 10_000_000:
            raise ValueError(f"width={width!r} cuts the horizon into {n_slices:,} slices: "
                             "too many; give a wider slice")
        spec, n_r, n_p = self.spec, self.replications, len(self.spec.promises)
        start = np.arange(n_slices) * width
        kept = np.stack([t.kept_per_slice(self.horizon, width) for t in self._promise_timelines],
                        axis=1)   # replications x promises x slices
        lengths = np.minimum(start + width, self.horizon) - start
        frame: dict[str, Any] = {
            "replication": np.repeat(np.arange(n_r, dtype=np.int32), n_p * n_slices),
            "promise": pd.Categorical.from_codes(np.tile(np.repeat(np.arange(n_p), n_slices), n_r),
                                                 categories=[p.name for p in spec.promises]),
            "start": np.tile(start, n_r * n_p),
            "kept_fraction": (kept / lengths).ravel(),
        }
        req = self.trace.requests
        if req is not None:
            counted = req["outcome"] != UNFINISHED
            slot = np.minimum((req["arrival"][counted] // width).astype(np.int64), n_slices - 1)
            key = (req["replication"][counted].astype(np.int64) * n_p
                   + req["promise"][counted]) * n_slices + slot
            size = n_r * n_p * n_slices
            total = np.bincount(key, minlength=size)
            good = np.bincount(key[req["outcome"][counted] == KEPT], minlength=size)
            frame["requests"] = total
            frame["requests_kept"] = good
            with np.errstate(invalid="ignore", divide="ignore"):
                frame["request_kept_fraction"] = np.where(total > 0, good / np.maximum(total, 1),
                                                          np.nan)
        return self._present(self._frame(frame))

    # -- failure attribution (see :mod:`promisesim.attribution`) ------------------------
    @cached_property
    def causes(self) -> pd.DataFrame:
        """One row per break of a promise, with its first failing link and root causes (see
        :func:`promisesim.attribution.causes`)."""
        return self._present(attribution.causes(self))

    def cause_summary(self) -> pd.DataFrame:
        """Per promise and root cause: breaks and broken time, largest first (see
        :func:`promisesim.attribution.cause_summary`)."""
        return attribution.cause_summary(self)

    @cached_property
    def absorbed(self) -> pd.DataFrame:
        """Upstream breaks a choice absorbed (see :func:`promisesim.attribution.absorbed`)."""
        return self._present(attribution.absorbed(self))

    @cached_property
    def request_causes(self) -> pd.DataFrame:
        """One row per cause of each root request that was not kept: which agent, and how
        (errors, late, down, rejected, partitioned); see
        :func:`promisesim.attribution.request_causes`."""
        return attribution.request_causes(self)

    def request_cause_summary(self) -> pd.DataFrame:
        """Per promise, agent and cause: the share of the promise's broken requests (see
        :func:`promisesim.attribution.request_cause_summary`)."""
        return attribution.request_cause_summary(self)

    @cached_property
    def request_absorbed(self) -> pd.DataFrame:
        """Failed calls their callers' requests were kept despite (see
        :func:`promisesim.attribution.request_absorbed`)."""
        return attribution.request_absorbed(self)

    # -- objectives (see :mod:`promisesim.slo`) -------------------------------------------
    @cached_property
    def objectives(self) -> pd.DataFrame:
        """Each objective (SLO) of the model judged per window: one row per (replication,
        objective, window) with ``promise``, ``start``, ``end``, ``good`` and ``total`` (requests,
        time or slices, per the objective's budgeting), ``attained`` (good / total; NaN for a
        window with nothing to count), ``met`` (attained at least the target; a window with
        nothing to count meets it), ``budget_used`` (the bad share over the error budget
        ``1 - target``: above 1, missed) and ``longest_burn`` (the longest stretch inside the
        window in which the promise was broken: for a promise judged by its requests, from a
        broken request to the next kept one). See :mod:`promisesim.model.objectives`."""
        return slo.objectives(self)

    def objective_summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per objective: ``windows`` judged, ``probability_met`` (the share of windows that met
        it) with its confidence interval (``ci_low``, ``ci_high``: a Wilson score interval over
        the windows for calendar windows; for rolling ones, which overlap, a Student-t interval
        over the replications' shares), ``mean_attained``, ``worst_attained`` and
        ``mean_budget_used``."""
        return slo.objective_summary(self, confidence)

    @cached_property
    def alerts(self) -> pd.DataFrame:
        """Each burn-rate alert's firing periods: one row per (replication, alert, period) with
        ``objective``, ``start`` (the first evaluation at which it fired) and ``end`` (the first
        after at which it did not, or the horizon). See :mod:`promisesim.alerts`."""
        return alerts.alerts(self)

    def alert_summary(self) -> pd.DataFrame:
        """Per alert, across replications, how well it warns of the objective's calendar
        windows that missed it: ``firings``, ``windows``, ``windows_missed``,
        ``missed_detected`` and ``detected_share`` (missed windows a firing overlapped),
        ``false_alarms`` (firings that overlapped no missed window) and
        ``false_alarms_per_30d`` (per 30 days of simulated time; NaN for a time unit that is
        not seconds, minutes, hours or days) and ``mean_lead`` (how long before the window's
        error budget was spent the alert first fired, over the detected windows that spent
        it)."""
        return alerts.alert_summary(self)

    @cached_property
    def sizes(self) -> pd.DataFrame:
        """Each super-agent's ``serving`` members over time, per replication: one row each
        time it changes (:mod:`promisesim.sizes`; :func:`~promisesim.plotting.plot_sizes`)."""
        return _sizes.sizes(self)

    @cached_property
    def instances(self) -> pd.DataFrame:
        """Instances started on demand over time (agents with a ``keep_alive``): ``running``
        and the cold starts ``started`` at each change (:func:`promisesim.sizes.instances`)."""
        return _sizes.instances(self)

    @cached_property
    def rollbacks(self) -> pd.DataFrame:
        """Per (replication, canary with a :class:`~promisesim.Rollback`): ``rolled_back``,
        its ``time`` (NaN: none), and the ``requests`` bound to the new version from the
        canary's ``start`` until then (or the horizon), of which ``broken``; see
        :mod:`promisesim.rollouts`."""
        return rollouts.table(self.spec, self.trace, self.horizon, self.replications)

    # -- observers (see :mod:`promisesim.observing`) -------------------------------------
    @cached_property
    def observations(self) -> pd.DataFrame:
        """Per (replication, observer): checks and their CFEngine-style outcomes
        (:func:`promisesim.observing.observations`)."""
        return observing.observations(self)

    def observation_summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Mean, standard error and confidence interval of each observer's outcome shares and
        detection delay across replications (columns as :meth:`summary`, with ``observer``)."""
        return observing.observation_summary(self, confidence)

    # -- summary -----------------------------------------------------------------------
    def summary(self, metrics: tuple[str, ...] | list[str] | None = None,
                confidence: float = 0.95) -> pd.DataFrame:
        """Mean, standard error and confidence interval of each metric across replications.

        Parameters
        ----------
        metrics : sequence of str, optional
            Columns of :attr:`promises` (default: all). Request metrics are
            left out for promises that received no requests, and a metric
            undefined (NaN) in every replication is left out.
        confidence : float
            Two-sided level of the Student-t interval ``mean ± t * stderr``.

        Returns
        -------
        pandas.DataFrame
            Columns ``promise, metric, mean, stderr, ci_low, ci_high, n``;
            ``n`` counts the replications where the metric is defined.
        """
        if not 0 < confidence < 1:
            raise ValueError(f"confidence={confidence!r} must be between 0 and 1")
        frame = self.promises
        if metrics is None:   # degraded answers only where something falls back
            metrics = [m for m in PROMISE_METRICS
                       if m != "requests_degraded" or self._falls_back]
        metrics = list(metrics)
        unknown = [m for m in metrics if m not in PROMISE_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {list(PROMISE_METRICS)}")
        request_metrics = ["requests", "requests_kept", "request_kept_fraction", "requests_unfinished",
                           "requests_degraded"]
        grouped = frame.groupby("promise", observed=True, sort=False)
        mean = grouped[metrics].mean()
        std = grouped[metrics].std(ddof=1)
        count = grouped[metrics].count()
        traffic = grouped["requests"].sum() + grouped["requests_unfinished"].sum()
        long = pd.DataFrame({
            "promise": np.repeat(mean.index.astype(str).to_numpy(), len(metrics)),
            "metric": np.tile(metrics, len(mean)),
            "mean": mean.to_numpy(dtype=np.float64).ravel(),
            "std": std.to_numpy(dtype=np.float64).ravel(),
            "n": count.to_numpy().ravel(),
        })
        no_traffic = np.repeat((traffic == 0).to_numpy(), len(metrics)) & \
            long["metric"].isin(request_metrics).to_numpy()
        long = long[(long["n"] > 0).to_numpy() & ~no_traffic]   # undefined, or no requests at all
        n = long["n"].to_numpy()
        stderr = np.where(n > 1, long["std"].to_numpy() / np.sqrt(np.maximum(n, 1)), np.nan)
        quantiles = {int(k): t_quantile(0.5 + confidence / 2, int(k) - 1) for k in np.unique(n) if k > 1}
        half = np.array([quantiles.get(int(k), np.nan) for k in n]) * stderr
        average = long["mean"].to_numpy()
        out = pd.DataFrame({
            "promise": pd.Categorical(long["promise"].to_numpy(), categories=frame["promise"].cat.categories),
            "metric": long["metric"].to_numpy(),
            "mean": average,
            "stderr": stderr,
            "ci_low": average - half,
            "ci_high": average + half,
            "n": n.astype(np.int64),
        })
        out.attrs.update(self.attrs)
        out.attrs["confidence"] = confidence
        return out


def load_result(path: str | Path) -> Result:
    """Read a result written by :meth:`Result.save`: its tables equal the saved result's.

    The folder is read as data (JSON, YAML with the safe loader, Parquet; nothing is
    unpickled) and checked against the saved model before any table is built.

    Raises
    ------
    ScenarioError
        If the folder is not a whole saved result, or its files do not fit together.
    """
    from . import _saving

    return Result(**_saving.load(path))
