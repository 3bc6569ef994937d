"""Autoscalers on the vector engine: the membership a replication ends up with, as a fixed point.

An autoscaler (:class:`~promisesim.model.injections.Autoscaler`) couples
everything: what it decides at an observation depends on the busy
server-time of its members so far, which depends on the routing of every
earlier request, which depends on its earlier decisions. The vector engine
has no event loop to carry that state, so it finds the decisions by
iteration, for a batch of replications at once:

1. Guess every replication's decisions (at first: no resize ever).
2. Turn them into membership, per replication, exactly as the reference
   engine's ``_resize`` does: members not asked for are *absent* (a draining
   outage: no new requests, those inside finish), a member asked for again
   is down for its start-up (a crash-like outage; draw ``j`` of
   ``("startup", member)``, warm when draw ``j`` of ``("reuse", member)`` is
   below the reuse probability, ``j`` counting its start-ups), and run the
   whole vector pipeline with these per-replication outages
   (:attr:`~promisesim.engines.vector.batch._Batch.membership`).
3. From each member's served requests (:attr:`~promisesim.engines.vector.batch._Batch.busy_log`: when each
   entered the queue and when it left or was lost) rebuild the busy-server
   count over time and integrate it the way the reference engine does: the
   reference adds ``busy * (now - last)`` at every service start and end, so
   the integral is a running sum over exactly those instants (the instants
   where the count ``min(servers, requests inside)`` changes, and every
   departure), in the same order; an observation adds the partial segment to
   it. Then recompute the decisions interval by interval (a loop over
   observations, vectorised over replications), with the reference's
   arithmetic.
4. Replications whose decisions did not change are done: that run *is* the
   reference's run (its decisions reproduce themselves). The others go
   round again with the new decisions.

Decision ``k`` depends only on the run before observation ``k``, so on
decisions before it: after round ``r`` the first ``r`` decisions are final,
and the iteration ends after at most one round per observation (in practice
far fewer; see the tests). The fixed point is unique, so it is the
reference engine's outcome, bit for bit where the arithmetic is the same.

Why whole runs and not an event loop: the rest of the vector engine (routing,
calls, queues, crashes) is reused as it is, and each round costs one vector
run of the replications still changing. The price is the rounds: roughly one
per resize that a round's guess got wrong (a feedback loop settles from its
start, so a replication with many resizes needs many rounds).

Ties (deterministic times) differ as elsewhere in the vector engine, and one
more: with ``delay=0`` the reference applies a resize at the observation
instant after the events SimPy scheduled before the observation; this engine
applies it before every arrival at that instant (as every change of state).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ..._timeline import _last_at_or_before
from ...model.spec import ModelSpec
from ...random import Streams
from ..base import AGENT_CHANGE_COLUMNS, COUNT_COLUMNS, INSTANCE_COLUMNS, REQUEST_COLUMNS, Trace
from .kernels import _UNIT, _segmented_accumulate
from .records import _BATCH_RECORDS, _GrowingColumns
from .structure import _tree_size

__all__ = ["run_autoscaled"]

#: Rounds of the last call of :func:`run_autoscaled`, one per batch (for diagnostics and tests).
last_rounds: list[int] = []


class _Group:
    """One autoscaled super-agent: its members, policy and observation instants."""

    def __init__(self, spec: ModelSpec, group: Any, horizon: float) -> None:
        policy = group.policy
        self.group, self.policy = group, policy
        self.members = [spec.agent_index[m] for m in group.members]
        self.servers = spec.agents[self.members[0]].servers
        # observation k at t[k]: each a timeout of `interval` after the last (running sums)
        steps = int(math.ceil(horizon / policy.interval)) + 2
        t = np.cumsum(np.full(steps, float(policy.interval)))
        self.times = t[t < horizon]
        # a resize decided at t[k] applies `delay` later (no delay: at once)
        self.applied = self.times + policy.delay if policy.delay else self.times

    # -- decisions -> membership ----------------------------------------------------------
    def membership(self, decisions: np.ndarray, reps: np.ndarray, streams: Streams
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Outages of the members given ``decisions`` (replications x observations: the size
        decided, 0 for none): ``(member, replication position, start, end, drain)``."""
        g, n, m = self.group, reps.size, len(self.members)
        index = np.arange(m)
        absent = np.zeros((n, m), dtype=bool)
        absent[:, g.size:] = True                 # not asked for yet: absent from 0
        since = np.zeros((n, m))
        starts = np.zeros((n, m), dtype=np.int64)
        parts: list[tuple[np.ndarray, ...]] = []
        keys = reuse = None
        for k in np.flatnonzero(decisions.any(axis=0)).tolist():
            size = decisions[:, k]
            go = size > 0
            at = self.applied[k]
            inside = index[None, :] < size[:, None]
            removed = go[:, None] & ~inside & ~absent
            added = go[:, None] & inside & absent
            absent[removed] = True
            since[removed] = at
            if not added.any():
                continue
            r, i = np.nonzero(added)
            parts.append((i, r, since[r, i], np.full(r.size, at), np.ones(r.size, dtype=bool)))
            absent[added] = False
            if keys is None:   # every member's keys, entity-major: [member * n + replication]
                keys = streams.keys_many(reps, "startup", g.members)
                reuse = streams.keys_many(reps, "reuse", g.members) if g.reuse > 0 else None
            flat, j = i * n + r, starts[r, i]
            k0, k1 = keys[0][flat], keys[1][flat]
            duration = Streams.draw_at(g.cold, k0, k1, j.astype(np.uint64))
            if reuse is not None:
                is_warm = Streams.draw_at(_UNIT, reuse[0][flat], reuse[1][flat],
                                          j.astype(np.uint64)) < g.reuse
                duration = np.where(is_warm, Streams.draw_at(g.warm, k0, k1, j.astype(np.uint64)),
                                    duration)
            starts[r, i] += 1
            starting = duration > 0        # a start-up: down (as a crash) until it is over
            count = int(starting.sum())
            parts.append((i[starting], r[starting], np.full(count, at), at + duration[starting],
                          np.zeros(count, dtype=bool)))
        r, i = np.nonzero(absent)          # absent at the end: for good
        parts.append((i, r, since[r, i], np.full(r.size, np.inf), np.ones(r.size, dtype=bool)))
        member, rep, start, end, drain = (np.concatenate([p[c] for p in parts]) for c in range(5))
        return np.asarray(self.members)[member], rep, start, end, drain

    # -- busy server-time -> decisions ----------------------------------------------------
    def observed(self, log: dict[int, Any], n: int) -> np.ndarray:
        """Busy server-time of all members from 0 to each observation (replications x
        observations), summed in member order as the reference engine sums it."""
        total = np.zeros((n, self.times.size))
        for i, a in enumerate(self.members):
            entry = log.get(a)
            if entry is None:
                continue
            value = _busy_time(*entry, self.servers, n, self.times)
            total = value if i == 0 else total + value
        return total

    def decide(self, busy: np.ndarray) -> np.ndarray:
        """The sizes decided at each observation (0: none), with the reference's arithmetic."""
        p = self.policy
        n, steps = busy.shape
        size = np.full(n, self.group.size, dtype=np.int64)
        last = np.full(n, -np.inf)
        observed = np.zeros(n)
        out = np.zeros((n, steps), dtype=np.int64)
        for k in range(steps):
            now = self.times[k]
            utilisation = (busy[:, k] - observed) / ((size * self.servers) * p.interval)
            observed = busy[:, k]
            want = np.ceil(size * utilisation / p.utilisation - 1e-9)
            want = np.minimum(np.maximum(want, p.min_size), p.max_size).astype(np.int64)
            go = (want != size) & (now - last >= p.cooldown)
            if go.any():
                last[go] = now
                size[go] = want[go]
                out[go, k] = want[go]
        return out


def _busy_time(rep: np.ndarray, ready: np.ndarray, end: np.ndarray, servers: int, n: int,
               times: np.ndarray) -> np.ndarray:
    """An agent's busy server-time from 0 to each of ``times``, per replication position.

    ``ready`` and ``end``: when each served request joined the FIFO queue and when it left
    (or was lost). Busy servers are ``min(servers, requests inside)``. The reference engine
    adds ``busy * (now - last)`` at each service start and end: the instants where the
    count changes, and every departure (a waiting request starts at one). So the area is a
    running sum over those instants, in time order."""
    m = rep.size
    if m == 0:
        return np.zeros((n, times.size))
    t = np.concatenate([ready, end])
    r = np.concatenate([rep, rep])
    delta = np.concatenate([np.ones(m, dtype=np.int64), np.full(m, -1, dtype=np.int64)])
    order = np.lexsort((t, r))
    t, r, delta = t[order], r[order], delta[order]
    is_end = order >= m
    inside = np.cumsum(delta)              # every request enters and leaves: sums restart at 0
    last = np.ones(t.size, dtype=bool)     # the last event of each (replication, instant)
    last[:-1] = (r[1:] != r[:-1]) | (t[1:] != t[:-1])
    instant = np.cumsum(last) - last       # the instant of each event
    any_end = np.zeros(int(last.sum()), dtype=bool)
    any_end[instant[is_end]] = True
    i_t, i_r = t[last], r[last]
    busy = np.minimum(inside[last], servers)
    first = np.ones(i_t.size, dtype=bool)
    first[1:] = i_r[1:] != i_r[:-1]
    before = np.empty_like(busy)
    before[0] = 0
    before[1:] = busy[:-1]
    before[first] = 0
    point = (busy != before) | any_end
    p_t, p_r, p_busy = i_t[point], i_r[point], busy[point]
    p_first = np.ones(p_t.size, dtype=bool)
    p_first[1:] = p_r[1:] != p_r[:-1]
    gap = np.empty_like(p_t)
    gap[0] = 0.0
    gap[1:] = p_t[1:] - p_t[:-1]
    was = np.empty_like(p_busy)
    was[0] = 0
    was[1:] = p_busy[:-1]
    was[p_first] = 0                        # 0 * (t - 0): the first addition is 0
    gap[p_first] = p_t[p_first]
    area = _segmented_accumulate(np.add, was * gap, p_first, 0.0)
    q_rep = np.repeat(np.arange(n), times.size)
    q_t = np.tile(times, n)
    j = _last_at_or_before(p_r, p_t, q_rep, q_t)
    jj = np.maximum(j, 0)
    value = np.where(j >= 0, area[jj] + p_busy[jj] * (q_t - p_t[jj]), 0.0)
    return value.reshape(n, times.size)


def _batch_size(spec: ModelSpec, horizon: float) -> int:
    """Replications per batch: the vector engine's bound on records per batch."""
    per_replication = 1.0 + 4.0 * sum(len(g.members) for g in spec.scaled)
    for agent in spec.agents:
        f = agent.failures
        if f is not None:
            cycle = f.time_to_failure.mean + (f.time_to_repair.mean if f.time_to_repair is not None
                                              else f.maintenance.interval.mean)  # type: ignore[union-attr]
            per_replication += 4.0 * horizon / cycle
    for workload, tree in zip(spec.workloads, spec.call_trees):
        end = horizon if workload.end is None else min(workload.end, horizon)
        per_replication += max(end - workload.start, 0.0) / workload.gaps.mean * _tree_size(tree)
    return max(1, int(_BATCH_RECORDS // per_replication))


def run_autoscaled(batch: Callable[..., Any], spec: ModelSpec, *, horizon: float,
                   streams: Streams, replications: Sequence[int],
                   record_requests: bool = True) -> Trace:
    """The vector engine's run of a model with autoscalers (see the module docstring).

    ``batch`` makes a batch of the vector engine,
    ``batch(spec, horizon, streams, replications)`` (the engine passes its own, so this
    module does not import the engine back)."""
    reps = np.asarray(list(replications), dtype=np.int64)
    groups = [_Group(spec, g, horizon) for g in spec.scaled]
    size = _batch_size(spec, horizon)
    changes: list[dict[str, np.ndarray]] = []
    requests: list[dict[str, np.ndarray]] = []
    counts: list[dict[str, np.ndarray]] = []
    pools: list[dict[str, np.ndarray]] = []
    last_rounds.clear()
    for lo in range(0, reps.size, size):
        rounds = _fixed_point(batch, spec, horizon, streams, reps[lo:lo + size], groups,
                              record_requests, changes, requests, counts, pools)
        last_rounds.append(rounds)
    agent_changes = _join(changes, AGENT_CHANGE_COLUMNS)
    instances = None
    if any(a.keep_alive is not None for a in spec.agents):   # as the reference orders them
        instances = _join(pools, INSTANCE_COLUMNS)
        order = np.lexsort((instances["change"], instances["time"], instances["agent"],
                            instances["replication"]))
        instances = {k: v[order] for k, v in instances.items()}
    if record_requests:
        return Trace(agent_changes, _join(requests, REQUEST_COLUMNS), instances=instances)
    table = _join(counts, COUNT_COLUMNS)
    order = np.lexsort((table["outcome"], table["promise"], table["replication"]))
    return Trace(agent_changes, None, {k: v[order] for k, v in table.items()},
                 instances=instances)


def _fixed_point(batch: Callable[..., Any], spec: ModelSpec, horizon: float, streams: Streams,
                 reps: np.ndarray,
                 groups: list[_Group], record_requests: bool, changes: list, requests: list,
                 counts: list, pools: list) -> int:
    """Iterate one batch to its fixed point, appending each replication's final outputs;
    returns the number of rounds."""
    n = reps.size
    decisions = [np.zeros((n, g.times.size), dtype=np.int64) for g in groups]
    todo = np.arange(n)
    rounds = 0
    while todo.size:
        rounds += 1
        sub = reps[todo]
        parts = [g.membership(d[todo], sub, streams) for g, d in zip(groups, decisions)]
        agent, rep, start, end, drain = (np.concatenate([p[c] for p in parts]) for c in range(5))
        b = batch(spec, horizon, streams, sub)
        b.membership = (agent * sub.size + rep, start, end, drain)
        b.busy_log = {a: None for g in groups for a in g.members}
        batch_changes = b.run()
        if spec.workloads:
            b._requests()
        same = np.ones(todo.size, dtype=bool)
        for g, d in zip(groups, decisions):
            new = g.decide(g.observed(b.busy_log, todo.size))
            same &= (new == d[todo]).all(axis=1)
            d[todo] = new
        if rounds > max(g.times.size for g in groups) + 1:   # decision k is final by round k+1
            raise AssertionError("autoscaler decisions did not settle")
        if same.any():   # these replications are done: keep this round's outputs of them
            done = sub[same]

            def mine(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
                if same.all():
                    return table
                keep = np.isin(table["replication"], done)
                return {k: v[keep] for k, v in table.items()}

            changes.append(mine(batch_changes))
            for a, (pos, time, change) in b.instance_log.items():
                pools.append(mine({"replication": sub[pos], "agent": np.full(pos.size, a),
                                   "time": time, "change": change}))
            if spec.workloads and record_requests:
                columns = _GrowingColumns(REQUEST_COLUMNS)
                b.write_records(columns)
                requests.append(mine(columns.finish()))
            elif spec.workloads:
                counts.append(mine({k: np.concatenate(v) for k, v in b.counts().items()}))
        todo = todo[~same]
    return rounds


def _join(parts: list[dict[str, np.ndarray]], schema: dict[str, type]) -> dict[str, np.ndarray]:
    """Columns of the parts, stacked, in replication order (stable)."""
    if not parts:
        return {k: np.empty(0, dtype=t) for k, t in schema.items()}
    out = {k: np.concatenate([p[k] for p in parts]).astype(t, copy=False) for k, t in schema.items()}
    order = np.argsort(out["replication"], kind="stable")
    return {k: v[order] for k, v in out.items()}
