"""Super-agents: expansion, closed forms, common-mode outages, nesting, files, errors."""

import math
import re

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim import analytic
from promisesim.dists import Deterministic as D
from promisesim.dists import Exponential

Z = 4.0


def failing(mttf, mttr):
    return ps.Failures(time_to_failure=Exponential(mean=mttf), time_to_repair=Exponential(mean=mttr))


def kept(result, promise):
    row = result.summary(["kept_fraction"]).set_index("promise").loc[promise]
    return row["mean"], row["stderr"]


@pytest.mark.slow
def test_two_of_three_super_agent_availability():
    mttf, mttr = 20.0, 5.0
    m = ps.Model("2-of-3")
    group = m.super_agent("cluster", size=3, member=ps.AgentTemplate(failures=failing(mttf, mttr)),
                          rule="k", k=2)
    m.promise(group, to=m.agent("u"), body=ps.Availability(), name="up")
    mean, se = kept(ps.simulate(m, horizon=10_000.0, replications=30, seed=21), "up")
    a = analytic.availability(mttf, mttr)
    assert abs(mean - (3 * a**2 - 2 * a**3)) <= 3 * se


@pytest.mark.slow
def test_common_mode_ceiling():
    """Members up with probability p each, the whole group with 1 - q: any-of availability is
    (1 - q)(1 - (1 - p)^n)."""
    m = ps.Model("common mode")
    group = m.super_agent("region", size=3, member=ps.AgentTemplate(failures=failing(20.0, 5.0)),
                          failures=failing(50.0, 2.0))
    m.promise(group, to=m.agent("u"), body=ps.Availability(), name="up")
    mean, se = kept(ps.simulate(m, horizon=10_000.0, replications=30, seed=22), "up")
    p, q = analytic.availability(20.0, 5.0), 1 - analytic.availability(50.0, 2.0)
    assert abs(mean - (1 - q) * analytic.parallel(p, p, p)) <= Z * se


@pytest.mark.slow
def test_nested_super_agents_compose():
    m = ps.Model("nested")
    tmpl = ps.AgentTemplate(failures=failing(20.0, 5.0))
    east = m.super_agent("east", size=2, member=tmpl, rule="all")
    west = m.super_agent("west", size=2, member=tmpl, rule="all")
    both = m.super_agent("global", members=[east, west], rule="any")
    m.promise(both, to=m.agent("u"), body=ps.Availability(), name="up")
    mean, se = kept(ps.simulate(m, horizon=10_000.0, replications=30, seed=23), "up")
    a = analytic.availability(20.0, 5.0)
    assert abs(mean - analytic.parallel(a * a, a * a)) <= Z * se


def test_an_outage_of_a_super_agent_takes_every_member_down():
    m = ps.Model("outage")
    inner = m.super_agent("inner", size=2, member=ps.AgentTemplate())
    outer = m.super_agent("outer", members=[inner, m.agent("solo")], rule="any")
    m.promise(outer, to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.Outage(outer, at=2.0, duration=3.0))
    r = ps.simulate(m, horizon=10.0, seed=0)
    down = r.intervals[(r.intervals["state"] == "down")]
    assert set(down["entity"].astype(str)) == {"outer", "inner", "inner.0", "inner.1", "solo"}
    assert (down["start"] == 2.0).all() and (down["end"] == 5.0).all()
    assert r.promises.set_index("promise").loc["up", "kept_fraction"] == pytest.approx(0.7)


def test_requests_are_routed_to_one_member_that_is_up():
    m = ps.Model("routing")
    group = m.super_agent("api", size=3, member=ps.AgentTemplate(service_time=D(0.1)))
    serve = m.promise(group, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="serve")
    m.workload(serve, interarrival=D(1.0))
    m.inject(ps.Outage("api.0", at=2.5, duration=3.0))
    r = ps.simulate(m, horizon=10.5, seed=0)
    counts = r.promises.set_index("promise")["requests"]
    assert counts["serve"] == 10
    assert counts["serve@api.0"] == 7 and counts["serve@api.1"] == 3 and counts["serve@api.2"] == 0
    assert r.promises.set_index("promise").loc["serve", "request_kept_fraction"] == 1.0


def test_engines_agree_on_super_agents():
    m = ps.Model("both engines")
    u, db = m.agent("u"), m.agent("db", service_time=Exponential(0.05), failures=failing(30.0, 2.0))
    group = m.super_agent("api", size=3, rule="k", k=2, failures=failing(100.0, 1.0), hop=0.01,
                          member=ps.AgentTemplate(service_time=Exponential(0.1), servers=2,
                                                  failures=failing(20.0, 2.0)))
    q = m.promise(db, to=group, body=ps.Latency(deadline=0.5), name="query")
    serve = m.promise(group, to=u, body=ps.Latency(deadline=1.0), conditions=q, name="serve")
    m.workload(serve, rate=3.0)
    ref = ps.simulate(m, horizon=300.0, replications=3, seed=2, engine="reference")
    vec = ps.simulate(m, horizon=300.0, replications=3, seed=2, engine="vector")
    for table in ("promises", "events", "requests"):
        pd.testing.assert_frame_equal(getattr(ref, table), getattr(vec, table), check_exact=True,
                                      check_flags=False)


def test_super_agents_round_trip_through_yaml(schema_valid):
    from promisesim.scenario import scenario_from_text

    m = ps.Model("yaml")
    tmpl = ps.AgentTemplate(failures=failing(10.0, 1.0), service_time=Exponential(0.2), servers=2)
    a = m.super_agent("a", size=2, member=tmpl, rule="k", k=1, failures=failing(90.0, 3.0),
                      hop=0.002)
    b = m.super_agent("b", members=[a, m.agent("c")], rule="all", service_time=D(0.01))
    m.promise(b, to=m.agent("u"), body=ps.Availability(), name="p")
    schema_valid(m.to_dict())
    again = scenario_from_text(ps.dump_scenario(m)).model
    assert again.super_agents == m.super_agents
    assert again.spec() == m.spec()


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 2, "members": ["x"], "member": ps.AgentTemplate()}, "not both"),
    ({}, "not neither"),
    ({"size": 0, "member": ps.AgentTemplate()}, "size=0"),
    ({"size": 2}, "member template"),
    ({"members": ["nobody"]}, "member 'nobody' is not an agent"),
    ({"size": 3, "member": ps.AgentTemplate(), "rule": "k", "k": 4}, "k=4"),
    ({"size": 3, "member": ps.AgentTemplate(), "rule": "most"}, "rule='most'"),
    ({"size": 3, "member": ps.AgentTemplate(), "k": 2}, "k is only for rule='k'"),
    ({"size": 3, "member": ps.AgentTemplate(), "hop": -1.0}, "hop=-1.0"),
])
def test_bad_super_agents_are_refused(kwargs, message):
    m = ps.Model("bad")
    m.agent("x")
    m.super_agent("g", **kwargs)
    with pytest.raises(ps.ScenarioError, match=f"super-agent 'g'.*{message}"):
        m.spec()


def test_super_agents_cannot_contain_each_other():
    m = ps.Model("loop")
    m.super_agent("a", members=["b"])
    m.super_agent("b", members=["a"])
    with pytest.raises(ps.ScenarioError, match="contain each other"):
        m.spec()


def quorum(n, hop, deadline, servers=4):
    m = ps.Model("quorum")
    group = m.super_agent("store", size=n, rule="k", k=n // 2 + 1, hop=hop,
                          member=ps.AgentTemplate(service_time=Exponential(0.004), servers=servers))
    read = m.promise(group, to=m.agent("u"), body=ps.Latency(deadline=deadline), name="read")
    m.workload(read, rate=5.0)
    return m


def test_a_growing_quorum_gets_slow_and_talks_more():
    """Fixed hop latency, the front fans out one message after another: from 3 to 21
    members the read promise is kept less and less often, and messages grow with size."""
    sizes = list(range(3, 23, 2))
    kept_share, messages, requests = [], [], []
    for n in sizes:
        r = ps.simulate(quorum(n, hop=0.004, deadline=0.05), horizon=1_000.0, replications=4,
                        seed=1)
        promises = r.promises.set_index("promise")
        kept_share.append(r.summary(["request_kept_fraction"]).set_index("promise")
                          .loc["read", "mean"])
        messages.append(int(r.messages["messages"].sum()))
        requests.append(int(promises.loc["read", "requests"].sum()))
    assert all(b <= a for a, b in zip(kept_share, kept_share[1:]))   # monotone
    assert kept_share[0] - kept_share[-1] > 0.5
    # two messages per member per read (less the few calls still in flight at the horizon,
    # at most one read per replication): the internal cost grows with the size
    for n, sent, reads in zip(sizes, messages, requests):
        assert 2 * n * reads - 2 * n * 4 <= sent <= 2 * n * reads
    assert all(b > a for a, b in zip(messages, messages[1:]))


@pytest.mark.slow
def test_quorum_latency_is_the_kth_order_statistic():
    """No hop and no queueing: a read is kept iff at least k of the n members answer within
    the deadline, each with probability p = 1 - exp(-d / mean)."""
    import math

    n, deadline = 5, 0.005
    r = ps.simulate(quorum(n, hop=0.0, deadline=deadline, servers=50), horizon=4_000.0,
                    replications=10, seed=31)
    row = r.summary(["request_kept_fraction"]).set_index("promise").loc["read"]
    p = 1 - math.exp(-deadline / 0.004)
    expected = analytic.k_of_n(n // 2 + 1, p, n=n)
    assert abs(row["mean"] - expected) <= Z * row["stderr"]


def test_a_cold_start_leaves_an_exact_unserved_window():
    """Scale from 1 to 3 members at t=100 with a deterministic 20 s start-up: a 2-of-n quorum
    is broken until the new members serve at 120; shrinking to 2 at 300 keeps it."""
    m = ps.Model("cold start")
    web = m.super_agent("web", size=1, rule="k", k=2, startup=20.0,
                        member=ps.AgentTemplate(service_time=Exponential(0.05)))
    m.promise(web, to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.ScaleTo(web, size=3, at=100.0))
    m.inject(ps.ScaleTo(web, size=2, at=300.0))
    for engine in ("reference", "vector"):
        r = ps.simulate(m, horizon=400.0, seed=0, engine=engine)
        kept = r.promises.set_index("promise")["kept_fraction"]
        assert kept["up"] == pytest.approx(280.0 / 400.0)
        assert kept["up@web.1"] == pytest.approx(280.0 / 400.0)       # serving from 120 on
        assert kept["up@web.2"] == pytest.approx(180.0 / 400.0)       # from 120 to 300
        assert r.causes.query("promise == 'up'")["duration"].tolist() == [120.0]


def test_new_members_serve_after_start_up_and_engines_agree():
    """A choice routes to the first member that is up (fail-over): while web.0 is down the
    members added at 100 take over, but only once their 5 s start-up is over."""
    m = ps.Model("scale and fail over")
    web = m.super_agent("web", size=1, startup=5.0,
                        member=ps.AgentTemplate(service_time=Exponential(0.2), servers=2))
    serve = m.promise(web, to=m.agent("u"), body=ps.Latency(deadline=2.0), name="serve")
    m.workload(serve, rate=1.5)
    m.inject(ps.ScaleTo(web, size=3, at=100.0))
    m.inject(ps.Outage("web.0", at=90.0, duration=60.0))
    ref = ps.simulate(m, horizon=300.0, replications=2, seed=3, engine="reference")
    vec = ps.simulate(m, horizon=300.0, replications=2, seed=3, engine="vector")
    for table in ("promises", "events", "requests"):
        pd.testing.assert_frame_equal(getattr(ref, table), getattr(vec, table), check_exact=True,
                                      check_flags=False)
    rq = vec.requests
    backup = rq[rq["promise"] == "serve@web.1"]
    assert len(backup) > 0
    assert backup["arrival"].min() >= 105.0 and backup["arrival"].max() < 150.0
    exterior = rq[rq["promise"] == "serve"]
    gap = exterior[(exterior["arrival"] >= 90.0) & (exterior["arrival"] < 105.0)]
    assert len(gap) > 0 and not gap["kept"].any()          # nobody serves in the gap


@pytest.mark.parametrize("injection, message", [
    (ps.ScaleTo("nobody", size=2, at=1.0), "not a super-agent"),
    (ps.ScaleTo("listed", size=2, at=1.0), "copies of a template"),
    (ps.ScaleTo("web", size=0, at=1.0), "size=0"),
    (ps.ScaleTo("web", size=2, at=-1.0), "at=-1.0"),
])
def test_bad_scaling_is_refused(injection, message):
    m = ps.Model("bad scaling")
    m.super_agent("web", size=1, member=ps.AgentTemplate())
    m.super_agent("listed", members=[m.agent("x")])
    m.inject(injection)
    with pytest.raises(ps.ScenarioError, match=message):
        m.spec()


def test_scaling_round_trips_through_yaml(schema_valid):
    from promisesim.scenario import scenario_from_text

    m = ps.Model("yaml scaling")
    web = m.super_agent("web", size=2, startup=3.0, member=ps.AgentTemplate())
    m.promise(web, to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.ScaleTo(web, size=5, at=10.0))
    m.inject(ps.Outage("web", at=1.0, duration=2.0))
    schema_valid(m.to_dict())
    again = scenario_from_text(ps.dump_scenario(m)).model
    assert again.scalings == m.scalings and again.spec() == m.spec()


def test_all_to_all_adds_an_exchange_round():
    """n members, hop h: member j gets the request after (j + 1) h, exchanges with the n - 1
    others ((n - 1) h) and answers (h): the slowest answer comes after 2 n h, and each member
    costs n + 1 messages per request."""
    n, hop = 4, 0.01
    m = ps.Model("consensus")
    grp = m.super_agent("grp", size=n, rule="all_to_all", hop=hop, member=ps.AgentTemplate())
    p = m.promise(grp, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="write")
    m.workload(p, interarrival=ps.Deterministic(1.0))
    for engine in ("reference", "vector"):
        r = ps.simulate(m, horizon=10.5, seed=0, engine=engine)
        rq = r.requests
        latency = rq[rq["promise"] == "write"]["latency"]
        assert np.allclose(latency, 2 * n * hop)
        assert r.messages["messages"].sum() == 10 * n * (n + 1)


@pytest.mark.parametrize("policy, message", [
    (dict(utilisation=0.0), "utilisation=0.0"), (dict(utilisation=1.5), "utilisation=1.5"),
    (dict(interval=0.0), "interval=0.0"), (dict(delay=-1.0), "delay=-1.0"),
    (dict(min_size=3), "must be in order"), (dict(max_size=1), "must be in order"),
    (dict(cooldown=math.inf), "cooldown=inf"),
])
def test_bad_autoscalers_are_refused(policy, message):
    m = ps.Model("bad autoscaler")
    web = m.super_agent("web", size=2, member=ps.AgentTemplate())
    m.inject(ps.Autoscaler(web, **policy))
    with pytest.raises(ps.ScenarioError, match=re.escape(message)) as info:
        m.spec()
    assert info.value.element == ("autoscaler", "web")


def test_autoscaler_needs_a_load_balanced_template_group():
    m = ps.Model("bad autoscaler")
    m.super_agent("quorum", size=3, rule="k", k=2, member=ps.AgentTemplate())
    m.inject(ps.Autoscaler("quorum"))
    with pytest.raises(ps.ScenarioError, match="rule='any'"):
        m.spec()
    m = ps.Model("bad autoscaler")
    m.super_agent("web", size=2, member=ps.AgentTemplate())
    m.inject(ps.Autoscaler("web"))
    m.inject(ps.ScaleTo("web", size=3, at=1.0))
    with pytest.raises(ps.ScenarioError, match="one autoscaler and no scale_to"):
        m.spec()


def test_scaling_features_round_trip_through_yaml(schema_valid):
    from promisesim.scenario import scenario_from_text

    m = ps.Model("yaml scaling features")
    web = m.super_agent("web", size=2, startup=Exponential(30.0), warm_startup=1.0, reuse=0.4,
                        balance="random",
                        member=ps.AgentTemplate(limit=8, slowdown=0.05, servers=2))
    api = m.agent("api", limit=100)
    a = m.promise(web, to=api, body=ps.Latency(deadline=2.0), name="a")
    b = m.promise(m.agent("spare"), to=api, body=ps.Latency(deadline=2.0), name="b")
    p = m.promise(api, to=m.agent("u"), body=ps.Latency(deadline=3.0), name="p",
                  conditions=ps.any_of(a, b, mode="push", detect=5.0))
    m.workload(p, rate=2.0)
    m.workload(p, rate=8.0, start=100.0, end=200.0, name="spike")
    m.inject(ps.Autoscaler(web, utilisation=0.6, interval=30.0, delay=5.0, min_size=1,
                           max_size=6, cooldown=60.0))
    m.inject(ps.Outage("spare", at=10.0, duration=5.0, drain=True))
    m.super_agent("ring", size=3, rule="all_to_all", hop=Exponential(0.01), member=ps.AgentTemplate())
    m.promise("ring", to=api, body=ps.Latency(deadline=1.0), name="ring-write")
    schema_valid(m.to_dict())
    again = scenario_from_text(ps.dump_scenario(m)).model
    assert again.to_dict() == m.to_dict()
    assert again.spec() == m.spec()
    assert {"autoscaler", "draining", "push-mode choice", "detection delay", "random choice",
            "capacity limit", "load-dependent slowdown", "random hop latency"} <= m.spec().features


def test_observers_see_only_exterior_promises():
    m = ps.Model("inside")
    grp = m.super_agent("grp", size=2, member=ps.AgentTemplate())
    m.promise(grp, to=m.agent("u"), body=ps.Availability(), name="up")
    m.observe("up", interval=D(1.0))
    m.spec()
    m.observe("up@grp.0", interval=D(1.0), name="peek")
    with pytest.raises(ps.ScenarioError, match="observer 'peek'.*interior promise of 'grp'"):
        m.spec()
