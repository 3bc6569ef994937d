"""Agents: the only things that act."""

from __future__ import annotations

from dataclasses import dataclass

from ..dists import Deterministic, Distribution, as_time

__all__ = ["Agent", "Bursts", "Failures", "Maintenance", "PLACEMENTS"]

#: How an agent with ``keep_alive`` picks an idle running instance (see :class:`Agent`).
PLACEMENTS = ("recent", "first", "spread")


#: The most servers an agent may have (its queue's state is kept per server).
MAX_SERVERS = 100_000
#: The most members a super-agent may have, at any time (each member is an agent).
MAX_MEMBERS = 10_000


@dataclass(frozen=True)
class Maintenance:
    """Convergent maintenance, as a configuration agent (CFEngine) runs it.

    Maintenance runs come one ``interval`` draw after another from time 0
    (the first run one draw after 0). A run that finds the agent failed
    repairs it with probability ``success``; a failed agent is repaired by
    nothing else. With exponential drift at rate ``lambda``, fixed interval
    ``T`` and ``d = 1 - exp(-lambda T)``, the agent is still broken after a
    run with probability ``d(1-s) / (d(1-s) + s)``.
    """

    interval: Distribution | float
    success: float = 1.0

    def __post_init__(self) -> None:   # a plain number is a deterministic time
        object.__setattr__(self, "interval", as_time(self.interval))


@dataclass(frozen=True)
class Failures:
    """Random failures of an agent.

    The agent starts up; its ``k``-th up period lasts draw ``k`` of
    ``time_to_failure``. Then either the repair lasts draw ``k`` of
    ``time_to_repair`` (an alternating renewal process, availability
    ``MTTF / (MTTF + MTTR)``), or, with ``maintenance`` instead, the agent
    stays failed until a maintenance run repairs it (all times in the model's
    time unit). Give exactly one of ``time_to_repair`` and ``maintenance``.
    """

    time_to_failure: Distribution | float
    time_to_repair: Distribution | float | None = None
    maintenance: Maintenance | None = None

    def __post_init__(self) -> None:   # a plain number is a deterministic time
        object.__setattr__(self, "time_to_failure", as_time(self.time_to_failure))
        object.__setattr__(self, "time_to_repair", as_time(self.time_to_repair))


@dataclass(frozen=True)
class Bursts:
    """Error bursts: an agent's answers fail more often while a burst lasts.

    A two-state (good/bad) Markov process, independent of everything else:
    bursts begin at ``rate`` per time unit while none is on (good periods are
    exponential with mean ``1 / rate``) and last an exponential time of mean
    ``mean_duration``. During a burst an answer is an error with probability
    ``errors``; between bursts with probability ``baseline``. The share of
    time in bursts is ``rate * mean_duration / (1 + rate * mean_duration)``.

    Good period ``k`` is draw ``k`` of ``("burst_gap", agent)``, burst ``k``
    draw ``k`` of ``("burst", agent)``; the agent starts between bursts.
    """

    rate: float
    mean_duration: float
    errors: float
    baseline: float = 0.0

    @property
    def bad_share(self) -> float:
        """The long-run share of time in bursts (the bad state's stationary probability)."""
        return self.rate * self.mean_duration / (1.0 + self.rate * self.mean_duration)

    def error_probability(self) -> float:
        """The long-run probability that an answer (at a time independent of the bursts) is
        an error."""
        pi = self.bad_share
        return pi * self.errors + (1.0 - pi) * self.baseline


@dataclass(frozen=True)
class Agent:
    """An autonomous agent: a service, a host, a third party, a consumer.

    Parameters
    ----------
    name : str
        Unique among the model's agents.
    failures : Failures or None
        Random failures; ``None`` means the agent fails only by injected outages.
    service_time : Distribution
        Time one server needs to serve one request (default zero: the agent
        answers as soon as its conditions are met).
    servers : int
        Requests served at once; further requests wait in a FIFO queue.
    limit : int or None
        A hidden capacity limit: a request arriving while the agent already
        holds ``limit`` requests (waiting for their calls, queued or in
        service) is *rejected*. ``None``: no limit.
    slowdown : float
        Load-dependent slowdown: a request's service time is multiplied by
        ``1 + slowdown * n``, where ``n`` is the number of other requests
        queued or in service at the agent when its service starts.
    errors : float or Bursts
        The probability that an answer is an error (default 0): the request
        is served (it takes its service time) but not kept, and a caller's
        call to it fails when the answer comes back. A :class:`Bursts` makes
        the probability change over time. Whether an answer is an error is
        decided when the request joins the agent's queue, by draw ``k`` of
        ``("error", node path)`` against the probability then (see also
        :class:`~promisesim.model.injections.Degrade`).
    order : {"after", "around", "before"}
        Where the agent's own work (its queue and service time) sits relative
        to the calls a request makes to other agents (its promise's
        conditions). ``"after"`` (default): the request makes its calls on
        arrival and joins the queue when they resolve; waiting for answers
        holds no server (a slot under ``limit`` is held throughout).
        ``"around"``: the request joins the queue on arrival, takes a server,
        makes its calls while holding it, then does its own work, so a slow
        provider keeps the agent's servers busy and its callers pile up (a
        thread-per-request service). ``"before"``: the request is served
        first, then makes its calls; the agent answers when they resolve.
        A request whose calls fail leaves without (further) service.
    keep_alive : float or None
        Instances started on demand (a serverless function): each of the
        ``servers`` is an instance that serves one request at a time, and none
        runs at time 0 (scale from zero). A request that takes a server which
        is not running waits ``cold_start`` for it to start, then is served;
        an instance left idle for ``keep_alive`` (time units) is stopped, so
        the next request to take it starts it again. Warm reuse thus follows
        from traffic: with Poisson arrivals at rate ``r`` and short cold
        starts, a request meets a cold start with probability near
        ``exp(-r * keep_alive)``. ``servers`` is the most instances (the
        function's concurrency cap); requests that find them all busy wait in
        FIFO order, or, with ``limit=servers``, are rejected (throttled).
        ``None`` (default): the servers always run.
    cold_start : float or Distribution
        With ``keep_alive``: the time an instance takes to start. Request
        ``k`` at a node that starts one waits draw ``k`` of ``("cold_start",
        node path)``; its service (and, with order ``"around"``, its calls)
        follow.
    placement : {"recent", "first", "spread"}
        With ``keep_alive``: which idle running instance a request takes.
        ``"recent"`` (default): the one freed last, which packs requests onto
        few instances and lets the rest expire; ``"first"``: the lowest
        numbered; ``"spread"``: the one idle longest, which spreads requests
        and keeps more instances warm. A request that finds none idle and
        running starts the lowest-numbered instance that is not running.
    max_wait : float or None
        The longest a request waits in the queue for a server (time units): one that has
        waited that long leaves, *rejected* (a platform's wait limit; taken at that very
        instant, it is served). ``None`` (default): it waits as long as it takes.
    """

    name: str
    failures: Failures | None = None
    service_time: Distribution = Deterministic(0.0)
    servers: int = 1
    limit: int | None = None
    slowdown: float = 0.0
    errors: float | Bursts = 0.0
    order: str = "after"
    keep_alive: float | None = None
    cold_start: Distribution = Deterministic(0.0)
    placement: str = "recent"
    max_wait: float | None = None

    def __post_init__(self) -> None:   # a plain number is a deterministic time
        object.__setattr__(self, "service_time", as_time(self.service_time))
        object.__setattr__(self, "cold_start", as_time(self.cold_start))
