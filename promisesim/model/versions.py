"""Versions (forks): an agent that offers v1, v2, v3 side by side.

An agent forks into versions to keep its old promises while it makes new
ones. A :class:`Versioned` agent is written down once and expanded when the
model is validated, like a super-agent: a *front* agent named like it, which
makes its exterior promises, and one member agent per version, named
``<name>.<version>``, each with its own behaviour (an
:class:`~promisesim.model.super_agents.AgentTemplate`). For every exterior
promise ``P``, each version ``v`` makes an interior promise ``P@<name>.<v>``.

Consumers are *bound* to versions: the ``traffic`` split says which share
of the consumers' requests goes to each version, and a request is routed by
a draw against the split at its arrival, with no fail-over: a request bound
to a version that is gone or broken fails. Consumers may also bind to one
version directly, through its interior promise (or any promise the version
agent makes of its own, such as one only v2 offers).

Events (inject them with :meth:`~promisesim.Model.inject`):

* :class:`Release`: the version serves from ``at`` on (before it, it is down);
* :class:`Migrate`: over ``[at, at + over)``, version ``to``'s share of the traffic
  moves linearly to ``share`` (an absolute share: 0.5 means half of all requests),
  the other versions keeping their proportions among themselves (``over=0``: at once);
* :class:`Canary`: a schedule of migrations, step by step (5% for ten minutes, then
  50%, then all);
* :class:`Retire`: the version takes no requests from ``at`` on (it drains);
  consumers not migrated by then break;
* :class:`UndocumentedChange`: the version changes its behaviour under the same
  name at ``at``: as its consumers see it, it breaks its promise (and loses the
  requests it holds) until they have adapted, ``adapt`` later.

The exterior promise stands while every version that carries traffic stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ..errors import ScenarioError, _real
from .super_agents import AgentTemplate

__all__ = ["Versioned", "Release", "Retire", "Migrate", "Canary", "Rollback", "Rollout",
           "UndocumentedChange"]

_FOREVER = 1e300


@dataclass(frozen=True)
class Versioned:
    """An agent offering several versions side by side; see the module docstring.

    Parameters
    ----------
    name : str
        Unique among agents and super-agents.
    versions : dict of str to AgentTemplate
        Each version's behaviour, in release order.
    traffic : dict of str to float, optional
        The initial split of requests (shares summing to 1). Default: all to the first version.
    """

    name: str
    versions: dict = field(default_factory=dict)
    traffic: dict | None = None

    def member(self, version: str) -> str:
        return f"{self.name}.{version}"


@dataclass(frozen=True)
class Release:
    """Version ``version`` of ``target`` serves from ``at`` on."""

    target: str
    version: str
    at: float


@dataclass(frozen=True)
class Retire:
    """Version ``version`` of ``target`` takes no requests from ``at`` on (it drains)."""

    target: str
    version: str
    at: float


@dataclass(frozen=True)
class Migrate:
    """Bring version ``to``'s share of the traffic to ``share`` (absolute: 0.5 is half of
    all requests), linearly over ``[at, at + over)`` (``over=0``: at once). The other
    versions give up (or take back) traffic in proportion to the shares they had, so
    ``share=0`` rolls ``to`` back to the others."""

    target: str
    to: str
    at: float
    share: float = 1.0
    over: float = 0.0


@dataclass(frozen=True)
class Rollback:
    """The analysis of a :class:`Canary` that rolls it back, as progressive-delivery
    controllers (Argo Rollouts, Flagger) run it.

    Every ``interval`` from the canary's start until its last step is over (a last step
    held for 0 is over as it starts: hold it to analyse the new version at full traffic),
    it judges the requests bound to the new version (to every latency promise the
    versioned agent makes) that came due in the last ``window`` (time units): a request is
    due at its
    arrival plus its deadline, when whether it was kept is known. If at least
    ``min_requests`` came due and more than ``max_broken`` of them were not kept (errors,
    late answers, failures), the rollout is rolled back then: the stable version (the one
    that carried all the traffic when the canary started) takes all of it back, and the
    canary's later steps are cancelled. ``Result.rollbacks`` says when, and how many
    requests the new version broke first.
    """

    max_broken: float
    window: float = 300.0
    interval: float = 60.0
    min_requests: int = 10


@dataclass(frozen=True)
class Canary:
    """A progressive rollout of version ``to`` from ``at`` on (time units): for each
    ``(share, hold)`` of ``steps`` in turn, ``to`` gets ``share`` of all traffic (in [0, 1])
    at once and keeps it for ``hold`` time units (the last step's hold may be 0: it stays). For example
    ``Canary("store", "v2", at=600, steps=[(0.05, 900), (0.5, 900), (1.0, 0)])``.
    Each step is a :class:`Migrate`. With a :class:`Rollback`, an analysis of the new
    version's requests rolls it back when they break too often."""

    target: str
    to: str
    at: float
    steps: tuple = ()
    rollback: Rollback | None = None

    def __post_init__(self) -> None:
        steps = self.steps
        if isinstance(steps, (list, tuple)):
            steps = tuple(tuple(step) if isinstance(step, (list, tuple)) else step
                          for step in steps)
        object.__setattr__(self, "steps", steps)

    def migrations(self) -> list[Migrate]:
        """The steps as migrations (a ScenarioError naming the canary for bad steps)."""
        where = f"canary of {self.target!r}"
        if not isinstance(self.steps, tuple) or not self.steps:
            raise ScenarioError(f"{where}: steps={self.steps!r} must be a list of "
                                "(share, hold) pairs", element=("version", str(self.target)))
        if not _real(self.at) or not 0 <= self.at < math.inf:
            raise ScenarioError(f"{where}: at={self.at!r} must be a non-negative, finite time",
                                element=("version", str(self.target)))
        out, at = [], float(self.at)
        for i, step in enumerate(self.steps):
            if not isinstance(step, tuple) or len(step) != 2 or not all(_real(x) for x in step) \
                    or not 0 <= step[0] <= 1 or not 0 <= step[1] < math.inf:
                raise ScenarioError(f"{where}: step {i} {step!r} must be (share in [0, 1], "
                                    "hold >= 0)", element=("version", str(self.target)))
            if step[1] == 0 and i < len(self.steps) - 1:
                raise ScenarioError(f"{where}: step {i} holds for 0: only the last step may",
                                    element=("version", str(self.target)))
            out.append(Migrate(self.target, self.to, at, float(step[0])))
            at += float(step[1])
        return out


@dataclass(frozen=True)
class Rollout:
    """A canary with a rollback, as the simulation needs it (made from the model; not
    written by users): the requests it judges and when."""

    target: str
    to: str
    #: The version that carried all the traffic when the canary started.
    stable: str
    #: The canary's start, and the end of its last step (analyses run in between).
    at: float
    end: float
    #: The interior promises of ``to`` whose requests are judged.
    watch: tuple[str, ...]
    rollback: Rollback


def _check_rollback(c: Canary, bad) -> Rollback:  # type: ignore[no-untyped-def]
    r = c.rollback
    if not isinstance(r, Rollback):
        raise bad(f"rollback={r!r} must be a Rollback")
    if not _real(r.max_broken) or not 0 <= r.max_broken < 1:
        raise bad(f"rollback max_broken={r.max_broken!r} must be a share in [0, 1)")
    _time(r.window, "rollback window", bad, positive=True)
    _time(r.interval, "rollback interval", bad, positive=True)
    if isinstance(r.min_requests, bool) or not isinstance(r.min_requests, int) \
            or r.min_requests < 1:
        raise bad(f"rollback min_requests={r.min_requests!r} must be a whole number of at "
                  "least 1")
    return r


@dataclass(frozen=True)
class UndocumentedChange:
    """Version ``version`` of ``target`` changes its behaviour at ``at``: its consumers' calls
    to it fail until they adapt, ``adapt`` later."""

    target: str
    version: str
    at: float
    adapt: float


VersionEvent = Release | Retire | Migrate | UndocumentedChange


def _time(value: object, what: str, err, *, positive: bool = False) -> float:  # type: ignore[no-untyped-def]
    if not _real(value) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        raise err(f"{what}={value!r} must be a {'positive' if positive else 'non-negative'}, "
                  "finite time")
    return float(value)


def expand_versions(versioned: list[Versioned], events: list, agents: list, promises: list,
                    outages: list) -> tuple[list, list, list, dict[str, str], list]:
    """Replace versioned agents by their fronts, versions and interior promises.

    Returns ``(agents, promises, outages, interior, rollouts)``, ``interior`` mapping each
    interior promise to its versioned agent, ``rollouts`` the canaries with a rollback
    (:class:`Rollout`). Raises
    :class:`~promisesim.errors.ScenarioError` naming the element at fault.
    """
    from .agents import Agent
    from .injections import Outage
    from .promises import Condition, Promise, all_of, split_shares

    if not versioned:
        for e in events:
            raise ScenarioError(f"{type(e).__name__.lower()}: target {e.target!r} is not a "
                                "versioned agent of the model", element=("version", str(e.target)))
        return agents, promises, outages, {}, []
    names = {a.name for a in agents}
    by_name: dict[str, Versioned] = {}
    for v in versioned:
        def err(msg: str, v: Versioned = v) -> ScenarioError:
            return ScenarioError(f"versioned agent {v.name!r}: {msg}", element=("versioned", v.name))

        if not isinstance(v.name, str) or not v.name.strip():
            raise ScenarioError(f"versioned agent name {v.name!r} must be a non-empty string")
        if v.name in names or v.name in by_name:
            raise err("its name is already used by another agent")
        if not isinstance(v.versions, dict) or not v.versions:
            raise err("give at least one version, as a mapping of names to AgentTemplate")
        for label, template in v.versions.items():
            if not isinstance(label, str) or not label.strip() or "/" in label or "@" in label:
                raise err(f"version name {label!r} must be a non-empty string without '/' or '@'")
            if not isinstance(template, AgentTemplate):
                raise err(f"version {label!r} must be an AgentTemplate, got {template!r}")
        traffic = v.traffic if v.traffic is not None else {next(iter(v.versions)): 1.0}
        if not isinstance(traffic, dict):
            raise err(f"traffic={traffic!r} must map versions to shares")
        for label, share in traffic.items():
            if label not in v.versions:
                raise err(f"traffic names version {label!r}, which it does not offer")
            if not _real(share) or not 0 <= share <= 1:
                raise err(f"the traffic share of {label!r} ({share!r}) must be in [0, 1]")
        if not math.isclose(sum(traffic.values()), 1.0, abs_tol=1e-9):
            raise err(f"traffic shares must sum to 1, not {sum(traffic.values())!r}")
        by_name[v.name] = v

    new_agents = list(agents)
    for v in by_name.values():
        new_agents.append(Agent(v.name))
        new_agents.extend(t.agent(v.member(label)) for label, t in v.versions.items())

    # the traffic split of each versioned agent over time, and the versions' outages
    knots: dict[str, list[tuple[float, tuple[float, ...]]]] = {}
    new_outages = list(outages)
    for v in by_name.values():
        labels = list(v.versions)
        traffic = v.traffic if v.traffic is not None else {labels[0]: 1.0}
        start = tuple(float(traffic.get(label, 0.0)) for label in labels)
        knots[v.name] = [(0.0, start)]
    migrating_until: dict[str, float] = {}
    canaries = [e for e in events if isinstance(e, Canary) and e.rollback is not None]
    starting: dict[tuple[str, str, float], tuple[float, ...]] = {}
    events = [m for e in events for m in (e.migrations() if isinstance(e, Canary) else [e])]
    for e in sorted(events, key=lambda e: float(e.at) if isinstance(e.at, (int, float)) else 0.0):
        kind = type(e).__name__

        def bad(msg: str, e: object = e, kind: str = kind) -> ScenarioError:
            return ScenarioError(f"{kind} of {e.target!r}: {msg}",  # type: ignore[attr-defined]
                                 element=("version", str(e.target)))  # type: ignore[attr-defined]

        v = by_name.get(e.target)
        if v is None:
            raise bad("not a versioned agent of the model")
        at = _time(e.at, "at", bad)
        label = e.to if isinstance(e, Migrate) else e.version
        if label not in v.versions:
            raise bad(f"version {label!r} is not one it offers ({', '.join(v.versions)})")
        member = v.member(label)
        if isinstance(e, Release):
            if at > 0:
                new_outages.append(Outage(member, 0.0, at))
        elif isinstance(e, Retire):
            new_outages.append(Outage(member, at, _FOREVER, True))
        elif isinstance(e, UndocumentedChange):
            new_outages.append(Outage(member, at, _time(e.adapt, "adapt", bad, positive=True)))
        else:
            share = e.share
            if not _real(share) or not 0 <= share <= 1:
                raise bad(f"share={share!r} must be in [0, 1] (the share of all traffic "
                          f"{label!r} is to carry)")
            over = _time(e.over, "over", bad)
            if at < migrating_until.get(v.name, 0.0):
                raise bad("it starts before the previous migration has ended")
            migrating_until[v.name] = at + over
            points = knots[v.name]
            before = split_shares(points, at)
            starting.setdefault((v.name, label, at), before)   # (a canary's first step)
            j = list(v.versions).index(label)
            others = 1.0 - before[j]
            if others <= 0 and share < 1:
                raise bad(f"{label!r} carries all the traffic, and no other version has a "
                          "share to scale back up: migrate to another version instead")
            # the others keep their proportions among themselves
            after = tuple(float(share) if i == j else before[i] * (1.0 - share) / others
                          for i in range(len(before)))
            points.append((at, before))
            points.append((at + over, after))
    new_promises: list = []
    interior_of: dict[str, str] = {}
    for p in promises:
        v = by_name.get(p.promiser)
        if v is None:
            new_promises.append(p)
            continue
        interior = [Promise(f"{p.name}@{v.member(label)}", v.member(label), v.name, p.body)
                    for label in v.versions]
        new_promises.extend(interior)
        interior_of.update((q.name, v.name) for q in interior)
        split = Condition("split", len(interior), tuple(q.name for q in interior),
                          shares=tuple(knots[v.name]))
        conditions = split if p.conditions is None else all_of(p.conditions, split)
        new_promises.append(replace(p, conditions=conditions))
    rollouts = []
    for c in canaries:
        v = by_name[c.target]

        def bad(msg: str, c: Canary = c) -> ScenarioError:
            return ScenarioError(f"canary of {c.target!r}: {msg}",
                                 element=("version", str(c.target)))

        rollback = _check_rollback(c, bad)
        labels = list(v.versions)
        before = starting[(v.name, c.to, float(c.at))]
        carrying = [label for label, share in zip(labels, before) if share > 0]
        if len(carrying) != 1 or carrying[0] == c.to:
            raise bad("a rollback gives all the traffic back to the stable version: one "
                      f"version other than {c.to!r} must carry all of it when the canary "
                      f"starts (at {c.at!r}: {', '.join(carrying) or 'none'})")
        watch = tuple(f"{p.name}@{v.member(c.to)}" for p in promises
                      if p.promiser == v.name and hasattr(p.body, "deadline"))
        if not watch:
            raise bad(f"a rollback judges the requests to {c.to!r}, but {v.name!r} makes no "
                      "latency promise")
        end = float(c.at) + sum(float(hold) for _, hold in c.steps)
        rollouts.append(Rollout(v.name, c.to, carrying[0], float(c.at), end, watch, rollback))
    return new_agents, new_promises, new_outages, interior_of, rollouts

