"""Validation: from a :class:`~promisesim.model.Model` to a frozen :class:`ModelSpec`.

Everything an engine relies on is checked here, once, with an error that
names the offending element. Engines consume a spec and never mutate it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Any, Union

import numpy as np

from ..dists import Distribution
from ..errors import ScenarioError, _real, did_you_mean
from .agents import MAX_SERVERS, PLACEMENTS, Agent, Bursts, Failures, Maintenance
from .injections import Degrade, Observer, Outage, Partition, StartUp, Workload
from .objectives import Alert, Objective, check_alerts, check_objectives
from .promises import RETRY_ON, Availability, Backoff, Breaker, Condition, Latency, Promise, RetryBudget

__all__ = ["ModelSpec", "CallNode", "CallCondition", "build_spec"]

#: Bound on the number of nodes in one workload's call tree (shared
#: dependencies are expanded per path, so a deep diamond-shaped graph can
#: grow exponentially; this turns that into an error instead of a hang).
MAX_CALL_NODES = 100_000
#: Retries of a call, at most (each is a copy of the call's subtree in the call tree).
MAX_RETRIES = 100


@dataclass(frozen=True)
class CallCondition:
    """The calls a request makes for one :class:`Condition`.

    ``path`` names it uniquely (its node's path and its position); it keys the
    draws of a random choice and the binding of a push-mode choice."""

    rule: str
    k: int
    items: tuple[Union["CallNode", "CallCondition"], ...]
    path: str = ""
    choose: str = "first"
    mode: str = "pull"
    detect: float = 0.0
    #: a choice's hedge delay (None: no hedging)
    hedge: float | None = None
    #: the model's condition (a split's traffic shares live there)
    source: Condition | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class CallNode:
    """One request (latency body) or one state check (availability body) in a workload's call tree.

    ``path`` names the node uniquely within the model: the workload, its
    promise, then for each call the item's position in the condition and
    the promise called, joined by ``/`` (for example
    ``"load/serve/1.0/mirror"``). It keys the node's service-time stream, so
    changes elsewhere in the model leave its draws unchanged.
    """

    promise: int
    path: str
    is_request: bool
    condition: CallCondition | None
    #: Time for the call to reach the provider, and for its answer to come back.
    delay_out: float = 0.0
    delay_back: float = 0.0
    #: A random hop latency: each way of the call also takes a draw of it (keyed by the
    #: node's path, and the path plus ``"/answer"`` for the way back).
    hop: Distribution | None = None
    #: Which attempt of its call this node is (0: the first), and the nodes of the retries
    #: after it (on the first attempt only). A retry's node is a copy of the first's with
    #: ``~j`` added to its path, so it and the calls under it draw from their own streams.
    attempt: int = 0
    retries: tuple["CallNode", ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """A validated, frozen model. Build with :meth:`promisesim.Model.spec`.

    Attributes
    ----------
    agents : tuple of Agent
    promises : tuple of Promise
        In dependency order: every promise comes after the promises in its conditions.
    workloads : tuple of Workload
    outages : tuple of Outage
    observers : tuple of Observer
    call_trees : tuple of CallNode
        One per workload: the requests each arrival causes.
    """

    name: str
    time_unit: str
    agents: tuple[Agent, ...]
    promises: tuple[Promise, ...]
    workloads: tuple[Workload, ...]
    outages: tuple[Outage, ...]
    call_trees: tuple[CallNode, ...] = field(repr=False)
    agent_index: dict[str, int] = field(repr=False, compare=False)
    promise_index: dict[str, int] = field(repr=False, compare=False)
    observers: tuple[Observer, ...] = ()
    #: Interior promises (of super-agents' members and of versions) -> their group.
    interior: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: Start-ups of members added by scaling, drawn per replication.
    startups: tuple[StartUp, ...] = ()
    #: Internal messages per interior request, per super-agent.
    messages_per_call: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    #: Super-agents resized at run time by an autoscaler (``ScaledGroup``).
    scaled: tuple = ()
    #: Changes of agents' behaviour over time (brownouts, undocumented changes).
    degradations: tuple[Degrade, ...] = ()
    #: Network partitions between agents.
    partitions: tuple[Partition, ...] = ()
    #: Objectives (SLOs) on promises, judged on the results.
    objectives: tuple[Objective, ...] = ()
    #: Burn-rate alerts on objectives, evaluated on the results.
    alerts: tuple[Alert, ...] = ()
    #: The scenario-file form of the model it was built from (``Model.to_dict()`` when
    #: :meth:`~promisesim.Model.spec` froze it): what a saved result stores.
    scenario: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    #: Canaries with a rollback (:class:`~promisesim.model.versions.Rollout`): see
    #: :mod:`promisesim.rollouts`.
    rollouts: tuple = ()

    def agent_errors(self, agent: int) -> bool:
        """Whether answers of ``agent`` can be errors (its own probability, bursts, or a
        degradation)."""
        a = self.agents[agent]
        return bool(a.errors) or any(d.errors and self.agent_index[d.target] == agent
                                     for d in self.degradations)

    def requested(self) -> np.ndarray:
        """Per promise, whether some workload's requests reach it (as a request, not a check)."""
        out = np.zeros(len(self.promises), dtype=bool)

        def mark(item: "CallNode | CallCondition") -> None:
            if isinstance(item, CallNode):
                out[item.promise] |= item.is_request
                if item.condition is not None:
                    mark(item.condition)
            else:
                for sub in item.items:
                    mark(sub)

        for tree in self.call_trees:
            mark(tree)
        return out

    def cut(self, promise: int) -> list[Partition]:
        """The partitions that cut calls to ``promise`` (from its promisee to its promiser)."""
        p = self.promises[promise]
        return [x for x in self.partitions if x.cuts(p.promisee, p.promiser)]

    @property
    def impositions(self) -> tuple[str, ...]:
        """Names of promises their promisee has not accepted: simulated, never delivered."""
        return tuple(p.name for p in self.promises if not p.accepted)

    @property
    def features(self) -> frozenset[str]:
        """Model features in use, for engines to check support."""
        out = {"availability"}
        if any(a.failures is not None for a in self.agents):
            out.add("random_failures")
        if self.outages:
            out.add("outage")
        if any(o.drain for o in self.outages):
            out.add("draining")
        if self.startups:
            out.add("random start-up")
        if self.scaled:
            out.add("autoscaler")
        if self.workloads:
            out.add("workload")
        if any(a.limit is not None for a in self.agents):
            out.add("capacity limit")
        if any(a.slowdown for a in self.agents):
            out.add("load-dependent slowdown")
        if any(a.keep_alive is not None for a in self.agents):
            out.add("instances started on demand")
        if any(a.max_wait is not None for a in self.agents):
            out.add("wait limit")
        if any(isinstance(a.errors, Bursts) for a in self.agents):
            out.add("error bursts")
        elif any(a.errors for a in self.agents):
            out.add("errors")
        if any(a.order != "after" for a in self.agents):
            out.add("order of work")
        if self.degradations:
            out.add("degradation")
        if self.partitions:
            out.add("partition")
        for p in self.promises:
            if p.conditions is not None:
                out.add("conditions")
                out.update(_choice_features(p.conditions))
            if isinstance(p.body, Latency):
                out.add("latency")
            if p.retries:
                out.add("retries")
        return frozenset(out)


def _choice_features(cond: Condition) -> set[str]:
    out = set()
    if cond.rule == "split":
        out.add("versions")
    if cond.hop is not None:
        out.add("random hop latency")
    if cond.choose == "random":
        out.add("random choice")
    if cond.mode == "push":
        out.add("push-mode choice")
    if cond.detect:
        out.add("detection delay")
    if cond.rule == "fallback":
        out.add("fallbacks")
    if cond.hedge is not None:
        out.add("hedged requests")
    for item in cond.items:
        if isinstance(item, Condition):
            out |= _choice_features(item)
    return out


def _number(owner: str, name: str, value: object, *, positive: bool, allow_zero: bool = False) -> float:
    if not _real(value):
        raise ScenarioError(f"{owner}: {name}={value!r} must be a number")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise ScenarioError(f"{owner}: {name}={value!r} must be finite")
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        bound = "non-negative" if allow_zero else "positive"
        raise ScenarioError(f"{owner}: {name}={value!r} must be {bound}")
    return v


#: The longest name an element may have.
MAX_NAME = 200


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(f"{kind} name {name!r} must be a non-empty string")
    if "/" in name:
        raise ScenarioError(f"{kind} {name!r}: names may not contain '/'", element=(kind, name))
    if not name.isprintable():   # control characters, lone surrogates: unreadable in tables
        raise ScenarioError(f"{kind} {name!r}: names may hold only printable characters",
                            element=(kind, name))
    if len(name) > MAX_NAME:     # names head table rows, plot labels and file names
        raise ScenarioError(f"{kind} {name[:40]!r}...: names may be at most {MAX_NAME} "
                            f"characters long, not {len(name):,}", element=(kind, name[:40]))
    return name


def _check_agent(agent: Agent) -> None:
    owner = f"agent {agent.name!r}"
    err = lambda msg: ScenarioError(f"{owner}: {msg}", element=("agent", agent.name))  # noqa: E731
    if isinstance(agent.servers, bool) or not isinstance(agent.servers, numbers.Integral) \
            or not 1 <= agent.servers <= MAX_SERVERS:
        raise err(f"servers={agent.servers!r} must be a whole number from 1 to {MAX_SERVERS:,}")
    if not isinstance(agent.service_time, Distribution):
        raise err(f"service_time must be a distribution, got {agent.service_time!r}")
    if agent.limit is not None and (isinstance(agent.limit, bool) or not isinstance(
            agent.limit, numbers.Integral) or agent.limit < 1):
        raise err(f"limit={agent.limit!r} must be a whole number of at least 1 (or None)")
    try:
        _number(owner, "slowdown", agent.slowdown, positive=True, allow_zero=True)
    except ScenarioError as exc:
        raise err(str(exc).split(": ", 1)[1]) from None
    _check_errors(agent.errors, err)
    _check_instances(agent, err)
    if agent.order not in ("after", "around", "before"):
        raise err(f"order={agent.order!r} must be 'after' (calls, then own work), 'around' "
                  "(calls while holding a server) or 'before' (own work, then calls)")
    if agent.failures is not None:
        f = agent.failures
        if not isinstance(f, Failures):
            raise err(f"failures must be a Failures, got {f!r}")
        if (f.time_to_repair is None) == (f.maintenance is None):
            raise err("failures need either time_to_repair or maintenance, not "
                      + ("both" if f.maintenance is not None else "neither"))
        checks = [("time_to_failure", f.time_to_failure)]
        if f.time_to_repair is not None:
            checks.append(("time_to_repair", f.time_to_repair))
        else:
            if not isinstance(f.maintenance, Maintenance):
                raise err(f"maintenance must be a Maintenance, got {f.maintenance!r}")
            checks.append(("maintenance interval", f.maintenance.interval))
            s = f.maintenance.success
            if not _real(s) or not 0 < s <= 1:
                raise err(f"maintenance success={s!r} must be a probability in (0, 1]")
        for what, dist in checks:
            if not isinstance(dist, Distribution):
                raise err(f"{what} must be a distribution, got {dist!r}")
            if dist.mean <= 0:
                raise err(f"{what} must have a positive mean, got {dist!r}")


def _check_instances(agent: Agent, err: Any) -> None:
    """``keep_alive``, ``cold_start`` and ``placement``: instances started on demand."""
    if agent.keep_alive is not None:
        k = agent.keep_alive
        if not _real(k) or not 0 < float(k) < math.inf:
            raise err(f"keep_alive={k!r} must be a positive, finite time (or None: the servers "
                      "always run)")
    if not isinstance(agent.cold_start, Distribution):
        raise err(f"cold_start must be a non-negative time or a distribution, got "
                  f"{agent.cold_start!r}")
    if agent.placement not in PLACEMENTS:
        raise err(f"placement={agent.placement!r} must be one of "
                  + ", ".join(repr(x) for x in PLACEMENTS))
    if agent.max_wait is not None and (not _real(agent.max_wait)
                                       or not 0 < float(agent.max_wait) < math.inf):
        raise err(f"max_wait={agent.max_wait!r} must be a positive, finite time (or None: "
                  "requests wait as long as it takes)")
    if agent.keep_alive is None and (agent.cold_start.mean > 0 or agent.cold_start.is_random
                                     or agent.placement != "recent"):
        what = "cold_start" if agent.placement == "recent" else "placement"
        raise err(f"{what} is for instances started on demand: give keep_alive too (how long "
                  "an idle instance runs before it is stopped)")


def _probability(value: object) -> bool:
    """Whether ``value`` is a probability: a real number in [0, 1] (not NaN, not a bool)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and 0.0 <= float(value) <= 1.0)


def _check_errors(errors: object, err) -> None:  # type: ignore[no-untyped-def]
    if isinstance(errors, Bursts):
        for name in ("rate", "mean_duration"):
            v = getattr(errors, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 < float(v) < math.inf:
                raise err(f"errors: bursts {name}={v!r} must be a positive, finite number")
        for name in ("errors", "baseline"):
            v = getattr(errors, name)
            if not _probability(v):
                raise err(f"errors: bursts {name}={v!r} must be a probability from 0 to 1")
    elif not _probability(errors):
        raise err(f"errors={errors!r} must be a probability from 0 to 1 or Bursts(...)")


def _check_injections(degradations: list[Degrade], partitions: list[Partition],
                      agents: dict[str, Agent]) -> None:
    for i, d in enumerate(degradations):
        owner = f"degradation {i} of {d.target!r}"
        element = ("degrade", str(i))
        if not isinstance(d, Degrade):
            raise ScenarioError(f"degradation {i}: expected a Degrade, got {d!r}", element=element)
        if d.target not in agents:
            raise ScenarioError(f"degradation {i}: target {d.target!r} is not an agent of the model"
                                f"{did_you_mean(d.target, agents)}", element=element)
        try:
            _number(owner, "at", d.at, positive=True, allow_zero=True)
            if d.duration is not None:
                duration = _number(owner, "duration", d.duration, positive=False)
                if duration <= 0:
                    raise ScenarioError(f"{owner}: duration={d.duration!r} must be positive: it "
                                        "would end before it starts (None: it never ends)")
            slower = _number(owner, "slower", d.slower, positive=True)
            if slower <= 0:
                raise ScenarioError(f"{owner}: slower={d.slower!r} must be positive")
            if not _probability(d.errors):
                raise ScenarioError(f"{owner}: errors={d.errors!r} must be a probability from 0 to 1")
        except ScenarioError as exc:
            raise ScenarioError(str(exc), element=element) from None
    for i, x in enumerate(partitions):
        element = ("partition", str(i))
        if not isinstance(x, Partition):
            raise ScenarioError(f"partition {i}: expected a Partition, got {x!r}", element=element)
        owner = f"partition {i}"
        for key in ("a", "b"):
            side = getattr(x, key)
            names = [side] if isinstance(side, str) else side
            if not isinstance(names, (list, tuple)) or not names:
                raise ScenarioError(f"{owner}: {key}={side!r} must name one agent or a list of agents",
                                    element=element)
            for name in names:
                if not isinstance(name, str) or name not in agents:
                    raise ScenarioError(f"{owner}: {key} names {name!r}, which is not an agent of "
                                        f"the model{did_you_mean(name, agents)}", element=element)
        a, b = x.sides
        both = sorted(set(a) & set(b))
        if both:
            raise ScenarioError(f"{owner}: {both[0]!r} is on both sides", element=element)
        try:
            _number(owner, "at", x.at, positive=True, allow_zero=True)
            _number(owner, "duration", x.duration, positive=True)
            if not isinstance(x.both_ways, bool):
                raise ScenarioError(f"{owner}: both_ways={x.both_ways!r} must be true or false")
        except ScenarioError as exc:
            raise ScenarioError(str(exc), element=element) from None


def _check_promise(p: Promise, agents: dict[str, Agent], promises: dict[str, Promise]) -> None:
    owner = f"promise {p.name!r}"

    def err(msg: str) -> ScenarioError:
        return ScenarioError(f"{owner}: {msg}", element=("promise", p.name))

    for role in ("promiser", "promisee"):
        who = getattr(p, role)
        if who not in agents:
            raise err(f"{role} {who!r} is not an agent of the model{did_you_mean(who, agents)}")
    if p.about is not None and p.about != p.promiser:
        raise ScenarioError(
            f"promise {p.name!r} is made by {p.promiser!r} on behalf of {p.about!r}: "
            "an agent can only promise its own behaviour",
            element=("promise", p.name),
        )
    if not isinstance(p.accepted, bool):
        raise err(f"accepted={p.accepted!r} must be true or false")
    if p.late not in ("wait", "fail"):
        raise err(f"late={p.late!r} must be 'wait' (go on with a late answer) or 'fail'")
    if p.timeout is not None:
        _number(owner, "timeout", p.timeout, positive=True)
        if p.conditions is None:
            raise err(f"timeout={p.timeout!r} is how long it waits for its calls, and it makes "
                      "none (no conditions)")
    if (isinstance(p.retries, bool) or not isinstance(p.retries, numbers.Integral)
            or not 0 <= p.retries <= MAX_RETRIES):
        raise err(f"retries={p.retries!r} must be a whole number from 0 to {MAX_RETRIES}")
    if p.retries and p.conditions is None:
        raise err(f"retries={p.retries!r} are more attempts of its calls, and it makes none "
                  "(no conditions)")
    if p.backoff is not None:
        b = p.backoff
        if not isinstance(b, Backoff):
            raise err(f"backoff must be a Backoff, got {b!r}")
        if not p.retries:
            raise err("a backoff is the wait before a retry, and it makes none (retries=0)")
        _number(owner, "backoff initial", b.initial, positive=True, allow_zero=True)
        _number(owner, "backoff multiplier", b.multiplier, positive=True)
        if b.multiplier < 1:
            raise err(f"backoff multiplier={b.multiplier!r} must be at least 1")
        if b.maximum is not None:
            _number(owner, "backoff maximum", b.maximum, positive=True, allow_zero=True)
        if b.jitter not in (None, "full", "equal"):
            raise err(f"backoff jitter={b.jitter!r} must be 'full', 'equal' or none")
    if p.retry_on is not None:
        if not isinstance(p.retry_on, tuple) or not p.retry_on or any(
                not isinstance(x, str) or x not in RETRY_ON for x in p.retry_on):
            raise err(f"retry_on={p.retry_on!r} must name one or more of {', '.join(RETRY_ON)}")
        if not p.retries:
            raise err("retry_on says which failures it retries, and it makes no retries "
                      "(retries=0)")
    if p.budget is not None:
        g = p.budget
        if not isinstance(g, RetryBudget):
            raise err(f"budget must be a RetryBudget, got {g!r}")
        if not p.retries:
            raise err("a budget caps its retries, and it makes none (retries=0)")
        _number(owner, "budget ratio", g.ratio, positive=True, allow_zero=True)
        _number(owner, "budget window", g.window, positive=True)
        if isinstance(g.minimum, bool) or not isinstance(g.minimum, numbers.Integral) \
                or g.minimum < 0:
            raise err(f"budget minimum={g.minimum!r} must be a whole number of at least 0")
    if p.breaker is not None:
        k = p.breaker
        if not isinstance(k, Breaker):
            raise err(f"breaker must be a Breaker, got {k!r}")
        if p.conditions is None:
            raise err("a breaker guards its calls, and it makes none (no conditions)")
        rate = _number(owner, "breaker failure_rate", k.failure_rate, positive=True)
        if rate > 1:
            raise err(f"breaker failure_rate={k.failure_rate!r} must be a share from 0 to 1")
        if k.per not in ("calls", "time"):
            raise err(f"breaker per={k.per!r} must be 'calls' (the last window calls) or 'time' "
                      "(the calls of the last window time units)")
        _number(owner, "breaker window", k.window, positive=True)
        if k.per == "calls" and (isinstance(k.window, bool) or not isinstance(
                k.window, numbers.Integral)):
            raise err(f"breaker window={k.window!r} counts calls: a whole number of at least 1")
        if k.minimum is not None and (isinstance(k.minimum, bool) or not isinstance(
                k.minimum, numbers.Integral) or k.minimum < 1):
            raise err(f"breaker minimum={k.minimum!r} must be a whole number of at least 1")
        if k.per == "calls" and k.least > k.window:
            raise err(f"breaker minimum={k.minimum!r} is more calls than its window "
                      f"({k.window!r}) remembers: it could never open")
        _number(owner, "breaker open_for", k.open_for, positive=True)
        if isinstance(k.trials, bool) or not isinstance(k.trials, numbers.Integral) \
                or not 1 <= k.trials <= 1_000_000:
            raise err(f"breaker trials={k.trials!r} must be a whole number of at least 1")
    if isinstance(p.body, Latency):
        _number(owner, "deadline", p.body.deadline, positive=True)
    elif not isinstance(p.body, Availability):
        raise err(f"body must be Availability() or Latency(deadline), got {p.body!r}")
    if p.conditions is None:
        return
    if not isinstance(p.conditions, Condition):
        raise err(f"conditions must be made with all_of, any_of, k_of or fallback, got "
                  f"{p.conditions!r}")
    _check_condition(p, p.conditions, promises, err)


def _check_condition(p: Promise, cond: Condition, promises: dict[str, Promise], err) -> None:  # type: ignore[no-untyped-def]
    n = len(cond.items)
    if n == 0:
        raise err(f"a {cond.rule}-of condition has no promises")
    if cond.rule not in ("all", "any", "k", "fallback") and not (cond.rule == "split"
                                                                and cond.shares):
        raise err(f"unknown condition rule {cond.rule!r}")
    if isinstance(cond.k, bool) or not isinstance(cond.k, int) or not 1 <= cond.k <= n:
        raise err(f"k={cond.k!r} must be a whole number from 1 to the {n} promises it chooses from")
    if (cond.rule in ("any", "fallback") and cond.k != 1) or (cond.rule in ("all", "split")
                                                              and cond.k != n):
        raise err(f"an {cond.rule}-of condition over {n} promises has k={cond.k}; use k_of for that")
    if cond.rule == "fallback" and n < 2:
        raise err(f"a fallback needs a promise to call first and at least one to fall back on, "
                  f"got {list(cond.items)!r}")
    if cond.hedge is not None:
        if cond.rule != "any":
            raise err(f"hedge is for a choice (any_of), not a {cond.rule}-of condition")
        h = cond.hedge
        if not _real(h) or not 0 < h < math.inf:
            raise err(f"hedge={h!r} must be a positive, finite time")
        if n < 2:
            raise err("a hedge sends a second copy to another provider, and this choice has one")
    if (cond.choose, cond.mode, cond.detect) != ("first", "pull", 0.0):
        if cond.rule != "any":
            raise err(f"choose, mode and detect are for a choice (any_of), not a {cond.rule}-of "
                      "condition")
        if cond.choose not in ("first", "random"):
            raise err(f"choose={cond.choose!r} must be 'first' or 'random'")
        if cond.mode not in ("pull", "push"):
            raise err(f"mode={cond.mode!r} must be 'pull' or 'push'")
        if cond.mode == "push" and cond.choose != "first":
            raise err("a push-mode choice stays with its provider: choose must be 'first'")
        d = cond.detect
        if not _real(d) or not 0 <= d < math.inf:
            raise err(f"detect={d!r} must be a non-negative, finite time")
    for item in cond.items:
        if isinstance(item, Condition):
            _check_condition(p, item, promises, err)
            continue
        q = promises.get(item)
        if q is None:
            raise err(f"condition {item!r} is not a promise of the model"
                      f"{did_you_mean(item, promises)}")
        if q.promisee != p.promiser:
            raise err(
                f"condition {item!r} is made by {q.promiser!r} to {q.promisee!r}, not to "
                f"{p.promiser!r}: a promise can only rely on promises made to its own promiser; "
                f"make {item!r} to {p.promiser!r}, or let {p.promiser!r} make its own promise to "
                f"{q.promiser!r}"
            )
        if not q.accepted:
            raise err(
                f"condition {item!r} is used by {p.promiser!r}, which has not accepted it "
                "(accepted=False): relying on a promise means accepting it"
            )


def _topological(promises: dict[str, Promise]) -> list[Promise]:
    order: list[Promise] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = stack[stack.index(name):] + [name]
            raise ScenarioError(
                "conditions form a cycle: " + " -> ".join(repr(c) for c in cycle)
                + " (a promise cannot depend on itself through its conditions)",
                element=("promise", name),
            )
        state[name] = 1
        p = promises[name]
        if p.conditions is not None:
            for dep in dict.fromkeys(p.conditions.promises()):
                visit(dep, stack + [name])
        state[name] = 2
        order.append(p)

    for name in promises:
        visit(name, [])
    return order


def _call_tree(workload: Workload, promises: dict[str, Promise]) -> CallNode:
    count = 0

    def node(name: str, path: str, delays: tuple[float, float] = (0.0, 0.0),
             hop: Distribution | None = None, retries: int = 0) -> CallNode:
        nonlocal count
        count += 1
        if count > MAX_CALL_NODES:
            raise ScenarioError(
                f"workload {workload.label!r}: its call tree exceeds {MAX_CALL_NODES} nodes",
                element=("workload", workload.label),
            )
        p = promises[name]
        is_request = isinstance(p.body, Latency)
        # An availability condition is a check of state, not a call: nothing below it is called.
        cond = (condition(p.conditions, path, "", p.retries)
                if is_request and p.conditions is not None else None)
        later = tuple(replace(node(name, f"{path}~{j}", delays, hop), attempt=j)
                      for j in range(1, retries + 1)) if is_request else ()
        return CallNode(index[name], path, is_request, cond, delays[0], delays[1], hop, 0, later)

    def condition(c: Condition, path: str, position: str, retries: int) -> CallCondition:
        # The item's position within the condition makes the path unique even when one
        # promise appears in several branches (names cannot contain "/").
        delays = c.delays or ((0.0, 0.0),) * len(c.items)
        items = tuple(
            condition(item, path, f"{position}{j}.", retries) if isinstance(item, Condition)
            else node(item, f"{path}/{position}{j}/{item}", delays[j], c.hop, retries)
            for j, item in enumerate(c.items)
        )
        return CallCondition(c.rule, c.k, items, f"{path}/{position}{c.rule}", c.choose, c.mode,
                             c.detect, c.hedge, c)

    index = {name: i for i, name in enumerate(promises)}
    return node(workload.promise, f"{workload.label}/{workload.promise}")


def build_spec(
    name: str,
    time_unit: str,
    agents: list[Agent],
    promises: list[Promise],
    workloads: list[Workload],
    outages: list[Outage],
    observers: list[Observer] = [],
    interior: dict[str, str] | None = None,
    messages_per_call: dict[str, int] | None = None,
    scaled: list | None = None,
    degradations: list[Degrade] | None = None,
    partitions: list[Partition] | None = None,
    objectives: list[Objective] | None = None,
    alerts: list[Alert] | None = None,
) -> ModelSpec:
    """Validate the parts of a model and freeze them. Raises :class:`ScenarioError`.

    ``outages`` may hold :class:`StartUp` entries (made by scaling)."""
    startups = [o for o in outages if isinstance(o, StartUp)]
    outages = [o for o in outages if not isinstance(o, StartUp)]
    agent_map: dict[str, Agent] = {}
    for a in agents:
        _check_name("agent", a.name)
        if a.name in agent_map:
            raise ScenarioError(f"agent {a.name!r} is defined twice", element=("agent", a.name))
        _check_agent(a)
        agent_map[a.name] = a
    promise_map: dict[str, Promise] = {}
    for p in promises:
        _check_name("promise", p.name)
        if p.name in promise_map:
            raise ScenarioError(f"promise {p.name!r} is defined twice", element=("promise", p.name))
        promise_map[p.name] = p
    for p in promises:
        _check_promise(p, agent_map, promise_map)
    ordered = _topological(promise_map)
    ordered_map = {p.name: p for p in ordered}

    labels: set[str] = set()
    for i, w in enumerate(workloads):
        if w.name is not None and (not isinstance(w.name, str) or not w.name.strip()):
            raise ScenarioError(f"workloads[{i}]: name {w.name!r} must be a non-empty string")
        if w.name is not None:
            _check_name("workload", w.name)
        owner = f"workload {w.label!r}"
        if w.label in labels:
            raise ScenarioError(f"{owner} is defined twice; give each a distinct name",
                                element=("workload", w.label))
        labels.add(w.label)
        p = promise_map.get(w.promise)
        if p is None:
            raise ScenarioError(f"{owner}: promise {w.promise!r} is not a promise of the model"
                                f"{did_you_mean(w.promise, promise_map)}",
                                element=("workload", w.label))
        if not isinstance(p.body, Latency):
            raise ScenarioError(
                f"{owner}: requests go to latency promises; {w.promise!r} promises availability",
                element=("workload", w.label),
            )
        try:
            if (w.rate is None) == (w.interarrival is None):
                raise ScenarioError(f"{owner}: give either rate or interarrival, not "
                                    f"{'both' if w.rate is not None else 'neither'}")
            if w.rate is not None:
                _number(owner, "rate", w.rate, positive=True)
            elif not isinstance(w.interarrival, Distribution) or w.interarrival.mean <= 0:
                raise ScenarioError(f"{owner}: interarrival must be a distribution with a positive "
                                    f"mean, got {w.interarrival!r}")
            start = _number(owner, "start", w.start, positive=True, allow_zero=True)
            if w.end is not None and _number(owner, "end", w.end, positive=True) <= start:
                raise ScenarioError(f"{owner}: end={w.end!r} must come after start={w.start!r}")
        except ScenarioError as exc:
            raise ScenarioError(str(exc), element=("workload", w.label)) from None
    for i, o in enumerate(outages):
        owner = f"outage {i} of {o.target!r}"
        if o.target not in agent_map:
            raise ScenarioError(f"outage {i}: target {o.target!r} is not an agent of the model"
                                f"{did_you_mean(o.target, agent_map)}", element=("outage", str(i)))
        try:
            _number(owner, "at", o.at, positive=True, allow_zero=True)
            _number(owner, "duration", o.duration, positive=True)
            if not isinstance(o.drain, bool):
                raise ScenarioError(f"{owner}: drain={o.drain!r} must be true or false")
        except ScenarioError as exc:
            raise ScenarioError(str(exc), element=("outage", str(i))) from None

    _check_injections(list(degradations or ()), list(partitions or ()), agent_map)

    names: set[str] = set()
    for o in observers:
        _check_name("observer", o.name)
        owner = f"observer {o.name!r}"
        if o.name in names:
            raise ScenarioError(f"{owner} is defined twice", element=("observer", o.name))
        names.add(o.name)
        p = promise_map.get(o.promise)
        if p is None:
            raise ScenarioError(f"{owner}: promise {o.promise!r} is not a promise of the model"
                                f"{did_you_mean(o.promise, promise_map)}",
                                element=("observer", o.name))
        if interior and o.promise in interior:
            raise ScenarioError(
                f"{owner}: {o.promise!r} is an interior promise of {interior[o.promise]!r}; "
                "observers outside see only its exterior promises", element=("observer", o.name))
        if isinstance(o.probe, (bool, np.bool_)) and o.probe and o.interval is None:
            raise ScenarioError(f"{owner}: a probe sends requests every interval; give one "
                                "(it cannot probe at maintenance runs)", element=("observer", o.name))
        if o.interval is None:
            f = agent_map[p.promiser].failures
            if f is None or f.maintenance is None:
                raise ScenarioError(
                    f"{owner}: without an interval it checks at the maintenance runs of "
                    f"{p.promiser!r}, which has no maintenance", element=("observer", o.name))
        elif not isinstance(o.interval, Distribution) or o.interval.mean <= 0:
            raise ScenarioError(f"{owner}: interval must be a distribution with a positive mean, "
                                f"got {o.interval!r}", element=("observer", o.name))
        if not isinstance(o.probe, (bool, np.bool_)):
            raise ScenarioError(f"{owner}: probe={o.probe!r} must be true or false",
                                element=("observer", o.name))
        if o.probe:
            if not isinstance(p.body, Latency):
                raise ScenarioError(f"{owner}: probes are requests, which go to latency "
                                    f"promises; {o.promise!r} promises availability",
                                    element=("observer", o.name))
            if o.name in labels:
                raise ScenarioError(f"{owner}: its probes are the workload named {o.name!r}, and "
                                    "a workload already has that name", element=("observer", o.name))
            labels.add(o.name)
            workloads = [*workloads, o.workload()]
    check_objectives(list(objectives or ()), set(promise_map))
    check_alerts(list(alerts or ()), {o.label: o for o in objectives or ()})
    trees = tuple(_call_tree(w, ordered_map) for w in workloads)
    return ModelSpec(
        name=name,
        time_unit=time_unit,
        agents=tuple(agents),
        promises=tuple(ordered),
        workloads=tuple(workloads),
        outages=tuple(outages),
        call_trees=trees,
        observers=tuple(observers),
        interior=dict(interior or {}),
        startups=tuple(startups),
        messages_per_call=dict(messages_per_call or {}),
        scaled=tuple(scaled or ()),
        degradations=tuple(degradations or ()),
        partitions=tuple(partitions or ()),
        objectives=tuple(objectives or ()),
        alerts=tuple(alerts or ()),
        agent_index={a.name: i for i, a in enumerate(agents)},
        promise_index={p.name: i for i, p in enumerate(ordered)},
    )
