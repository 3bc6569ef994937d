"""The caller's side of a request in the reference engine: how a promiser uses the promises
it calls (conditions, choices, timeouts, retries with their backoff and budget, circuit
breakers). A mixin of the engine's replication, whose state and request processes it uses;
the semantics are in :mod:`promisesim.engines.reference`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Generator

import simpy

from ...model.promises import Promise
from ...model.spec import CallCondition, CallNode
from ...random import StreamReader
from ..base import (
    BREAKER_OPEN, CONDITION_FAILED, DEGRADED, ERROR, KEPT, LATE, LOST, PARTITIONED, PROMISER_DOWN,
    REJECTED,
)
from ..defences import BreakerState, BudgetState

if TYPE_CHECKING:  # pragma: no cover
    from ...random import Streams

__all__ = ["Caller", "Use", "FAILED_CALL", "KEPT_CALL", "DEGRADED_CALL"]

#: How a call (or a condition) ended for its caller: failed, kept, or kept by a fallback
#: (a degraded answer). True and False stand for the first two.
FAILED_CALL, KEPT_CALL, DEGRADED_CALL = 0, 1, 2

#: The kind of failure (see :data:`~promisesim.model.promises.RETRY_ON`) of an attempt whose
#: provider's request ended with each outcome (None: answered; late answers per the caller).
_KIND = {KEPT: None, DEGRADED: None, LATE: "timeouts", ERROR: "errors", CONDITION_FAILED: "errors",
         LOST: "errors", PROMISER_DOWN: "refusals", REJECTED: "refusals",
         PARTITIONED: "refusals", BREAKER_OPEN: "refusals"}


class Use:
    """How a promiser uses the promises it calls: the defences of its promise."""

    __slots__ = ("caller", "wait", "timeout", "backoff", "retry_on", "budget", "breaker",
                 "defers", "epoch")

    def __init__(self, caller: int, p: Promise) -> None:
        self.caller = caller
        self.wait = p.late == "wait"
        self.timeout = p.timeout
        self.backoff = p.backoff
        self.retry_on = None if p.retry_on is None else frozenset(p.retry_on)
        self.budget = p.budget
        self.breaker = p.breaker
        #: Whether a request may send calls after others have ended (retries, fallbacks,
        #: hedges), and, for one request, the caller's crashes when it arrived (see
        #: :meth:`Caller._gone`).
        self.defers = bool(p.retries) or p.conditions is not None and any(
            c.rule == "fallback" or c.hedge is not None for c in p.conditions.conditions())
        self.epoch: int | None = None

    def bound(self, epoch: int) -> "Use":
        """This use, for a request that arrived after the caller's ``epoch``-th crash."""
        out = Use.__new__(Use)
        for name in Use.__slots__:
            setattr(out, name, getattr(self, name))
        out.epoch = epoch
        return out


class Caller:
    """Calls made by a request's promiser (mixed into the engine's replication)."""

    env: simpy.Environment
    streams: "Streams"
    replication: int
    hops: dict[str, StreamReader]
    bound: dict[str, int]
    breakers: dict[tuple[int, int], BreakerState]
    budgets: dict[tuple[int, int], BudgetState]
    breaker_log: dict[str, list[Any]] | None

    promiser: list[int]
    crashes: list[int]

    # and, from the replication: _request, _record, _standing, _split, _choose, _uniform

    def _gone(self, use: Use) -> bool:
        """Whether the caller crashed since the request arrived: it then sends no call it
        had not sent (a retry, a fallback, a hedge). A crash ends the request's own process
        at once; the calls of an all-of or k-of-n run in processes of their own, which
        learn of it here."""
        return use.epoch is not None and self.crashes[self.promiser[use.caller]] != use.epoch

    def _item(self, item: CallNode | CallCondition, w: int, k: int,
              use: Use) -> Generator[simpy.Event, Any, int]:
        """One item of a condition: a call (with its retries) or a nested condition. Returns
        :data:`FAILED_CALL`, :data:`KEPT_CALL` or :data:`DEGRADED_CALL`."""
        if isinstance(item, CallCondition):
            return (yield from self._calls(item, w, k, use))
        if not item.is_request:
            return self._standing(item.promise)
        if not item.retries:
            return (yield from self._attempt(item, w, k, use))[0]
        # a failed call is sent again (each retry a node of its own), after the backoff, if
        # the caller retries that kind of failure and its budget lets it
        backoff, budget = use.backoff, self._budget(use, item)
        for node in (item, *item.retries):
            if node.attempt:
                wait = 0.0 if backoff is None else backoff.wait(node.attempt, self._uniform(
                    "backoff", node.path, k) if backoff.jitter else 0.0)
                if wait > 0:
                    yield self.env.timeout(wait)
                if self._gone(use):
                    return FAILED_CALL
                if budget is not None and not budget.allow(self.env.now):
                    return False
            elif budget is not None:
                budget.deposit(self.env.now)
            kept, kind = yield from self._attempt(node, w, k, use)
            if kept:
                return kept
            if use.retry_on is not None and kind not in use.retry_on:
                return FAILED_CALL
        return FAILED_CALL

    def _budget(self, use: Use, item: CallNode) -> BudgetState | None:
        if use.budget is None:
            return None
        key = (use.caller, item.promise)
        budget = self.budgets.get(key)
        if budget is None:
            budget = self.budgets[key] = BudgetState(use.budget)
        return budget

    def _breaker(self, use: Use, item: CallNode) -> BreakerState | None:
        if use.breaker is None:
            return None
        key = (use.caller, item.promise)
        breaker = self.breakers.get(key)
        if breaker is None:
            log, r = self.breaker_log, self.replication
            assert log is not None

            def change(t: float, state: int) -> None:
                for column, value in zip(log.values(), (r, key[0], key[1], t, state)):
                    column.append(value)

            breaker = self.breakers[key] = BreakerState(use.breaker, change)
        return breaker

    def _attempt(self, item: CallNode, w: int, k: int,
                 use: Use) -> Generator[simpy.Event, Any, tuple[int, str | None]]:
        """One attempt of a call: sent now (unless the caller's breaker fails it fast), given
        up on at the caller's timeout. Returns how it ended (:data:`FAILED_CALL`, ...) and,
        if it failed, the kind of failure (:data:`~promisesim.model.promises.RETRY_ON`)."""
        breaker = self._breaker(use, item)
        ticket = None
        if breaker is not None:
            ticket = breaker.admit(self.env.now)
            if ticket is None:
                self._record(item.promise, w, k, self.env.now, math.nan, BREAKER_OPEN, item.attempt)
                return FAILED_CALL, "refusals"
        # Internal communication: the call is handed to the network now and reaches the
        # provider delay_out later, even if the caller crashes meanwhile; the answer takes
        # delay_back to come back (plus a draw of a random hop latency each way).
        out, back = item.delay_out, item.delay_back
        if item.hop is not None:
            out += self._hop(item.path, item.hop, k)
            back += self._hop(item.path + "/answer", item.hop, k)
        call = self._in_flight(item, w, k, out) if out else self._request(item, w, k)
        process = self.env.process(call)
        if use.timeout is None:
            outcome = yield process
        else:   # the caller gives up at give_up: the provider's process goes on without it
            give_up = self.env.now + use.timeout
            timer = self.env.timeout(use.timeout)
            yield process | timer
            if not process.triggered or (back and self.env.now + back > give_up):
                if not timer.processed:
                    yield timer
                if breaker is not None:
                    breaker.done(ticket, False, self.env.now)  # type: ignore[arg-type]
                return FAILED_CALL, "timeouts"
            outcome = process.value
        # a late answer is still an answer: a caller that waits goes on with it
        kind = None if outcome == LATE and use.wait else _KIND[outcome]
        if back:
            yield self.env.timeout(back)
        if breaker is not None:
            breaker.done(ticket, kind is None, self.env.now)  # type: ignore[arg-type]
        if kind is not None:
            return FAILED_CALL, kind
        return (DEGRADED_CALL if outcome == DEGRADED else KEPT_CALL), None

    def _hop(self, key: str, dist: Any, k: int) -> float:
        reader = self.hops.get(key)
        if reader is None:
            reader = self.hops[key] = StreamReader(self.streams, dist, self.replication, "hop", key)
        return reader[k]

    def _in_flight(self, item: CallNode, w: int, k: int, delay: float) -> Generator[simpy.Event, Any, bool]:
        yield self.env.timeout(delay)
        return (yield from self._request(item, w, k))

    def _calls(self, cond: CallCondition, w: int, k: int,
               use: Use) -> Generator[simpy.Event, Any, int]:
        """The calls of one condition; returns :data:`FAILED_CALL`, :data:`KEPT_CALL` or
        :data:`DEGRADED_CALL`."""
        if cond.rule == "split":
            return (yield from self._item(self._split(cond, k), w, k, use))
        if cond.rule == "any":
            chosen = self._choose(cond, k)
            if chosen is None:
                return FAILED_CALL
            if cond.hedge is None:
                return (yield from self._item(chosen, w, k, use))
            return (yield from self._hedged(cond, chosen, w, k, use))
        if cond.rule == "fallback":   # the next only if the one before failed
            for j, item in enumerate(cond.items):
                if j and self._gone(use):
                    return FAILED_CALL
                ended = yield from self._item(item, w, k, use)
                if ended:
                    return DEGRADED_CALL if j else ended
            return FAILED_CALL
        pending = [self.env.process(self._item(item, w, k, use)) for item in cond.items]
        return (yield from self._first_kept(pending, cond.k))

    def _first_kept(self, pending: list[simpy.Process], needed: int) -> Generator[simpy.Event, Any, int]:
        """Wait for ``needed`` of the calls ``pending`` to be kept (or for too many to fail);
        degraded if any kept answer counted was."""
        kept = failed = 0
        degraded = False
        n = len(pending)
        while True:
            for process in [p for p in pending if p.triggered]:
                pending.remove(process)
                if process.value:
                    kept += 1
                    degraded |= process.value == DEGRADED_CALL
                else:
                    failed += 1
            if kept >= needed:
                return DEGRADED_CALL if degraded else KEPT_CALL
            if n - failed < needed:
                return FAILED_CALL
            yield self.env.any_of(pending)

    def _hedged(self, cond: CallCondition, chosen: CallNode | CallCondition, w: int, k: int,
                use: Use) -> Generator[simpy.Event, Any, int]:
        """A hedged choice: ``chosen`` now and, if it has not ended ``cond.hedge`` later, a copy
        to the next provider believed up; the first kept wins."""
        first = self.env.process(self._item(chosen, w, k, use))
        yield first | self.env.timeout(cond.hedge)
        if first.triggered:
            return first.value
        if self._gone(use):
            return (yield first)
        items, n = cond.items, len(cond.items)
        at = items.index(chosen)
        other = next((items[(at + step) % n] for step in range(1, n)
                      if self._believed(items[(at + step) % n], cond.detect)), None)
        if other is None:
            return (yield first)
        second = self.env.process(self._item(other, w, k, use))
        return (yield from self._first_kept([first, second], 1))
