"""Stage 2: routing. Which requests reach each node of a call tree, and what they call.

A request's path is fixed at its arrival instant (who is up, which provider a
choice picks, which version a split sends it to), so the requests reaching each
node are computed top down with boolean masks (:meth:`Routing._reach`). Once the
callees have been served, a node's calls are resolved bottom up from their
outcomes (:meth:`Routing._resolve`): the k-th fastest kept answer against the
(n-k+1)-th failure, by min/max. Calls sent after others ended (retries,
fallbacks, hedges) are :mod:`.later`'s.
"""

from __future__ import annotations

import numpy as np

from ...model.promises import RETRY_ON, Condition
from ...model.spec import CallCondition, CallNode
from ..base import DEGRADED, OUTCOMES, UNFINISHED
from ..reference.calls import _KIND
from .kernels import _UNIT, _isin_sorted, _kth_smallest
from .later import LaterCalls
from .runs import _NodeRun, _Resolved
from .windows import _QueueLog

__all__ = ["Routing", "_NodeRun", "_push_bindings"]


# -- push-mode bindings ----------------------------------------------------------------------

def _push_bindings(believed: np.ndarray, rep: np.ndarray, times: np.ndarray,
                   initial: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The provider each request of a push-mode choice calls (-1: none believed up), and
    the binding after each request.

    ``believed`` (providers x requests) says which providers each request's promiser
    believes up. Per replication, in arrival order, the binding starts at provider 0 (or
    ``initial[rep]``); a
    request keeps it if believed up, else moves to the next believed up in cyclic order
    (and keeps it if none is). Each request is a map from the binding before it to the
    binding after it; the bindings are a prefix composition of those maps, computed by
    doubling within each replication (log2 of the requests per replication steps).
    """
    n, m = believed.shape
    out = np.full(m, -1, dtype=np.int64)
    if m == 0:
        return out, out.copy()
    order = np.lexsort((times, rep))
    b = believed[:, order]
    # step[s, i]: the binding after request i, from binding s before it
    step = np.empty((n, m), dtype=np.int64)
    for s in range(n):
        chosen = np.full(m, s, dtype=np.int64)
        found = np.zeros(m, dtype=bool)
        for j in range(n):
            c = (s + j) % n
            hit = ~found & b[c]
            chosen[hit] = c
            found |= hit
        step[s] = chosen
    r = rep[order]
    first = np.ones(m, dtype=bool)
    first[1:] = r[1:] != r[:-1]
    seg_start = np.maximum.accumulate(np.where(first, np.arange(m), 0))
    prefix = step.copy()                  # prefix[:, i]: map from the start of i's replication
    d = 1
    while d < m:
        i = np.arange(d, m)
        inside = i - d >= seg_start[i]
        i = i[inside]
        if i.size == 0:
            break
        # prefix[i] = prefix[i] o prefix[i - d]: first the older requests, then these
        prefix[:, i] = np.take_along_axis(prefix[:, i], prefix[:, i - d], axis=0)
        d *= 2
    if initial is None:
        bound = prefix[0]
    else:
        bound = prefix[initial[r], np.arange(m)]
    ok = b[bound, np.arange(m)]
    out[order] = np.where(ok, bound, -1)
    after = np.empty(m, dtype=np.int64)
    after[order] = bound
    return out, after


#: The kind of failure (its position in :data:`~promisesim.model.promises.RETRY_ON`) of an
#: attempt whose provider's request ended with each outcome: the reference engine's table,
#: by outcome code (an answer still unfinished at the horizon: a timeout).
_FAILURE_KIND = np.zeros(len(OUTCOMES), dtype=np.int64)
for _code, _kind in {**_KIND, UNFINISHED: "timeouts"}.items():
    if _kind is not None:
        _FAILURE_KIND[_code] = RETRY_ON.index(_kind)
del _code, _kind


class Routing(LaterCalls):
    """The routing stage of a batch (:class:`~promisesim.engines.vector.batch._Batch`).

    Reads ``states``, ``arrivals``, ``refused``, ``later_assumed`` and ``falls_back``;
    writes ``runs`` and ``by_node`` (one :class:`_NodeRun` per node reached),
    ``later_used`` and ``later_found`` (calls sent after others ended: retries, fallbacks,
    hedges)
    and, in time windows, ``push_log``.
    """

    # -- standing of promises at instants ----------------------------------------------------
    def _standing(self, promise: int, rep: np.ndarray, t: np.ndarray) -> np.ndarray:
        ok = self.states[self.promiser[promise]].up_at(rep, t)
        cond = self.spec.promises[promise].conditions
        if cond is not None:
            ok &= self._condition_holds(cond, rep, t)
        return ok

    def _condition_holds(self, cond: Condition, rep: np.ndarray, t: np.ndarray) -> np.ndarray:
        count = np.zeros(t.size, dtype=np.int64)
        for j, item in enumerate(cond.items):
            if isinstance(item, Condition):
                ok = self._condition_holds(item, rep, t)
            else:
                ok = self._standing(self.spec.promise_index[item], rep, t)
            if cond.rule == "split":     # a version that carries no traffic breaks nobody
                ok = ok | cond.idle(j, t)
            count += ok
        return count >= cond.k

    def _item_standing(self, item: CallNode | CallCondition, rep: np.ndarray, t: np.ndarray) -> np.ndarray:
        if isinstance(item, CallNode):
            return self._standing(item.promise, rep, t)
        count = np.zeros(t.size, dtype=np.int64)
        for j, i in enumerate(item.items):
            ok = self._item_standing(i, rep, t)
            if item.rule == "split":
                ok = ok | item.source.idle(j, t)  # type: ignore[union-attr]
            count += ok
        return count >= item.k

    def _reach(self, node: CallNode, w: int, reach: np.ndarray, arrival: np.ndarray,
               rep: np.ndarray | None = None, ordered: bool | None = None,
               caller: _NodeRun | None = None) -> None:
        """Top down: which requests reach ``node`` (arriving at ``arrival``), and where the
        promiser is up, what they call. ``rep``: the replication of each (else looked up);
        ``ordered``: whether ``arrival`` is in time order within each replication (the
        workload's own arrivals are; a random hop breaks it). Arrays are shared between
        nodes, never written in place. ``caller``: the run whose condition calls ``node``."""
        run = _NodeRun(node, w, len(self.runs), reach)
        run.arrival = arrival
        run.caller = caller
        self.runs.append(run)
        self.by_node[id(node)] = run
        arr = self.arrivals[w]
        if rep is None:   # reach: distinct positions, sorted; all of them: the identity
            rep = arr.rep if reach.size == arr.rep.size else arr.rep[reach]
        if ordered is None:
            ordered = arrival is arr.time
        states = self.states[self.promiser[node.promise]]
        up = None
        if states.time.size:
            if ordered:
                from ..._timeline import _values_at_ordered
                bounds = np.zeros(states.n_reps + 1, dtype=np.int64)
                np.cumsum(states.counts, out=bounds[1:])
                up = _values_at_ordered(states.time, states.up, bounds, rep, arrival)
            if up is None:
                up = states.up_at(rep, arrival)
            if up.all():
                up = None
        cut = self._partitioned(node.promise, arrival)
        if cut is not None:   # a request a partition cuts off never reaches the promiser
            run.partitioned = cut
            up = ~cut if up is None else up & ~cut
        if up is None:   # the promiser is up for every request
            run.called_pos = np.arange(reach.size)
            run.called = reach
        else:
            run.called_pos = np.flatnonzero(up)
            run.called = reach[up]
            if node.condition is not None:
                rep, arrival = rep[up], arrival[up]
        if node.condition is not None:
            called, times = run.called, arrival
            if self.spec.agents[self.promiser[node.promise]].order != "after":
                times = run.calls_at = self._assumed_calls(node, called, times)
                calls = times < np.inf
                if not calls.all():
                    called, times, rep = called[calls], times[calls], rep[calls]
                ordered = False
            refused = self.refused.get(id(node))
            if refused is not None and refused.size:   # rejected: no calls (see _serve)
                calls = ~_isin_sorted(called, refused)
                called, times, rep = called[calls], times[calls], rep[calls]
            self._reach_condition(node.condition, w, called, run, times, rep, ordered)

    def _assumed_calls(self, node: CallNode, called: np.ndarray, arrival: np.ndarray) -> np.ndarray:
        """When the requests ``called`` at ``node`` (arriving at ``arrival``) make their calls,
        as this pass assumes: as the pass before found (see
        :meth:`~promisesim.engines.vector.batch._Batch._calls_settled`), else on arrival."""
        before = self.calls_assumed.get(id(node))
        if before is None:
            return arrival
        known, instants = before
        pos = np.minimum(np.searchsorted(known, called), max(known.size - 1, 0))
        found = known[pos] == called if known.size else np.zeros(called.size, dtype=bool)
        return np.where(found, instants[pos] if known.size else arrival, arrival)

    def _partitioned(self, promise: int, t: np.ndarray) -> np.ndarray | None:
        """Which requests to ``promise`` arriving at ``t`` a partition cuts off (None: none)."""
        cut = None
        for x in self.spec.cut(promise):
            start = float(x.at)
            inside = (t >= start) & (t < start + float(x.duration))
            cut = inside if cut is None else cut | inside
        return None if cut is None or not cut.any() else cut

    def _reach_condition(self, cond: CallCondition, w: int, called: np.ndarray, run: _NodeRun,
                         times: np.ndarray, rep: np.ndarray | None = None,
                         ordered: bool = False) -> None:
        arr = self.arrivals[w]
        if rep is None:
            rep = arr.rep[called]
        index = None   # looked up only for draws
        targets: list[np.ndarray | None]
        if cond.rule == "any":
            # the providers the promiser believes standing: the truth ``detect`` ago
            seen = times - cond.detect if cond.detect else times
            choice = np.full(called.size, -1, dtype=np.int64)
            if cond.mode == "push":
                believed = np.stack([self._item_standing(item, rep, seen) for item in cond.items])
                initial = self.bindings.get(id(cond)) if self.windowed else None
                choice, bound = _push_bindings(believed, rep, times, initial)
                if self.windowed:
                    root = arr.time[called]
                    self.push_log[id(cond)] = _QueueLog(rep, root, times, times, bound.astype(float),
                                                        times, False)
            elif cond.choose == "first":
                for j, item in enumerate(cond.items):
                    open_ = choice < 0
                    if not open_.any():
                        break
                    standing = self._item_standing(item, rep[open_], seen[open_])
                    pos = np.flatnonzero(open_)[standing]
                    choice[pos] = j
            else:   # one of them at random
                believed = np.stack([self._item_standing(item, rep, seen) for item in cond.items])
                count = believed.sum(axis=0)
                index = arr.index[called]
                u = self._draws("route", cond.path, _UNIT, rep, index)
                pick = np.minimum((u * count).astype(np.int64), np.maximum(count - 1, 0))
                nth = np.cumsum(believed, axis=0) > pick
                choice = np.where(count > 0, np.argmax(nth, axis=0), -1)
            run.choice[id(cond)] = choice
            targets = [choice == j for j in range(len(cond.items))]
            if cond.hedge is not None:   # copies to the next provider, as the pass before found
                self._reach_hedges(cond, w, called, rep, times, choice, targets, run)
                return
        elif cond.rule == "split":
            index = arr.index[called]
            choice = self._version_of(cond, rep, index, times)
            run.choice[id(cond)] = choice
            targets = [choice == j for j in range(len(cond.items))]
        else:   # every item is called (a fallback's first; the others later, see below)
            targets = [None] * len(cond.items)
        for j, (item, mask) in enumerate(zip(cond.items, targets)):
            if j and cond.rule == "fallback":   # called when the items before it failed
                if isinstance(item, CallNode) and not item.is_request:
                    continue   # a check of state: no routing (see _resolve)
                sub, sub_times, trigger = self._later(id(item), called)
                self._reach_later(item, w, sub, sub_times, trigger, run)
            elif mask is None:
                self._reach_item(item, w, called, rep, times, index, ordered, run)
            else:
                self._reach_item(item, w, called[mask], rep[mask], times[mask],
                                 None if index is None else index[mask], ordered, run)

    def _reach_item(self, item: CallNode | CallCondition, w: int, sub: np.ndarray,
                    rep: np.ndarray, times: np.ndarray, index: np.ndarray | None,
                    ordered: bool, run: _NodeRun) -> None:
        """Route requests ``sub`` (replications ``rep``, arrival indices ``index`` if known)
        calling ``item`` at ``times`` from ``run``'s node."""
        if isinstance(item, CallCondition):
            self._reach_condition(item, w, sub, run, times, rep, ordered)
        elif item.is_request:
            out = item.delay_out
            if item.hop is not None:
                if index is None:
                    index = self.arrivals[w].index[sub]
                out = out + self._draws("hop", item.path, item.hop, rep, index)
                self._reach(item, w, sub, times + out, rep, False, run)
            else:   # a constant delay keeps the time order (and t + 0.0 is t: t >= 0)
                self._reach(item, w, sub, times + out if out else times, rep, ordered, run)
            for retry in item.retries:   # the retries the pass before found (see _retries)
                self._reach_later(retry, w, *self._later(id(retry), sub), run)

    def _version_of(self, cond: CallCondition, rep: np.ndarray, index: np.ndarray,
                    times: np.ndarray) -> np.ndarray:
        """The version each request is bound to: a draw against the traffic split (the
        reference engine's arithmetic, element for element)."""
        knots = cond.source.shares  # type: ignore[union-attr]
        k_time = np.array([k[0] for k in knots])
        k_share = np.array([k[1] for k in knots])           # knots x items
        i = np.searchsorted(k_time, times, side="right") - 1
        last = k_time.size - 1
        inner = (i >= 0) & (i < last)
        shares = k_share[np.clip(i, 0, last)].T.copy()      # items x requests
        if inner.any():
            lo = i[inner]
            t0, t1 = k_time[lo], k_time[lo + 1]
            weight = (times[inner] - t0) / (t1 - t0)
            a, b = k_share[lo].T, k_share[lo + 1].T
            shares[:, inner] = a + (b - a) * weight
        u = self._draws("route", cond.path, _UNIT, rep, index)
        below = u < np.cumsum(shares, axis=0)
        positive = shares > 0
        last_positive = positive.shape[0] - 1 - np.argmax(positive[::-1], axis=0)
        return np.where(below.any(axis=0), np.argmax(below, axis=0), last_positive)

    def _resolve(self, item: CallNode | CallCondition, w: int, called: np.ndarray,
                 run: _NodeRun, t: np.ndarray) -> _Resolved:
        """Bottom up: for requests ``called`` (at the caller from ``t``), whether ``item`` held
        for the caller (a call answered without an error, in time unless the caller's promise
        fails on late answers), when the caller knew it, and whether it held only thanks to
        a fallback (None: for none of them)."""
        arr = self.arrivals[w]
        if isinstance(item, CallNode):
            if not item.is_request:
                return self._standing(item.promise, arr.rep[called], t), t.copy(), None
            if item.retries:
                return self._retries(item, w, called, run, t)
            ok, done, deg, _ = self._attempt(item, w, called, run, t)
            return ok, done, deg
        if item.rule in ("any", "split"):
            choice = run.choice[id(item)]
            ok = np.zeros(called.size, dtype=bool)
            done = t.copy()
            deg = None
            for j, sub in enumerate(item.items):
                mask = choice == j
                if mask.any():
                    ok[mask], done[mask], d = self._resolve(sub, w, called[mask], run, t[mask])
                    if d is not None:
                        if deg is None:
                            deg = np.zeros(called.size, dtype=bool)
                        deg[mask] = d
            if item.hedge is not None:
                return self._hedged(item, w, called, run, t, choice, (ok, done, deg))
            return ok, done, deg
        if item.rule == "fallback":
            return self._fallback(item, w, called, run, t)
        results = [self._resolve(sub, w, called, run, t) for sub in item.items]
        n, k = len(item.items), item.k
        kept_at = _kth_smallest([np.where(ok, done, np.inf) for ok, done, _ in results], k - 1)
        failed_at = _kth_smallest([np.where(ok, np.inf, done) for ok, done, _ in results], n - k)
        success = kept_at <= failed_at   # on a tie the kept answers count first
        deg = None   # degraded if a kept answer counted (by then) was
        for ok, done, d in results:
            if d is not None:
                counted = d & ok & (done <= kept_at)
                deg = counted if deg is None else deg | counted
        if deg is not None:
            deg &= success
        return success, np.minimum(kept_at, failed_at, out=kept_at), deg   # the earlier

    def _attempt(self, item: CallNode, w: int, called: np.ndarray, run: _NodeRun,
                 t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None,
                                         np.ndarray | None]:
        """One attempt of a call (``item``'s node) by requests ``called`` sent at ``t``: whether
        it held for the caller, when the caller knew it, whether the answer was degraded
        (None: none can be), and (for a caller that retries) whether it failed in a way the
        caller retries (else None)."""
        arr = self.arrivals[w]
        child = self.by_node[id(item)]
        use = self.spec.promises[run.node.promise]
        good = child.answered if use.late == "wait" else child.ok
        if child.reach is called or (child.reach.size == called.size
                                     and np.array_equal(child.reach, called)):
            pos = None
            ok, done = good, child.done     # the same requests, in the same order
        else:
            pos = np.searchsorted(child.reach, called)
            ok, done = good[pos], child.done[pos]
        back = item.delay_back
        if item.hop is not None:   # the answer's way back takes a draw of the hop too
            back = back + self._draws("hop", item.path + "/answer", item.hop, arr.rep[called],
                                      arr.index[called])
            done = np.where(back != 0, done + back, done)
        elif back:
            done = done + back
        late = None
        if use.timeout is not None:   # an answer not back by then fails the call then
            give_up = t + use.timeout
            late = ~(done <= give_up)
            if late.any():
                ok = np.where(late, False, ok)
                done = np.where(late, give_up, done)
        outcome = None
        deg = None
        if self.falls_back:
            outcome = child.outcome if pos is None else child.outcome[pos]
            deg = ok & (outcome == DEGRADED)
        if not use.retries:
            return ok, done, deg, None
        if use.retry_on is None:
            return ok, done, deg, ~ok
        if outcome is None:
            outcome = child.outcome if pos is None else child.outcome[pos]
        kind = _FAILURE_KIND[outcome]
        if late is not None:
            kind[late] = RETRY_ON.index("timeouts")
        retried = np.array([k in use.retry_on for k in RETRY_ON])
        return ok, done, deg, ~ok & retried[kind]

    def _resolve_calls(self, run: _NodeRun, t: np.ndarray) -> _Resolved:
        """Whether the condition of ``run``'s node held for each request where its promiser
        was up (calling at ``t``: inf for none), when that was known, and whether only
        thanks to a fallback (None: for none). Requests assumed rejected by a limit made no
        calls: failed at once (see :meth:`_refusals_settled`)."""
        cond = run.node.condition
        assert cond is not None
        refused = self.refused.get(id(run.node))
        calls = None if run.calls_at is None else t < np.inf
        if refused is not None and refused.size:
            out = ~_isin_sorted(run.called, refused)
            calls = out if calls is None else calls & out
        if calls is None or calls.all():
            return self._resolve(cond, run.workload, run.called, run, t)
        ok = np.zeros(t.size, dtype=bool)
        ready = t.copy()
        ok[calls], ready[calls], d = self._resolve(cond, run.workload, run.called[calls], run,
                                                   t[calls])
        deg = None
        if d is not None:
            deg = np.zeros(t.size, dtype=bool)
            deg[calls] = d
        return ok, ready, deg
