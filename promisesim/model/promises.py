"""Promises, their bodies and their conditions.

A promise is a declaration by its *promiser* about its own behaviour, made to
a *promisee*. It binds only when the promisee accepts it (the matching use
promise); an unaccepted offer is an *imposition*, simulated but never counted
as delivered. A promise may be conditional, "b if c": it is kept only while
its conditions are kept, and each condition must be a promise made *to* the
promiser (otherwise the promiser would rely on something nobody promised it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dists import Distribution
from typing import Union

__all__ = [
    "Availability",
    "Backoff",
    "Breaker",
    "RetryBudget",
    "RETRY_ON",
    "Latency",
    "Body",
    "Condition",
    "Promise",
    "all_of",
    "any_of",
    "fallback",
    "k_of",
]


@dataclass(frozen=True)
class Backoff:
    """The wait before each retry of a call: ``initial * multiplier**(j - 1)`` before
    retry ``j`` (1, 2, ...), at most ``maximum``; with ``jitter="full"`` a uniform draw
    below that, with ``"equal"`` half of it plus a uniform draw below the other half
    (draw ``k`` of ``("backoff", path of the retry's node)`` for request ``k``).
    """

    initial: float
    multiplier: float = 2.0
    maximum: float | None = None
    jitter: str | None = None

    def wait(self, j: int, u: float) -> float:
        """The wait before retry ``j`` given a uniform draw ``u`` (used only with jitter; an
        array of draws gives an array of waits)."""
        d = self.initial * self.multiplier ** (j - 1)
        if self.maximum is not None and d > self.maximum:
            d = self.maximum
        if self.jitter == "full":
            return d * u
        if self.jitter == "equal":
            return d / 2 + (d / 2) * u
        return d

    def to_dict(self) -> dict:
        out: dict = {"initial": self.initial, "multiplier": self.multiplier}
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.jitter is not None:
            out["jitter"] = self.jitter
        return out


#: The kinds of failed attempt a caller may retry (``retry_on``): ``"errors"``, an answer
#: that is an error (the provider's own, or its calls failing: a 5xx) or a request lost
#: inside it; ``"timeouts"``, a call given up on at the caller's timeout or a late answer
#: it fails on; ``"refusals"``, a request that never got served: its promiser down, over
#: its limit, cut off by a partition, or failed fast by the caller's open breaker.
RETRY_ON = ("errors", "timeouts", "refusals")


@dataclass(frozen=True)
class RetryBudget:
    """At most a share of a caller's calls to one provider may be retries.

    A retry of a call to a provider may be sent at ``t`` only while the
    retries the caller sent to that provider in ``(t - window, t]`` number
    fewer than ``minimum + ratio * n``, ``n`` being the first attempts it sent
    there in that window. A retry the budget refuses is not sent: the call
    fails with the attempt that failed last. ``minimum`` lets a caller with
    little traffic retry at all. (The shape of Finagle's retry budget: a
    deposit per call, a withdrawal per retry, over a sliding window.)
    """

    ratio: float = 0.1
    window: float = 10.0
    minimum: int = 1

    def to_dict(self) -> dict:
        return {"ratio": self.ratio, "window": self.window, "minimum": self.minimum}


@dataclass(frozen=True)
class Breaker:
    """A circuit breaker on each provider the promiser calls (one per provider promise).

    *Closed*, it lets calls through and remembers how each ended (kept, or
    failed in any way, the caller's timeout included). When the calls
    remembered number at least ``minimum`` and the share that failed reaches
    ``failure_rate``, it *opens*: for ``open_for`` time units every call to that
    provider fails at once, without reaching it (recorded there with the
    outcome ``breaker_open``). Then it is *half-open*: it lets ``trials`` calls
    through and fails the others fast; if every trial is kept it closes (and
    forgets what it remembered), if one fails it opens again at once. Calls
    sent before a change of state do not count after it.

    What it remembers is a sliding window: the last ``window`` calls that ended
    (``per="calls"``) or the calls that ended in the last ``window`` time units
    (``per="time"``). ``minimum`` defaults to ``window`` for a count window and
    to 10 calls for a time window.
    """

    failure_rate: float = 0.5
    window: float = 20
    per: str = "calls"
    minimum: int | None = None
    open_for: float = 30.0
    trials: int = 1

    @property
    def least(self) -> int:
        """The number of remembered calls before it may open."""
        if self.minimum is not None:
            return int(self.minimum)
        return int(self.window) if self.per == "calls" else 10

    def to_dict(self) -> dict:
        out: dict = {"failure_rate": self.failure_rate, "window": self.window}
        if self.per != "calls":
            out["per"] = self.per
        if self.minimum is not None:
            out["minimum"] = self.minimum
        out.update({"open_for": self.open_for, "trials": self.trials})
        return out


@dataclass(frozen=True)
class Availability:
    """Body: "I am available". Kept at time ``t`` iff the promiser is up and its conditions hold."""

    kind = "availability"


@dataclass(frozen=True)
class Latency:
    """Body: "I answer each request within ``deadline``" (in the model's time unit).

    Kept per request: a request is kept iff the promiser is up when it
    arrives and stays up until it answers, every call its conditions need
    is kept, and the response time is at most ``deadline``. As a state over
    time it is kept while the promiser is up and its conditions hold.
    """

    deadline: float
    kind = "latency"


Body = Union[Availability, Latency]

#: A reference to a promise: the promise itself or its name.
PromiseRef = Union["Promise", str]


@dataclass(frozen=True)
class Condition:
    """A composition of promises (or nested conditions) made to the promiser.

    Build one with :func:`all_of`, :func:`any_of`, :func:`k_of` or :func:`fallback`.

    Attributes
    ----------
    rule : {"all", "any", "k", "fallback"}
        ``"all"`` calls every provider and needs all of them; ``"any"`` is a
        *choice*: it calls one provider that is up (the first in the given
        order) and needs it; ``"k"`` calls every provider and needs the
        ``k`` fastest; ``"fallback"`` calls the first and, only if that call
        fails, the next, and so on: the answer of any but the first is
        *degraded*.
    k : int
        Providers needed (``len(items)`` for all, 1 for any).
    items : tuple
        Promise names or nested conditions.
    choose, mode, detect, hedge
        How a choice picks its provider and hedges; see :func:`any_of`.
    """

    rule: str
    k: int
    items: tuple[Union[str, "Condition"], ...]
    #: Per item, the time a call takes to reach the provider and the answer to come back
    #: (internal communication inside a super-agent); None means no delay.
    delays: tuple[tuple[float, float], ...] | None = None
    choose: str = "first"
    mode: str = "pull"
    detect: float = 0.0
    #: ``rule="split"`` only (versions): knots ``(time, shares per item)`` of the traffic
    #: split, linear between knots and constant outside them.
    shares: tuple[tuple[float, tuple[float, ...]], ...] | None = None
    #: A random hop latency, drawn per call on top of ``delays`` (out) and for the answer.
    hop: Distribution | None = None
    #: A choice only: after this long without an answer, a second copy goes to another
    #: provider (see :func:`any_of`); None: no hedging.
    hedge: float | None = None

    def share_at(self, t: float) -> tuple[float, ...]:
        """The traffic share of each item at ``t`` (``rule="split"``)."""
        assert self.shares is not None
        return split_shares(self.shares, t)

    def idle(self, j: int, t: np.ndarray) -> np.ndarray:
        """Whether item ``j`` of a split carries no traffic around each instant ``t``: its share
        is zero at both ends of the stretch between knots that holds ``t``."""
        assert self.shares is not None
        times = np.array([k[0] for k in self.shares])
        share = np.array([k[1][j] for k in self.shares])
        i = np.clip(np.searchsorted(times, np.asarray(t, dtype=float), side="right") - 1,
                    0, share.size - 1)
        return (share[i] == 0) & (share[np.minimum(i + 1, share.size - 1)] == 0)

    def conditions(self) -> list["Condition"]:
        """This condition and every condition nested in it, depth first."""
        out: list[Condition] = [self]
        for item in self.items:
            if isinstance(item, Condition):
                out.extend(item.conditions())
        return out

    def promises(self) -> list[str]:
        """Names of every promise in this condition, depth first."""
        out: list[str] = []
        for item in self.items:
            if isinstance(item, Condition):
                out.extend(item.promises())
            else:
                out.append(item)
        return out

    def to_dict(self) -> dict:
        items = [i.to_dict() if isinstance(i, Condition) else i for i in self.items]
        if self.rule == "k":
            return {"k_of": {"k": self.k, "of": items}}
        if self.rule == "fallback":
            return {"fallback": items}
        options = {key: getattr(self, key) for key, default in _CHOICE_DEFAULTS.items()
                   if getattr(self, key) != default}
        if options:
            return {f"{self.rule}_of": {"of": items, **options}}
        return {f"{self.rule}_of": items}


def split_shares(knots: tuple | list, t: float) -> tuple[float, ...]:
    """A traffic split at ``t``: linear between knots ``(time, shares)``, constant outside
    them; at an instant with several knots (a step), the last one holds."""
    i = -1
    for k, (time, _) in enumerate(knots):
        if time <= t:
            i = k
    if i < 0:
        return tuple(knots[0][1])
    if i == len(knots) - 1:
        return tuple(knots[i][1])
    (t0, s0), (t1, s1) = knots[i], knots[i + 1]
    w = (t - t0) / (t1 - t0)
    return tuple(a + (b - a) * w for a, b in zip(s0, s1))


_CHOICE_DEFAULTS = {"choose": "first", "mode": "pull", "detect": 0.0, "hedge": None}


def _refs(items: tuple) -> tuple[Union[str, Condition], ...]:
    out: list[Union[str, Condition]] = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.extend(_refs(tuple(item)))
        elif isinstance(item, Condition):
            out.append(item)
        elif isinstance(item, Promise):
            out.append(item.name)
        elif isinstance(item, str):
            out.append(item)
        else:
            from ..errors import ScenarioError

            raise ScenarioError(f"a condition item must be a promise or its name, got {item!r}")
    return tuple(out)


def all_of(*items: PromiseRef | Condition) -> Condition:
    """Condition kept when every item is kept (AND; a series system)."""
    refs = _refs(items)
    return Condition("all", len(refs), refs)


def any_of(*items: PromiseRef | Condition, choose: str = "first", mode: str = "pull",
           detect: float = 0.0, hedge: float | None = None) -> Condition:
    """Choice: kept when the provider a request picks keeps its promise.

    Each request calls one provider that the promiser *believes* is up: its
    belief is the truth ``detect`` time units ago (an assessment that sees
    changes late; 0: at once). A request with no provider believed up fails its
    condition without a call.

    Parameters
    ----------
    choose : {"first", "random"}
        Pull mode: the first item believed up, in the given order (fail-over,
        and fail-back once the first is believed up again), or one of those
        believed up, uniformly at random per request (load balancing).
    mode : {"pull", "push"}
        ``"pull"``: the promiser picks a provider per request. ``"push"``: it
        stays bound to one provider (the first item to begin with) until it
        believes that one down, then moves to the next item believed up, in
        cyclic order, and stays there: no fail-back.
    detect : float
        Detection delay (time units).
    hedge : float, optional
        A hedged request: if the provider called has not answered ``hedge``
        after the call was sent, a second copy goes to the next provider
        believed up (in the given order after the first, cyclically). The
        condition holds with the first copy kept, and fails when both have
        failed (a call that fails before the hedge is sent is not hedged).
        The copy left behind is not cancelled: its provider does the work.
    """
    refs = _refs(items)
    return Condition("any", 1, refs, None, choose, mode, detect, hedge=hedge)


def fallback(primary: PromiseRef | Condition, *alternatives: PromiseRef | Condition) -> Condition:
    """Fallbacks: call ``primary``; if that call fails (an error, a refusal, a timeout, a late
    answer the caller fails on, after its retries), call the first alternative, and so on.

    The condition holds with the first call kept. A request whose condition was kept by an
    alternative (a cache, a default answer) is *degraded*: it is recorded with the outcome
    ``degraded`` where it would be ``kept`` (counted apart, in ``requests_degraded``), and
    so is every request above it that a degraded answer kept. A default answer is a promise
    of an agent that answers at once and never fails.
    """
    refs = _refs((primary, *alternatives))
    return Condition("fallback", 1, refs)


def k_of(k: int, *items: PromiseRef | Condition) -> Condition:
    """Condition kept when at least ``k`` items are kept; a request waits for the ``k`` fastest."""
    refs = _refs(items)
    return Condition("k", k, refs)


@dataclass(frozen=True)
class Promise:
    """A promise from ``promiser`` to ``promisee``.

    Parameters
    ----------
    name : str
        Unique among the model's promises.
    promiser, promisee : str
        Agent names.
    body : Availability or Latency
        What is promised.
    conditions : Condition or None
        "b if c": promises made to the promiser that this one depends on.
    accepted : bool
        Whether the promisee accepted the offer (made the matching use
        promise). ``False`` makes it an imposition.
    about : str or None
        Whose behaviour the body describes; ``None`` means the promiser's
        own. Anything else is refused at validation: an agent can only
        promise its own behaviour.
    late : {"wait", "fail"}
        How the promiser uses an answer to one of its calls that comes after
        that call's deadline. ``"wait"`` (the default, what a service without
        a timeout does): it waits for the answer and goes on with it, so a
        slow provider makes its callers slow (lateness is judged against each
        promise's own deadline: the late call is recorded late, the caller's
        request only if its own response is). ``"fail"``: a late answer fails
        the condition when it comes, as a broken promise.
    timeout : float or None
        How long the promiser waits for each of its calls, from sending it to
        the answer coming back: an answer that has not come by then fails the
        call at that instant (the caller goes on without it; the provider
        still does the work it took, and its own request is recorded as it
        ends). ``None`` (the default): it waits as long as it takes. Part of
        the promiser's promise: how it uses the promises it depends on.
    retries : int
        How many more times the promiser sends a call that failed (an error,
        a refusal, a rejection, a partition, a late answer it fails on, a
        timeout): each attempt is a real request to the provider, drawn from
        its own streams, and the call fails only when the last one does.
    backoff : Backoff or None
        How long it waits before each retry (``None``: not at all).
    retry_on : tuple of str or None
        Which failed attempts it retries, among :data:`RETRY_ON` (``None``:
        every failure).
    budget : RetryBudget or None
        A cap on the share of its calls to each provider that are retries.
    breaker : Breaker or None
        A circuit breaker on each provider it calls.
    """

    name: str
    promiser: str
    promisee: str
    body: Body
    conditions: Condition | None = None
    accepted: bool = True
    about: str | None = None
    late: str = "wait"
    timeout: float | None = None
    retries: int = 0
    backoff: Backoff | None = None
    retry_on: tuple[str, ...] | None = None
    budget: RetryBudget | None = None
    breaker: Breaker | None = None
