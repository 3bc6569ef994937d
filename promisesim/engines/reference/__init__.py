"""The reference engine: readable SimPy processes that define promisesim's semantics.

One process per duty: each agent's failure/repair cycle, each injected
outage, each workload's arrivals, and one process per request. The
semantics (see also :mod:`promisesim.model.promises`):

* An agent is up when its own failure process and every outage of it let it
  be. Going down loses every request inside it (waiting for its calls,
  queued, or in service) and it restarts with an empty queue.
* A request to a latency promise arrives at its promiser at time ``t``. If
  the promiser is down it is refused. Otherwise the promiser makes the
  calls its conditions need, in parallel: an all-of condition calls every
  provider, a choice (any-of) calls the first provider whose promise is
  standing at ``t`` (perfect, instant detection for now), a k-of-n condition
  calls all and needs the ``k`` kept answers that come first. A condition on
  an availability promise is a check of its state at ``t``; a condition on
  a latency promise is a request to it (recursively), which must be
  answered, and not with an error: a late answer counts when the caller
  waits for late answers (the promise's ``late="wait"``, the default: it is
  what a caller without a timeout does, so slow providers make slow
  callers), not when it fails on them (``late="fail"``). A caller with a
  ``timeout`` gives up on a call whose answer is not back ``timeout`` after
  it was sent: the call fails then (an answer back exactly then counts),
  and the provider goes on with the work it took. A caller with
  ``retries`` sends a failed call again, after its backoff (the wait before
  retry ``j``, jittered by draw ``k`` of ``("backoff", retry path)``), as a
  request of its own (its node's path has ``~j`` added, so it draws from
  its own streams and is recorded with ``attempt=j``); the call fails when
  its last attempt does. A caller that crashes sends no call it had not
  sent yet (a retry, a fallback, a hedge), even where its calls run on
  (the items of an all-of or a k-of-n). A condition
  resolves as soon as its outcome is certain. When it succeeds
  the request joins the promiser's FIFO queue and is served by one of its
  servers; it is kept iff the response time is at most the deadline.
* Where the promiser's own work sits relative to its calls is its
  ``order`` (one default, ``"after"``, for every agent; a super-agent's
  front, which only routes, always calls first):

  - ``"after"``: calls first, then the queue and its own service; it holds
    no server while it waits for answers (a limit slot, yes);
  - ``"around"``: it joins the queue on arrival; on taking a server it makes
    its calls and holds the server until they resolve, then does its own
    service; if they fail it frees the server at once (a thread-per-request
    server that calls its database: a slow provider fills its servers);
  - ``"before"``: the queue and its own service first, then the calls (it
    holds no server while it waits for them); the answer comes when they
    resolve.

  The request's behaviour at the promiser (degradations, errors) is fixed
  when it joins the queue: at its arrival for ``"around"`` and
  ``"before"``, when its calls resolve for ``"after"``.
* Choices, versions, limits and scaling:

  - a choice calls a provider the promiser *believes* is standing: the truth
    ``detect`` ago (:func:`~promisesim.model.promises.any_of`). Pull mode
    picks per request, the first such provider (fail-over and fail-back) or
    one of them at random (draw ``k`` of ``("route", condition path)``);
    push mode keeps the provider it is bound to while it believes it up and
    otherwise moves to the next one it believes up, in cyclic order. A
    request with no provider believed up fails its condition without a call;
  - a versioned agent's split routes request ``k`` by draw ``k`` of
    ``("route", condition path)`` against the traffic shares at its arrival,
    with no fail-over;
  - an agent's ``limit`` rejects a request that finds that many requests
    inside it (waiting for calls, queued or in service); its ``max_wait``
    rejects a request that waited that long in its queue (when it would leave);
    its ``slowdown``
    multiplies a service time by ``1 + slowdown * n`` for the ``n`` other
    requests queued or in service when it starts;
  - an agent with a ``keep_alive`` runs its servers as instances started on
    demand: a request that takes a server takes an idle running instance (by
    the agent's ``placement``; ties to the lowest numbered), else starts the
    lowest-numbered stopped one and first waits draw ``k`` of ``("cold_start",
    node path)``; its service time (with its slowdown) is fixed as it takes the
    server. An instance freed at ``u`` runs until ``u + keep_alive`` (taken at
    that instant, it starts again); none runs at 0, and a crash stops them all.
    Starts and stops are recorded (``Trace.instances``);
  - a draining outage (a scale-down, a retired version) takes the agent out
    of service without losing the requests inside it; a crash loses them;
  - a member added by scaling is down during its start-up: draw ``j`` of
    ``("startup", member)``, from the warm distribution when draw ``j`` of
    ``("reuse", member)`` is below the reuse probability, for its ``j``-th
    start-up; an autoscaler observes its members' busy server-time every
    interval and resizes ``delay`` later (see
    :class:`~promisesim.model.injections.Autoscaler`);
  - a random hop latency adds draw ``k`` of ``("hop", node path)`` to the way
    out and of ``("hop", node path + "/answer")`` to the way back.
* Request-level failures:

  - a request that joins an agent's queue at ``t`` is served with the agent's
    behaviour at ``t``: its service time is multiplied by the ``slower``
    factors of the degradations under way, and its answer is an *error* iff
    draw ``k`` of ``("error", node path)`` is below the error probability at
    ``t`` (the agent's own, or its burst state's, composed with each
    degradation's as independent sources). An error answer takes its service
    time and is recorded with its latency, but is not kept: the caller's call
    fails when it comes back;
  - a request to a promise whose promisee and promiser a partition separates
    at its arrival is cut off: recorded ``partitioned`` there, it never
    reaches the promiser (no limit, no queue, no calls), and the caller's call
    fails at once.
* A promise is *standing* at ``t`` iff its promiser is up and its
  conditions hold at ``t`` (all, any or k of the condition promises
  standing); its kept fraction over time is computed from agent states in
  :mod:`promisesim.results`.
* States are half open: an agent that goes down at ``t`` is down for a
  request arriving or finishing at ``t``, and up again for one arriving at
  its repair instant. Changes of state at one instant are applied together
  (a failure starting as an outage ends is no blip). Other simultaneous
  events (two arrivals at one instant) happen in SimPy's order: first
  scheduled, first processed.

Random numbers come from :class:`promisesim.random.Streams`: draw ``k`` of
``("time_to_failure", agent)`` is the agent's ``k``-th up period; draw ``k``
of ``("arrival", workload)`` the ``k``-th gap between arrivals; draw ``k`` of
``("service", node path)`` the service time of the request caused by
arrival ``k`` at that node of the call tree.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from heapq import heappush
from typing import Any, Generator, Sequence

import simpy
from simpy.core import URGENT

from ...dists import Exponential, Uniform
from ...model.agents import Bursts
from ...model.injections import Workload
from ...model.promises import Condition, Latency
from ...model.spec import CallCondition, CallNode, ModelSpec
from ...random import Streams, StreamReader
from ..base import (
    CONDITION_FAILED, DEGRADED, ERROR, KEPT, LATE, LOST, PARTITIONED, PROMISER_DOWN, REJECTED,
    UNFINISHED, Trace,
)
from .calls import DEGRADED_CALL, Caller, Use
from .instances import Instances

__all__ = ["ReferenceEngine"]

_FAILURE, _OUTAGE = 0, 1
#: Draws of this distribution are uniform on [0, 1): success of a maintenance run.
_UNIT = Uniform(0.0, 1.0)


class ReferenceEngine:
    """Simulates one replication at a time with SimPy. Supports every model feature."""

    name = "reference"

    def unsupported(self, spec: ModelSpec) -> list[str]:
        return []

    def batch_size(self, spec: ModelSpec, horizon: float, record_requests: bool = True) -> int:
        return 1   # one replication at a time

    def run(self, spec: ModelSpec, *, horizon: float, streams: Streams,
            replications: Sequence[int], record_requests: bool = True,
            record_changes: bool = True) -> Trace:
        from ...results import summarise

        traces = []
        for r in replications:
            trace = _Replication(spec, horizon, streams, int(r)).run()
            if not record_requests:
                trace = trace.without_requests()
            if not record_changes:
                trace = summarise(spec, trace, [int(r)], horizon)
            traces.append(trace)
        return Trace.concat(traces)


class _Replication(Caller):
    def __init__(self, spec: ModelSpec, horizon: float, streams: Streams, replication: int) -> None:
        self.spec = spec
        self.horizon = horizon
        self.streams = streams
        self.replication = replication
        self.env = simpy.Environment()
        n = len(spec.agents)
        self.failed = [False] * n
        self.failure_changed_at = [-1.0] * n
        self.outages = [0] * n
        self.drains = [0] * n                  # outages that let requests inside finish
        self.absent = [False] * n              # members an autoscaler has not asked for
        self.alive = [True] * n                # not crashed: requests inside it go on
        self.crashes = [0] * n                 # crashes so far (see Caller._gone)
        self.up = [True] * n                   # alive and taking requests
        # Busy servers and their time integral, for autoscalers' observations.
        self.tracked = [False] * n
        self.busy = [0] * n
        self.busy_area = [0.0] * n
        self.busy_at = [0.0] * n
        self.resources = [simpy.Resource(self.env, capacity=a.servers) for a in spec.agents]
        # Agents whose servers are instances started on demand: each one's instances.
        self.instances: list[Instances | None] = [
            None if a.keep_alive is None else Instances(a.servers, a.keep_alive, a.placement)
            for a in spec.agents]
        # Insertion-ordered (dicts, not sets), so crashes interrupt in a reproducible order.
        self.inside: list[dict[simpy.Process, None]] = [{} for _ in range(n)]
        self.promiser = [spec.agent_index[p.promiser] for p in spec.promises]
        self.deadline = [
            p.body.deadline if isinstance(p.body, Latency) else math.inf for p in spec.promises
        ]
        self.service: dict[str, StreamReader] = {}
        self.cold: dict[str, StreamReader] = {}
        self.changes: dict[str, list[Any]] = {k: [] for k in ("replication", "time", "agent", "up", "cause")}
        self.open: dict[int, tuple[int, int, int, float, int]] = {}
        self.requests: dict[str, list[Any]] = {
            k: [] for k in ("replication", "promise", "workload", "index", "attempt", "arrival",
                            "latency", "outcome")
        }
        self._next_id = 0
        # Every agent's changes of state (times, up), for beliefs that lag the truth.
        self.history: list[tuple[list[float], list[bool]]] = [([], []) for _ in range(n)]
        self.bound: dict[str, int] = {}          # push-mode choices: the provider bound to
        # uniform draws by (purpose, key): routes, errors, backoff jitter
        self.uniforms: dict[tuple[str, str], StreamReader] = {}
        self.hops: dict[str, StreamReader] = {}
        # Error bursts: each agent's burst starts and ends so far, extended as time goes on.
        self.bursts: dict[int, tuple[list[float], StreamReader, StreamReader]] = {}
        # Degradations of each agent: (start, end, slower, errors), in the model's order.
        self.degraded: list[list[tuple[float, float, float, float]]] = [[] for _ in range(n)]
        for d in spec.degradations:
            end = math.inf if d.duration is None else float(d.at) + float(d.duration)
            self.degraded[spec.agent_index[d.target]].append(
                (float(d.at), end, float(d.slower), float(d.errors)))
        # Partitions that cut the calls to each promise: (start, end).
        self.cut = [[(float(x.at), float(x.at) + float(x.duration)) for x in spec.cut(i)]
                    for i in range(len(spec.promises))]
        # Each promise's defences, and their state per (caller's promise, provider's promise).
        self.use = [Use(i, p) for i, p in enumerate(spec.promises)]
        self.breakers = {}
        self.budgets = {}
        self.breaker_log: dict[str, list[Any]] | None = (
            {k: [] for k in ("replication", "promise", "provider", "time", "state")}
            if any(p.breaker is not None for p in spec.promises) else None)

    # -- driver ------------------------------------------------------------------
    def run(self) -> Trace:
        env = self.env
        for i, agent in enumerate(self.spec.agents):
            if agent.failures is not None and agent.failures.maintenance is not None:
                env.process(self._maintained(i))
            elif agent.failures is not None:
                env.process(self._failures(i))
        for outage in self.spec.outages:
            env.process(self._outage(outage.target, outage.at, outage.duration, outage.drain))
        for startup in self.spec.startups:
            env.process(self._startup(startup))
        for group in self.spec.scaled:
            env.process(self._autoscaler(group))
        for w, (workload, tree) in enumerate(zip(self.spec.workloads, self.spec.call_trees)):
            env.process(self._workload(w, workload, tree))
        env.run(until=self.horizon)
        for rid, (promise, workload, index, arrival, attempt) in sorted(self.open.items()):
            overdue = arrival + self.deadline[promise] < self.horizon
            self._record(promise, workload, index, arrival, math.nan, LATE if overdue else UNFINISHED,
                         attempt)
        log = self.breaker_log
        if log is not None:   # in time order (a move to half-open is logged as the breaker opens)
            order = sorted((t, i) for i, t in enumerate(log["time"]) if t < self.horizon)
            log = {k: [v[i] for _, i in order] for k, v in log.items()}
        return Trace.from_lists(self.changes, self.requests, log, self._instance_log())

    def _instance_log(self) -> dict[str, list] | None:
        """Starts and stops of every agent's instances, by (agent, time, change)."""
        if all(pool is None for pool in self.instances):
            return None
        rows = []
        for agent, pool in enumerate(self.instances):
            if pool is not None:
                pool.stop(self.horizon, self.horizon)   # keep-alives that ran out by then
                rows.extend((agent, t, change) for t, change in pool.log)
        rows.sort()
        return {"replication": [self.replication] * len(rows), "agent": [r[0] for r in rows],
                "time": [r[1] for r in rows], "change": [r[2] for r in rows]}

    # -- agent state ---------------------------------------------------------------
    def _state_change(self, delay: float) -> simpy.Event:
        """A timeout for a change of agent state: processed before arrivals and completions
        at the same instant (URGENT), so states are half open, ``[start, end)``."""
        event = simpy.Event(self.env)
        event._ok = True
        event._value = None
        self.env.schedule(event, URGENT, delay)
        return event

    def _state_change_at(self, when: float) -> simpy.Event:
        """Like :meth:`_state_change`, at the absolute instant ``when`` (no rounding: the
        event is put on the queue at exactly that time)."""
        event = simpy.Event(self.env)
        event._ok = True
        event._value = None
        # Environment.schedule adds a delay to now, which can round; push the exact instant.
        heappush(self.env._queue, (when, URGENT, next(self.env._eid), event))
        return event

    def _failures(self, agent: int) -> Generator[simpy.Event, None, None]:
        spec = self.spec.agents[agent]
        assert spec.failures is not None
        ttf = StreamReader(self.streams, spec.failures.time_to_failure, self.replication,
                           "time_to_failure", spec.name)
        ttr = StreamReader(self.streams, spec.failures.time_to_repair, self.replication,
                           "time_to_repair", spec.name)
        # Up period k lasts ttf[k], then repair k lasts ttr[k]. A zero-length repair is no
        # failure, and a zero-length up period extends the repair before it, so the agent
        # never changes state twice at one instant (the sums of times are unchanged: x + 0 == x).
        k = 0
        while True:
            if ttf[k] > 0:
                yield self._state_change(ttf[k])
            if ttr[k] == 0:
                k += 1
                continue
            self.failed[agent] = True
            self.failure_changed_at[agent] = self.env.now
            self._settle(agent)
            yield self._state_change(ttr[k])
            k += 1
            while ttf[k] == 0:
                if ttr[k] > 0:
                    yield self._state_change(ttr[k])
                k += 1
            self.failed[agent] = False
            self.failure_changed_at[agent] = self.env.now
            self._settle(agent)

    def _maintained(self, agent: int) -> Generator[simpy.Event, None, None]:
        """Drift and convergent repair: up period ``k`` lasts ``ttf[k]``; then the agent stays
        failed until a maintenance run ``j`` with ``success[j] < s`` repairs it."""
        spec = self.spec.agents[agent]
        assert spec.failures is not None and spec.failures.maintenance is not None
        maintenance = spec.failures.maintenance
        ttf = StreamReader(self.streams, spec.failures.time_to_failure, self.replication,
                           "time_to_failure", spec.name)
        interval = StreamReader(self.streams, maintenance.interval, self.replication,
                                "maintenance", spec.name)
        success = StreamReader(self.streams, _UNIT, self.replication, "repair_success", spec.name)
        fail_at = ttf[0]
        k = 1
        j = 0
        while True:
            # the next run; a failure due before it happens first
            run_at = self.env.now + interval[j]
            # A change due now is applied in this step, so that every change at one instant
            # precedes the instant's settling (zero-length draws make no blips).
            if not self.failed[agent] and fail_at < run_at:
                if fail_at > self.env.now:
                    yield self._state_change_at(fail_at)
                self.failed[agent] = True
                self.failure_changed_at[agent] = self.env.now
                self._settle(agent)
            if run_at > self.env.now:
                yield self._state_change_at(run_at)
            if self.failed[agent] and success[j] < maintenance.success:
                self.failed[agent] = False
                self.failure_changed_at[agent] = self.env.now
                self._settle(agent)
                fail_at = self.env.now + ttf[k]
                k += 1
            j += 1

    def _outage(self, target: str, at: float, duration: float,
                drain: bool = False) -> Generator[simpy.Event, None, None]:
        agent = self.spec.agent_index[target]
        count = self.drains if drain else self.outages
        yield self._state_change(at)
        count[agent] += 1
        self._settle(agent)
        yield self._state_change(duration)
        count[agent] -= 1
        self._settle(agent)

    def _startup_time(self, member: str, index: int, cold: Any, warm: Any, reuse: float) -> float:
        """Start-up ``index`` of ``member``: warm with probability ``reuse``, else cold."""
        warm_start = reuse > 0 and StreamReader(self.streams, _UNIT, self.replication, "reuse",
                                                member)[index] < reuse
        return StreamReader(self.streams, warm if warm_start else cold, self.replication,
                            "startup", member)[index]

    def _startup(self, s: Any) -> Generator[simpy.Event, None, None]:
        agent = self.spec.agent_index[s.target]
        yield self._state_change(s.at)
        duration = self._startup_time(s.target, s.index, s.cold, s.warm, s.reuse)
        if duration <= 0:
            return
        self.outages[agent] += 1
        self._settle(agent)
        yield self._state_change(duration)
        self.outages[agent] -= 1
        self._settle(agent)

    def _settle(self, agent: int) -> None:
        """Apply an agent's state once every change due at this instant has happened.

        Changes are scheduled before the instant they happen at, so they all precede this
        zero-delay event of the same priority: an outage ending as a failure starts is one
        state, not a blip up and down."""
        event = simpy.Event(self.env)
        event._ok = True
        event._value = None
        event.callbacks.append(lambda _: self._update(agent))
        self.env.schedule(event, URGENT, 0)

    def _update(self, agent: int) -> None:
        alive = not self.failed[agent] and self.outages[agent] == 0
        if alive != self.alive[agent]:
            self.alive[agent] = alive
            if not alive:
                # A crash loses every request inside the agent; it restarts empty.
                self.crashes[agent] += 1
                for process in list(self.inside[agent]):
                    if process.is_alive:
                        process.interrupt("crash")
                self.inside[agent].clear()
                spec = self.spec.agents[agent]
                self.resources[agent] = simpy.Resource(self.env, capacity=spec.servers)
                pool = self.instances[agent]
                if pool is not None:   # its instances are gone with it
                    pool.stop(self.env.now, self.horizon)
                    self.instances[agent] = Instances(spec.servers, pool.keep_alive,
                                                      pool.placement, pool.log)
        up = alive and self.drains[agent] == 0 and not self.absent[agent]
        if up == self.up[agent]:
            return
        self.up[agent] = up
        self.history[agent][0].append(self.env.now)
        self.history[agent][1].append(up)
        # The cause is the agent's own failure process if it changed at this instant.
        cause = _FAILURE if self.failure_changed_at[agent] == self.env.now else _OUTAGE
        for key, value in zip(self.changes, (self.replication, self.env.now, agent, up, cause)):
            self.changes[key].append(value)

    # -- autoscaling -----------------------------------------------------------------------
    def _busy(self, agent: int, change: int) -> None:
        now = self.env.now
        self.busy_area[agent] += self.busy[agent] * (now - self.busy_at[agent])
        self.busy_at[agent] = now
        self.busy[agent] += change

    def _busy_time(self, agent: int) -> float:
        """Server-time spent serving at ``agent`` from 0 to now."""
        return self.busy_area[agent] + self.busy[agent] * (self.env.now - self.busy_at[agent])

    def _autoscaler(self, group: Any) -> Generator[simpy.Event, None, None]:
        """Observe the members' utilisation every interval; resize toward the target."""
        policy = group.policy
        members = [self.spec.agent_index[m] for m in group.members]
        servers = self.spec.agents[members[0]].servers
        for a in members:
            self.tracked[a] = True
        for a in members[group.size:]:            # not asked for yet
            self.absent[a] = True
            self._settle(a)
        starts = [0] * len(members)
        size, last_resize, observed = group.size, -math.inf, 0.0
        while True:
            yield self.env.timeout(policy.interval)
            busy = sum(self._busy_time(a) for a in members)
            utilisation = (busy - observed) / (size * servers * policy.interval)
            observed = busy
            # (a tolerance keeps a load exactly on target from rounding up)
            want = math.ceil(size * utilisation / policy.utilisation - 1e-9)
            want = min(max(want, policy.min_size), policy.max_size)
            if want != size and self.env.now - last_resize >= policy.cooldown:
                last_resize = self.env.now
                size = want
                self.env.process(self._resize(group, members, want, starts))

    def _resize(self, group: Any, members: list[int], size: int,
                starts: list[int]) -> Generator[simpy.Event, None, None]:
        if group.policy.delay:
            yield self._state_change(group.policy.delay)
        for i, a in enumerate(members):
            if i >= size and not self.absent[a]:          # removed: drains
                self.absent[a] = True
                self._settle(a)
            elif i < size and self.absent[a]:             # added: starts up
                self.absent[a] = False
                duration = self._startup_time(group.members[i], starts[i], group.cold, group.warm,
                                              group.reuse)
                starts[i] += 1
                if duration > 0:
                    self.outages[a] += 1
                    self.env.process(self._starting(a, duration))
                self._settle(a)

    def _starting(self, agent: int, duration: float) -> Generator[simpy.Event, None, None]:
        yield self._state_change(duration)
        self.outages[agent] -= 1
        self._settle(agent)

    # -- standing (state of promises at the current instant) ---------------------------
    def _standing(self, promise: int) -> bool:
        if not self.up[self.promiser[promise]]:
            return False
        cond = self.spec.promises[promise].conditions
        return cond is None or self._condition_holds(cond)

    def _condition_holds(self, cond: Condition) -> bool:
        held = 0
        for j, item in enumerate(cond.items):
            if isinstance(item, Condition):
                ok = self._condition_holds(item)
            else:
                ok = self._standing(self.spec.promise_index[item])
            # a version that carries no traffic cannot break its consumers
            held += ok or (cond.rule == "split" and bool(cond.idle(j, self.env.now)))
            if held >= cond.k:
                return True
        return False

    def _item_standing(self, item: CallNode | CallCondition) -> bool:
        if isinstance(item, CallNode):
            return self._standing(item.promise)
        held = sum(self._item_standing(i) or self._idle(item, j, self.env.now)
                   for j, i in enumerate(item.items))
        return held >= item.k

    @staticmethod
    def _idle(cond: CallCondition, j: int, t: float) -> bool:
        return cond.rule == "split" and bool(cond.source.idle(j, t))  # type: ignore[union-attr]

    def _up_at(self, agent: int, t: float) -> bool:
        times, ups = self.history[agent]
        i = bisect_right(times, t) - 1
        return True if i < 0 else ups[i]

    def _standing_at(self, promise: int, t: float) -> bool:
        if not self._up_at(self.promiser[promise], t):
            return False
        cond = self.spec.promises[promise].conditions
        return cond is None or self._condition_holds_at(cond, t)

    def _condition_holds_at(self, cond: Condition, t: float) -> bool:
        held = sum((self._condition_holds_at(item, t) if isinstance(item, Condition)
                    else self._standing_at(self.spec.promise_index[item], t))
                   or (cond.rule == "split" and bool(cond.idle(j, t)))
                   for j, item in enumerate(cond.items))
        return held >= cond.k

    def _believed(self, item: CallNode | CallCondition, detect: float) -> bool:
        """Whether ``item`` stood ``detect`` ago: what a caller that sees changes late believes."""
        if not detect:
            return self._item_standing(item)
        return self._stood_at(item, self.env.now - detect)

    def _stood_at(self, item: CallNode | CallCondition, t: float) -> bool:
        if isinstance(item, CallNode):
            return self._standing_at(item.promise, t)
        return sum(self._stood_at(i, t) or self._idle(item, j, t)
                   for j, i in enumerate(item.items)) >= item.k

    def _uniform(self, purpose: str, key: str, k: int) -> float:
        """Draw ``k`` of the uniform stream ``(purpose, key)``."""
        reader = self.uniforms.get((purpose, key))
        if reader is None:
            reader = self.uniforms[purpose, key] = StreamReader(self.streams, _UNIT,
                                                                self.replication, purpose, key)
        return reader[k]

    def _route(self, cond: CallCondition, k: int) -> float:
        """Draw ``k`` (uniform) of a choice's or a split's routing stream."""
        return self._uniform("route", cond.path, k)

    def _split(self, cond: CallCondition, k: int) -> CallNode | CallCondition:
        """The version request ``k`` is bound to: a draw against the split at its arrival."""
        u = self._route(cond, k)
        shares = cond.source.share_at(self.env.now)  # type: ignore[union-attr]
        total = 0.0
        for item, share in zip(cond.items, shares):
            total += share
            if u < total:
                return item
        return next(i for i, x in reversed(list(zip(cond.items, shares))) if x > 0)

    def _choose(self, cond: CallCondition, k: int) -> CallNode | CallCondition | None:
        """The provider a choice calls for request ``k`` (None: none is believed up)."""
        items, n = cond.items, len(cond.items)
        if cond.mode == "push":
            current = self.bound.get(cond.path, 0)
            for step in range(n):
                j = (current + step) % n
                if self._believed(items[j], cond.detect):
                    self.bound[cond.path] = j
                    return items[j]
            return None
        if cond.choose == "first":
            return next((i for i in items if self._believed(i, cond.detect)), None)
        candidates = [i for i in items if self._believed(i, cond.detect)]
        if not candidates:
            return None
        return candidates[min(int(self._route(cond, k) * len(candidates)), len(candidates) - 1)]

    # -- requests ------------------------------------------------------------------------
    def _workload(self, w: int, workload: Workload, tree: CallNode) -> Generator[simpy.Event, None, None]:
        gaps = StreamReader(self.streams, workload.gaps, self.replication, "arrival", workload.label)
        end = math.inf if workload.end is None else workload.end
        if workload.start:
            yield self.env.timeout(workload.start)
        k = 0
        while True:
            if self.env.now + gaps[k] >= end:
                return
            yield self.env.timeout(gaps[k])
            self.env.process(self._request(tree, w, k))
            k += 1

    def _record(self, promise: int, workload: int, index: int, arrival: float, latency: float,
                outcome: int, attempt: int = 0) -> None:
        for key, value in zip(self.requests, (self.replication, promise, workload, index, attempt,
                                              arrival, latency, outcome)):
            self.requests[key].append(value)

    def _request(self, node: CallNode, w: int, k: int) -> Generator[simpy.Event, Any, int]:
        """Request ``k`` of workload ``w`` at ``node``, from its arrival to its answer: records
        it and returns its outcome (a code of :data:`~promisesim.engines.base.OUTCOMES`)."""
        env = self.env
        arrival = env.now
        promise, attempt = node.promise, node.attempt
        agent = self.promiser[promise]
        if any(start <= arrival < end for start, end in self.cut[promise]):
            self._record(promise, w, k, arrival, math.nan, PARTITIONED, attempt)
            return PARTITIONED
        if not self.up[agent]:
            self._record(promise, w, k, arrival, math.nan, PROMISER_DOWN, attempt)
            return PROMISER_DOWN
        limit = self.spec.agents[agent].limit
        if limit is not None and len(self.inside[agent]) >= limit:
            self._record(promise, w, k, arrival, math.nan, REJECTED, attempt)
            return REJECTED
        rid = self._next_id
        self._next_id += 1
        self.open[rid] = (promise, w, k, arrival, attempt)
        me = env.active_process
        self.inside[agent][me] = None
        serving = False
        order = self.spec.agents[agent].order
        calls = node.condition is not None
        # how the promiser uses its calls' answers: goes on with late ones? gives up when?
        use = self.use[promise]
        if use.defers:
            use = use.bound(self.crashes[agent])
        try:
            degraded = False   # kept by a fallback somewhere below
            if calls and order == "after":
                ok = yield from self._calls(node.condition, w, k, use)
                if not ok:
                    return self._failed(rid, promise, w, k, arrival, attempt)
                degraded = ok == DEGRADED_CALL
            # How the agent serves this request is fixed as it joins the queue: how much slower
            # (degradations) and whether its answer will be an error.
            slower, p_error = self._behaviour(agent, env.now)
            error = p_error > 0 and self._uniform("error", node.path, k) < p_error
            resource = self.resources[agent]
            pool = self.instances[agent]
            with resource.request() as slot:
                patience = self.spec.agents[agent].max_wait
                if patience is None:
                    yield slot
                else:   # a wait limit: one that waited that long leaves, rejected
                    yield slot | env.timeout(patience)
                    if not slot.triggered:
                        del self.open[rid]
                        self._record(promise, w, k, arrival, math.nan, REJECTED, attempt)
                        return REJECTED
                if self.tracked[agent]:
                    self._busy(agent, 1)
                    serving = True
                if order != "around":   # (its duration is fixed on taking the server)
                    service = self._served_for(node, agent, k, slower, resource)
                instance = None
                if pool is not None:   # an instance started on demand, started now if stopped
                    instance, cold = pool.take(env.now)
                try:
                    if instance is not None and cold:
                        wait = self._cold_start(node, agent, k)
                        if wait > 0:
                            yield env.timeout(wait)
                    if calls and order == "around":   # calls made while holding the server
                        ok = yield from self._calls(node.condition, w, k, use)
                        if not ok:
                            return self._failed(rid, promise, w, k, arrival, attempt)
                        degraded = ok == DEGRADED_CALL
                    if order == "around":
                        service = self._served_for(node, agent, k, slower, resource)
                    yield env.timeout(service)
                finally:
                    if instance is not None:
                        pool.free(instance, env.now)  # type: ignore[union-attr]
            if serving:
                self._busy(agent, -1)
                serving = False
            if calls and order == "before":   # served first, then the calls
                ok = yield from self._calls(node.condition, w, k, use)
                if not ok:
                    return self._failed(rid, promise, w, k, arrival, attempt)
                degraded = ok == DEGRADED_CALL
            latency = env.now - arrival
            del self.open[rid]
            if error:
                self._record(promise, w, k, arrival, latency, ERROR, attempt)
                return ERROR
            outcome = LATE if latency > self.deadline[promise] else DEGRADED if degraded else KEPT
            self._record(promise, w, k, arrival, latency, outcome, attempt)
            return outcome
        except simpy.Interrupt:
            del self.open[rid]
            self._record(promise, w, k, arrival, math.nan, LOST, attempt)
            return LOST
        finally:
            self.inside[agent].pop(me, None)
            if serving:
                self._busy(agent, -1)

    def _failed(self, rid: int, promise: int, w: int, k: int, arrival: float,
                attempt: int) -> int:
        """A request whose calls failed leaves: recorded as such, without a latency."""
        del self.open[rid]
        self._record(promise, w, k, arrival, math.nan, CONDITION_FAILED, attempt)
        return CONDITION_FAILED

    def _behaviour(self, agent: int, t: float) -> tuple[float, float]:
        """How ``agent`` serves a request joining its queue at ``t``: the factor on its service
        time and the probability that the answer is an error (the agent's own, then each
        degradation under way as an independent source, in the model's order)."""
        errors = self.spec.agents[agent].errors
        if isinstance(errors, Bursts):
            p = errors.errors if self._in_burst(agent, errors, t) else errors.baseline
        else:
            p = errors
        slower = 1.0
        for start, end, factor, extra in self.degraded[agent]:
            if start <= t < end:
                slower *= factor
                if extra:
                    p = 1.0 - (1.0 - p) * (1.0 - extra)
        return slower, float(p)

    def _in_burst(self, agent: int, bursts: Bursts, t: float) -> bool:
        """Whether an error burst of ``agent`` is on at ``t`` (bursts are half open,
        ``[start, end)``): good period ``k`` is draw ``k`` of ``("burst_gap", agent)``,
        burst ``k`` draw ``k`` of ``("burst", agent)``, the instants their running sum."""
        entry = self.bursts.get(agent)
        if entry is None:
            name = self.spec.agents[agent].name
            entry = self.bursts[agent] = (
                [], StreamReader(self.streams, Exponential(mean=1.0 / bursts.rate),
                                 self.replication, "burst_gap", name),
                StreamReader(self.streams, Exponential(mean=bursts.mean_duration),
                             self.replication, "burst", name))
        instants, gaps, lengths = entry
        while not instants or instants[-1] <= t:
            k = len(instants) // 2
            last = instants[-1] if instants else 0.0
            instants.append(last + gaps[k])
            instants.append(instants[-1] + lengths[k])
        # an odd number of instants at or before t: a burst started and has not ended
        return bisect_right(instants, t) % 2 == 1

    def _served_for(self, node: CallNode, agent: int, k: int, slower: float,
                    resource: simpy.Resource) -> float:
        """How long request ``k`` at ``node`` is served, as it starts: its draw, times the
        degradations' factor, times the slowdown for the other requests queued or served."""
        service = self._service_time(node, agent, k)
        if slower != 1.0:
            service *= slower
        slowdown = self.spec.agents[agent].slowdown
        if slowdown:
            others = len(resource.users) - 1 + len(resource.queue)
            service *= 1.0 + slowdown * others
        return service

    def _cold_start(self, node: CallNode, agent: int, k: int) -> float:
        """The start of the instance request ``k`` at ``node`` takes: draw ``k`` of
        ``("cold_start", node path)``."""
        reader = self.cold.get(node.path)
        if reader is None:
            reader = self.cold[node.path] = StreamReader(
                self.streams, self.spec.agents[agent].cold_start, self.replication, "cold_start",
                node.path)
        return reader[k]

    def _service_time(self, node: CallNode, agent: int, k: int) -> float:
        reader = self.service.get(node.path)
        if reader is None:
            dist = self.spec.agents[agent].service_time
            reader = self.service[node.path] = StreamReader(
                self.streams, dist, self.replication, "service", node.path)
        return reader[k]
