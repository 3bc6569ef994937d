"""What happens to a model from outside: workloads and injected faults."""

from __future__ import annotations

from dataclasses import dataclass

from ..dists import Distribution, Exponential

__all__ = ["Outage", "Degrade", "Partition", "Workload", "Observer", "ScaleTo", "StartUp", "Autoscaler"]


@dataclass(frozen=True)
class Outage:
    """A scheduled outage: ``target`` is down on ``[at, at + duration)``.

    The outage overlays the agent's own failure process: the agent is up
    only when neither holds it down, and its failure clock keeps running
    during the outage (a power cut does not reset wear). Requests inside the
    agent when the outage starts are lost, unless ``drain`` is true: then the
    agent only stops taking new requests, and those inside it finish (a
    planned removal, as a scale-down does).
    """

    target: str
    at: float
    duration: float
    drain: bool = False


@dataclass(frozen=True)
class Degrade:
    """A change of ``target``'s behaviour on ``[at, at + duration)``: a brownout, a slow patch.

    While it lasts, the agent stays up but serves worse: service times are
    multiplied by ``slower`` (3.0: three times as slow, load or no load) and
    answers are errors with probability ``errors`` (an error source of its
    own, independent of the agent's: with the agent's probability ``p``, an
    answer is an error with probability ``1 - (1 - p)(1 - errors)``).
    Overlapping degradations of one agent compose the same way (factors
    multiply). With ``duration=None`` the change is permanent: an
    undocumented change of a third party, from ``at`` on.

    Like the agent's own error probability, a degradation applies to the
    requests that join the agent's queue while it lasts (a request's service
    time and whether its answer is an error are fixed then).
    """

    target: str
    at: float
    duration: float | None = None
    slower: float = 1.0
    errors: float = 0.0


@dataclass(frozen=True)
class Partition:
    """A network partition: calls between the agents of ``a`` and those of ``b`` fail on
    ``[at, at + duration)``.

    ``a`` and ``b`` are agent names (one name, or a tuple of names). A call
    crosses the cut when its caller (the promise's promisee) is on one side
    and its provider (the promiser) on the other; it fails where it would
    have reached the provider (recorded there as ``partitioned``, and the
    caller's condition fails when the refusal comes back), in both
    directions, unless ``both_ways=False``: then only calls from ``a`` to
    ``b`` fail. The agents stay up: their promises' state is unchanged.
    """

    a: str | tuple[str, ...]
    b: str | tuple[str, ...]
    at: float
    duration: float
    both_ways: bool = True

    @property
    def sides(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Both sides as tuples of names."""
        side = lambda x: (x,) if isinstance(x, str) else tuple(x)  # noqa: E731
        return side(self.a), side(self.b)

    def cuts(self, caller: str, provider: str) -> bool:
        """Whether a call from ``caller`` to ``provider`` crosses the partition (while it lasts)."""
        a, b = self.sides
        return (caller in a and provider in b) or (self.both_ways and caller in b and provider in a)


@dataclass(frozen=True)
class Workload:
    """Arrivals of requests to a latency promise.

    Give ``rate`` (requests per time unit) for Poisson arrivals, or
    ``interarrival`` (a distribution of the gaps between arrivals, for
    example :class:`~promisesim.dists.Deterministic` for a periodic job),
    not both. Requests arrive from ``start`` (the first one gap after it)
    until ``end`` (none at or after it; ``None``: until the horizon), so a
    second workload with a window makes a load spike.
    """

    promise: str
    rate: float | None = None
    name: str | None = None
    interarrival: Distribution | None = None
    start: float = 0.0
    end: float | None = None

    @property
    def gaps(self) -> Distribution:
        """The distribution of the gaps between arrivals."""
        if self.interarrival is not None:
            return self.interarrival
        assert self.rate is not None
        return Exponential(mean=1.0 / self.rate)

    @property
    def label(self) -> str:
        """The workload's name (the promise's name unless given)."""
        return self.name if self.name is not None else self.promise


@dataclass(frozen=True)
class Observer:
    """An assessor that checks one promise now and then, apart from the truth.

    Checks come one ``interval`` draw after another from time 0; with
    ``interval=None`` the observer checks at the promiser's maintenance runs
    (a configuration agent assessing what it maintains). Each check is
    recorded CFEngine style: *kept* (standing now and since the last check),
    *repaired* (standing now, but broken at some time since the last check)
    or *not kept* (broken now). A break is detected at the first check at or
    after it starts.

    With ``probe=True`` it is a synthetic check instead: each check sends a
    request to the (latency) promise and is *kept* iff that request is kept,
    so it sees what a state check cannot (error answers, slowness, a
    partition); it cannot see a break that healed between checks (no
    *repaired*). Probes are real requests: they load the agents, count in the
    promise's request metrics, and are recorded in ``Result.requests`` as the
    workload named after the observer, whose gaps are draws of ``interval``
    (its ``("arrival", name)`` stream). A break of the promise's state is
    detected by the first probe in it that is not kept.
    """

    name: str
    promise: str
    interval: Distribution | None = None
    probe: bool = False

    def workload(self) -> Workload:
        """The requests a probing observer sends (see ``probe``)."""
        assert self.probe and self.interval is not None
        return Workload(self.promise, interarrival=self.interval, name=self.name)


@dataclass(frozen=True)
class ScaleTo:
    """Change the size of a super-agent (made of ``size`` copies of a template) ``at`` a time.

    Growing adds members that serve only once their start-up is over (see
    the super-agent's ``startup``, ``warm_startup`` and ``reuse``): until then
    they are down. Shrinking removes the highest-numbered members: they take
    no new requests at once, and drain (finish the requests they hold).
    """

    target: str
    size: int
    at: float


@dataclass(frozen=True)
class StartUp:
    """A member's start-up after it is added (made by scaling; not written by users).

    It is down on ``[at, at + d)``: ``d`` is a draw of ``warm`` with probability
    ``reuse`` (a reused, warm container) and of ``cold`` otherwise. ``index``
    counts the member's start-ups and keys its draws.
    """

    target: str
    at: float
    cold: Distribution
    warm: Distribution
    reuse: float
    index: int = 0


@dataclass(frozen=True)
class Autoscaler:
    """Resize a super-agent (made of copies of a template, ``rule="any"``) on observed load.

    Every ``interval`` it observes the utilisation ``U`` of the members over
    the last interval (busy server-time over ``size * servers * interval``,
    ``size`` being the members it has asked for) and wants
    ``ceil(size * U / utilisation)`` members, clamped to ``[min_size,
    max_size]``. When that differs from ``size`` and the last resize was at
    least ``cooldown`` ago, it resizes ``delay`` later: new members start up
    (cold or warm, as the super-agent says), removed ones drain.
    """

    target: str
    utilisation: float = 0.7
    interval: float = 60.0
    delay: float = 0.0
    min_size: int = 1
    max_size: int = 10
    cooldown: float = 0.0
