"""Simulation against closed forms, with tolerances from the replications' standard error.

Each check uses a fixed seed (so the suite is deterministic) and a tolerance
of 4 standard errors (so almost any seed would pass: a two-sided 4-sigma
miss has probability 6e-5). Horizons are long against the time constants of
the model (1 / (failure rate + repair rate), the queue's relaxation time), so
the bias of starting every replication up and empty is far below that.
"""

import math

import pytest

import promisesim as ps
from promisesim import analytic
from promisesim.dists import Exponential

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("engine", ["reference", "vector"])]

Z = 4.0


def failing(mttf, mttr):
    return ps.Failures(time_to_failure=Exponential(mean=mttf), time_to_repair=Exponential(mean=mttr))


def estimate(result, promise, metric="kept_fraction"):
    frame = result.summary([metric]).set_index("promise")
    row = frame.loc[promise]
    return row["mean"], row["stderr"]


def assert_close(mean, stderr, expected, *, bias=0.0):
    assert stderr > 0
    assert abs(mean - expected) <= Z * stderr + bias, (mean, stderr, expected)


def test_one_agent_availability(engine):
    mttf, mttr, horizon = 100.0, 5.0, 20_000.0
    m = ps.Model("one")
    m.promise(m.agent("a", failures=failing(mttf, mttr)), to=m.agent("u"),
              body=ps.Availability(), name="up")
    r = ps.simulate(m, horizon=horizon, replications=40, seed=11, engine=engine)
    mean, se = estimate(r, "up")
    a = analytic.availability(mttf, mttr)
    # Exact expected time average when starting up (exponential times): the transient adds
    # (1 - A) / ((lambda + mu) * H) = 1.1e-5 here; include it rather than ignore it.
    rate = 1 / mttf + 1 / mttr
    assert_close(mean, se, a + (1 - a) * (1 - math.exp(-rate * horizon)) / (rate * horizon))
    assert se < 0.002  # the test has power: a 1% error in A would fail


def test_chain_of_three_conditional_promises_is_a_product(engine):
    m = ps.Model("chain")
    params = [(50.0, 2.0), (80.0, 4.0), (30.0, 1.0)]
    agents = [m.agent(f"a{i}", failures=failing(*p)) for i, p in enumerate(params)]
    u = m.agent("u")
    p2 = m.promise(agents[2], to=agents[1], body=ps.Availability(), name="p2")
    p1 = m.promise(agents[1], to=agents[0], body=ps.Availability(), conditions=p2, name="p1")
    m.promise(agents[0], to=u, body=ps.Availability(), conditions=p1, name="p0")
    r = ps.simulate(m, horizon=20_000.0, replications=40, seed=12, engine=engine)
    mean, se = estimate(r, "p0")
    assert_close(mean, se, analytic.series(*(analytic.availability(*p) for p in params)))
    # and each link on its own
    mean, se = estimate(r, "p2")
    assert_close(mean, se, analytic.availability(*params[2]))


def test_choice_between_two_providers_is_parallel(engine):
    mttf, mttr = 20.0, 5.0   # A = 0.8, so 1 - (1 - A)^2 = 0.96 is far from either
    m = ps.Model("choice")
    u, top = m.agent("u"), m.agent("top")
    offers = [m.promise(m.agent(n, failures=failing(mttf, mttr)), to=top, body=ps.Availability(),
                        name=n) for n in ("primary", "mirror")]
    m.promise(top, to=u, body=ps.Availability(), conditions=ps.any_of(*offers), name="served")
    r = ps.simulate(m, horizon=10_000.0, replications=40, seed=13, engine=engine)
    mean, se = estimate(r, "served")
    a = analytic.availability(mttf, mttr)
    assert_close(mean, se, analytic.parallel(a, a))


def test_two_of_three(engine):
    mttf, mttr = 20.0, 5.0
    m = ps.Model("2-of-3")
    u, top = m.agent("u"), m.agent("top")
    offers = [m.promise(m.agent(f"r{i}", failures=failing(mttf, mttr)), to=top,
                        body=ps.Availability(), name=f"r{i}") for i in range(3)]
    m.promise(top, to=u, body=ps.Availability(), conditions=ps.k_of(2, *offers), name="quorum")
    r = ps.simulate(m, horizon=10_000.0, replications=40, seed=14, engine=engine)
    mean, se = estimate(r, "quorum")
    a = analytic.availability(mttf, mttr)
    expected = analytic.k_of_n(2, a, n=3)
    assert expected == pytest.approx(3 * a**2 - 2 * a**3)
    assert_close(mean, se, expected)


def test_scheduled_outage_share_is_exact(engine):
    horizon = 1_000.0
    m = ps.Model("outage")
    m.promise(m.agent("a"), to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.Outage("a", at=250.0, duration=100.0))
    m.inject(ps.Outage("a", at=300.0, duration=100.0))   # overlapping: down [250, 400)
    m.inject(ps.Outage("a", at=950.0, duration=100.0))   # runs past the horizon
    r = ps.simulate(m, horizon=horizon, replications=3, seed=15, engine=engine)
    expected = 1 - (analytic.outage_share(horizon, 250.0, 150.0)
                    + analytic.outage_share(horizon, 950.0, 100.0))
    assert (r.promises["kept_fraction"] == expected).all()
    assert expected == pytest.approx(0.8)


def test_mm1_response_time(engine):
    arrival, service, deadline = 0.5, 1.0, 2.0
    m = ps.Model("M/M/1")
    s = m.agent("s", service_time=Exponential(mean=1 / service))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=deadline), name="p")
    m.workload(p, rate=arrival)
    r = ps.simulate(m, horizon=20_000.0, replications=20, seed=16, engine=engine)
    mean, se = estimate(r, "p", "request_kept_fraction")
    assert_close(mean, se, analytic.mm1_response_within(arrival, service, deadline))
    assert se < 0.005


def test_mmc_response_time_follows_erlang_c(engine):
    arrival, service, servers, deadline = 2.4, 1.0, 3, 1.5
    m = ps.Model("M/M/3")
    s = m.agent("s", service_time=Exponential(mean=1 / service), servers=servers)
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=deadline), name="p")
    m.workload(p, rate=arrival)
    r = ps.simulate(m, horizon=4_000.0, replications=16, seed=21, engine=engine)
    mean, se = estimate(r, "p", "request_kept_fraction")
    assert_close(mean, se, analytic.mmc_response_within(arrival, service, servers, deadline))
    assert se < 0.01


def test_call_then_queue_is_a_tandem_of_mm1_queues(engine):
    """api calls db, then queues its own work: a tandem of two M/M/1 queues. The sojourn
    times of one customer in the two stations are independent (Reich 1957), so the response
    time is the sum of Exp(mu1 - lambda) and Exp(mu2 - lambda)."""
    arrival, mu_db, mu_api, deadline = 0.5, 2.0, 1.0, 3.0
    m = ps.Model("tandem")
    u = m.agent("u")
    api = m.agent("api", service_time=Exponential(mean=1 / mu_api))
    db = m.agent("db", service_time=Exponential(mean=1 / mu_db))
    answers = m.promise(db, to=api, body=ps.Latency(deadline=1e9), name="answers")
    p = m.promise(api, to=u, body=ps.Latency(deadline=deadline), conditions=answers, name="p")
    m.workload(p, rate=arrival)
    r = ps.simulate(m, horizon=20_000.0, replications=16, seed=17, engine=engine)
    mean, se = estimate(r, "p", "request_kept_fraction")
    expected = analytic.tandem_mm1_response_within(arrival, (mu_db, mu_api), deadline)
    assert_close(mean, se, expected)
    assert se < 0.005

