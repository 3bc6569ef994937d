"""The :class:`Model` builder: write a system of agents and promises down."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from ..dists import Deterministic, Distribution, as_time, distribution_from_dict
from ..errors import ScenarioError
from .agents import Agent, Bursts, Failures, Maintenance
from .injections import Autoscaler, Degrade, Observer, Outage, Partition, ScaleTo, Workload
from .objectives import Alert, Objective
from .promises import Availability, Backoff, Breaker, Condition, RetryBudget, Latency, Promise, all_of, any_of, fallback, k_of
from .spec import ModelSpec, build_spec
from .schema import INJECTIONS, keys, name_keys
from .super_agents import AgentTemplate, SuperAgent, expand
from .versions import (Canary, Migrate, Release, Retire, Rollback, UndocumentedChange,
                       Versioned, expand_versions)
from .writing import _agent_fields, _degrade_fields, _event_fields, _partition_fields

_VERSION_EVENTS = (Release, Retire, Migrate, Canary, UndocumentedChange)

__all__ = ["Model"]

AgentRef = Agent | SuperAgent | str
PromiseRef = Promise | str


def _name(ref: Agent | SuperAgent | Promise | str) -> str:
    """The name of an element given by name or as the element itself."""
    if isinstance(ref, str):
        return ref
    name = getattr(ref, "name", None)
    if not isinstance(name, str) or isinstance(ref, type):
        raise ScenarioError(f"expected a name or a model element (an agent, a super-agent, a "
                            f"promise), got {ref!r}")
    return name


class Model:
    """A description of agents, the promises they make, their workload and injected faults.

    Building a model runs nothing and draws no random numbers; :meth:`spec`
    validates it into a frozen :class:`~promisesim.model.spec.ModelSpec`
    that engines consume.

    Parameters
    ----------
    name : str
        A label for results and plots.
    time_unit : str
        The unit of every time in the model (a label, for example ``"s"`` or ``"h"``).

    Examples
    --------
    >>> import promisesim as ps
    >>> m = ps.Model("one server", time_unit="h")
    >>> srv = m.agent("server", failures=ps.Failures(
    ...     time_to_failure=ps.Exponential(mean=1000.0), time_to_repair=ps.Exponential(mean=2.0)))
    >>> users = m.agent("users")
    >>> up = m.promise(srv, to=users, body=ps.Availability(), name="up")
    >>> m.spec().promises[0].name
    'up'
    """

    def __init__(self, name: str = "model", *, time_unit: str = "s") -> None:
        self.name = name
        self.time_unit = time_unit
        self.agents: list[Agent] = []
        self.promises: list[Promise] = []
        self.workloads: list[Workload] = []
        self.outages: list[Outage] = []
        self.degradations: list[Degrade] = []
        self.partitions: list[Partition] = []
        self.observers: list[Observer] = []
        self.super_agents: list[SuperAgent] = []
        self.scalings: list[ScaleTo] = []
        self.autoscalers: list[Autoscaler] = []
        self.versioned: list[Versioned] = []
        self.version_events: list = []
        self.objectives: list[Objective] = []
        self.alerts: list[Alert] = []

    # -- building -------------------------------------------------------------
    def agent(
        self,
        name: str,
        *,
        failures: Failures | None = None,
        service_time: Distribution | float = Deterministic(0.0),
        servers: int = 1,
        limit: int | None = None,
        slowdown: float = 0.0,
        errors: float | Bursts = 0.0,
        order: str = "after",
        keep_alive: float | None = None,
        cold_start: Distribution | float = Deterministic(0.0),
        placement: str = "recent",
        max_wait: float | None = None,
    ) -> Agent:
        """Add an agent and return it. See :class:`~promisesim.model.agents.Agent`. Times
        (``service_time`` and ``cold_start`` here, and the times of ``Failures``, workloads and
        observers) are distributions, or plain numbers for deterministic times, as in scenario
        files. With ``keep_alive``, the ``servers`` are instances started on demand (a
        serverless function that scales from zero)."""
        agent = Agent(name, failures=failures, service_time=as_time(service_time), servers=servers,
                      limit=limit, slowdown=slowdown, errors=errors, order=order,
                      keep_alive=keep_alive, cold_start=as_time(cold_start), placement=placement,
                      max_wait=max_wait)
        self.agents.append(agent)
        return agent

    def super_agent(
        self,
        name: str,
        *,
        members: list[AgentRef] | None = None,
        size: int | None = None,
        member: AgentTemplate | None = None,
        rule: str = "any",
        k: int | None = None,
        failures: Failures | None = None,
        service_time: Distribution = Deterministic(0.0),
        hop: float | Distribution = 0.0,
        startup: float | Distribution = 0.0,
        warm_startup: float | Distribution = 0.0,
        reuse: float = 0.0,
        balance: str = "first",
        limit: int | None = None,
    ) -> SuperAgent:
        """Add a super-agent and return it; promises name it like an agent.

        See :class:`~promisesim.model.super_agents.SuperAgent`. Give ``members``
        (agents or super-agents) or ``size`` copies of the ``member`` template.
        """
        if isinstance(members, (str, Agent, SuperAgent)):   # one member, not its letters
            raise ScenarioError(f"super-agent {name!r}: members={members!r} must be a list of "
                                f"agents (for one member: members=[{_name(members)!r}])",
                                element=("super-agent", str(name)))
        group = SuperAgent(name, tuple(_name(x) for x in members or ()), size, member, rule, k,
                           failures, service_time, hop, startup, warm_startup, reuse, balance,
                           limit)
        self.super_agents.append(group)
        return group

    def versions(self, name: str, versions: dict[str, AgentTemplate], *,
                 traffic: dict[str, float] | None = None) -> Versioned:
        """Add an agent that offers several versions side by side (forks) and return it.

        See :mod:`promisesim.model.versions`: promises name it like an agent; each
        version is an agent ``<name>.<version>``; inject :class:`Release`, :class:`Retire`,
        :class:`Migrate` and :class:`UndocumentedChange` events.
        """
        v = Versioned(name, dict(versions), None if traffic is None else dict(traffic))
        self.versioned.append(v)
        return v

    def promise(
        self,
        promiser: AgentRef,
        *,
        to: AgentRef,
        body: Availability | Latency,
        conditions: Condition | PromiseRef | list[PromiseRef] | None = None,
        name: str | None = None,
        accepted: bool = True,
        about: AgentRef | None = None,
        late: str = "wait",
        timeout: float | None = None,
        retries: int = 0,
        backoff: Backoff | None = None,
        retry_on: str | tuple[str, ...] | list[str] | None = None,
        budget: RetryBudget | None = None,
        breaker: Breaker | None = None,
    ) -> Promise:
        """Add a promise by ``promiser`` to ``to`` and return it.

        Parameters
        ----------
        promiser, to : Agent or str
        body : Availability or Latency
        conditions : Condition, promise, list of promises, or None
            A bare promise or a list means all of them.
        name : str, optional
            Defaults to ``"<promiser>-><promisee>:<body kind>"``.
        accepted : bool
            ``False`` makes it an imposition (simulated, never delivered).
        about : Agent or str, optional
            Whose behaviour the body is about; only the promiser is allowed.
        late : {"wait", "fail"}
            What the promiser does with a call's answer that comes after that
            call's deadline: go on with it (``"wait"``) or fail (``"fail"``). See
            :class:`~promisesim.model.promises.Promise`.
        timeout : float, optional
            How long the promiser waits for each of its calls before it gives up on
            it (a failed call). See :class:`~promisesim.model.promises.Promise`.
        retries : int
            How many more attempts it makes of a call that failed, after waiting as
            ``backoff`` says (:class:`~promisesim.model.promises.Backoff`; default: no wait).
        retry_on : str or sequence of str, optional
            Which failures it retries: ``"errors"``, ``"timeouts"``, ``"refusals"``
            (:data:`~promisesim.model.promises.RETRY_ON`); default every failure.
        budget : RetryBudget, optional
            At most a share of its calls to each provider are retries
            (:class:`~promisesim.model.promises.RetryBudget`).
        breaker : Breaker, optional
            A circuit breaker on each provider it calls
            (:class:`~promisesim.model.promises.Breaker`).
        """
        promiser_name, promisee_name = _name(promiser), _name(to)
        if name is None:
            name = f"{promiser_name}->{promisee_name}:{getattr(body, 'kind', 'promise')}"
        if conditions is not None and not isinstance(conditions, Condition):
            items = conditions if isinstance(conditions, list) else [conditions]
            conditions = all_of(*items)
        p = Promise(
            name=name,
            promiser=promiser_name,
            promisee=promisee_name,
            body=body,
            conditions=conditions,
            accepted=accepted,
            about=None if about is None else _name(about),
            late=late,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            retry_on=(retry_on,) if isinstance(retry_on, str) else
            (tuple(retry_on) if isinstance(retry_on, (list, tuple)) else retry_on),
            budget=budget,
            breaker=breaker,
        )
        self.promises.append(p)
        return p

    def workload(self, promise: PromiseRef, *, rate: float | None = None,
                 interarrival: Distribution | float | None = None, name: str | None = None,
                 start: float = 0.0, end: float | None = None) -> Workload:
        """Send requests to a latency promise: Poisson at ``rate`` per time unit, or with
        gaps drawn from ``interarrival``, from ``start`` until ``end``.
        See :class:`~promisesim.model.injections.Workload`."""
        w = Workload(_name(promise), rate, name, as_time(interarrival), start, end)
        self.workloads.append(w)
        return w

    def inject(self, injection: Any) -> Any:
        """Add an injected fault or change: an :class:`~promisesim.model.injections.Outage`,
        a :class:`~promisesim.model.injections.Degrade`, a
        :class:`~promisesim.model.injections.Partition`, a
        :class:`~promisesim.model.injections.ScaleTo`, an
        :class:`~promisesim.model.injections.Autoscaler`, or a version event
        (:class:`~promisesim.model.versions.Release`, ``Retire``, ``Migrate``,
        ``UndocumentedChange``). Returns it, with agents given as objects replaced by
        their names."""
        if isinstance(injection, Degrade):
            if isinstance(injection.target, (Agent, SuperAgent)):
                injection = replace(injection, target=injection.target.name)
            self.degradations.append(injection)
            return injection
        if isinstance(injection, Partition):
            def names(side: Any) -> Any:
                if isinstance(side, (Agent, SuperAgent)):
                    return side.name
                if isinstance(side, (list, tuple)):
                    return tuple(x.name if isinstance(x, (Agent, SuperAgent)) else x for x in side)
                return side
            injection = replace(injection, a=names(injection.a), b=names(injection.b))
            self.partitions.append(injection)
            return injection
        if isinstance(injection, _VERSION_EVENTS):
            if isinstance(injection.target, Versioned):
                injection = replace(injection, target=injection.target.name)
            self.version_events.append(injection)
            return injection
        if isinstance(injection, Autoscaler):
            if isinstance(injection.target, SuperAgent):
                injection = replace(injection, target=injection.target.name)
            self.autoscalers.append(injection)
            return injection
        if isinstance(injection, ScaleTo):
            if isinstance(injection.target, SuperAgent):
                injection = ScaleTo(injection.target.name, injection.size, injection.at)
            self.scalings.append(injection)
            return injection
        if not isinstance(injection, Outage):
            raise ScenarioError(f"cannot inject {injection!r}: expected an Outage, a Degrade, a "
                                "Partition, a ScaleTo, an Autoscaler, or a Release, Retire, "
                                "Migrate or UndocumentedChange")
        if isinstance(injection.target, (Agent, SuperAgent)):
            injection = replace(injection, target=injection.target.name)
        self.outages.append(injection)
        return injection

    def observe(self, promise: PromiseRef, *, interval: Distribution | float | None = None,
                name: str | None = None, probe: bool = False) -> Observer:
        """Add an observer that checks ``promise`` every ``interval`` (or at its promiser's
        maintenance runs); with ``probe=True``, by sending it a request each time (a
        synthetic check). See :class:`~promisesim.model.injections.Observer`."""
        observer = Observer(name if name is not None else f"{_name(promise)}-observer",
                            _name(promise), as_time(interval), probe)
        self.observers.append(observer)
        return observer

    def objective(self, promise: PromiseRef, *, target: float, window: float,
                  rolling: bool = False, budgeting: str = "occurrences",
                  timeslice: float | None = None, timeslice_target: float = 1.0,
                  step: float | None = None, name: str | None = None) -> Objective:
        """Judge ``promise`` over windows of time (an SLO) and return the objective: at least
        ``target`` of each window must be good. See :class:`~promisesim.model.objectives.Objective`;
        results are in :attr:`~promisesim.Result.objectives`."""
        objective = Objective(_name(promise), target, window, rolling, budgeting, timeslice,
                              timeslice_target, step, name)
        self.objectives.append(objective)
        return objective

    def alert(self, objective: Objective | str, *, long: float, short: float, burn_rate: float,
              every: float | None = None, name: str | None = None) -> Alert:
        """A burn-rate alert on an objective: it fires while the error budget burns at least
        ``burn_rate`` times its sustainable rate over both the last ``long`` and the last
        ``short``. See :class:`~promisesim.model.objectives.Alert`; results are in
        :attr:`~promisesim.Result.alerts`."""
        label = objective.label if isinstance(objective, Objective) else objective
        alert = Alert(label, long, short, burn_rate, every, name)
        self.alerts.append(alert)
        return alert

    # -- validation -----------------------------------------------------------
    def spec(self) -> ModelSpec:
        """Validate and freeze the model. Raises :class:`~promisesim.errors.ScenarioError`."""
        for kind, elements in (("agent", self.agents), ("super-agent", self.super_agents),
                               ("versioned agent", self.versioned), ("promise", self.promises)):
            for element in elements:   # names key every table below: they must be text
                if not isinstance(getattr(element, "name", None), str):
                    raise ScenarioError(f"{kind} name {getattr(element, 'name', element)!r} "
                                        "must be text")
        agents, promises, outages, versions, rollouts = expand_versions(
            list(self.versioned), list(self.version_events), list(self.agents),
            list(self.promises), list(self.outages))
        x = expand(agents, list(self.super_agents), promises, outages, list(self.scalings),
                   list(self.autoscalers))
        spec = build_spec(self.name, self.time_unit, x.agents, x.promises, list(self.workloads),
                          x.outages, list(self.observers), {**versions, **x.interior},
                          x.messages_per_call, x.scaled, list(self.degradations),
                          list(self.partitions), list(self.objectives), list(self.alerts))
        # a snapshot (the model may change later): what Result.save writes
        return replace(spec, scenario=self.to_dict(), rollouts=tuple(rollouts))

    # -- data form --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The scenario-file form of the model (plain dicts, lists, strings and numbers)."""
        agents = [_agent_fields(a, {"name": a.name}) for a in self.agents]
        groups = []
        for g in self.super_agents:
            entry: dict[str, Any] = {"name": g.name}
            if g.size is not None:
                entry["size"] = g.size
                assert g.member is not None
                entry["member"] = _agent_fields(g.member, {})
            else:
                entry["members"] = list(g.members)
            entry["rule"] = g.rule
            if g.k is not None:
                entry["k"] = g.k
            if isinstance(g.hop, Distribution):
                entry["hop"] = g.hop.to_dict()
            elif g.hop:
                entry["hop"] = g.hop
            for key in ("startup", "warm_startup"):
                value = getattr(g, key)
                if isinstance(value, Distribution):
                    entry[key] = value.to_dict()
                elif value:
                    entry[key] = value
            if g.reuse:
                entry["reuse"] = g.reuse
            if g.balance != "first":
                entry["balance"] = g.balance
            if g.limit is not None:
                entry["limit"] = g.limit
            _agent_fields(g, entry, servers=False)
            groups.append(entry)
        promises = []
        for p in self.promises:
            body: dict[str, Any] = (
                {"latency": {"deadline": p.body.deadline}} if isinstance(p.body, Latency)
                else {"availability": {}}
            )
            entry = {"name": p.name, "promiser": p.promiser, "promisee": p.promisee, "body": body}
            if p.conditions is not None:
                entry["conditions"] = p.conditions.to_dict()
            if not p.accepted:
                entry["accepted"] = False
            if p.about is not None:
                entry["about"] = p.about
            if p.late != "wait":
                entry["late"] = p.late
            if p.timeout is not None:
                entry["timeout"] = p.timeout
            if p.retries:
                entry["retries"] = p.retries
            if p.backoff is not None:
                entry["backoff"] = p.backoff.to_dict()
            if p.retry_on is not None:
                entry["retry_on"] = list(p.retry_on)
            if p.budget is not None:
                entry["budget"] = p.budget.to_dict()
            if p.breaker is not None:
                entry["breaker"] = p.breaker.to_dict()
            promises.append(entry)
        out: dict[str, Any] = {"name": self.name, "time_unit": self.time_unit, "agents": agents}
        if groups:
            out["super_agents"] = groups
        if self.versioned:
            out["versioned"] = [
                {"name": v.name, "versions": {label: _agent_fields(t, {})
                                              for label, t in v.versions.items()},
                 **({"traffic": dict(v.traffic)} if v.traffic is not None else {})}
                for v in self.versioned]
        out["promises"] = promises
        if self.workloads:
            out["workloads"] = []
            for w in self.workloads:
                entry = {"promise": w.promise}
                if w.rate is not None:
                    entry["rate"] = w.rate
                if w.interarrival is not None:
                    entry["interarrival"] = w.interarrival.to_dict()
                if w.name is not None:
                    entry["name"] = w.name
                if w.start:
                    entry["start"] = w.start
                if w.end is not None:
                    entry["end"] = w.end
                out["workloads"].append(entry)
        if self.observers:
            out["observers"] = [
                {"name": o.name, "promise": o.promise,
                 **({"interval": o.interval.to_dict()} if o.interval is not None else {}),
                 **({"probe": True} if o.probe else {})}
                for o in self.observers
            ]
        if self.objectives:
            out["objectives"] = [o.to_dict() for o in self.objectives]
        if self.alerts:
            out["alerts"] = [a.to_dict() for a in self.alerts]
        if (self.outages or self.scalings or self.autoscalers or self.version_events
                or self.degradations or self.partitions):
            out["injections"] = [
                {"outage": {"target": o.target, "at": o.at, "duration": o.duration,
                            **({"drain": True} if o.drain else {})}}
                for o in self.outages
            ] + [{"degrade": _degrade_fields(d)} for d in self.degradations
                 ] + [{"partition": _partition_fields(x)} for x in self.partitions] + [{"scale_to": {"target": x.target, "size": x.size, "at": x.at}} for x in self.scalings
                 ] + [{"autoscaler": asdict(a)} for a in self.autoscalers
                      ] + [{_EVENT_KEYS[type(e)]: _event_fields(e)} for e in self.version_events]
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "Model":
        """Build a model from its scenario-file form (see :meth:`to_dict`).

        Structural errors raise :class:`ScenarioError` naming the element;
        call :meth:`spec` to validate the whole model.
        """
        reader = _Reader()
        return reader.model(data)


_EVENT_KEYS = {Release: "release", Retire: "retire", Migrate: "migrate", Canary: "canary",
               UndocumentedChange: "undocumented_change"}


class _Reader:
    """Converts the scenario-file form into a :class:`Model`, naming elements in errors."""

    def _mapping(self, data: Any, where: str, allowed: Any, required: Any = frozenset()) -> dict:
        """``data`` as a mapping with keys in ``allowed`` and ``required`` (or one pair of
        them: an element's name in :mod:`~promisesim.model.schema`)."""
        names: frozenset[str] = frozenset()
        if isinstance(allowed, str):
            names = name_keys(allowed)
            allowed, required = keys(allowed)
        if not isinstance(data, dict):
            raise ScenarioError(f"{where}: expected a mapping, got {data!r}")
        unknown = set(data) - allowed
        if unknown:
            import difflib

            hints = [f"{key!r}: did you mean {close[0]!r}?" for key in sorted(map(str, unknown))
                     if (close := difflib.get_close_matches(key, sorted(allowed), n=1,
                                                            cutoff=0.6))]
            raise ScenarioError(
                f"{where}: unknown key(s) {sorted(map(str, unknown))}; allowed: {sorted(allowed)}"
                + (" (" + "; ".join(hints) + ")" if hints else "")
            )
        missing = required - set(data)
        if missing:
            raise ScenarioError(f"{where}: missing key(s) {sorted(missing)}")
        for key in names:
            value = data.get(key)
            if value is not None and not isinstance(value, str):   # a name is text
                raise ScenarioError(f"{where}: {key}={value!r} must be a name (text; quote a "
                                    "number: '2024')")
        return data

    def _list(self, data: Any, where: str) -> list:
        if data is None:
            return []
        if not isinstance(data, list):
            raise ScenarioError(f"{where}: expected a list, got {data!r}")
        return data

    def model(self, data: Any) -> Model:
        data = self._mapping(data, "scenario", "scenario")
        m = Model(str(data.get("name", "model")), time_unit=str(data.get("time_unit", "s")))
        for i, entry in enumerate(self._list(data.get("agents"), "agents")):
            self.agent(m, entry, f"agents[{i}]")
        for i, entry in enumerate(self._list(data.get("super_agents"), "super_agents")):
            self.super_agent(m, entry, f"super_agents[{i}]")
        for i, entry in enumerate(self._list(data.get("versioned"), "versioned")):
            self.versioned(m, entry, f"versioned[{i}]")
        for i, entry in enumerate(self._list(data.get("promises"), "promises")):
            self.promise(m, entry, f"promises[{i}]")
        for i, entry in enumerate(self._list(data.get("workloads"), "workloads")):
            e = self._mapping(entry, f"workloads[{i}]", "workload")
            gaps = None
            if e.get("interarrival") is not None:
                gaps = distribution_from_dict(e["interarrival"], where=f"workloads[{i}]: interarrival")
            m.workload(str(e["promise"]), rate=e.get("rate"), interarrival=gaps, name=e.get("name"),
                       start=e.get("start", 0.0), end=e.get("end"))
        for i, entry in enumerate(self._list(data.get("observers"), "observers")):
            e = self._mapping(entry, f"observers[{i}]", "observer")
            interval = None
            if e.get("interval") is not None:
                interval = distribution_from_dict(e["interval"], where=f"observers[{i}]: interval")
            m.observe(str(e["promise"]), interval=interval, name=e["name"],
                      probe=e.get("probe", False))
        for i, entry in enumerate(self._list(data.get("objectives"), "objectives")):
            e = self._mapping(entry, f"objectives[{i}]", "objective")
            m.objective(str(e["promise"]), target=e["target"], window=e["window"],
                        rolling=e.get("rolling", False), budgeting=e.get("budgeting", "occurrences"),
                        timeslice=e.get("timeslice"),
                        timeslice_target=e.get("timeslice_target", 1.0), step=e.get("step"),
                        name=e.get("name"))
        for i, entry in enumerate(self._list(data.get("alerts"), "alerts")):
            e = self._mapping(entry, f"alerts[{i}]", "alert")
            m.alert(str(e["objective"]), long=e["long"], short=e["short"],
                    burn_rate=e["burn_rate"], every=e.get("every"), name=e.get("name"))
        for i, entry in enumerate(self._list(data.get("injections"), "injections")):
            kinds = set(INJECTIONS)
            e = self._mapping(entry, f"injections[{i}]", kinds)
            if len(e) != 1:
                raise ScenarioError(f"injections[{i}]: give one of {', '.join(sorted(kinds))}")
            event = next((cls for cls, key in _EVENT_KEYS.items() if key in e), None)
            if event is not None:
                key = _EVENT_KEYS[event]
                x = self._mapping(e[key], f"injections[{i}].{key}", key)
                if x.get("rollback") is not None:
                    x = {**x, "rollback": Rollback(**self._mapping(
                        x["rollback"], f"injections[{i}].{key}.rollback", "rollback"))}
                m.inject(event(**{**x, "target": str(x["target"])}))
                continue
            if "autoscaler" in e:
                x = self._mapping(e["autoscaler"], f"injections[{i}].autoscaler", "autoscaler")
                m.inject(Autoscaler(**{**x, "target": str(x["target"])}))
                continue
            if "degrade" in e:
                x = self._mapping(e["degrade"], f"injections[{i}].degrade", "degrade")
                m.inject(Degrade(str(x["target"]), x["at"], x.get("duration"),
                                 x.get("slower", 1.0), x.get("errors", 0.0)))
                continue
            if "partition" in e:
                x = self._mapping(e["partition"], f"injections[{i}].partition", "partition")
                sides = [x[k] if isinstance(x[k], str) else tuple(
                    str(v) for v in self._list(x[k], f"injections[{i}].partition.{k}"))
                    for k in ("a", "b")]
                m.inject(Partition(sides[0], sides[1], x["at"], x["duration"],
                                   x.get("both_ways", True)))
                continue
            if "scale_to" in e:
                x = self._mapping(e["scale_to"], f"injections[{i}].scale_to", "scale_to")
                m.inject(ScaleTo(str(x["target"]), x["size"], x["at"]))
                continue
            o = self._mapping(e["outage"], f"injections[{i}].outage", "outage")
            m.inject(Outage(str(o["target"]), o["at"], o["duration"], o.get("drain", False)))
        return m

    def super_agent(self, m: Model, entry: Any, where: str) -> None:
        e = self._mapping(entry, where, "super_agent")
        where = f"super-agent {e['name']!r}"
        template = None
        if e.get("member") is not None:
            t = self._mapping(e["member"], f"{where}: member", "template")
            failures, service = self._behaviour(t, f"{where}: member")
            template = AgentTemplate(failures, service, t.get("servers", 1), t.get("limit"),
                                     t.get("slowdown", 0.0), self._errors(t, f"{where}: member"),
                                     t.get("order", "after"))
        failures, service = self._behaviour(e, where)
        members = [str(x) for x in self._list(e.get("members"), f"{where}: members")]
        m.super_agent(e["name"], members=members or None, size=e.get("size"), member=template,
                      rule=e.get("rule", "any"), k=e.get("k"), failures=failures,
                      service_time=service, hop=self._time_or_distribution(e, "hop", where),
                      startup=self._time_or_distribution(e, "startup", where),
                      warm_startup=self._time_or_distribution(e, "warm_startup", where),
                      reuse=e.get("reuse", 0.0), balance=e.get("balance", "first"),
                      limit=e.get("limit"))

    def _time_or_distribution(self, e: dict, key: str, where: str) -> float | Distribution:
        value = e.get(key, 0.0)
        if isinstance(value, dict):
            return distribution_from_dict(value, where=f"{where}: {key}")
        return value

    def versioned(self, m: Model, entry: Any, where: str) -> None:
        e = self._mapping(entry, where, "versioned")
        where = f"versioned agent {e['name']!r}"
        versions = self._mapping(e["versions"], f"{where}: versions", set(e["versions"] or {}))
        templates = {}
        for label, t in versions.items():
            t = self._mapping(t or {}, f"{where}: version {label!r}", "template")
            failures, service = self._behaviour(t, f"{where}: version {label!r}")
            templates[str(label)] = AgentTemplate(failures, service, t.get("servers", 1),
                                                  t.get("limit"), t.get("slowdown", 0.0),
                                                  self._errors(t, f"{where}: version {label!r}"),
                                                  t.get("order", "after"))
        traffic = e.get("traffic")
        if traffic is not None:
            traffic = {str(k): v for k, v in self._mapping(
                traffic, f"{where}: traffic", set(traffic) if isinstance(traffic, dict) else set()
            ).items()}
        m.versions(str(e["name"]), templates, traffic=traffic)

    def _behaviour(self, e: dict, where: str) -> tuple[Failures | None, Distribution]:
        """``failures`` and ``service_time`` of an agent-like entry."""
        failures = None
        if e.get("failures") is not None:
            f = self._mapping(e["failures"], f"{where}: failures", "failures")
            maintenance = None
            if f.get("maintenance") is not None:
                mt = self._mapping(f["maintenance"], f"{where}: maintenance", "maintenance")
                maintenance = Maintenance(
                    distribution_from_dict(mt["interval"], where=f"{where}: maintenance interval"),
                    mt.get("success", 1.0))
            repair = None
            if f.get("time_to_repair") is not None:
                repair = distribution_from_dict(f["time_to_repair"], where=f"{where}: time_to_repair")
            failures = Failures(
                distribution_from_dict(f["time_to_failure"], where=f"{where}: time_to_failure"),
                repair, maintenance)
        service: Distribution = Deterministic(0.0)
        if "service_time" in e:
            service = distribution_from_dict(e["service_time"], where=f"{where}: service_time")
        return failures, service

    def _errors(self, e: dict, where: str) -> float | Bursts:
        """``errors`` of an agent-like entry: a probability, or ``{bursts: {...}}``."""
        value = e.get("errors", 0.0)
        if isinstance(value, dict):
            b = self._mapping(value, f"{where}: errors", {"bursts"}, {"bursts"})
            x = self._mapping(b["bursts"], f"{where}: errors.bursts", "error_bursts")
            return Bursts(x["rate"], x["mean_duration"], x["errors"], x.get("baseline", 0.0))
        return value

    def agent(self, m: Model, entry: Any, where: str) -> None:
        e = self._mapping(entry, where, "agent")
        name = e["name"]
        where = f"agent {name!r}"
        failures, service = self._behaviour(e, where)
        m.agent(name, failures=failures, service_time=service, servers=e.get("servers", 1),
                limit=e.get("limit"), slowdown=e.get("slowdown", 0.0),
                errors=self._errors(e, where), order=e.get("order", "after"),
                keep_alive=e.get("keep_alive"),
                cold_start=self._time_or_distribution(e, "cold_start", where),
                placement=e.get("placement", "recent"), max_wait=e.get("max_wait"))

    def promise(self, m: Model, entry: Any, where: str) -> None:
        e = self._mapping(entry, where, "promise")
        where = f"promise {e['name']!r}"
        body_data = e["body"]
        if isinstance(body_data, str):
            body_data = {body_data: {}}
        b = self._mapping(body_data, f"{where}: body", {"availability", "latency"})
        if len(b) != 1:
            raise ScenarioError(f"{where}: body must be one of availability or latency")
        (kind, params), = b.items()
        params = params or {}
        body: Availability | Latency
        if kind == "latency":
            params = self._mapping(params, f"{where}: latency", {"deadline"}, {"deadline"})
            body = Latency(params["deadline"])
        else:
            self._mapping(params, f"{where}: availability", set())
            body = Availability()
        conditions = None
        if e.get("conditions") is not None:
            conditions = self.condition(e["conditions"], where)
        m.promise(str(e["promiser"]), to=str(e["promisee"]), body=body, conditions=conditions,
                  name=str(e["name"]), accepted=e.get("accepted", True), about=e.get("about"),
                  late=e.get("late", "wait"), timeout=e.get("timeout"),
                  retries=e.get("retries", 0), backoff=self.backoff(e.get("backoff"), where),
                  retry_on=e.get("retry_on"), budget=self.budget(e.get("budget"), where),
                  breaker=self.breaker(e.get("breaker"), where))

    def backoff(self, data: Any, where: str) -> Backoff | None:
        if data is None:
            return None
        b = self._mapping(data, f"{where}: backoff", "backoff")
        return Backoff(b["initial"], b.get("multiplier", 2.0), b.get("maximum"), b.get("jitter"))

    def budget(self, data: Any, where: str) -> RetryBudget | None:
        if data is None:
            return None
        b = self._mapping(data, f"{where}: budget", "budget")
        return RetryBudget(b.get("ratio", 0.1), b.get("window", 10.0), b.get("minimum", 1))

    def breaker(self, data: Any, where: str) -> Breaker | None:
        if data is None:
            return None
        b = self._mapping(data, f"{where}: breaker", "breaker")
        return Breaker(b.get("failure_rate", 0.5), b.get("window", 20), b.get("per", "calls"),
                       b.get("minimum"), b.get("open_for", 30.0), b.get("trials", 1))

    def condition(self, data: Any, where: str) -> Condition:
        if isinstance(data, str):
            return all_of(data)
        if isinstance(data, list):
            return all_of(*[self._item(x, where) for x in data])
        c = self._mapping(data, f"{where}: conditions", {"all_of", "any_of", "k_of", "fallback"})
        if len(c) != 1:
            raise ScenarioError(f"{where}: a condition is one of all_of, any_of, k_of or fallback, "
                                f"got {data!r}")
        (rule, items), = c.items()
        if rule == "k_of":
            kv = self._mapping(items, f"{where}: k_of", {"k", "of"}, {"k", "of"})
            return k_of(kv["k"], *[self._item(x, where) for x in self._list(kv["of"], f"{where}: k_of.of")])
        options: dict = {}
        if rule == "any_of" and isinstance(items, dict):
            options = dict(self._mapping(items, f"{where}: any_of",
                                         {"of", "choose", "mode", "detect", "hedge"}, {"of"}))
            items = options.pop("of")
        parts = [self._item(x, where) for x in self._list(items, f"{where}: {rule}")]
        if rule == "fallback":
            if not parts:
                raise ScenarioError(f"{where}: a fallback names the promise to call first, then "
                                    "those to fall back on")
            return fallback(*parts)
        return all_of(*parts) if rule == "all_of" else any_of(*parts, **options)

    def _item(self, data: Any, where: str) -> str | Condition:
        if isinstance(data, str):
            return data
        return self.condition(data, where)
