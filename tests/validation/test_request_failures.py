"""Request-level failures against closed forms: error answers, error bursts, partitions.

Each model runs on the vector engine for the estimate, which must be within 3
standard errors (across replications) of the closed form, and on the reference
engine for its first replications (replication ``r`` depends only on the seed
and ``r``), whose tables must be identical to the vector engine's. Arrivals are Poisson, so the share of requests that meet a
condition of time is the share of time it holds (PASTA).
"""

import math

import pandas as pd
import pytest

import promisesim as ps
from promisesim.dists import Exponential

pytestmark = pytest.mark.slow

Z = 3.0


def both_engines(model, horizon, replications, seed, compared=2):
    vec = ps.simulate(model, horizon=horizon, replications=replications, seed=seed,
                      engine="vector", record_requests=False)
    ref = ps.simulate(model, horizon=horizon, replications=compared, seed=seed,
                      engine="reference", record_requests=False)
    first = vec.promises[vec.promises["replication"] < compared]
    pd.testing.assert_frame_equal(ref.promises, first, check_exact=True, check_flags=False)
    return vec


def request_estimate(result, promise):
    row = result.summary(["request_kept_fraction"]).set_index("promise").loc[promise]
    return row["mean"], row["stderr"]


def assert_close(mean, stderr, expected):
    assert stderr > 0
    assert abs(mean - expected) <= Z * stderr, (mean, stderr, expected)


def test_a_chain_with_error_probabilities_keeps_their_product():
    """users -> a1 -> a2 -> a3: a request is kept iff no answer on its way is an error:
    (1 - p1)(1 - p2)(1 - p3) of them (service is fast against the deadlines)."""
    ps_ = (0.05, 0.10, 0.02)
    m = ps.Model("error chain")
    agents = [m.agent(f"a{i}", service_time=Exponential(0.001), errors=p)
              for i, p in enumerate(ps_, start=1)]
    p3 = m.promise(agents[2], to=agents[1], body=ps.Latency(deadline=10.0), name="p3")
    p2 = m.promise(agents[1], to=agents[0], body=ps.Latency(deadline=10.0), name="p2", conditions=p3)
    p1 = m.promise(agents[0], to=m.agent("users"), body=ps.Latency(deadline=10.0), name="p1",
                   conditions=p2)
    m.workload(p1, rate=10.0)
    r = both_engines(m, 2_000.0, 20, 21, compared=1)
    expected = (1 - ps_[0]) * (1 - ps_[1]) * (1 - ps_[2])
    mean, se = request_estimate(r, "p1")
    assert_close(mean, se, expected)
    assert se < 0.003   # power: a miss of 1% would fail


def test_bursty_errors_keep_one_minus_the_bad_state_errors():
    """Errors 0.6 in bursts (rate 1/90, mean 10: the bad state's stationary share is 0.1),
    none between: 1 - 0.6 * 0.1 = 0.94 of requests are kept."""
    bursts = ps.Bursts(rate=1 / 90, mean_duration=10.0, errors=0.6)
    assert bursts.bad_share == pytest.approx(0.1)
    m = ps.Model("bursts")
    api = m.agent("api", errors=bursts)
    serve = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="serve")
    m.workload(serve, rate=1.0)
    horizon = 40_000.0
    r = both_engines(m, horizon, 20, 5, compared=1)
    mean, se = request_estimate(r, "serve")
    assert_close(mean, se, 1 - bursts.error_probability())
    assert se < 0.004
    # the bias of starting between bursts: the bad share's transient integrates to
    # pi * (1 / (rate + 1 / mean_duration)) / horizon = 2.25e-5 of the horizon: negligible


def test_a_partition_from_the_only_provider_breaks_its_share_of_requests():
    """A partition of d between a caller and its only provider breaks d/H of requests."""
    d, horizon = 1_500.0, 10_000.0
    m = ps.Model("partition")
    db = m.agent("db", service_time=Exponential(0.001))
    api = m.agent("api")
    q = m.promise(db, to=api, body=ps.Latency(deadline=1.0), name="query")
    serve = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="serve",
                      conditions=q)
    m.workload(serve, rate=1.0)
    m.inject(ps.Partition(api, db, at=2_000.0, duration=d))
    r = both_engines(m, horizon, 20, 9)
    mean, se = request_estimate(r, "serve")
    assert_close(mean, se, 1 - d / horizon)
    assert se < 0.005


def test_a_timeout_on_an_m_m_1_provider_keeps_its_response_time_distribution():
    """api calls db (M/M/1: arrival 0.5, service rate 1) and gives up after tau: a call is kept
    iff db's response time, exponential with rate mu - lambda, is at most tau. db still serves
    every call, so its own promise (deadline 3) keeps 1 - exp(-(mu - lambda) 3)."""
    arrival, mu, tau, deadline = 0.5, 1.0, 1.0, 3.0
    m = ps.Model("timeout")
    api = m.agent("api", service_time=Exponential(1e-9))
    db = m.agent("db", service_time=Exponential(1 / mu))
    query = m.promise(db, to=api, body=ps.Latency(deadline=deadline), name="query")
    serve = m.promise(api, to=m.agent("u"), body=ps.Latency(deadline=1e9), name="serve",
                      conditions=query, timeout=tau)
    m.workload(serve, rate=arrival)
    r = both_engines(m, 20_000.0, 16, 1)
    mean, se = request_estimate(r, "serve")
    assert_close(mean, se, 1 - math.exp(-(mu - arrival) * tau))
    assert se < 0.006   # power: 0.39 against 0.78 without the timeout
    mean, se = request_estimate(r, "query")
    assert_close(mean, se, 1 - math.exp(-(mu - arrival) * deadline))


def test_a_two_of_three_quorum_absorbs_a_failed_call_when_the_other_two_answer():
    """api reads from three replicas answering errors with probability p and needs two: a
    failed call is absorbed iff both other calls of its request answered, (1 - p)^2 of
    them; a state-based view sees no break at all (the replicas never go down)."""
    p = 0.2
    m = ps.Model("quorum")
    replicas = [m.agent(f"r{i}", service_time=Exponential(0.001), errors=p) for i in range(3)]
    api = m.agent("api", service_time=Exponential(0.001))
    reads = [m.promise(a, to=api, body=ps.Latency(deadline=10.0), name=f"read@{a.name}")
             for a in replicas]
    serve = m.promise(api, to=m.agent("u"), body=ps.Latency(deadline=10.0), name="serve",
                      conditions=ps.k_of(2, *reads))
    m.workload(serve, rate=1.0)
    vec = ps.simulate(m, horizon=4_000.0, replications=12, seed=37, engine="vector")
    ref = ps.simulate(m, horizon=4_000.0, replications=1, seed=37, engine="reference")
    first = vec.request_absorbed[vec.request_absorbed["replication"] == 0]
    pd.testing.assert_frame_equal(ref.request_absorbed, first.reset_index(drop=True))
    table = vec.request_absorbed.groupby("replication")[["failed_calls", "absorbed"]].sum()
    share = (table["absorbed"] / table["failed_calls"]).to_numpy()
    assert_close(share.mean(), share.std(ddof=1) / math.sqrt(share.size), (1 - p) ** 2)
    assert share.std(ddof=1) / math.sqrt(share.size) < 0.01
    assert (vec.absorbed["upstream_breaks"] == 0).all()


def test_retries_keep_all_but_the_calls_whose_every_attempt_errs():
    """Errors with probability p on each attempt, independent (keyed draws per attempt):
    with k retries a call fails only if all k + 1 attempts do, p^(k + 1) of them, and the
    provider receives 1 + p + ... + p^k requests per call."""
    p, k = 0.3, 2
    m = ps.Model("retries")
    db = m.agent("db", service_time=Exponential(0.001), errors=p)
    api = m.agent("api", service_time=Exponential(0.001))
    query = m.promise(db, to=api, body=ps.Latency(deadline=10.0), name="query")
    serve = m.promise(api, to=m.agent("u"), body=ps.Latency(deadline=10.0), name="serve",
                      conditions=query, retries=k)
    m.workload(serve, rate=2.0)
    r = both_engines(m, 2_000.0, 8, 13, compared=1)
    mean, se = request_estimate(r, "serve")
    assert_close(mean, se, 1 - p ** (k + 1))
    assert se < 0.003   # power: no retries would keep 0.7
    per = r.promises.set_index(["replication", "promise"])["requests"].unstack()
    ratio = (per["query"] / per["serve"]).to_numpy()
    assert_close(ratio.mean(), ratio.std(ddof=1) / math.sqrt(ratio.size), 1 + p + p ** 2)
