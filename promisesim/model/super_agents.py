"""Super-agents: groups of agents that keep exterior promises together.

A super-agent (a cluster, a team, a cloud region) is written down once and
expanded when the model is validated: it becomes a *front* agent, named like
the super-agent, which makes its exterior promises and can fail as a whole
(common-mode failures, and outages of the super-agent take every member
down), plus its members. For every exterior promise ``P`` of the
super-agent, each member ``m`` makes an *interior* promise ``P@m`` of the
same body to the front, and ``P`` is kept only if the composition of the
interior promises holds:

* ``rule="any"``: a request is routed to one member that is up (a choice);
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
from .agents import Agent, Failures

__all__ = ["AgentTemplate", "SuperAgent"]


@dataclass(frozen=True)
class AgentTemplate:
    """What every generated member of a super-agent is like (see :class:`~promisesim.Agent`)."""

    failures: Failures | None = None
    service_time: Distribution = Deterministic(0.0)
    servers: int = 1

    def agent(self, name: str) -> Agent:
        return Agent(name, failures=self.failures, service_time=self.service_time,
                     servers=self.servers)


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

    def member_names(self) -> tuple[str, ...]:
        """The members' names, generated ones included."""
        if self.size is not None:
            return tuple(f"{self.name}.{i}" for i in range(self.size))
        return tuple(self.members)


def expand(agents: list[Agent], super_agents: list[SuperAgent], promises: list, outages: list
           ) -> tuple[list[Agent], list, list, dict[str, str]]:
    """Replace super-agents by their fronts, members and interior promises.

    Returns ``(agents, promises, outages, interior)`` of an ordinary model, ``interior``
    mapping each interior promise to its super-agent. Raises
    :class:`~promisesim.errors.ScenarioError` naming the super-agent at fault.
    """
    from ..errors import ScenarioError
    from .injections import Outage
    from .promises import Condition, Promise, all_of, any_of, k_of

    if not super_agents:
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
        if s.rule not in ("any", "all", "k"):
            raise err(f"rule={s.rule!r} must be 'any', 'all' or 'k'")
        if s.rule == "k":
            if isinstance(s.k, bool) or not isinstance(s.k, int) or not 1 <= s.k <= n:
                raise err(f"k={s.k!r} must be a whole number from 1 to its {n} members")
        elif s.k is not None:
            raise err(f"k is only for rule='k', not rule={s.rule!r}")
        if isinstance(s.hop, bool) or not isinstance(s.hop, (int, float)) \
                or not 0 <= s.hop < float("inf"):
            raise err(f"hop={s.hop!r} must be a non-negative, finite time")
        groups[s.name] = s
    for s in groups.values():
        for m in s.member_names():
            if s.size is None and m not in names and m not in groups:
                raise ScenarioError(f"super-agent {s.name!r}: member {m!r} is not an agent or a "
                                    "super-agent of the model", element=("super-agent", s.name))

    def members_deep(name: str, seen: tuple[str, ...]) -> list[str]:
        """Every agent a super-agent holds down when it is down: its front and members."""
        if name in seen:
            raise ScenarioError("super-agents contain each other: "
                                + " -> ".join(repr(x) for x in seen + (name,)),
                                element=("super-agent", name))
        if name not in groups:
            return [name]
        out = [name]
        for m in groups[name].member_names():
            out.extend(members_deep(m, seen + (name,)))
        return out

    for name in groups:
        members_deep(name, ())
    new_agents = list(agents)
    for s in groups.values():
        new_agents.append(Agent(s.name, failures=s.failures, service_time=s.service_time))
        if s.size is not None:
            assert s.member is not None
            new_agents.extend(s.member.agent(m) for m in s.member_names())

    new_promises: list = []
    pending = list(promises)
    while pending:
        p = pending.pop(0)
        s = groups.get(p.promiser)
        if s is None:
            new_promises.append(p)
            continue
        interior = [Promise(f"{p.name}@{m}", m, s.name, p.body) for m in s.member_names()]
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
            new_outages.extend(Outage(a, o.at, o.duration) for a in members_deep(o.target, ()))
        else:
            new_outages.append(o)
    return new_agents, new_promises, new_outages, interior_of
