"""Stage 2, continued: calls a request sends after others ended. A failed attempt's
retries, a fallback's next item, a hedge's copy: which requests send them, and when,
depends on how the calls before them ended, so a pass over the requests assumes what the
pass before found (at first: none), routes those calls with the others, and finds them
again where calls are resolved (see :meth:`LaterCalls._retries`).

:class:`LaterCalls` is a base of :class:`~promisesim.engines.vector.routing.Routing`, whose
routing and resolution it extends: it reads ``later_assumed``, ``alive`` and ``falls_back``
and writes ``later_used`` and ``later_found``.
"""

from __future__ import annotations

import numpy as np

from ...model.spec import CallCondition, CallNode
from .kernels import _UNIT, _isin_sorted
from .runs import _NodeRun, _Resolved


def _matches(reach: np.ndarray, used: np.ndarray, sub: np.ndarray,
             sent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which pairs (request ``sub``, instant ``sent``) are among the pairs (``reach``
    sorted, ``used``), and where in ``reach``."""
    if not reach.size:
        return np.zeros(sub.size, dtype=bool), np.zeros(sub.size, dtype=np.int64)
    pos = np.minimum(np.searchsorted(reach, sub), reach.size - 1)
    return (reach[pos] == sub) & (used[pos] == sent), pos


class LaterCalls:
    """Calls sent after others ended (retries, fallbacks, hedges), for the routing stage."""

    def _reach_hedges(self, cond: CallCondition, w: int, called: np.ndarray, rep: np.ndarray,
                      times: np.ndarray, choice: np.ndarray, targets: list[np.ndarray],
                      run: _NodeRun) -> None:
        """A hedged choice: each item (a call: see :meth:`VectorEngine.unsupported`) is called
        by the requests that chose it, at ``times``, and by the copies sent to it, as the pass
        before found (see :meth:`_hedged`): one run for both (a request sends its copy to
        another item than the one it chose)."""
        arr = self.arrivals[w]
        sub, sent, trigger = self._later(id(cond), called)
        at = np.searchsorted(called, sub)
        other = self._hedge_target(cond, rep[at], sent, choice[at])
        for j, (item, mask) in enumerate(zip(cond.items, targets)):
            copy = other == j
            if not copy.any():
                self._reach_item(item, w, called[mask], rep[mask], times[mask], None, False, run)
                continue
            both = np.concatenate([called[mask], sub[copy]])
            order = np.argsort(both, kind="stable")
            both = both[order]
            self._reach_item(item, w, both, arr.rep[both],
                             np.concatenate([times[mask], sent[copy]])[order], None, False, run)

    def _hedge_target(self, cond: CallCondition, rep: np.ndarray, t: np.ndarray,
                      chosen: np.ndarray) -> np.ndarray:
        """The item a hedged choice sends its copy to at ``t``: the next after the one
        ``chosen`` (cyclically) that the caller believes standing (-1: none)."""
        n = len(cond.items)
        seen = t - cond.detect if cond.detect else t
        believed = np.stack([self._item_standing(item, rep, seen) for item in cond.items]) \
            if t.size else np.zeros((n, 0), dtype=bool)
        other = np.full(t.size, -1, dtype=np.int64)
        for step in range(n - 1, 0, -1):   # the nearest last, so it wins
            j = (chosen + step) % n
            hit = believed[j, np.arange(t.size)]
            other[hit] = j[hit]
        return other

    def _reach_later(self, item: CallNode | CallCondition, w: int, sub: np.ndarray,
                     sent: np.ndarray, trigger: np.ndarray, run: _NodeRun) -> None:
        """Route a call sent after others ended (see :meth:`_later`): the runs it reaches
        are marked ``later``, with the instants the calls they follow were sent."""
        first = len(self.runs)
        self._reach_item(item, w, sub, self.arrivals[w].rep[sub], sent, None, False, run)
        for later in self.runs[first:]:
            later.later = True
            if later.trigger is None:   # (a retry inside has its own)
                later.trigger = trigger[np.searchsorted(sub, later.reach)]

    def _later(self, key: int, calling: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The requests of ``calling`` that this pass assumes make a call sent only after
        others ended (``key``: a retry's node, a fallback's item), when they send it, and
        when they sent the call whose failure it follows: those the pass before found (none
        in the first pass; see :meth:`_retries`).

        Such calls often go out at one instant: a crash ends every request inside an agent
        at once, and their callers go on at that instant. The reference engine's crash ends
        them in the order they came in, and so they go on. In a model with such calls,
        entries ready at one instant join a queue in the order their callers made their
        calls, or the calls they follow (:meth:`.runs._NodeRun.called_at`: the order a crash
        ends them in), then the order they reached the nearest caller above that calls on
        taking a server or leaving its queue, else the root
        (:meth:`.runs._NodeRun.call_order`); calls sent after others ended (the runs marked
        ``later``) after the rest (they may have been caused by them: a retry sent at once
        after a refusal), then in the order of the runs, then of arrival index (see
        :meth:`~promisesim.engines.vector.queues.Service._caller_order`)."""
        reach, sent, trigger = self.later_assumed.get(key, (calling[:0], np.empty(0),
                                                            np.empty(0)))
        if reach.size:
            keep = _isin_sorted(reach, calling) if calling.size else np.zeros(reach.size, bool)
            if not keep.all():
                reach, sent, trigger = reach[keep], sent[keep], trigger[keep]
        self.later_used[key] = (reach, sent)
        return reach, sent, trigger

    def _retries(self, item: CallNode, w: int, called: np.ndarray, run: _NodeRun,
                 t: np.ndarray) -> _Resolved:
        """A call with retries (see :meth:`_attempt`): a failed attempt the caller retries is
        sent again after the backoff, to the node of the next attempt; the call holds if an
        attempt does, known when the last attempt made ends.

        Which requests retry, and when, depends on how their attempts ended, which depends
        on the provider's queue, which holds the retries. A pass assumes the retries the pass
        before found (at first: none), routes them with the other requests, serves every
        agent, and here finds the retries the attempts call for (``later_found``; see
        :meth:`~promisesim.engines.vector.batch._Batch._calls_settled`). Everything before
        the first retry a pass assumed wrong is right, so each pass extends the right
        prefix, and the passes end, exactly, when a pass finds the retries it assumed. The
        same holds for a fallback's items (:meth:`_fallback`)."""
        arr = self.arrivals[w]
        backoff = self.spec.promises[run.node.promise].backoff
        ok, done, deg, retry = self._attempt(item, w, called, run, t)
        ok, done = ok.copy(), done.copy()
        deg = None if deg is None else deg.copy()
        at = np.flatnonzero(retry)
        crash = self._caller_crash(run, w, called) if at.size else None
        last = t   # when each request sent its last attempt
        for node in item.retries:
            sub = called[at]
            sent = done[at]
            if backoff is not None:   # (the reference engine's arithmetic; t + 0.0 is t)
                u = self._draws("backoff", node.path, _UNIT, arr.rep[sub], arr.index[sub]) \
                    if backoff.jitter else 0.0
                sent = sent + backoff.wait(node.attempt, u)
            at, sub, sent = self._before_crash(crash, at, sub, sent, done)
            self._found(id(node), sub, sent, last[at])
            if not at.size:
                break
            last = last.copy()
            last[at] = sent
            known, pos = self._known(id(node), sub, sent)
            reach, used = self.later_used[id(node)]
            a_ok, a_done, a_deg, a_retry = self._attempt(node, w, reach, run, used)
            at, pos = at[known], pos[known]
            ok[at], done[at] = a_ok[pos], a_done[pos]
            if a_deg is not None and deg is not None:
                deg[at] = a_deg[pos]
            at = at[a_retry[pos]]
        return ok, done, deg

    def _hedged(self, cond: CallCondition, w: int, called: np.ndarray, run: _NodeRun,
                t: np.ndarray, choice: np.ndarray, first: _Resolved) -> _Resolved:
        """A hedged choice: a request whose chosen call has not ended ``hedge`` after it was
        sent sends a copy to the next item believed standing (found in passes, as retries
        are: see :meth:`_retries`); the first kept answer wins, and if both fail, the call
        fails with the later."""
        ok, done, deg = first
        sent = t + cond.hedge
        at = np.flatnonzero((choice >= 0) & (done > sent))
        if at.size:   # (a caller that crashed sends no copy: the first call's end stands)
            at, _, sent_at = self._before_crash(self._caller_crash(run, w, called), at,
                                                called[at], sent[at], done.copy())
        else:
            sent_at = sent[at]
        other = self._hedge_target(cond, self.arrivals[w].rep[called[at]], sent_at, choice[at])
        copies = other >= 0
        at, sent_at, other = at[copies], sent_at[copies], other[copies]
        self._found(id(cond), called[at], sent_at, t[at])
        if not at.size:
            return first
        known, pos = self._known(id(cond), called[at], sent_at)
        at, sent_at, other = at[known], sent_at[known], other[known]
        ok2 = np.zeros(at.size, dtype=bool)
        done2 = sent_at.copy()
        deg2 = np.zeros(at.size, dtype=bool)
        for j, item in enumerate(cond.items):
            mask = other == j
            if mask.any():
                ok2[mask], done2[mask], d = self._resolve(item, w, called[at[mask]], run,
                                                          sent_at[mask])
                if d is not None:
                    deg2[mask] = d
        kept1 = np.where(ok[at], done[at], np.inf)
        kept2 = np.where(ok2, done2, np.inf)
        won = np.minimum(kept1, kept2)
        ok, done = ok.copy(), done.copy()
        ok[at] = won < np.inf
        done[at] = np.where(won < np.inf, won, np.maximum(done[at], done2))
        if deg is not None:
            deg = deg.copy()
            deg[at] = np.where(kept1 <= kept2, deg[at], deg2) & ok[at]
        return ok, done, deg

    def _found(self, key: int, sub: np.ndarray, sent: np.ndarray, trigger: np.ndarray) -> None:
        """Record that requests ``sub`` send the later call ``key`` at ``sent`` (following a
        call sent at ``trigger``), adding to what this pass found before (a call resolved
        for two sets of requests: the first choices and the copies of a hedge)."""
        before = self.later_found.get(key)
        if before is not None and before[0].size:
            sub, sent, trigger = (np.concatenate([a, b]) for a, b in zip(before, (sub, sent, trigger)))
            order = np.argsort(sub, kind="stable")
            sub, sent, trigger = sub[order], sent[order], trigger[order]
        self.later_found[key] = (sub, sent, trigger)

    def _fallback(self, cond: CallCondition, w: int, called: np.ndarray, run: _NodeRun,
                  t: np.ndarray) -> _Resolved:
        """A fallback: its items in turn, each called when the one before failed (found in
        passes, as retries are: see :meth:`_retries`); it holds if one does, degraded if
        that one is not the first."""
        arr = self.arrivals[w]
        ok, done, deg = self._resolve(cond.items[0], w, called, run, t)
        ok, done = ok.copy(), done.copy()
        deg = np.zeros(called.size, dtype=bool) if deg is None else deg.copy()
        at = np.flatnonzero(~ok)
        crash = self._caller_crash(run, w, called) if at.size else None
        last = self._last_sent(cond.items[0], called, t)   # when each called the item before
        for j, item in enumerate(cond.items[1:], 1):
            at, sub, sent = self._before_crash(crash, at, called[at], done[at], done)
            if not at.size:
                break
            if isinstance(item, CallNode) and not item.is_request:   # a check, there and then
                a_ok = self._standing(item.promise, arr.rep[sub], sent)
                ok[at], done[at], deg[at] = a_ok, sent, a_ok
                at = at[~a_ok]
                continue
            self._found(id(item), sub, sent, last[at])
            known, pos = self._known(id(item), sub, sent)
            reach, used = self.later_used.get(id(item), (sub[:0], sent[:0]))
            a_ok, a_done, _ = self._resolve(item, w, reach, run, used)
            if j + 1 < len(cond.items):
                last = last.copy()
                last[at] = sent
                if isinstance(item, CallNode) and item.retries and known.any():
                    last[at[known]] = self._last_sent(item, reach, used)[pos[known]]
            at, pos = at[known], pos[known]
            ok[at], done[at] = a_ok[pos], a_done[pos]
            deg[at] = a_ok[pos]
            at = at[~a_ok[pos]]
        return ok, done, deg

    def _last_sent(self, item: CallNode | CallCondition, called: np.ndarray,
                   t: np.ndarray) -> np.ndarray:
        """When the requests ``called`` (calling ``item`` at ``t``) sent its last attempt,
        as this pass found (a nested condition: ``t``)."""
        if not isinstance(item, CallNode) or not item.retries:
            return t
        last = t.copy()
        for node in item.retries:
            sub, sent, _ = self.later_found.get(id(node), (called[:0], t[:0], t[:0]))
            if sub.size:
                pos = np.minimum(np.searchsorted(called, sub), called.size - 1)
                mine = called[pos] == sub
                last[pos[mine]] = sent[mine]
        return last

    def _known(self, key: int, sub: np.ndarray, sent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of the requests ``sub`` that send the later call ``key`` at ``sent`` this
        pass assumed (and routed), and their positions among those it routed. Those it did
        not are left failed where they were: the pass is not settled, and the next one
        routes them."""
        reach, used = self.later_used.get(key, (sub[:0], sent[:0]))
        return _matches(reach, used, sub, sent)

    def _caller_crash(self, run: _NodeRun, w: int, called: np.ndarray) -> np.ndarray | None:
        """When the caller (``run``'s promiser) next crashes after each request of ``called``
        reached it (None: it never crashes)."""
        alive = self.alive[self.promiser[run.node.promise]]
        if not alive.time.size:
            return None
        return alive.next_change_after(self.arrivals[w].rep[called],
                                       run.arrival[np.searchsorted(run.reach, called)])

    @staticmethod
    def _before_crash(crash: np.ndarray | None, at: np.ndarray, sub: np.ndarray,
                      sent: np.ndarray, done: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The later calls (positions ``at``, requests ``sub``) a caller sends at ``sent``
        before it crashes: a crashed caller sends none, and the call then ends when it
        would have gone (written to ``done``), at or after the crash, so the caller's
        request is lost."""
        if crash is None:
            return at, sub, sent
        before = sent < crash[at]
        if before.all():
            return at, sub, sent
        done[at[~before]] = sent[~before]
        return at[before], sub[before], sent[before]
