"""Super-agents: groups of agents that keep exterior promises together.

A super-agent (a cluster, a team, a cloud region) is written down once and
expanded when the model is validated: it becomes a *front* agent, named like
the super-agent, which makes its exterior promises and can fail as a whole
(common-mode failures, and outages of the super-agent take every member
down), plus its members. For every exterior promise ``P`` of the
super-agent, each member ``m`` makes an *interior* promise ``P@m`` of the
same body to the front, and ``P`` is kept only if the composition of the
interior promises holds:

* ``rule="any"``: a request is routed to one member that is up (a choice:
  with ``balance="first"`` the first one in member order, a fail-over; with
  ``balance="random"`` one of them at random, a load balancer);
* ``rule="all"``: every member is needed (and called);
* ``rule="k"``: a quorum: every member is called and the ``k`` fastest kept
  answers are needed;
* ``rule="all_to_all"``: every member is needed, and before answering each
  member exchanges a message with every other one (a consensus round):
  ``n + 1`` internal messages per member and request instead of 2.

Members are given by name (agents or other super-agents: super-agents nest)
or as ``size`` copies of a :class:`AgentTemplate`, named ``<name>.0``,
``<name>.1``, ... So the expanded model is an ordinary one, and every engine
runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ..dists import Deterministic, Distribution, as_time
from ..errors import ScenarioError, _real, did_you_mean
from .agents import MAX_MEMBERS, Agent, Bursts, Failures

__all__ = ["AgentTemplate", "SuperAgent", "Expanded", "ScaledGroup"]

#: Duration of "down until the end of any horizon" (a member removed for good).
_FOREVER = 1e300


@dataclass(frozen=True)
class AgentTemplate:
    """What every generated member of a super-agent is like (see :class:`~promisesim.Agent`)."""

    failures: Failures | None = None
    service_time: Distribution = Deterministic(0.0)
    servers: int = 1
    limit: int | None = None
    slowdown: float = 0.0
    errors: float | Bursts = 0.0
    order: str = "after"

    def __post_init__(self) -> None:   # a plain number is a deterministic time
        object.__setattr__(self, "service_time", as_time(self.service_time))

    def agent(self, name: str) -> Agent:
        return Agent(name, failures=self.failures, service_time=self.service_time,
                     servers=self.servers, limit=self.limit, slowdown=self.slowdown,
                     errors=self.errors, order=self.order)


@dataclass(frozen=True)
class SuperAgent:
    """A group of agents keeping exterior promises by a composition of interior ones.

    Parameters
    ----------
    name : str
        Unique among agents and super-agents; promises name it like an agent.
    members : tuple of str
        Names of member agents or super-agents (or give ``size`` and ``member``).
    size : int, optional
        Number of members generated from ``member``.
    member : AgentTemplate, optional
        The generated members' behaviour.
    rule : {"any", "all", "k"}
        How interior promises compose into each exterior one.
    k : int, optional
        Members needed with ``rule="k"`` (a quorum).
    failures : Failures, optional
        Common-mode failures: while the super-agent is down, so is every exterior promise.
    service_time : Distribution
        Time the front needs to route and answer a request (default zero).
    hop : float or Distribution
        Internal message latency (time units; a distribution draws each message's). A request to a member and its answer take
        one hop each; the front sends its messages one after another, so with ``"all"`` or
        ``"k"`` member ``j`` (from 0) gets its request ``j + 1`` hops after the front did:
        the internal cost grows with the size, as fan-out does. ``"any"`` sends one message.
        ``"all_to_all"`` adds an exchange round: each member sends ``n - 1`` messages one
        after another before answering, so a request costs ``n - 1`` more hops.
    startup : float or Distribution
        Start-up time of a member added by scaling (a cold start, time units): it serves
        only once this is over.
    warm_startup : float or Distribution
        Start-up time when the new member reuses a warm container.
    reuse : float
        Probability that a new member reuses a warm container: which start-up a member
        gets is drawn, so scaling is not deterministic.
    balance : {"first", "random"}
        With ``rule="any"``: route to the first member that is up (fail-over) or to one of
        them at random (load balancing).
    limit : int, optional
        A concurrency cap on the super-agent as a whole (a function's reserved
        concurrency): a request that finds ``limit`` requests inside it (routed to a
        member and not yet answered) is rejected at the front. ``None``: no cap; each
        member's own ``limit`` applies either way.
    """

    name: str
    members: tuple[str, ...] = ()
    size: int | None = None
    member: AgentTemplate | None = None
    rule: str = "any"
    k: int | None = None
    failures: Failures | None = None
    service_time: Distribution = field(default=Deterministic(0.0))
    hop: float | Distribution = 0.0
    startup: float | Distribution = 0.0
    warm_startup: float | Distribution = 0.0
    reuse: float = 0.0
    balance: str = "first"
    limit: int | None = None

    def member_names(self, size: int | None = None) -> tuple[str, ...]:
        """The members' names, generated ones included (``size`` of them if given)."""
        if self.size is not None:
            return tuple(f"{self.name}.{i}" for i in range(size if size is not None else self.size))
        return tuple(self.members)


@dataclass(frozen=True)
class ScaledGroup:
    """A super-agent resized at run time by an :class:`~promisesim.model.injections.Autoscaler`:
    ``members`` are all it may ever have (``max_size``); the first ``size`` serve at first."""

    policy: object                     # the Autoscaler
    members: tuple[str, ...]
    size: int
    cold: Distribution
    warm: Distribution
    reuse: float


@dataclass
class Expanded:
    """An ordinary model made from one with super-agents (see :func:`expand`)."""

    agents: list
    promises: list
    outages: list                      # Outage and StartUp entries
    interior: dict[str, str]           # interior promise -> super-agent
    messages_per_call: dict[str, int] = field(default_factory=dict)   # super-agent -> messages
    scaled: list = field(default_factory=list)                        # ScaledGroup entries


def _duration(value: float | Distribution) -> Distribution:
    return value if isinstance(value, Distribution) else Deterministic(float(value))


def expand(agents: list[Agent], super_agents: list[SuperAgent], promises: list, outages: list,
           scalings: list | None = None, autoscalers: list | None = None) -> Expanded:
    """Replace super-agents by their fronts, members and interior promises.

    Returns an :class:`Expanded` ordinary model. Raises
    :class:`~promisesim.errors.ScenarioError` naming the super-agent at fault.
    """
    from .injections import Autoscaler, Outage, StartUp
    from .promises import Condition, Promise, all_of, any_of, k_of

    scalings = list(scalings or [])
    autoscalers = list(autoscalers or [])
    if not super_agents:
        for x, kind in [(x, "scale_to") for x in scalings] + [(x, "autoscaler") for x in autoscalers]:
            raise ScenarioError(f"{kind}: target {x.target!r} is not a super-agent of the model",
                                element=(kind, str(x.target)))
        return Expanded(agents, promises, outages, {})
    interior_of: dict[str, str] = {}
    names = {a.name for a in agents}
    groups: dict[str, SuperAgent] = {}
    for s in super_agents:
        where = f"super-agent {s.name!r}"

        def err(msg: str) -> ScenarioError:
            return ScenarioError(f"{where}: {msg}", element=("super-agent", s.name))

        if not isinstance(s.name, str) or not s.name.strip():
            raise ScenarioError(f"super-agent name {s.name!r} must be a non-empty string")
        if s.name in names or s.name in groups:
            raise err("its name is already used by an agent or a super-agent")
        if (s.size is None) == (not s.members):
            raise err("give either members or size (with a member template), not "
                      + ("both" if s.size is not None else "neither"))
        if s.size is not None:
            if isinstance(s.size, bool) or not isinstance(s.size, int) \
                    or not 1 <= s.size <= MAX_MEMBERS:
                raise err(f"size={s.size!r} must be a whole number from 1 to {MAX_MEMBERS:,}"
                          + (" (a function that scales from zero is an agent with keep_alive: "
                             "its servers are instances started on demand)"
                             if s.size == 0 else ""))
            if not isinstance(s.member, AgentTemplate):
                raise err("a size needs a member template (AgentTemplate)")
        n = len(s.member_names())
        sizes = [x.size for x in scalings if x.target == s.name and isinstance(x.size, int)]
        if s.size is not None and sizes:
            n = max([n] + sizes)              # a quorum may wait for members a scale-up adds
        if s.rule not in ("any", "all", "k", "all_to_all"):
            raise err(f"rule={s.rule!r} must be 'any', 'all', 'k' or 'all_to_all'")
        if s.rule == "k":
            if isinstance(s.k, bool) or not isinstance(s.k, int) or not 1 <= s.k <= n:
                raise err(f"k={s.k!r} must be a whole number from 1 to its {n} members")
        elif s.k is not None:
            raise err(f"k is only for rule='k', not rule={s.rule!r}")
        if s.balance not in ("first", "random"):
            raise err(f"balance={s.balance!r} must be 'first' or 'random'")
        if s.balance != "first" and s.rule != "any":
            raise err(f"balance is for rule='any', not rule={s.rule!r}")
        for what in ("hop", "startup", "warm_startup"):
            value = getattr(s, what)
            if isinstance(value, Distribution):
                continue
            if not _real(value) \
                    or not 0 <= value < float("inf"):
                raise err(f"{what}={value!r} must be a non-negative, finite time or a distribution")
        if not _real(s.reuse) \
                or not 0 <= s.reuse <= 1:
            raise err(f"reuse={s.reuse!r} must be a probability in [0, 1]")
        groups[s.name] = s
    for s in groups.values():
        for m in s.member_names():
            if s.size is None and m not in names and m not in groups:
                raise ScenarioError(f"super-agent {s.name!r}: member {m!r} is not an agent or a "
                                    f"super-agent of the model{did_you_mean(m, [*names, *groups])}",
                                    element=("super-agent", s.name))

    def members_deep(name: str, seen: tuple[str, ...], scaled: bool = False) -> list[str]:
        """Every agent a super-agent holds down when it is down: its front and members."""
        if name in seen:
            raise ScenarioError("super-agents contain each other: "
                                + " -> ".join(repr(x) for x in seen + (name,)),
                                element=("super-agent", name))
        if name not in groups:
            return [name]
        out = [name]
        for m in groups[name].member_names(largest.get(name) if scaled else None):
            out.extend(members_deep(m, seen + (name,), scaled))
        return out

    for name in groups:
        members_deep(name, ())

    def scalable(target: str, kind: str) -> SuperAgent:
        group = groups.get(target)
        if group is None or group.size is None:
            raise ScenarioError(f"{kind}: target {target!r} is not a super-agent made of "
                                "copies of a template (give it size and member)",
                                element=(kind, str(target)))
        return group

    # Scaling: the largest size a super-agent ever has gives its members; members not yet
    # added and members removed are down (removed ones drain); added ones start up.
    largest: dict[str, int] = {}
    resting: list = []
    scaled: list[ScaledGroup] = []
    for a in autoscalers:
        if not isinstance(a, Autoscaler):
            raise ScenarioError(f"expected an Autoscaler, got {a!r}")
        group = scalable(a.target, "autoscaler")
        where = f"autoscaler of {a.target!r}"

        def bad(msg: str) -> ScenarioError:
            return ScenarioError(f"{where}: {msg}", element=("autoscaler", a.target))

        if group.rule != "any":
            raise bad(f"it spreads load over members, so the super-agent needs rule='any', "
                      f"not {group.rule!r}")
        if any(x.target == a.target for x in scalings) or \
                sum(b.target == a.target for b in autoscalers) > 1:
            raise bad("a super-agent has one autoscaler and no scale_to events besides")
        limits = {"utilisation": (0.0, 1.0, False), "interval": (0.0, math.inf, False),
                  "delay": (0.0, math.inf, True), "cooldown": (0.0, math.inf, True)}
        for what, (low, high, zero_ok) in limits.items():
            v = getattr(a, what)
            if not _real(v) or not math.isfinite(v) \
                    or v < low or (v == low and not zero_ok) or v > high:
                span = "in (0, 1]" if what == "utilisation" else (
                    "non-negative" if zero_ok else "positive") + " and finite"
                raise bad(f"{what}={v!r} must be {span}")
        for what in ("min_size", "max_size"):
            v = getattr(a, what)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_MEMBERS:
                raise bad(f"{what}={v!r} must be a whole number from 1 to {MAX_MEMBERS:,}")
        if not a.min_size <= group.size <= a.max_size:
            raise bad(f"min_size={a.min_size}, size={group.size} and max_size={a.max_size} must "
                      "be in order")
        largest[a.target] = a.max_size
        scaled.append(ScaledGroup(a, group.member_names(a.max_size), group.size,
                                  _duration(group.startup), _duration(group.warm_startup),
                                  float(group.reuse)))
    for target in dict.fromkeys(x.target for x in scalings):
        group = scalable(target, "scale_to")
        events = [x for x in scalings if x.target == target]
        for x in events:
            if isinstance(x.size, bool) or not isinstance(x.size, int) \
                    or not 1 <= x.size <= MAX_MEMBERS:
                raise ScenarioError(f"scale_to {target!r}: size={x.size!r} must be a whole number "
                                    f"from 1 to {MAX_MEMBERS:,}", element=("scale_to", target))
            if not _real(x.at) \
                    or not 0 <= x.at < float("inf"):
                raise ScenarioError(f"scale_to {target!r}: at={x.at!r} must be a non-negative, "
                                    "finite time", element=("scale_to", target))
        events.sort(key=lambda x: x.at)   # once every time is a number
        largest[target] = max([group.size] + [x.size for x in events])
        size = group.size
        cold, warm = _duration(group.startup), _duration(group.warm_startup)
        fixed = not cold.is_random and (group.reuse == 0 or (not warm.is_random and warm == cold))
        starts: dict[int, int] = {}
        # member -> (down since, draining)
        down_since = {i: (0.0, False) for i in range(size, largest[target])}   # not there yet
        for x in events:
            for i in range(x.size, size):                 # removed now: drains
                down_since[i] = (float(x.at), True)
            for i in range(size, x.size):                 # added now: serves after start-up
                if i in down_since:
                    since, drain = down_since.pop(i)
                    member = f"{target}.{i}"
                    if x.at > since:
                        resting.append(Outage(member, since, float(x.at) - since, drain))
                    if fixed:
                        if cold.mean > 0:
                            resting.append(Outage(member, float(x.at), cold.mean))
                    else:
                        resting.append(StartUp(member, float(x.at), cold, warm, float(group.reuse),
                                               starts.get(i, 0)))
                        starts[i] = starts.get(i, 0) + 1
            size = x.size
        for i, (since, drain) in down_since.items():
            resting.append(Outage(f"{target}.{i}", since, _FOREVER, drain))
    new_agents = list(agents)
    for s in groups.values():
        new_agents.append(Agent(s.name, failures=s.failures, service_time=s.service_time,
                                limit=s.limit))
        if s.size is not None:
            assert s.member is not None
            new_agents.extend(s.member.agent(m) for m in s.member_names(largest.get(s.name)))

    messages: dict[str, int] = {}
    new_promises: list = []
    pending = list(promises)
    while pending:
        p = pending.pop(0)
        s = groups.get(p.promiser)
        if s is None:
            new_promises.append(p)
            continue
        interior = [Promise(f"{p.name}@{m}", m, s.name, p.body)
                    for m in s.member_names(largest.get(s.name))]
        pending.extend(interior)      # a member that is a super-agent expands in turn
        names_ = [q.name for q in interior]
        n = len(names_)
        composed: Condition = (any_of(*names_, choose=s.balance) if s.rule == "any"
                               else k_of(int(s.k or 0), *names_) if s.rule == "k"
                               else all_of(*names_))
        # a request to a member and its answer, plus the exchange round of all-to-all
        messages[s.name] = n + 1 if s.rule == "all_to_all" else 2
        if isinstance(s.hop, Distribution):
            # each message takes a draw of the hop; the front's sends one after another and
            # the exchange round cost the hop's mean each
            mean = s.hop.mean
            exchange = (n - 1) * mean if s.rule == "all_to_all" else 0.0
            delays = tuple((0.0 if s.rule == "any" else j * mean + exchange, 0.0)
                           for j in range(n))
            composed = Condition(composed.rule, composed.k, composed.items, delays,
                                 composed.choose, hop=s.hop)
        elif s.hop:
            hop = float(s.hop)
            exchange = (n - 1) * hop if s.rule == "all_to_all" else 0.0
            delays = tuple((hop if s.rule == "any" else (j + 1) * hop + exchange, hop)
                           for j in range(n))
            composed = Condition(composed.rule, composed.k, composed.items, delays,
                                 composed.choose)
        interior_of.update((q.name, s.name) for q in interior)
        conditions = composed if p.conditions is None else all_of(p.conditions, composed)
        new_promises.append(replace(p, conditions=conditions))

    new_outages = []
    for o in outages:
        if o.target in groups:
            new_outages.extend(Outage(a, o.at, o.duration, o.drain)
                               for a in members_deep(o.target, (), scaled=True))
        else:
            new_outages.append(o)
    return Expanded(new_agents, new_promises, new_outages + resting, interior_of, messages, scaled)
