"""The importance-sampling estimator of the probability of missing an objective, against a
closed form and against plain replications."""

import math

import pytest

import promisesim as ps
from promisesim.rare import probability_missed

pytestmark = pytest.mark.slow

DAY = 86_400.0
W, REPAIR, MEAN_UP, DELTA = 28 * DAY, 3_600.0, 30 * DAY, 60.0


def one_agent(k):
    """An agent up for exponential times (mean 30 days) and repaired in exactly 1 h, judged by
    time over 28 days with a budget of (k - 1) h + 60 s of downtime. A window misses it iff the
    k-th failure starts more than 60 s before its end: iff U_1 + ... + U_k + (k - 1) h < W - 60,
    a Gamma(k) variable: P(Poisson((W - 60 - (k - 1) h) / 30 days) >= k)."""
    m = ps.Model("one agent", time_unit="s")
    a = m.agent("a", failures=ps.Failures(ps.Exponential(mean=MEAN_UP), ps.Deterministic(REPAIR)))
    up = m.promise(a, to=m.agent("u"), body=ps.Availability(), name="up")
    m.objective(up, target=1 - ((k - 1) * REPAIR + DELTA) / W, window=W, name="slo")
    return m


def exact(k):
    x = (W - DELTA - (k - 1) * REPAIR) / MEAN_UP
    return 1 - sum(math.exp(-x) * x ** j / math.factorial(j) for j in range(k))


def test_a_rare_miss_near_one_in_twenty_thousand_within_its_interval():
    """k = 7: p = 5.1e-5. Tilted seven-fold, 2,000 replications give a 95% interval within
    20% of the estimate (plain replications would need about 2 million)."""
    p = exact(7)
    assert 4e-5 < p < 6e-5
    est = probability_missed(one_agent(7), "slo", horizon=W, tilt={"a": 7.0},
                             replications=2_000, seed=1)
    assert abs(est.probability - p) <= 3 * est.stderr, (est, p)
    assert est.ci_low <= p <= est.ci_high
    assert est.relative_half_width < 0.2
    assert est.misses > 500         # misses are common under the tilt


def test_importance_sampling_and_plain_replications_agree_where_both_are_feasible():
    """k = 4: p = 0.0149. Plain replications (tilt 1: the plain share of windows missed) and
    a four-fold tilt both cover it."""
    p = exact(4)
    plain = probability_missed(one_agent(4), "slo", horizon=W, tilt={"a": 1.0},
                               replications=20_000, seed=2)
    result = ps.simulate(one_agent(4), horizon=W, replications=20_000, seed=2)
    assert plain.probability == pytest.approx(1 - result.objectives["met"].mean(), rel=1e-12)
    tilted = probability_missed(one_agent(4), "slo", horizon=W, tilt={"a": 4.0},
                                replications=2_000, seed=3)
    for est in (plain, tilted):
        assert abs(est.probability - p) <= 3 * est.stderr, (est, p)
    gap = abs(plain.probability - tilted.probability)
    assert gap <= 3 * math.hypot(plain.stderr, tilted.stderr)
    assert tilted.stderr < plain.stderr   # ten times fewer replications, tighter


@pytest.mark.parametrize("call,message", [
    (dict(tilt={"b": 2.0}), "'b' is not an agent of the model"),
    (dict(tilt={"a": 0.5}), "0.5 must be a factor of at least 1"),
    (dict(tilt={"u": 2.0}), "'u' must fail with an exponential time to failure"),
    (dict(tilt={}), "tilt must map agent names to factors"),
    (dict(objective="nope"), "objective 'nope' is not one of the model's"),
])
def test_bad_calls_are_clear_errors(call, message):
    kwargs = dict(objective="slo", horizon=W, tilt={"a": 2.0}, replications=2, seed=0)
    kwargs.update(call)
    model = one_agent(4)
    with pytest.raises(ps.ScenarioError, match=message):
        probability_missed(model, kwargs.pop("objective"), **kwargs)
