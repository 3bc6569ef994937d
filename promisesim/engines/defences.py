"""A caller's defences that keep state between calls: circuit breakers and retry budgets.

Plain Python state machines, told the time by the engine, so any engine that
walks a caller's calls in time order can use them. Each is one per (caller's
promise, provider's promise) pair and per replication.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from ..model.promises import Breaker, RetryBudget

__all__ = ["BreakerState", "BudgetState", "CLOSED", "OPEN", "HALF_OPEN"]

CLOSED, OPEN, HALF_OPEN = 0, 1, 2


class BreakerState:
    """One circuit breaker (see :class:`~promisesim.model.promises.Breaker`).

    ``admit(t)`` asks to send a call at ``t``: it returns a ticket, or None when
    the call must fail fast; ``done(ticket, kept, t)`` reports how the call ended
    at ``t``. ``log(t, state)`` is called on every change of state, the move from
    open to half-open included (at the instant it happens, known when it opens).
    """

    __slots__ = ("rule", "log", "state", "generation", "ended", "failures", "reopen",
                 "trials_out", "trials_kept", "least")

    def __init__(self, rule: Breaker, log: Callable[[float, int], None]) -> None:
        self.rule = rule
        self.log = log
        self.state = CLOSED
        self.generation = 0
        self.ended: deque[tuple[float, bool]] = deque()   # (end instant, failed), oldest first
        self.failures = 0
        self.reopen = 0.0          # when an open breaker turns half-open
        self.trials_out = 0
        self.trials_kept = 0
        self.least = rule.least

    def admit(self, t: float) -> int | None:
        if self.state == OPEN:
            if t < self.reopen:
                return None
            self.state, self.generation = HALF_OPEN, self.generation + 1
            self.trials_out = self.trials_kept = 0
        if self.state == HALF_OPEN:
            if self.trials_out >= self.rule.trials:
                return None
            self.trials_out += 1
        return self.generation

    def done(self, ticket: int, kept: bool, t: float) -> None:
        if ticket != self.generation:    # sent before the last change of state
            return
        if self.state == HALF_OPEN:
            if not kept:
                self._open(t)
                return
            self.trials_kept += 1
            if self.trials_kept >= self.rule.trials:
                self.state, self.generation = CLOSED, self.generation + 1
                self.ended.clear()
                self.failures = 0
                self.log(t, CLOSED)
            return
        rule, ended = self.rule, self.ended
        ended.append((t, not kept))
        self.failures += not kept
        if rule.per == "calls":
            while len(ended) > rule.window:
                self.failures -= ended.popleft()[1]
        else:   # the calls that ended in (t - window, t]
            while ended and ended[0][0] <= t - rule.window:
                self.failures -= ended.popleft()[1]
        if len(ended) >= self.least and self.failures >= rule.failure_rate * len(ended):
            self._open(t)

    def _open(self, t: float) -> None:
        self.state, self.generation = OPEN, self.generation + 1
        self.ended.clear()
        self.failures = 0
        self.reopen = t + self.rule.open_for
        self.log(t, OPEN)
        self.log(self.reopen, HALF_OPEN)


class BudgetState:
    """One retry budget (see :class:`~promisesim.model.promises.RetryBudget`): first attempts
    are deposited as they are sent; ``allow(t)`` says whether a retry may be sent at ``t``
    and, if so, withdraws it."""

    __slots__ = ("rule", "firsts", "retries")

    def __init__(self, rule: RetryBudget) -> None:
        self.rule = rule
        self.firsts: deque[float] = deque()
        self.retries: deque[float] = deque()

    def deposit(self, t: float) -> None:
        self.firsts.append(t)

    def allow(self, t: float) -> bool:
        since = t - self.rule.window
        for sent in (self.firsts, self.retries):
            while sent and sent[0] <= since:
                sent.popleft()
        if len(self.retries) < self.rule.minimum + self.rule.ratio * len(self.firsts):
            self.retries.append(t)
            return True
        return False
