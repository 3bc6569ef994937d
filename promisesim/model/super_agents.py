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
  the first one in member order, so a fail-over rather than a load balancer);
* ``rule="all"``: every member is needed (and called);
* ``rule="k"``: a quorum: every member is called and the ``k`` fastest kept
  answers are needed.

Members are given by name (agents or other super-agents: super-agents nest)
or as ``size`` copies of a :class:`AgentTemplate`, named ``<name>.0``,
``<name>.1``, ... So the expanded model is an ordinary one, and every engine
runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dists import Deterministic, Distribution
from ..errors import ScenarioError
from .agents import Agent, Failures

__all__ = ["AgentTemplate", "SuperAgent"]

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

    def agent(self, name: str) -> Agent:
        return Agent(name, failures=self.failures, service_time=self.service_time,
                     servers=self.servers, limit=self.limit, slowdown=self.slowdown)


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
    hop : float
        Internal message latency (time units). A request to a member and its answer take
        one hop each; the front sends its messages one after another, so with ``"all"`` or
        ``"k"`` member ``j`` (from 0) gets its request ``j + 1`` hops after the front did:
        the internal cost grows with the size, as fan-out does. ``"any"`` sends one message.
    startup : float
        Start-up time of a member added by a :class:`~promisesim.model.injections.ScaleTo`
        (a cold start, time units): it serves only once this is over.
    """

    name: str
    members: tuple[str, ...] = ()
    size: int | None = None
    member: AgentTemplate | None = None
    rule: str = "any"
    k: int | None = None
    failures: Failures | None = None
    service_time: Distribution = field(default=Deterministic(0.0))
    hop: float = 0.0
    startup: float = 0.0

    def member_names(self, size: int | None = None) -> tuple[str, ...]:
        """The members' names, generated ones included (``size`` of them if given)."""
        if self.size is not None:
            return tuple(f"{self.name}.{i}" for i in range(size if size is not None else self.size))
        return tuple(self.members)


def expand(agents: list[Agent], super_agents: list[SuperAgent], promises: list, outages: list,
           scalings: list | None = None) -> tuple[list[Agent], list, list, dict[str, str]]:
    """Replace super-agents by their fronts, members and interior promises.

    Returns ``(agents, promises, outages, interior)`` of an ordinary model, ``interior``
    mapping each interior promise to its super-agent. Raises
    :class:`~promisesim.errors.ScenarioError` naming the super-agent at fault.
    """
    from .injections import Outage
    from .promises import Condition, Promise, all_of, any_of, k_of

    scalings = list(scalings or [])
    if not super_agents:
        if scalings:
            raise ScenarioError(f"scale_to: target {scalings[0].target!r} is not a super-agent of "
                                "the model", element=("scale_to", str(scalings[0].target)))
        return agents, promises, outages, {}
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
            if isinstance(s.size, bool) or not isinstance(s.size, int) or s.size < 1:
                raise err(f"size={s.size!r} must be a whole number of at least 1")
            if not isinstance(s.member, AgentTemplate):
                raise err("a size needs a member template (AgentTemplate)")
        n = len(s.member_names())
        sizes = [x.size for x in scalings if x.target == s.name and isinstance(x.size, int)]
        if s.size is not None and sizes:
            n = max([n] + sizes)              # a quorum may wait for members a scale-up adds
        if s.rule not in ("any", "all", "k"):
            raise err(f"rule={s.rule!r} must be 'any', 'all' or 'k'")
        if s.rule == "k":
            if isinstance(s.k, bool) or not isinstance(s.k, int) or not 1 <= s.k <= n:
                raise err(f"k={s.k!r} must be a whole number from 1 to its {n} members")
        elif s.k is not None:
            raise err(f"k is only for rule='k', not rule={s.rule!r}")
        for what in ("hop", "startup"):
            value = getattr(s, what)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value < float("inf"):
                raise err(f"{what}={value!r} must be a non-negative, finite time")
        groups[s.name] = s
    for s in groups.values():
        for m in s.member_names():
            if s.size is None and m not in names and m not in groups:
                raise ScenarioError(f"super-agent {s.name!r}: member {m!r} is not an agent or a "
                                    "super-agent of the model", element=("super-agent", s.name))

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
    # Scaling: the largest size a super-agent ever has gives its members; members not yet
    # added (or still starting up) and members removed are down.
    largest: dict[str, int] = {}
    resting: list = []
    for target in dict.fromkeys(x.target for x in scalings):
        group = groups.get(target)
        events = sorted((x for x in scalings if x.target == target), key=lambda x: x.at)
        if group is None or group.size is None:
            raise ScenarioError(f"scale_to: target {target!r} is not a super-agent made of "
                                "copies of a template (give it size and member)",
                                element=("scale_to", str(target)))
        for x in events:
            if isinstance(x.size, bool) or not isinstance(x.size, int) or x.size < 1:
                raise ScenarioError(f"scale_to {target!r}: size={x.size!r} must be a whole number "
                                    "of at least 1", element=("scale_to", target))
            if isinstance(x.at, bool) or not isinstance(x.at, (int, float)) \
                    or not 0 <= x.at < float("inf"):
                raise ScenarioError(f"scale_to {target!r}: at={x.at!r} must be a non-negative, "
                                    "finite time", element=("scale_to", target))
        largest[target] = max([group.size] + [x.size for x in events])
        size, start = group.size, group.startup
        down_since = {i: 0.0 for i in range(size, largest[target])}   # not there yet
        for x in events:
            for i in range(x.size, size):                 # removed now
                down_since[i] = float(x.at)
            for i in range(size, x.size):                 # added now: serves after start-up
                if i in down_since:
                    serving = float(x.at) + start
                    if serving > down_since[i]:
                        resting.append(Outage(f"{target}.{i}", down_since[i], serving - down_since[i]))
                    del down_since[i]
            size = x.size
        for i, since in down_since.items():
            resting.append(Outage(f"{target}.{i}", since, _FOREVER))
    new_agents = list(agents)
    for s in groups.values():
        new_agents.append(Agent(s.name, failures=s.failures, service_time=s.service_time))
        if s.size is not None:
            assert s.member is not None
            new_agents.extend(s.member.agent(m) for m in s.member_names(largest.get(s.name)))

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
        composed: Condition = (any_of(*names_) if s.rule == "any" else all_of(*names_)
                               if s.rule == "all" else k_of(int(s.k or 0), *names_))
        if s.hop:
            hop = float(s.hop)
            delays = tuple((hop if s.rule == "any" else (j + 1) * hop, hop)
                           for j in range(len(names_)))
            composed = Condition(composed.rule, composed.k, composed.items, delays)
        interior_of.update((q.name, s.name) for q in interior)
        conditions = composed if p.conditions is None else all_of(p.conditions, composed)
        new_promises.append(Promise(p.name, p.promiser, p.promisee, p.body, conditions,
                                    p.accepted, p.about))

    new_outages = []
    for o in outages:
        if o.target in groups:
            new_outages.extend(Outage(a, o.at, o.duration)
                               for a in members_deep(o.target, (), scaled=True))
        else:
            new_outages.append(o)
    return new_agents, new_promises, new_outages + resting, interior_of
