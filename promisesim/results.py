"""Tidy results: from an engine's :class:`~promisesim.engines.base.Trace` to pandas, once.

Tables (all long/tidy, one row per observation; provenance in ``.attrs``):

``Result.promises``
    One row per (replication, promise): ``kept_fraction`` (share of the
    horizon the promise was standing), ``broken_time``, ``breaks`` (broken
    periods, one that is under way at time 0 included), ``longest_break``,
    ``mean_time_to_restore`` (mean length of breaks that ended before the
    horizon; NaN if none did), ``requests`` (answered, refused or lost
    requests that arrived before the horizon), ``requests_kept``,
    ``request_kept_fraction``, ``requests_unfinished`` (still inside at the
    horizon with their deadline ahead: excluded from the others), and
    ``delivered_fraction``: the kept fraction (of requests for latency
    promises with traffic, of time otherwise) if the promisee accepted the
    promise, and 0 for an imposition.
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from . import _timeline as tl
from .analytic import t_quantile
from .engines.base import CAUSES, KEPT, OUTCOMES, UNFINISHED, Trace
from .model.promises import Condition, Latency
from .model.spec import CallCondition, CallNode, ModelSpec

__all__ = ["Result", "PROMISE_METRICS"]

PROMISE_METRICS = (
    "kept_fraction",
    "broken_time",
    "breaks",
    "longest_break",
    "mean_time_to_restore",
    "requests",
    "requests_kept",
    "request_kept_fraction",
    "requests_unfinished",
    "delivered_fraction",
)


def _mark_requests(node: CallNode | CallCondition, requested: np.ndarray) -> None:
    if isinstance(node, CallNode):
        requested[node.promise] |= node.is_request
        if node.condition is not None:
            _mark_requests(node.condition, requested)
    else:
        for item in node.items:
            _mark_requests(item, requested)


def _category(values: list[str] | np.ndarray, categories: list[str]) -> pd.Categorical:
    return pd.Categorical(values, categories=categories)


@dataclass
class _Replica:
    agents: list[tl.Timeline]
    promises: list[tl.Timeline]


class Result:
    """What a simulation returns. Tables are built on first access and cached.

    Attributes
    ----------
    spec : ModelSpec
    horizon : float
    replications : int
    engine : str
        The engine that ran (after ``engine="auto"`` chose).
    entropy : int
        Root seed entropy: ``simulate(..., seed=entropy)`` reproduces the run.
    spawn_key : tuple of int
        The root ``SeedSequence``'s spawn key when it was a spawned child (else
        empty): ``seed=SeedSequence(entropy, spawn_key=spawn_key)`` reproduces it.
    trace : Trace
        The engine's raw output.
    """

    def __init__(self, spec: ModelSpec, trace: Trace, *, horizon: float, replications: int,
                 engine: str, entropy: int, spawn_key: tuple[int, ...] = ()) -> None:
        self.spec = spec
        self.trace = trace
        self.horizon = float(horizon)
        self.replications = int(replications)
        self.engine = engine
        self.entropy = int(entropy)
        self.spawn_key = tuple(int(k) for k in spawn_key)

    def __repr__(self) -> str:
        return (f"Result(model={self.spec.name!r}, engine={self.engine!r}, "
                f"replications={self.replications}, horizon={self.horizon!r})")

    # -- provenance ---------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        from . import __version__

        return {
            "model": self.spec.name,
            "engine": self.engine,
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
    @cached_property
    def _replicas(self) -> list[_Replica]:
        spec, horizon = self.spec, self.horizon
        changes = self.trace.agent_changes
        order = np.lexsort((np.arange(changes["time"].size), changes["agent"], changes["replication"]))
        rep, agent = changes["replication"][order], changes["agent"][order]
        times, ups = changes["time"][order], changes["up"][order]
        n_agents = len(spec.agents)
        key = rep.astype(np.int64) * n_agents + agent
        bounds = np.searchsorted(key, np.arange(self.replications * n_agents + 1))
        out = []
        for r in range(self.replications):
            agents = []
            for a in range(n_agents):
                lo, hi = bounds[r * n_agents + a], bounds[r * n_agents + a + 1]
                agents.append(tl.from_changes(times[lo:hi], ups[lo:hi], horizon))
            out.append(_Replica(agents, self._promise_timelines(agents)))
        return out

    def _promise_timelines(self, agents: list[tl.Timeline]) -> list[tl.Timeline]:
        spec, horizon = self.spec, self.horizon
        standing: list[tl.Timeline] = []

        def condition(c: Condition) -> tl.Timeline:
            parts = [condition(i) if isinstance(i, Condition) else standing[spec.promise_index[i]]
                     for i in c.items]
            return tl.at_least(parts, c.k, horizon)

        for p in spec.promises:  # dependency order: conditions come first
            own = agents[spec.agent_index[p.promiser]]
            if p.conditions is None:
                standing.append(own)
            else:
                standing.append(tl.at_least([own, condition(p.conditions)], 2, horizon))
        return standing

    # -- tables ---------------------------------------------------------------------
    @cached_property
    def promises(self) -> pd.DataFrame:
        """Per (replication, promise) metrics; see the module docstring."""
        spec, horizon = self.spec, self.horizon
        n_p = len(spec.promises)
        rows: dict[str, list[Any]] = {m: [] for m in PROMISE_METRICS}
        replication = np.repeat(np.arange(self.replications, dtype=np.int32), n_p)
        for replica in self._replicas:
            for timeline in replica.promises:
                start, end, kept = tl.segments(timeline, horizon)
                length = end - start
                broken = length[~kept]
                rows["kept_fraction"].append(float(length[kept].sum()) / horizon)
                rows["broken_time"].append(float(broken.sum()))
                rows["breaks"].append(int(broken.size))
                rows["longest_break"].append(float(broken.max()) if broken.size else 0.0)
                completed = broken[:-1] if not kept[-1] else broken
                rows["mean_time_to_restore"].append(
                    float(completed.mean()) if completed.size else math.nan)
        counts = self._request_counts()
        total = counts[:, :, :UNFINISHED].sum(axis=2).ravel()
        kept_requests = counts[:, :, KEPT].ravel()
        rows["requests"] = total.tolist()
        rows["requests_kept"] = kept_requests.tolist()
        rows["requests_unfinished"] = counts[:, :, UNFINISHED].ravel().tolist()
        with np.errstate(invalid="ignore", divide="ignore"):
            request_fraction = np.where(total > 0, kept_requests / np.maximum(total, 1), np.nan)
        rows["request_kept_fraction"] = request_fraction.tolist()
        accepted = np.tile(np.array([p.accepted for p in spec.promises], dtype=bool), self.replications)
        is_latency = np.tile(np.array([isinstance(p.body, Latency) for p in spec.promises], dtype=bool),
                             self.replications)
        # Delivered on one basis per promise: requests for latency promises that some workload
        # calls (NaN in a replication without requests), time otherwise.
        requested = np.zeros(n_p, dtype=bool)
        for tree in spec.call_trees:
            _mark_requests(tree, requested)
        use_requests = np.tile(requested, self.replications) & is_latency
        delivered = np.where(use_requests, request_fraction, np.asarray(rows["kept_fraction"]))
        rows["delivered_fraction"] = np.where(accepted, delivered, 0.0).tolist()
        names = [p.name for p in spec.promises]
        frame = {
            "replication": replication,
            "promise": _category(names * self.replications, names),
            "promiser": _category([p.promiser for p in spec.promises] * self.replications,
                                  [a.name for a in spec.agents]),
            "promisee": _category([p.promisee for p in spec.promises] * self.replications,
                                  [a.name for a in spec.agents]),
            "body": _category([type(p.body).__name__.lower() for p in spec.promises] * self.replications,
                              ["availability", "latency"]),
            "accepted": accepted,
        }
        frame.update({m: np.asarray(rows[m], dtype=np.int64 if m in ("breaks", "requests",
                      "requests_kept", "requests_unfinished") else np.float64)
                      for m in PROMISE_METRICS})
        return self._frame(frame)

    def _request_counts(self) -> np.ndarray:
        req = self.trace.requests
        n_p = len(self.spec.promises)
        flat = (req["replication"].astype(np.int64) * n_p + req["promise"]) * len(OUTCOMES) + req["outcome"]
        counts = np.bincount(flat, minlength=self.replications * n_p * len(OUTCOMES))
        return counts.reshape(self.replications, n_p, len(OUTCOMES))

    @cached_property
    def intervals(self) -> pd.DataFrame:
        """States per (replication, entity) as ``start, end`` intervals."""
        spec, horizon = self.spec, self.horizon
        cols: dict[str, list[Any]] = {k: [] for k in ("replication", "kind", "entity", "state",
                                                       "start", "end")}
        for r, replica in enumerate(self._replicas):
            for kind, names, timelines, labels in (
                ("agent", [a.name for a in spec.agents], replica.agents, ("down", "up")),
                ("promise", [p.name for p in spec.promises], replica.promises, ("broken", "kept")),
            ):
                for name, timeline in zip(names, timelines):
                    start, end, value = tl.segments(timeline, horizon)
                    n = start.size
                    cols["replication"].extend([r] * n)
                    cols["kind"].extend([kind] * n)
                    cols["entity"].extend([name] * n)
                    cols["state"].extend(labels[int(v)] for v in value)
                    cols["start"].extend(start.tolist())
                    cols["end"].extend(end.tolist())
        entities = [a.name for a in spec.agents] + [p.name for p in spec.promises]
        return self._frame({
            "replication": np.asarray(cols["replication"], dtype=np.int32),
            "kind": _category(cols["kind"], ["agent", "promise"]),
            "entity": _category(cols["entity"], list(dict.fromkeys(entities))),
            "state": _category(cols["state"], ["up", "down", "kept", "broken"]),
            "start": np.asarray(cols["start"], dtype=np.float64),
            "end": np.asarray(cols["end"], dtype=np.float64),
        })

    @cached_property
    def events(self) -> pd.DataFrame:
        """Changes of state with their causes, sorted by replication, time, kind (agents
        first) and entity (in model order)."""
        spec = self.spec
        ch = self.trace.agent_changes
        cols: dict[str, list[Any]] = {
            "replication": ch["replication"].tolist(),
            "time": ch["time"].tolist(),
            "kind": ["agent"] * ch["time"].size,
            "entity": [spec.agents[a].name for a in ch["agent"]],
            "event": ["up" if u else "down" for u in ch["up"]],
            "cause": [CAUSES[c] for c in ch["cause"]],
        }
        for r, replica in enumerate(self._replicas):
            for p, timeline in zip(spec.promises, replica.promises):
                times, values = timeline
                for t, v in zip(times.tolist(), values.tolist()):
                    if t == 0.0 and v:
                        continue
                    cols["replication"].append(r)
                    cols["time"].append(t)
                    cols["kind"].append("promise")
                    cols["entity"].append(p.name)
                    cols["event"].append("restored" if v else "broken")
                    cols["cause"].append("" if v else self._cause(replica, p.name, t))
        entities = [a.name for a in spec.agents] + [p.name for p in spec.promises]
        frame = pd.DataFrame({
            "replication": np.asarray(cols["replication"], dtype=np.int32),
            "time": np.asarray(cols["time"], dtype=np.float64),
            "kind": _category(cols["kind"], ["agent", "promise"]),
            "entity": _category(cols["entity"], list(dict.fromkeys(entities))),
            "event": _category(cols["event"], ["down", "up", "broken", "restored"]),
            "cause": cols["cause"],
        }).sort_values(["replication", "time", "kind", "entity"], kind="stable", ignore_index=True)
        frame.attrs.update(self.attrs)
        return frame

    def _cause(self, replica: _Replica, promise: str, t: float) -> str:
        spec = self.spec
        p = spec.promises[spec.promise_index[promise]]
        if not tl.value_at(replica.agents[spec.agent_index[p.promiser]], t):
            return f"agent {p.promiser!r} down"
        if p.conditions is not None:
            broken = [q for q in dict.fromkeys(p.conditions.promises())
                      if not tl.value_at(replica.promises[spec.promise_index[q]], t)]
            if broken:
                return "promise " + ", ".join(repr(q) for q in broken) + " broken"
        return ""

    @cached_property
    def requests(self) -> pd.DataFrame:
        """One row per request (root and calls) with ``kept`` and ``outcome``, in order of
        replication, workload, arrival index and promise."""
        req = self.trace.requests
        # A canonical order, whatever order the engine finished requests in.
        order = np.lexsort((req["promise"], req["index"], req["workload"], req["replication"]))
        req = {k: v[order] for k, v in req.items()}
        promises = [p.name for p in self.spec.promises]
        workloads = [w.label for w in self.spec.workloads]
        return self._frame({
            "replication": req["replication"],
            "promise": pd.Categorical.from_codes(req["promise"], categories=promises),
            "workload": pd.Categorical.from_codes(req["workload"], categories=workloads),
            "index": req["index"],
            "arrival": req["arrival"],
            "latency": req["latency"],
            "kept": req["outcome"] == KEPT,
            "outcome": pd.Categorical.from_codes(req["outcome"].astype(np.int64), categories=list(OUTCOMES)),
        })

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
        metrics = list(PROMISE_METRICS if metrics is None else metrics)
        unknown = [m for m in metrics if m not in PROMISE_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {list(PROMISE_METRICS)}")
        request_metrics = {"requests", "requests_kept", "request_kept_fraction", "requests_unfinished"}
        rows = []
        for promise, group in frame.groupby("promise", observed=True, sort=False):
            no_traffic = int(group["requests"].sum() + group["requests_unfinished"].sum()) == 0
            for metric in metrics:
                if no_traffic and metric in request_metrics:
                    continue  # a promise nobody sent requests to has no request metrics
                values = group[metric].to_numpy(dtype=np.float64)
                values = values[~np.isnan(values)]
                n = values.size
                if n == 0:
                    continue
                mean = float(values.mean())
                stderr = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
                half = t_quantile(0.5 + confidence / 2, n - 1) * stderr if n > 1 else math.nan
                rows.append((promise, metric, mean, stderr, mean - half, mean + half, n))
        out = pd.DataFrame(rows, columns=["promise", "metric", "mean", "stderr", "ci_low",
                                          "ci_high", "n"])
        out.attrs.update(self.attrs)
        out.attrs["confidence"] = confidence
        return out
