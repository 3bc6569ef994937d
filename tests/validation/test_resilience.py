"""A caller's defences against closed forms: circuit breakers and retry budgets (reference
engine: the vector engine leaves them to it), hedges and fallbacks (both engines, tables
identical). Estimates are means across replications, within 3 standard errors of the closed
form; arrivals are Poisson.
"""

import math

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim.dists import Deterministic

pytestmark = pytest.mark.slow

Z = 3.0


def caller_of_flaky(p, *, rate, **defences):
    """users -> api -> db, both instant; db answers an error with probability p."""
    m = ps.Model("flaky provider")
    db = m.agent("db", service_time=Deterministic(0.0), errors=p)
    api = m.agent("api", service_time=Deterministic(0.0))
    query = m.promise(db, to=api, body=ps.Latency(deadline=1.0), name="query")
    serve = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="serve",
                      conditions=query, **defences)
    m.workload(serve, rate=rate)
    return m


def per_replication_share(result, promise, outcome):
    rq = result.requests
    rq = rq[rq["promise"] == promise]
    hit = (rq["outcome"] == outcome).groupby(rq["replication"]).mean()
    return hit.to_numpy()


def assert_close(values, expected):
    mean, se = values.mean(), values.std(ddof=1) / math.sqrt(values.size)
    assert se > 0
    assert abs(mean - expected) <= Z * se, (mean, se, expected)
    return se


def test_a_breaker_that_opens_on_every_failure_keeps_its_renewal_share():
    """A breaker that opens on any failure (window 1, failure rate 1) for T, with a trial of
    one call. From one opening to the next: the lambda*T calls of the open period fail fast;
    then the trial fails (p: the next opening) or is kept, and the closed breaker passes calls
    until one fails, 1/p of them on average, (1-p)/p kept. Per cycle E[calls] = lambda*T + 1/p
    and E[kept] = (1-p)/p: the share kept is (1-p)/(1 + p*lambda*T) (renewal-reward), and the
    share failed fast lambda*T / (lambda*T + 1/p)."""
    p, rate, T = 0.2, 10.0, 0.5
    m = caller_of_flaky(p, rate=rate, breaker=ps.Breaker(failure_rate=1.0, window=1, open_for=T))
    r = ps.simulate(m, horizon=400.0, replications=10, seed=5, engine="reference")
    kept = per_replication_share(r, "query", "kept")
    se = assert_close(kept, (1 - p) / (1 + p * rate * T))          # 0.4
    assert se < 0.01   # power: without the breaker 1 - p = 0.8 are kept
    fast = per_replication_share(r, "query", "breaker_open")
    assert_close(fast, rate * T / (rate * T + 1 / p))               # 0.5
    # the callers' requests are kept exactly when their one call is
    np.testing.assert_array_equal(per_replication_share(r, "serve", "kept"), kept)
    states = r.breakers
    assert set(states["state"].astype(str)) == {"open", "half_open", "closed"}


def test_a_retry_budget_holds_retries_to_its_share_of_first_attempts():
    """Every attempt errs and every call wants a retry; a budget with ratio b and no floor
    over a window W lets through a retry only while fewer than b times the first attempts of
    the last W have been retried: retries / first attempts stays within [b - 1/(lambda W), b +
    1/(lambda W)] (one retry of slack per window), and near b since every call asks."""
    b, rate, W = 0.2, 10.0, 10.0
    m = caller_of_flaky(1.0, rate=rate, retries=1,
                        budget=ps.RetryBudget(ratio=b, window=W, minimum=0))
    r = ps.simulate(m, horizon=500.0, replications=4, seed=8, engine="reference")
    rq = r.requests[r.requests["promise"] == "query"]
    per = rq.groupby("replication")["attempt"].agg(["size", "sum"])
    firsts, retries = per["size"] - per["sum"], per["sum"]
    share = (retries / firsts).to_numpy()
    slack = 1 / (rate * W)
    assert ((share >= b - slack) & (share <= b + slack)).all(), share
    unbudgeted = ps.simulate(caller_of_flaky(1.0, rate=rate, retries=1), horizon=50.0, seed=8,
                             engine="reference").requests
    assert unbudgeted["attempt"].sum() == (unbudgeted["attempt"] == 0).sum() // 2


def test_a_hedged_request_to_two_exponential_replicas_takes_the_shifted_minimum():
    """Replicas a and b answer in independent Exp(mu) times (enough servers that nobody
    queues); the caller calls a and, after h without an answer, b too. The response T is X_a
    if X_a <= h, else min(X_a, h + X_b): P(T > t) = e^{-mu t} for t <= h and
    e^{-mu t} e^{-mu (t - h)} beyond, so a deadline d > h is met with probability
    1 - e^{-mu (2d - h)}, and E[T] = (1 - e^{-mu h}) / mu + e^{-mu h} / (2 mu)."""
    mu, h, d, rate = 1.0, 0.5, 1.5, 5.0
    m = ps.Model("hedged replicas")
    api = m.agent("api")
    pa, pb = (m.promise(m.agent(x, service_time=ps.Exponential(mean=1 / mu), servers=64),
                        to=api, body=ps.Latency(deadline=d), name=x) for x in ("a", "b"))
    serve = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=d), name="serve",
                      conditions=ps.any_of(pa, pb, hedge=h))
    m.workload(serve, rate=rate)
    r = ps.simulate(m, horizon=500.0, replications=8, seed=21, engine="vector")
    assert r.engine == "vector"
    ref = ps.simulate(m, horizon=500.0, replications=1, seed=21, engine="reference")
    pd.testing.assert_frame_equal(ref.requests, r.requests[r.requests["replication"] < 1]
                                  .reset_index(drop=True), check_exact=True, check_flags=False)
    kept = per_replication_share(r, "serve", "kept")
    se = assert_close(kept, 1 - math.exp(-mu * (2 * d - h)))        # 0.918
    assert se < 0.004   # power: without the hedge 1 - e^{-mu d} = 0.777
    rq = r.requests[(r.requests["promise"] == "serve") & r.requests["latency"].notna()]
    mean = rq.groupby("replication")["latency"].mean().to_numpy()
    assert_close(mean, (1 - math.exp(-mu * h)) / mu + math.exp(-mu * h) / (2 * mu))   # 0.697
    # the copy goes out for the requests a has not answered by h: e^{-mu h} of them
    sent = (r.requests["promise"] == "b").groupby(r.requests["replication"]).sum()
    first = (r.requests["promise"] == "a").groupby(r.requests["replication"]).sum()
    assert_close((sent / first).to_numpy(), math.exp(-mu * h))


def test_a_fallback_keeps_the_primarys_share_and_degrades_the_rest_it_saves():
    """Primary errs with p1, the fallback with p2, independently: kept 1 - p1,
    degraded p1 (1 - p2), failed p1 p2."""
    p1, p2 = 0.3, 0.2
    m = ps.Model("fallback")
    api = m.agent("api")
    q = m.promise(m.agent("db", service_time=Deterministic(0.0), errors=p1), to=api,
                  body=ps.Latency(deadline=1.0), name="query")
    c = m.promise(m.agent("cache", service_time=Deterministic(0.0), errors=p2), to=api,
                  body=ps.Latency(deadline=1.0), name="cached")
    serve = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="serve",
                      conditions=ps.fallback(q, c))
    m.workload(serve, rate=10.0)
    r = ps.simulate(m, horizon=300.0, replications=8, seed=4, engine="vector")
    assert r.engine == "vector"
    ref = ps.simulate(m, horizon=300.0, replications=2, seed=4, engine="reference")
    pd.testing.assert_frame_equal(ref.requests, r.requests[r.requests["replication"] < 2]
                                  .reset_index(drop=True), check_exact=True, check_flags=False)
    assert_close(per_replication_share(r, "serve", "kept"), 1 - p1)
    assert_close(per_replication_share(r, "serve", "degraded"), p1 * (1 - p2))
    assert_close(per_replication_share(r, "serve", "condition_failed"), p1 * p2)
