"""Stage 3: queues. Agents served callees first: calls resolved, then FIFO service.

Every request that enters an agent's queue is served by the kernels of
:mod:`.fifo` (no limit) or :mod:`.events` (a capacity limit, load-dependent
slowdown, or instances started on demand). A crash empties the queue: requests whose answer would come at or
after it are lost.
"""

from __future__ import annotations

import numpy as np

from ...random import Streams
from ..._timeline import _last_at_or_before
from ...model.agents import Bursts
from ..base import (CONDITION_FAILED, DEGRADED, ERROR, KEPT, LATE, LOST, PARTITIONED, PROMISER_DOWN,
                    REJECTED, UNFINISHED)
from .events import Instances, event_queue
from .fifo import Pin, _fifo
from .lanes import lanes_queue
from .kernels import _UNIT, _concat, _sort_within_replications
from .runs import _NodeRun


def _limited_order(rep: np.ndarray, arrival: np.ndarray, several: bool,
                   tie: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
    """Queue entries (sorted by replication within each of ``several`` nodes) in order of
    (replication, arrival), stably: ties by ``tie`` if given (keys, the last first), then in
    node order, then arrival index."""
    if tie is not None:
        order = np.lexsort((*tie, rep))
    else:
        order = np.argsort(rep, kind="stable") if several else None
    order = _sort_within_replications(rep if order is None else rep[order],
                                      arrival if order is None else arrival[order], order)
    return np.arange(rep.size) if order is None else order


def _instance_changes(segment: np.ndarray, rep: np.ndarray, crash: np.ndarray,
                      began: np.ndarray, departure: np.ndarray, instances: Instances,
                      horizon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The starts (+1) and stops (-1) of an agent's instances, ``(replication position,
    time, change)``, from which server each request took, when, and whether it started it.

    A run of an instance starts with a request that started it and ends its keep-alive
    after its last request left, or at the crash that ends the queue (at once if a request
    is inside then); requests that would take a server at or after the crash (or the
    horizon) never do. Stops at or after the horizon are left out."""
    took = (instances.server >= 0) & (began < np.minimum(crash, horizon))
    idx = np.flatnonzero(took)
    idx = idx[np.lexsort((began[idx], instances.server[idx], segment[idx]))]
    if idx.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.int8)
    seg, k = segment[idx], instances.server[idx]
    first = instances.started[idx]
    first[0] = True
    # a run ends before the next request on another queue or server, or the next start
    last = np.r_[(seg[1:] != seg[:-1]) | (k[1:] != k[:-1]) | first[1:], True]
    end, c = departure[idx[last]], crash[idx[last]]
    stop = np.where(end >= c, c, np.minimum(end + instances.keep_alive, c))
    starts = idx[first]
    kept = stop < horizon
    at = np.r_[began[starts], stop[kept]]
    change = np.r_[np.ones(starts.size, dtype=np.int8), -np.ones(int(kept.sum()), dtype=np.int8)]
    return np.r_[rep[starts], rep[idx[last]][kept]], at, change


def _busy_periods(rep: np.ndarray, arrival: np.ndarray, service: np.ndarray,
                  enters: np.ndarray, crash: np.ndarray, segment: np.ndarray, servers: int,
                  n_reps: int) -> np.ndarray:
    """``segment`` cut where the queue is surely empty: cuts :func:`~.lanes.lanes_queue`
    need not prove (fewer rounds of guesses).

    For requests that join as they arrive, at a FIFO queue without slowdown: the same
    queue without its limit (every request served) is empty when a request arrives after
    every one before it left, and then so is the limited queue: turning a request away
    only lowers the servers' workloads, and the Kiefer-Wolfowitz recursion is monotone in
    them."""
    work = np.where(enters, service, 0.0)   # (those that do not enter leave at once)
    unlimited = _fifo(rep, arrival, work, crash, servers, n_reps)
    unlimited = np.where(enters, unlimited, arrival)
    cut = np.r_[True, segment[1:] != segment[:-1]]
    starts = np.flatnonzero(cut)
    before = np.empty(arrival.size)   # the latest departure of the requests before each
    for lo, hi in zip(starts, np.r_[starts[1:], arrival.size]):
        before[lo] = -np.inf
        np.maximum.accumulate(unlimited[lo:hi - 1], out=before[lo + 1:hi])
    return np.cumsum(cut | (before <= arrival))


class Service:
    """The queue stage of a batch (:class:`~promisesim.engines.vector.batch._Batch`).

    Reads ``runs`` (from routing), ``alive`` and, in time windows, ``ghosts``; writes each
    run's ``outcome``, ``done``, ``ok`` and ``latency``, the ``busy_log`` an autoscaler
    reads, and in time windows ``queue_log``.
    """

    def _serve(self, agent: int, runs: list[_NodeRun]) -> None:
        """Resolve the calls of every request at ``agent``, then serve those that may enter."""
        horizon = self.horizon
        spec_agent = self.spec.agents[agent]
        limited = spec_agent.limit is not None or bool(spec_agent.slowdown) or \
            spec_agent.keep_alive is not None or spec_agent.max_wait is not None
        entries = []
        for run in runs:
            arr = self.arrivals[run.workload]
            m = run.reach.size
            pos = run.called_pos
            everyone = pos.size == m     # the promiser was up for every request
            at = slice(None) if everyone else pos
            rep, t = arr.rep[run.called], run.arrival if everyone else run.arrival[pos]
            plan = None
            deg = None
            if run.calls_at is not None:   # calls while or after being served: joins on arrival
                ok, resolved, deg = self._resolve_calls(run, run.calls_at)
                plan = (run.calls_at, ok, resolved)
                cond_ok, ready = np.ones(t.size, dtype=bool), t
            elif run.node.condition is not None:
                cond_ok, ready, deg = self._resolve_calls(run, t)
            else:
                cond_ok, ready = np.ones(t.size, dtype=bool), t
            run.degraded = None
            if deg is not None and deg.any():   # kept, if it is, only thanks to a fallback
                run.degraded = np.zeros(m, dtype=bool)
                run.degraded[at] = deg
            run.done = run.arrival.copy()
            run.outcome = np.full(m, PROMISER_DOWN, dtype=np.int8)
            if run.partitioned is not None:
                run.outcome[run.partitioned] = PARTITIONED
            alive = self.alive[agent]
            if alive.time.size:
                # the promiser is up (so alive) at t: the next change of alive is a crash
                crash = alive.next_change_after(rep, t)
                lost = crash <= ready
                run.outcome[at] = np.where(lost, LOST, CONDITION_FAILED)
                run.done[at] = np.where(lost, crash, ready)
                enter = cond_ok & ~lost
            else:   # the promiser never goes down
                crash = np.full(t.size, np.inf)
                run.outcome[at] = CONDITION_FAILED
                run.done[at] = ready
                enter = cond_ok
            if limited:   # every request counts against the limit, even one that fails its checks
                entries.append((run, pos, rep, ready, crash, enter, plan))
            elif enter.all():
                entries.append((run, pos, rep, ready, crash, None, plan))
            else:
                assert plan is None   # (such requests all join the queue)
                entries.append((run, pos[enter], rep[enter], ready[enter], crash[enter], None, None))
        self._queue(agent, entries)
        for run in runs:
            t = run.arrival
            deadline = self.deadline[run.node.promise]
            error = run.outcome == ERROR
            answered = (run.outcome <= LATE) | error   # KEPT or LATE (as yet), or an error
            latency = run.done - t
            latency[~answered] = np.nan
            kept = latency <= deadline           # never for NaN
            kept &= ~error
            good = np.int8(KEPT) if run.degraded is None else \
                np.where(run.degraded, np.int8(DEGRADED), np.int8(KEPT))
            run.outcome = np.where(kept, good,
                                   np.where(answered & ~error, np.int8(LATE), run.outcome))
            run.ok = kept
            run.answered = answered & ~error
            still_inside = run.done >= horizon
            if still_inside.any():
                run.outcome[still_inside] = np.where(t[still_inside] + deadline < horizon, LATE, UNFINISHED)
                latency[still_inside] = np.nan
            run.latency = latency

    def _behaviour(self, agent: int, entries: list, bounds: np.ndarray,  # type: ignore[type-arg]
                   n_g: int, rep: np.ndarray, ready: np.ndarray, index: np.ndarray,
                   service: np.ndarray) -> np.ndarray | None:
        """How the agent serves each entry, fixed as it joins the queue (at ``ready``):
        multiplies ``service`` in place by the degradations' factors, and returns which
        answers will be errors (None: none can be). The probability is the agent's own (or
        its bursts') then each degradation under way as an independent source, in the
        model's order: the reference engine's arithmetic, element for element. Carried
        servers (the first ``n_g`` entries) are left alone."""
        spec = self.spec
        own = spec.agents[agent].errors
        degradations = [d for d in spec.degradations if spec.agent_index[d.target] == agent]
        if not own and not degradations:
            return None
        t = ready[n_g:]
        if isinstance(own, Bursts):
            b = self.bursts[agent]
            last = _last_at_or_before(b.rep, b.time, rep[n_g:], t)
            bad = (last >= 0) & b.up[np.maximum(last, 0)] if b.time.size else np.zeros(t.size, bool)
            p = np.where(bad, float(own.errors), float(own.baseline))
        else:
            p = np.full(t.size, float(own))
        slower = None
        for d in degradations:
            start = float(d.at)
            end = np.inf if d.duration is None else start + float(d.duration)
            on = (t >= start) & (t < end)
            if not on.any():
                continue
            if d.slower != 1.0:
                factor = np.where(on, float(d.slower), 1.0)
                slower = factor if slower is None else np.where(on, slower * float(d.slower), slower)
            if d.errors:
                p = np.where(on, 1.0 - (1.0 - p) * (1.0 - float(d.errors)), p)
        if slower is not None:
            changed = slower != 1.0
            tail = service[n_g:]
            tail[changed] = tail[changed] * slower[changed]
        if not p.any():
            return None
        error = np.zeros(rep.size, dtype=bool)
        for (run, *_rest), lo, hi in zip(entries, bounds[:-1], bounds[1:]):
            some = np.flatnonzero(p[lo - n_g:hi - n_g] > 0)
            if some.size == 0:
                continue
            k0, k1 = self.streams.keys(self.reps, "error", run.node.path)
            at = lo + some
            u = Streams.draw_rows(_UNIT, k0, k1, rep[at], index[at])
            error[at] = u < p[at - n_g]
        return error

    def _caller_order(self, entries: list, n_g: int,  # type: ignore[type-arg]
                      instants: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...] | None:
        """The keys that order entries ready at one instant (for :func:`numpy.lexsort`, the
        last first), where some caller calls on taking a server or leaving its queue (order
        ``"around"`` or ``"before"``) or the model has calls sent after others ended
        (retries, fallbacks; None otherwise): when each entry reached the nearest such
        caller above it, else the root (see :meth:`.runs._NodeRun.call_order`); in a model with
        calls sent after others ended, first when its caller made its calls, and those calls
        after the rest (see :meth:`~promisesim.engines.vector.later.LaterCalls._later`).
        Such keys matter only for entries at one instant of ``instants`` (when they are
        ready, and for a limited queue when they arrive): without late callers, none when
        no two instants are equal."""
        late = any(run.calls_late() for run, *_rest in entries)
        if not self.sends_later and not late:
            return None
        if not late and not any(np.any(x[1:] == x[:-1]) for x in map(np.sort, instants)):
            return None
        assert not n_g   # (time windows are not used with such orders)
        key = _concat([run.call_order(pos) for run, pos, *_rest in entries])
        if not self.sends_later:
            return (key,)
        later = _concat([np.full(pos.size, run.later) for run, pos, *_rest in entries])
        called = _concat([run.called_at(pos) for run, pos, *_rest in entries])
        return later, key, called

    def _held(self, entries: list, bounds: np.ndarray,  # type: ignore[type-arg]
              service: np.ndarray) -> tuple[np.ndarray, Pin]:
        """Order ``"around"``: how long each request holds its server, and the pin
        (:data:`~promisesim.engines.vector.fifo.Pin`) that makes the queue kernels exact.

        A request that takes its server at the instant assumed for its calls, ``s``,
        answers at ``r + own`` (calls resolved at ``r``, then its own service) or at ``r`` if
        they failed, as the reference engine's clock adds them: pinned to ``(s, that
        instant)``, since no float duration need give it when added to ``s``. Taking the
        server at any other instant (this pass's assumption was wrong: another pass
        follows), it holds it for ``that instant - s``."""
        held = service.copy()
        at = np.full(service.size, np.nan)
        end = np.full(service.size, np.nan)
        for (run, pos, rep, ready, crash, enter, plan), lo, hi in zip(entries, bounds[:-1],
                                                                       bounds[1:]):
            if plan is None:
                continue
            calls_at, ok, resolved = plan
            calls = calls_at < np.inf
            answer = np.where(ok, resolved + service[lo:hi], resolved)
            held[lo:hi][calls] = answer[calls] - calls_at[calls]
            at[lo:hi][calls] = calls_at[calls]
            end[lo:hi][calls] = answer[calls]
        return held, (at, end)

    def _calls_made(self, order: str, entries: list, bounds: np.ndarray,  # type: ignore[type-arg]
                    done: np.ndarray, start: np.ndarray | None, crash: np.ndarray,
                    rejected: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Orders ``"around"`` and ``"before"``: each run's ``calls_found`` (when its requests
        called: on taking a server, or on leaving the queue; inf if the agent crashed
        first), and each entry's answer instant and whether its calls failed, from the
        calls this pass assumed (the passes settle when they agree: see
        :meth:`~promisesim.engines.vector.batch._Batch._calls_settled`). A request
        ``rejected`` (turned away, or gone at a wait limit) calls never."""
        answer = done.copy()
        failed = np.zeros(done.size, dtype=bool)
        for (run, pos, rep, ready, _crash, enter, plan), lo, hi in zip(entries, bounds[:-1],
                                                                        bounds[1:]):
            if plan is None:
                continue
            calls_at, ok, resolved = plan
            made = start[lo:hi] if order == "around" else done[lo:hi]
            found = np.where(made < crash[lo:hi], made, np.inf)
            if rejected is not None:
                found[rejected[lo:hi]] = np.inf
            run.calls_found = found
            calls = calls_at < np.inf
            failed[lo:hi] = calls & ~ok
            if order == "before":   # the answer comes when the calls resolve
                answer[lo:hi] = np.where(calls, resolved, done[lo:hi])
        return answer, failed

    def _queue(self, agent: int, entries: list) -> None:  # type: ignore[type-arg]
        """FIFO service on the agent's servers; a crash empties the queue.

        In a time window (:meth:`count_windows`), the queue starts with the servers busy
        until the instants carried from the window before (``self.ghosts``): each is an
        entry ready at 0 whose service ends at that instant (0 + f is f exactly), so the
        recursions run unchanged; the entries are logged (``self.queue_log``) to choose
        the next cut.
        """
        if not entries or sum(e[1].size for e in entries) == 0:
            return
        servers = self.spec.agents[agent].servers
        dist = self.spec.agents[agent].service_time
        ghosts = self.ghosts.get(agent) if self.windowed else None
        n_g = 0 if ghosts is None else ghosts[0].size
        bounds = np.cumsum([n_g] + [e[1].size for e in entries])
        rep = _concat(([ghosts[0]] if n_g else []) + [e[2] for e in entries])
        ready = _concat(([np.zeros(n_g)] if n_g else []) + [e[3] for e in entries])
        crash = _concat(([ghosts[2]] if n_g else []) + [e[4] for e in entries])
        index = _concat(([np.zeros(n_g, dtype=np.int64)] if n_g else []) +
                        [self.arrivals[e[0].workload].index[e[0].reach[e[1]]] for e in entries])
        service = np.empty(rep.size)
        if n_g:
            service[:n_g] = ghosts[1]
        for (run, *_rest), lo, hi in zip(entries, bounds[:-1], bounds[1:]):
            k0, k1 = self.streams.keys(self.reps, "service", run.node.path)
            Streams.draw_rows(dist, k0, k1, rep[lo:hi], index[lo:hi], out=service[lo:hi])
        error = self._behaviour(agent, entries, bounds, n_g, rep, ready, index, service)
        order = self.spec.agents[agent].order
        plans = any(e[6] is not None for e in entries)
        pin = None
        if plans and order == "around":   # a server is held from the calls to the answer
            service, pin = self._held(entries, bounds, service)
        # Each node's requests come sorted by (replication, arrival index), and entries in
        # node order: the queue's order is by (replication, ready, node, arrival index).
        # Calls made on taking a server or on leaving a queue can come at one instant (a
        # caller whose calls failed at once frees its server to the next, which calls at
        # that instant): they come in the order they reached their caller, as in the
        # reference engine's clock.
        limited = entries[0][5] is not None
        # admitted in order of arrival here (limited); queued in order of ready (calls resolved)
        arrival = _concat([e[0].arrival[e[1]] for e in entries]) if limited else None
        tie = self._caller_order(entries, n_g, (ready,) if arrival is None else (ready, arrival))
        if tie is not None:
            sort = np.lexsort((*tie, rep))
        else:
            sort = None if len(entries) == 1 and not n_g else np.argsort(rep, kind="stable")
        sort = _sort_within_replications(rep if sort is None else rep[sort],
                                         ready if sort is None else ready[sort], sort)
        start = np.empty(rep.size) if plans and order == "around" else None
        if limited:   # a limit, slowdown or instances: an event loop in lockstep
            agent_spec = self.spec.agents[agent]
            enters = _concat([e[5] for e in entries])
            assert arrival is not None
            o = _limited_order(rep, arrival, len(entries) > 1, tie)
            r, c, a = rep[o], crash[o], arrival[o]
            segment = np.cumsum(np.r_[True, (r[1:] != r[:-1]) | (c[1:] != c[:-1])])
            resolved = ready[o]
            resolved = np.where(c <= resolved, np.inf, resolved)   # lost: inside until the crash
            began = None if start is None else np.full(rep.size, np.inf)
            instances = None
            if agent_spec.keep_alive is not None:   # instances started on demand
                cold = np.zeros(rep.size)
                for (run, *_rest), lo, hi in zip(entries, bounds[:-1], bounds[1:]):
                    k0, k1 = self.streams.keys(self.reps, "cold_start", run.node.path)
                    Streams.draw_rows(agent_spec.cold_start, k0, k1, rep[lo:hi], index[lo:hi],
                                      out=cold[lo:hi])
                instances = Instances(float(agent_spec.keep_alive), agent_spec.placement,
                                      cold[o], np.full(rep.size, -1, dtype=np.int64),
                                      np.zeros(rep.size, dtype=bool))
                began = np.full(rep.size, np.inf)
            if instances is None:   # lanes cut where the queue is empty (guessed, proven)
                sure = None
                if not agent_spec.slowdown and pin is None and began is None and \
                        np.array_equal(resolved, a):
                    cuts = _busy_periods(r, a, service[o], enters[o], c, segment, servers,
                                         self.reps.size)
                    sure = np.r_[True, cuts[1:] != cuts[:-1]]
                departure, turned_away = lanes_queue(
                    segment, a, service[o], enters[o], servers, agent_spec.limit,
                    agent_spec.slowdown, ready=resolved, began=began,
                    pin=None if pin is None else (pin[0][o], pin[1][o]),
                    patience=agent_spec.max_wait, sure=sure)
            else:
                departure, turned_away = event_queue(
                    segment, a, service[o], enters[o], servers, agent_spec.limit,
                    agent_spec.slowdown, ready=resolved, began=began, instances=instances,
                    patience=agent_spec.max_wait)
            if agent_spec.max_wait is not None:   # left at the wait limit: lost if it crashed
                turned_away &= ~(departure >= c)   # first (the loss is found below)
            done = np.empty(rep.size)
            done[o] = departure
            if start is not None:
                start[o] = began
            if instances is not None:
                self.instance_log[agent] = _instance_changes(
                    segment, r, c, began, departure, instances, self.horizon)
            rejected = np.empty(rep.size, dtype=bool)
            rejected[o] = turned_away
        elif sort is None:
            done = _fifo(rep, ready, service, crash, servers, self.reps.size, start, pin)
        else:
            done = np.empty(rep.size)
            began = None if start is None else np.empty(rep.size)
            done[sort] = _fifo(rep[sort], ready[sort], service[sort], crash[sort], servers,
                               self.reps.size, began,
                               None if pin is None else (pin[0][sort], pin[1][sort]))
            if start is not None:
                start[sort] = began
        if self.windowed:
            self._log_queue(agent, entries, bounds, rep, ready, done, crash, n_g,
                            (enters, rejected, arrival) if limited else None)
        failed = None
        if plans:   # the answer waits for the calls; found: when they were made
            done, failed = self._calls_made(order, entries, bounds, done, start, crash,
                                            rejected if limited else None)
        lost = done >= crash
        done = np.where(lost, crash, done)
        outcome = np.where(lost, LOST, KEPT).astype(np.int8)   # KEPT: answered; sorted out later
        if failed is not None:
            failed &= ~lost
            outcome[failed] = CONDITION_FAILED
        if error is not None:
            outcome[error & ~lost & (True if failed is None else ~failed)] = ERROR
        for (run, pos, *_rest), lo, hi in zip(entries, bounds[:-1], bounds[1:]):
            if limited:
                served = enters[lo:hi] & ~rejected[lo:hi]
                run.outcome[pos[served]] = outcome[lo:hi][served]
                run.done[pos[served]] = done[lo:hi][served]
                turned = pos[rejected[lo:hi]]
                run.outcome[turned] = REJECTED
                # on arrival for the limit, at the wait limit for max_wait
                run.done[turned] = done[lo:hi][rejected[lo:hi]]
            else:
                run.outcome[pos] = outcome[lo:hi]
                run.done[pos] = done[lo:hi]
        if self.busy_log is not None and agent in self.busy_log:   # an autoscaler observes it
            served = enters & ~rejected if limited else slice(None)
            self.busy_log[agent] = (rep[served], ready[served], done[served])
