"""The probability of missing a demanding objective, by importance sampling of failure rates.

A 99.99% objective is missed rarely; plain replications need about ``100 / p``
of them for a 20% confidence interval on a probability ``p``. Here agents fail
``tilt`` times as often as the model says (their times to failure are
exponential, so the tilted model is the same model with shorter means), which
makes misses common, and each window's outcome is weighted by the likelihood
ratio of the failure processes' draws up to its end:

    L = prod over tilted agents of  c^(-n) * exp((c - 1) * lambda * U)

where ``n`` is the agent's failures before the window's end, ``U`` its time up
(exposed to failure) before it, ``lambda`` its failure rate and ``c`` its tilt.
The mean of ``1{missed} * L`` over the windows estimates the probability that a
window misses the objective, without bias; its standard error is taken across
replications (the windows of one replication are not independent). The failure
processes are recomputed from the same keyed streams the engines draw from.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ._renewal import renewal_instants
from ._timeline import _last_at_or_before
from .dists import Exponential
from .errors import ScenarioError
from .model.model import Model

__all__ = ["RareEstimate", "probability_missed"]


@dataclass(frozen=True)
class RareEstimate:
    """An estimate of the probability that a window misses an objective.

    Attributes
    ----------
    probability, stderr, ci_low, ci_high : float
        The estimate, its standard error and confidence interval (normal, clipped at 0).
    replications, windows : int
        Replications run and windows judged.
    misses : int
        Windows that missed the objective in the tilted runs (the weighted hits).
    confidence : float
    """

    probability: float
    stderr: float
    ci_low: float
    ci_high: float
    replications: int
    windows: int
    misses: int
    confidence: float

    @property
    def relative_half_width(self) -> float:
        return (self.ci_high - self.probability) / self.probability if self.probability > 0 \
            else math.inf


def _tilted(model: Model, tilt: dict[str, float]) -> tuple[Model, dict[str, tuple[float, float]]]:
    """The model with the tilted agents' failure rates multiplied, and per tilted agent
    (original rate, tilt)."""
    data = model.to_dict()
    agents = {a["name"]: a for a in data["agents"]}
    rates = {}
    for name, c in tilt.items():
        entry = agents.get(name)
        if entry is None:
            raise ScenarioError(f"tilt: {name!r} is not an agent of the model (super-agents' "
                                "members and versions cannot be tilted)")
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not 1 <= c < math.inf:
            raise ScenarioError(f"tilt: {name!r}: {c!r} must be a factor of at least 1")
        agent = next(a for a in model.agents if a.name == name)
        failures = agent.failures
        if failures is None or failures.maintenance is not None or not isinstance(
                failures.time_to_failure, Exponential):
            raise ScenarioError(f"tilt: {name!r} must fail with an exponential time to failure "
                                "(and no maintenance) for its rate to be tilted")
        mean = failures.time_to_failure.mean
        entry["failures"]["time_to_failure"] = {"exponential": {"mean": mean / float(c)}}
        rates[name] = (1.0 / mean, float(c))
    return Model.from_dict(data), rates


def _failures_before(row: np.ndarray, instant: np.ndarray, phase: np.ndarray, q_rep: np.ndarray,
                     q_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query (replication, instant): the failures that began before the instant, and the
    time down before it. Instants are sorted by (row, time), alternately failures (phase 0)
    and repairs (phase 1) from a start up."""
    fail = np.flatnonzero(phase == 0)
    f_rep, f_time = row[fail], instant[fail]
    following = fail + 1
    repaired = following < instant.size
    repaired[repaired] = row[following[repaired]] == f_rep[repaired]
    repair = np.full(fail.size, np.inf)
    repair[repaired] = instant[following[repaired]]
    # time down over the failures before each one, within its replication
    length = np.where(repaired, repair - f_time, 0.0)
    before = np.concatenate([[0.0], np.cumsum(length)])
    row_first = np.searchsorted(f_rep, f_rep, side="left")
    done = before[:-1] - before[row_first]
    # the last failure of the query's replication that began before its instant
    k = _last_at_or_before(f_rep, f_time, q_rep, np.nextafter(q_end, -np.inf))
    found = k >= 0
    n = np.zeros(q_rep.size)
    down = np.zeros(q_rep.size)
    kk = k[found]
    n[found] = kk - np.searchsorted(f_rep, q_rep[found], side="left") + 1
    down[found] = done[kk] + np.minimum(repair[kk], q_end[found]) - f_time[kk]
    return n, down


def probability_missed(model: Model, objective: str, *, horizon: float, tilt: dict[str, float],
                       replications: int, seed: int | None = None, engine: str = "auto",
                       confidence: float = 0.95) -> RareEstimate:
    """Estimate the probability that a window misses ``objective`` (its label), with agents
    failing ``tilt[agent]`` times as often and every window weighted by its likelihood ratio.

    ``horizon`` is in the model's time unit (each replication judges the objective's
    calendar windows within it); ``tilt`` maps agent names to factors of at least 1 on their
    failure rates (1 everywhere is plain Monte Carlo); the tilted agents must fail with
    exponential times to failure. Returns a :class:`RareEstimate` (a probability per window).
    """
    from .experiment import simulate
    from .random import Streams

    if not isinstance(tilt, dict) or not tilt:
        raise ScenarioError("tilt must map agent names to factors (at least one)")
    spec = model.spec()
    found = [o for o in spec.objectives if o.label == objective]
    if not found:
        raise ScenarioError(f"objective {objective!r} is not one of the model's: "
                            f"{[o.label for o in spec.objectives]}")
    if found[0].rolling:
        raise ScenarioError(f"objective {objective!r}: rolling windows overlap; the estimator "
                            "takes calendar windows")
    tilted, rates = _tilted(model, tilt)
    result = simulate(tilted, horizon=horizon, replications=replications, seed=seed,
                      engine=engine, record_requests=True)
    table = result.objectives
    table = table[table["objective"] == objective]
    rep = table["replication"].to_numpy(dtype=np.int64)
    end = table["end"].to_numpy(dtype=np.float64)
    missed = ~table["met"].to_numpy(dtype=bool)
    log_l = np.zeros(rep.size)
    streams = Streams(result.seed_sequence)
    reps = np.arange(replications)
    for name, (rate, c) in rates.items():
        agent = result.spec.agents[result.spec.agent_index[name]]
        keys = [streams.keys(reps, "time_to_failure", name), streams.keys(reps, "time_to_repair", name)]
        row, instant, phase = renewal_instants(keys, [agent.failures.time_to_failure,  # type: ignore[union-attr]
                                                      agent.failures.time_to_repair], horizon)  # type: ignore[union-attr]
        n, down = _failures_before(row, instant, phase, rep, end)
        up = end - down
        log_l += -n * math.log(c) + (c - 1.0) * rate * up
    weighted = np.where(missed, np.exp(log_l), 0.0)
    per_rep = np.bincount(rep, weights=weighted, minlength=replications) / \
        np.maximum(np.bincount(rep, minlength=replications), 1)
    estimate = float(per_rep.mean())
    stderr = float(per_rep.std(ddof=1) / math.sqrt(replications)) if replications > 1 else math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    return RareEstimate(estimate, stderr, max(0.0, estimate - z * stderr), estimate + z * stderr,
                        replications, int(rep.size), int(missed.sum()), confidence)
