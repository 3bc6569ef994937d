"""Diagnostics of the promise graph, with no simulation, and the knock-out experiment.

* :func:`bindings`: every promise, whether its promisee accepted it (a
  binding) or not (an imposition).
* :func:`single_leaves`: for each promise, the agents whose failure alone
  breaks it (single points of failure), found by evaluating the graph with
  one agent down at a time.
* :func:`conflicts`: promises of one agent that cannot all be kept: a deadline
  shorter than the agent's shortest possible service time, or more offered
  load than its servers can carry.
* :func:`agent_cycles`: agents that depend on each other in a loop through
  their promises' conditions (allowed, but worth knowing).
* :func:`valency`: each agent's number of bindings, against an optional limit.
* :func:`knockout`: removes each agent in turn (down for the whole horizon)
  and ranks the agents by the damage to the promises; it simulates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .dists import Deterministic, Empirical, Uniform
from .model.injections import Outage
from .model.model import Model
from .model.promises import Condition, Latency
from .model.spec import CallCondition, CallNode, ModelSpec

__all__ = ["bindings", "single_leaves", "conflicts", "agent_cycles", "valency", "knockout"]


def _spec(model: Model | ModelSpec) -> ModelSpec:
    return model.spec() if isinstance(model, Model) else model


def bindings(model: Model | ModelSpec) -> pd.DataFrame:
    """One row per promise: ``promise, promiser, promisee, body, accepted, kind``.

    ``kind`` is ``"binding"`` when the promisee accepted the offer and
    ``"imposition"`` when it did not (simulated, never delivered).
    """
    spec = _spec(model)
    return pd.DataFrame({
        "promise": [p.name for p in spec.promises],
        "promiser": [p.promiser for p in spec.promises],
        "promisee": [p.promisee for p in spec.promises],
        "body": [type(p.body).__name__.lower() for p in spec.promises],
        "accepted": [p.accepted for p in spec.promises],
        "kind": ["binding" if p.accepted else "imposition" for p in spec.promises],
    })


def _standing_without(spec: ModelSpec, down: int | None) -> np.ndarray:
    """Which promises stand when only agent ``down`` is down (None: nobody)."""
    standing = np.zeros(len(spec.promises), dtype=bool)

    def holds(c: Condition) -> bool:
        count = sum(holds(i) if isinstance(i, Condition) else bool(standing[spec.promise_index[i]])
                    for i in c.items)
        return count >= c.k

    for i, p in enumerate(spec.promises):  # dependency order
        up = spec.agent_index[p.promiser] != down
        standing[i] = up and (p.conditions is None or holds(p.conditions))
    return standing


def single_leaves(model: Model | ModelSpec) -> pd.DataFrame:
    """Single points of failure: for each promise, the other agents whose failure alone breaks it.

    A promise's own promiser is left out (every promise needs its promiser);
    a choice (any-of) or a k-of-n condition with enough providers removes
    an agent from the list. Returns one row per (promise, agent) with
    ``promise, agent``; an empty frame means no single leaves.

    Examples
    --------
    >>> import promisesim as ps
    >>> m = ps.Model("spof")
    >>> api, db, a, b, u = (m.agent(n) for n in ("api", "db", "a", "b", "u"))
    >>> d = m.promise(db, to=api, body=ps.Availability(), name="d")
    >>> x = m.promise(a, to=api, body=ps.Availability(), name="x")
    >>> y = m.promise(b, to=api, body=ps.Availability(), name="y")
    >>> _ = m.promise(api, to=u, body=ps.Availability(), name="up",
    ...               conditions=ps.all_of(d, ps.any_of(x, y)))
    >>> single_leaves(m).query("promise == 'up'")["agent"].tolist()
    ['db']
    """
    spec = _spec(model)
    rows = []
    for a, agent in enumerate(spec.agents):
        standing = _standing_without(spec, a)
        for i, p in enumerate(spec.promises):
            if not standing[i] and p.promiser != agent.name:
                rows.append((p.name, agent.name))
    return pd.DataFrame(rows, columns=["promise", "agent"])


def _minimum(dist: Any) -> float:
    if isinstance(dist, Deterministic):
        return dist.value
    if isinstance(dist, Uniform):
        return dist.low
    if isinstance(dist, Empirical):
        return min(dist.values)
    return 0.0   # exponential, log-normal: any positive time is possible


def _offered(spec: ModelSpec) -> np.ndarray:
    """Requests per time unit reaching each agent if every call is made (an upper bound):
    a random choice spreads its load evenly, a version gets its largest share of a split."""
    load = np.zeros(len(spec.agents))
    promiser = [spec.agent_index[p.promiser] for p in spec.promises]

    def walk(item: CallNode | CallCondition, rate: float) -> None:
        if isinstance(item, CallNode):
            if item.is_request:
                load[promiser[item.promise]] += rate
                if item.condition is not None:
                    walk(item.condition, rate)
            return
        n = len(item.items)
        for j, sub in enumerate(item.items):
            if item.rule == "split" and item.source is not None and item.source.shares:
                walk(sub, rate * max(k[1][j] for k in item.source.shares))
            elif item.rule == "any" and item.choose == "random":
                walk(sub, rate / n)
            else:
                walk(sub, rate)

    for workload, tree in zip(spec.workloads, spec.call_trees):
        walk(tree, 1.0 / workload.gaps.mean)
    return load


def conflicts(model: Model | ModelSpec) -> pd.DataFrame:
    """Promises one agent cannot keep: ``agent, promise, conflict, detail``.

    * ``"deadline below service time"``: a latency promise whose deadline is
      shorter than the promiser's shortest possible service time.
    * ``"overcommitted capacity"``: the load offered to the agent by every
      workload (if all calls are made) times its mean service time reaches
      its number of servers: its queue grows without bound, so its latency
      promises cannot all be kept. One row per latency promise of the agent.
    * ``"timeout beyond its deadline"``: a latency promise whose promiser waits
      for each call at least as long as the whole request may take: a call it
      gives up on has already made the request late, so the timeout protects
      nothing (set it below the deadline, less the promiser's own work).
    * ``"retries without backoff or budget"``: a promise that retries calls it
      gives up on (it has a timeout) at once and without a retry budget: when its
      provider is slow, every retry adds load to it just then, the start of a
      retry storm.
    * ``"retries can overload"``: a promise that retries calls to a latency
      promise whose promiser is busy enough that, were every call retried as
      often as allowed, its offered load would reach its servers (utilisation
      times ``1 + retries`` at least 1), with neither a retry budget nor a circuit
      breaker to bound the extra load: a slowdown there can turn into a retry
      storm that outlasts it (a metastable failure). One row per such provider.
    """
    spec = _spec(model)
    rows = []
    load = _offered(spec)
    for a, agent in enumerate(spec.agents):
        utilisation = load[a] * agent.service_time.mean / agent.servers
        for p in spec.promises:
            if p.promiser != agent.name or not isinstance(p.body, Latency):
                continue
            shortest = _minimum(agent.service_time)
            if shortest > p.body.deadline:
                rows.append((agent.name, p.name, "deadline below service time",
                             f"deadline {p.body.deadline:g} < shortest service {shortest:g}"))
            if p.retries and p.timeout is not None and p.budget is None and (
                    p.backoff is None or p.backoff.initial == 0):
                rows.append((agent.name, p.name, "retries without backoff or budget",
                             f"{p.retries} retries at once, without a budget, of calls that "
                             f"time out after {p.timeout:g}"))
            if p.retries and p.budget is None and p.breaker is None and p.conditions is not None:
                for q in dict.fromkeys(p.conditions.promises()):
                    provider = spec.promises[spec.promise_index[q]]
                    if not isinstance(provider.body, Latency):
                        continue
                    b = spec.agents[spec.agent_index[provider.promiser]]
                    busy = load[spec.agent_index[b.name]] * b.service_time.mean / b.servers
                    if 0 < busy < 1 <= busy * (1 + p.retries):
                        rows.append((agent.name, p.name, "retries can overload",
                                     f"{b.name} at utilisation {busy:.3g} would need "
                                     f"{busy * (1 + p.retries):.3g} if every call to {q!r} were "
                                     f"retried {p.retries} time(s); no budget or breaker bounds it"))
            if p.timeout is not None and p.timeout >= p.body.deadline:
                rows.append((agent.name, p.name, "timeout beyond its deadline",
                             f"timeout {p.timeout:g} >= deadline {p.body.deadline:g}"))
            if utilisation >= 1.0:
                rows.append((agent.name, p.name, "overcommitted capacity",
                             f"offered load {load[a]:g}/time unit needs utilisation "
                             f"{utilisation:.3g} of {agent.servers} server(s)"))
    return pd.DataFrame(rows, columns=["agent", "promise", "conflict", "detail"])



def agent_cycles(model: Model | ModelSpec) -> list[list[str]]:
    """Loops of agents that depend on each other through conditions (``[a, b, a]`` each)."""
    spec = _spec(model)
    depends: dict[str, set[str]] = {a.name: set() for a in spec.agents}
    for p in spec.promises:
        if p.conditions is not None:
            for q in p.conditions.promises():
                depends[p.promiser].add(spec.promises[spec.promise_index[q]].promiser)
    cycles: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()

    def visit(node: str, stack: list[str]) -> None:
        for nxt in sorted(depends[node]):
            if nxt in stack:
                cycle = stack[stack.index(nxt):] + [nxt]
                loop = cycle[:-1]
                first = loop.index(min(loop))
                key = tuple(loop[first:] + loop[:first])   # one key per directed cycle
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif len(stack) < len(depends):
                visit(nxt, stack + [nxt])

    for start in depends:
        visit(start, [start])
    return cycles


def valency(model: Model | ModelSpec, limit: int | None = None) -> pd.DataFrame:
    """Each agent's bindings: promises it made that were accepted, plus promises it accepted.

    Returns ``agent, made, accepted, bindings, over_limit`` (``over_limit`` is
    False when no limit is given). A limit in the spirit of Dunbar's number
    marks agents with more relationships than they can keep track of.
    """
    spec = _spec(model)
    made = {a.name: 0 for a in spec.agents}
    accepted = {a.name: 0 for a in spec.agents}
    for p in spec.promises:
        if p.accepted:
            made[p.promiser] += 1
            accepted[p.promisee] += 1
    frame = pd.DataFrame({"agent": list(made), "made": list(made.values()),
                          "accepted": list(accepted.values())})
    frame["bindings"] = frame["made"] + frame["accepted"]
    frame["over_limit"] = frame["bindings"] > limit if limit is not None else False
    return frame


def knockout(model: Model, *, horizon: float, replications: int = 20,
             seed: int | np.random.SeedSequence | None = 0,
             engine: str = "auto", metric: str = "kept_fraction") -> pd.DataFrame:
    """Remove each agent in turn and rank the agents by the damage done.

    Each agent is knocked out by an outage covering the whole horizon; every
    run uses the same seed (common random numbers), so differences are the
    knock-out's, not noise. Damage is the sum, over every promise, of the
    fall of ``metric`` (mean over replications) from the baseline: the
    agent's own promises (which always break) and every promise that
    depends on it. The default metric, the share of time kept, is defined
    for every promise; with a request metric, a promise no request reaches
    after the knock-out counts as fully fallen.

    Returns
    -------
    pandas.DataFrame
        ``agent, damage, promises_hurt, own_promises`` sorted by damage,
        largest first; ``promises_hurt`` counts promises whose metric fell.
    """
    from .experiment import simulate

    spec = model.spec()
    # one root for every run, even when seed is None: common random numbers
    seed = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    # only the per-promise metrics are needed: no request records (unless a probe reads them),
    # no changes of state, so memory stays one batch's
    lean = dict(record_requests=any(o.probe for o in spec.observers), record_changes=False,
                progress=False)
    baseline = simulate(spec, horizon=horizon, replications=replications, seed=seed,
                        engine=engine, **lean)
    base = baseline.promises.groupby("promise", observed=True, sort=False)[metric].mean()
    rows = []
    data = model.to_dict()
    for agent in spec.agents:
        knocked = Model.from_dict(data)
        knocked.inject(Outage(agent.name, at=0.0, duration=2.0 * horizon))
        result = simulate(knocked, horizon=horizon, replications=replications, seed=seed,
                          engine=engine, **lean)
        after = result.promises.groupby("promise", observed=True, sort=False)[metric].mean()
        fall = (base - after.reindex(base.index).fillna(0.0)).fillna(0.0).clip(lower=0.0)
        rows.append((agent.name, float(fall.sum()), int((fall > 1e-12).sum()),
                     sum(1 for p in spec.promises if p.promiser == agent.name)))
    frame = pd.DataFrame(rows, columns=["agent", "damage", "promises_hurt", "own_promises"])
    frame = frame.sort_values(["damage", "promises_hurt"], ascending=False, kind="stable",
                              ignore_index=True)
    frame.attrs.update(baseline.attrs)
    frame.attrs["metric"] = metric
    return frame
