"""Limits under stress, scaling, choice and random hops against closed forms.
Tolerances of 4 standard errors, as in ``test_analytic``."""

import math

import pytest

import promisesim as ps
from promisesim import analytic
from promisesim.dists import Exponential

Z = 4.0


def assert_close(mean, stderr, expected, *, bias=0.0):
    assert stderr > 0
    assert abs(mean - expected) <= Z * stderr + bias, (mean, stderr, expected)


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_capacity_limit_blocks_like_mmck(engine):
    """A hidden limit of K requests on a single server: arrivals that find K inside are
    rejected, with the M/M/1/K blocking probability (PASTA)."""
    arrival, service, limit = 0.8, 1.0, 3
    m = ps.Model("M/M/1/K")
    s = m.agent("s", service_time=Exponential(mean=1 / service), limit=limit)
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=1e9), name="p")
    m.workload(p, rate=arrival)
    r = ps.simulate(m, horizon=3_000.0, replications=20, seed=22, engine=engine)
    rq = r.requests
    share = (rq["outcome"] == "rejected").groupby(rq["replication"]).mean()
    assert_close(share.mean(), share.std(ddof=1) / math.sqrt(len(share)),
                 analytic.mmck_blocking(arrival, service, 1, limit))


def failover_model(mode, detect, mttf=100.0, repair=10.0):
    """A primary that fails (Exp(mttf) up, a fixed repair) and a spare that never fails."""
    m = ps.Model("failover")
    u, api = m.agent("u"), m.agent("api")
    main = m.agent("main", failures=ps.Failures(Exponential(mean=mttf),
                                                 ps.Deterministic(repair)))
    spare = m.agent("spare")
    a = m.promise(main, to=api, body=ps.Latency(deadline=1.0), name="a")
    b = m.promise(spare, to=api, body=ps.Latency(deadline=1.0), name="b")
    p = m.promise(api, to=u, body=ps.Latency(deadline=1.0),
                  conditions=ps.any_of(a, b, mode=mode, detect=detect), name="p")
    m.workload(p, rate=0.5)
    return m


def test_failover_costs_failure_rate_times_detection_delay():
    """Pull mode with fail-back: every failure of the primary breaks the requests of its
    first ``d`` time units (repairs last longer than ``d``), so the broken share is
    ``d / (MTTF + MTTR)``: the failure rate times the detection delay."""
    mttf, repair, d = 100.0, 10.0, 2.0
    r = ps.simulate(failover_model("pull", d, mttf, repair), horizon=20_000.0, replications=12,
                    seed=31)
    rows = r.promises.set_index(["promise", "replication"]).loc["p"]
    broken = 1.0 - rows["request_kept_fraction"]
    assert_close(broken.mean(), broken.std(ddof=1) / math.sqrt(len(broken)),
                 d / (mttf + repair))
    # push mode moves to the spare at the first failure and stays: almost nothing breaks
    r = ps.simulate(failover_model("push", d, mttf, repair), horizon=20_000.0, replications=12,
                    seed=31)
    rows = r.promises.set_index(["promise", "replication"]).loc["p"]
    assert (1.0 - rows["request_kept_fraction"]).mean() < 0.1 * d / (mttf + repair)


def test_warm_starts_come_with_the_reuse_probability():
    """Scale 1 -> 2 at t=10: the new member reuses a warm container (2 s start-up) with
    probability 0.3, else starts cold (20 s). At t=15 it serves iff its start was warm."""
    m = ps.Model("warm or cold")
    web = m.super_agent("web", size=1, startup=20.0, warm_startup=2.0, reuse=0.3,
                        member=ps.AgentTemplate())
    m.promise(web, to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.ScaleTo(web, size=2, at=10.0))
    r = ps.simulate(m, horizon=40.0, replications=400, seed=5, engine="reference")
    kept = r.promises.set_index(["promise", "replication"]).loc["up@web.1", "kept_fraction"]
    warm = kept > 0.5                                # up from 12 (28/40) or from 30 (10/40)
    assert set(kept.round(9)) == {round(28 / 40, 9), round(10 / 40, 9)}
    assert_close(warm.mean(), warm.std(ddof=1) / math.sqrt(len(warm)), 0.3)
    # same seed, same draws, in either engine
    again = ps.simulate(m, horizon=40.0, replications=400, seed=5, engine="vector").promises
    assert again.equals(r.promises)


def test_random_hop_latency_makes_a_call_an_erlang_round_trip():
    """A super-agent routes each request to one member over a network with exponential hops
    (mean m) and members answer at once: the latency is Erlang(2), so
    P(T <= d) = 1 - exp(-d/m) (1 + d/m)."""
    mean, deadline = 0.01, 0.02
    m = ps.Model("random hops")
    grp = m.super_agent("grp", size=2, hop=Exponential(mean), member=ps.AgentTemplate())
    p = m.promise(grp, to=m.agent("u"), body=ps.Latency(deadline=deadline), name="p")
    m.workload(p, rate=5.0)
    r = ps.simulate(m, horizon=400.0, replications=10, seed=12)
    assert r.engine == "vector"
    assert ps.simulate(m, horizon=400.0, replications=2, seed=12, engine="reference").promises \
        .equals(ps.simulate(m, horizon=400.0, replications=2, seed=12).promises)
    kept = r.promises.set_index(["promise", "replication"]).loc["p", "request_kept_fraction"]
    x = deadline / mean
    assert_close(kept.mean(), kept.std(ddof=1) / math.sqrt(len(kept)),
                 1 - math.exp(-x) * (1 + x))
