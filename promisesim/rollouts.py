"""Rollouts that roll back: canaries whose analysis of the new version's requests gives the
traffic back to the stable version (see :class:`~promisesim.Rollback`).

Whether and when a rollout rolls back depends on the requests, and the requests after it
on the rollback, so a run with such canaries is a fixed point of whole runs, whatever the
engine (:func:`run`):

1. run the replications as the model says, without rollbacks;
2. in each replication, find the first analysis that fails (:func:`rollback_times`);
3. run that replication again with the rollback applied at that instant (the canary's
   steps before it, then all the traffic back to the stable version), and repeat from 2
   for canaries not rolled back yet, earliest first.

An analysis at ``t`` judges requests that came due by ``t`` (arrival plus deadline),
whether kept then being known, and everything before the rollback instant is the same
in both runs (the model is the same until then), so the analyses up to it fail exactly
where the first run found: the last run is the model with its rollbacks applied, and its
own analyses find the same rollbacks. A replication that rolls back costs one run more.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .engines.base import DEGRADED, KEPT, Engine, Trace
from .errors import ScenarioError
from .model.spec import ModelSpec
from .random import Streams

__all__ = ["run", "rollback_times", "table"]

#: A rollout's identity: (versioned agent, new version, start).
Key = tuple[str, str, float]


def _kept(outcome: np.ndarray) -> np.ndarray:
    return (outcome == KEPT) | (outcome == DEGRADED)


def _key(rollout: Any) -> Key:
    return (rollout.target, rollout.to, float(rollout.at))


def rollback_times(spec: ModelSpec, requests: dict[str, np.ndarray],
                   horizon: float) -> dict[Key, dict[int, float]]:
    """For each canary with a rollback, the replications whose requests fail one of its
    analyses, and the instant of the first that fails."""
    out: dict[Key, dict[int, float]] = {}
    promise = requests["promise"].astype(np.int64)
    for rollout in spec.rollouts:
        rb = rollout.rollback
        watched = np.array([spec.promise_index[n] for n in rollout.watch], dtype=np.int64)
        deadline = np.full(len(spec.promises), np.inf)
        deadline[watched] = [spec.promises[i].body.deadline for i in watched]
        sel = np.flatnonzero(np.isin(promise, watched))
        rep = requests["replication"][sel]
        due = requests["arrival"][sel] + deadline[promise[sel]]
        broken = ~_kept(requests["outcome"][sel])
        steps = np.arange(1, int(max(0.0, min(rollout.end, horizon) - rollout.at)
                                 // rb.interval) + 2)
        instants = rollout.at + steps * rb.interval
        instants = instants[(instants <= rollout.end) & (instants < horizon)]
        found: dict[int, float] = {}
        order = np.lexsort((due, rep))
        rep, due, broken = rep[order], due[order], broken[order]
        bounds = np.searchsorted(rep, np.unique(rep))
        for r, lo, hi in zip(np.unique(rep), bounds, np.r_[bounds[1:], rep.size]):
            d = due[lo:hi]
            cum = np.r_[0, np.cumsum(broken[lo:hi])]
            a = np.searchsorted(d, instants - rb.window, side="right")
            b = np.searchsorted(d, instants, side="right")
            count, bad = b - a, cum[b] - cum[a]
            fails = (count >= rb.min_requests) & (bad > rb.max_broken * count)
            if fails.any():
                found[int(r)] = float(instants[np.argmax(fails)])
        out[_key(rollout)] = found
    return out


def rolled_back(spec: ModelSpec, applied: dict[Key, float]) -> ModelSpec:
    """``spec`` with the canaries ``applied`` rolled back at their instants: each canary's
    steps before the instant, then all the traffic back to its stable version."""
    from .model.model import Model

    if spec.scenario is None:
        raise ScenarioError("a canary with a rollback needs the model's scenario form: "
                            "simulate a Model, or a spec made by Model.spec()")
    stable = {_key(r): r.stable for r in spec.rollouts}
    scenario = copy.deepcopy(spec.scenario)
    injections = []
    for entry in scenario.get("injections") or []:
        c = entry.get("canary") if isinstance(entry, dict) else None
        key = None if c is None else (c["target"], c["to"], float(c["at"]))
        if key not in applied:
            injections.append(entry)
            continue
        at, until = float(c["at"]), applied[key]
        for share, hold in c["steps"]:
            if at >= until:
                break
            injections.append({"migrate": {"target": c["target"], "to": c["to"], "at": at,
                                           "share": share}})
            at += float(hold)
        injections.append({"migrate": {"target": c["target"], "to": stable[key], "at": until,
                                       "share": 1.0}})
    scenario["injections"] = injections
    return Model.from_dict(scenario).spec()


def _take(trace: Trace, replication: int) -> Trace:
    """The part of ``trace`` of one replication."""
    def part(columns: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
        if columns is None:
            return None
        keep = columns["replication"] == replication
        return {k: v[keep] for k, v in columns.items()}

    return Trace(part(trace.agent_changes), part(trace.requests), part(trace.request_counts),
                 part(trace.promise_metrics), trace.computed_by, part(trace.breakers),
                 part(trace.instances))


def run(engine: Engine, spec: ModelSpec, *, horizon: float, streams: Streams,
        replications: Sequence[int], record_requests: bool = True,
        record_changes: bool = True) -> Trace:
    """``engine.run``, with the model's canaries rolled back where their analyses fail (see
    the module docstring); the same arguments and trace."""
    if not spec.rollouts:
        return engine.run(spec, horizon=horizon, streams=streams, replications=replications,
                          record_requests=record_requests, record_changes=record_changes)
    reps = [int(r) for r in replications]
    trace = engine.run(spec, horizon=horizon, streams=streams, replications=reps,
                       record_requests=True, record_changes=record_changes)
    parts = {r: None for r in reps}   # replication -> its trace, where run again
    applied: dict[int, dict[Key, float]] = {r: {} for r in reps}
    while True:
        assert trace.requests is not None
        found = rollback_times(spec, trace.requests, horizon)
        again = []
        for r in reps:
            new = [(times[r], key) for key, times in found.items()
                   if r in times and key not in applied[r]]
            if new:
                instant, key = min(new)
                applied[r][key] = instant
                again.append(r)
        if not again:
            break
        for r in again:
            parts[r] = engine.run(rolled_back(spec, applied[r]), horizon=horizon,
                                  streams=streams, replications=[r], record_requests=True,
                                  record_changes=record_changes)
        trace = Trace.concat([parts[r] or _take(trace, r) for r in reps])
    if not record_requests:
        trace = trace.without_requests()
    return trace


def table(spec: ModelSpec, trace: Trace, horizon: float, replications: int) -> pd.DataFrame:
    """One row per (replication, canary with a rollback): whether and when it rolled back,
    and the requests bound to the new version from the canary's start until then (or the
    horizon), and how many of them broke. See :attr:`promisesim.Result.rollbacks`."""
    columns = ["replication", "target", "version", "start", "rolled_back", "time", "requests",
               "broken"]
    if not spec.rollouts:
        return pd.DataFrame({c: [] for c in columns})
    requests = trace.requests
    if requests is None:
        raise ValueError("rollbacks are found from the requests: simulate(..., "
                         "record_requests=True)")
    found = rollback_times(spec, requests, horizon)
    rep, arrival = requests["replication"].astype(np.int64), requests["arrival"]
    broken = ~_kept(requests["outcome"])
    frames = []
    for rollout in spec.rollouts:
        times = found[_key(rollout)]
        until = np.full(replications, np.inf)   # each replication's rollback (or none)
        until[list(times)] = list(times.values())
        mine = np.isin(requests["promise"], [spec.promise_index[n] for n in rollout.watch])
        mine &= (arrival >= rollout.at) & (arrival < until[rep])
        frames.append(pd.DataFrame({
            "replication": np.arange(replications), "target": rollout.target,
            "version": rollout.to, "start": rollout.at, "rolled_back": until < np.inf,
            "time": np.where(until < np.inf, until, math.nan),
            "requests": np.bincount(rep[mine], minlength=replications),
            "broken": np.bincount(rep[mine & broken], minlength=replications)}))
    return pd.concat(frames, ignore_index=True)[columns]
