"""Versions (forks): release, migrate, retire, undocumented changes, traffic splits."""

import re

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim.dists import Deterministic as D
from promisesim.dists import Exponential
from promisesim.model.promises import split_shares

Z = 4.0


def rollout(*events, traffic=None, rate=2.0):
    m = ps.Model("rollout")
    store = m.versions("store", {"v1": ps.AgentTemplate(service_time=Exponential(0.01)),
                                 "v2": ps.AgentTemplate(service_time=Exponential(0.01))},
                       traffic=traffic)
    app = m.agent("app")
    get = m.promise(store, to=app, body=ps.Latency(deadline=1.0), name="get")
    serve = m.promise(app, to=m.agent("u"), body=ps.Latency(deadline=2.0), conditions=get,
                      name="serve")
    m.workload(serve, rate=rate)
    for e in events:
        m.inject(e)
    return m


def test_split_is_linear_between_knots_and_steps_at_an_instant():
    knots = ((0.0, (1.0, 0.0)), (100.0, (1.0, 0.0)), (200.0, (0.2, 0.8)), (300.0, (0.2, 0.8)),
             (300.0, (0.0, 1.0)))
    assert split_shares(knots, 50.0) == (1.0, 0.0)
    assert split_shares(knots, 150.0) == pytest.approx((0.6, 0.4))
    assert split_shares(knots, 299.0) == pytest.approx((0.2, 0.8))
    assert split_shares(knots, 300.0) == (0.0, 1.0)


def test_migration_knots_come_from_the_events():
    m = rollout(ps.Migrate("store", "v2", at=100.0, share=0.8, over=100.0),
                ps.Migrate("store", "v2", at=300.0, share=1.0))
    spec = m.spec()
    split = spec.promises[spec.promise_index["get"]].conditions
    assert split.rule == "split"
    assert split.share_at(150.0) == pytest.approx((0.6, 0.4))
    assert split.share_at(250.0) == pytest.approx((0.2, 0.8))
    assert split.share_at(300.0) == pytest.approx((0.0, 1.0))


def test_retiring_a_version_breaks_exactly_the_unmigrated_share():
    """80% of the traffic moves to v2 at 100; v1 retires at 1000 of 2000: requests bound to
    v1 after that fail, so the kept share is 1 - 0.2 * (2000 - 1000) / 2000 = 0.9."""
    share, retire, horizon = 0.8, 1000.0, 2000.0
    m = rollout(ps.Migrate("store", "v2", at=100.0, share=share),
                ps.Retire("store", "v1", at=retire))
    r = ps.simulate(m, horizon=horizon, replications=12, seed=8)
    row = r.summary(["request_kept_fraction"]).set_index("promise").loc["serve"]
    expected = 1.0 - (1.0 - share) * (horizon - retire) / horizon
    assert abs(row["mean"] - expected) <= Z * row["stderr"], (row["mean"], expected)
    assert row["stderr"] < 0.005
    # the exterior availability promise is broken from the retirement on (v1 still bound)
    kept = r.promises.set_index(["promise", "replication"]).loc["get", "kept_fraction"]
    assert np.allclose(kept, retire / horizon)
    # migrate everyone first, and retiring v1 breaks nothing
    m = rollout(ps.Migrate("store", "v2", at=100.0), ps.Retire("store", "v1", at=retire))
    r = ps.simulate(m, horizon=horizon, replications=2, seed=8)
    promises = r.promises.set_index("promise")
    assert (promises.loc["serve", "request_kept_fraction"] == 1.0).all()
    assert (promises.loc["get", "kept_fraction"] == 1.0).all()


def test_an_undocumented_change_breaks_bound_consumers_until_they_adapt():
    m = rollout(ps.Migrate("store", "v2", at=0.0),
                ps.UndocumentedChange("store", "v2", at=50.0, adapt=20.0), rate=1.0)
    m.workloads[0] = ps.Workload("serve", interarrival=D(1.0))
    r = ps.simulate(m, horizon=100.0, seed=0)
    rq = r.requests
    serve = rq[rq["promise"] == "serve"]
    broken = serve[~serve["kept"]]["arrival"]
    assert list(broken) == [float(t) for t in range(50, 70)]
    cause = r.causes.query("promise == 'serve'")
    assert list(cause["root_causes"]) == ["store.v2"] and list(cause["duration"]) == [20.0]


def test_a_version_serves_only_once_released():
    m = rollout(ps.Release("store", "v2", at=30.0), traffic={"v1": 0.5, "v2": 0.5})
    m.workloads[0] = ps.Workload("serve", interarrival=D(1.0))
    r = ps.simulate(m, horizon=60.0, seed=0)
    rq = r.requests
    to_v2 = rq[rq["promise"] == "get@store.v2"]
    assert (to_v2[to_v2["arrival"] < 30.0]["outcome"] == "promiser_down").all()
    assert (to_v2[to_v2["arrival"] >= 30.0]["kept"]).all()
    assert 0 < (to_v2["arrival"] < 30.0).sum() < 30


def test_versions_round_trip_through_yaml_and_same_seed_same_results(schema_valid):
    from promisesim.scenario import scenario_from_text

    m = rollout(ps.Release("store", "v2", at=10.0),
                ps.Migrate("store", "v2", at=20.0, share=0.5, over=30.0),
                ps.Retire("store", "v1", at=80.0),
                ps.UndocumentedChange("store", "v2", at=60.0, adapt=5.0),
                traffic={"v1": 1.0})
    schema_valid(m.to_dict())
    again = scenario_from_text(ps.dump_scenario(m)).model
    assert again.to_dict() == m.to_dict()
    assert again.spec() == m.spec()
    a = ps.simulate(m, horizon=100.0, replications=2, seed=4)
    b = ps.simulate(again, horizon=100.0, replications=2, seed=4)
    assert a.requests.equals(b.requests)
    vec = ps.simulate(m, horizon=100.0, replications=2, seed=4, engine="vector")
    ref = ps.simulate(m, horizon=100.0, replications=2, seed=4, engine="reference")
    for table in ("promises", "intervals", "requests", "causes"):
        pd.testing.assert_frame_equal(getattr(ref, table), getattr(vec, table), check_exact=True,
                                      check_flags=False)


@pytest.mark.parametrize("make, message", [
    (lambda: rollout(ps.Migrate("store", "v3", at=1.0)), "version 'v3' is not one it offers"),
    (lambda: rollout(ps.Retire("nobody", "v1", at=1.0)), "not a versioned agent"),
    (lambda: rollout(traffic={"v1": 0.5, "v2": 0.6}), "must sum to 1"),
    (lambda: rollout(traffic={"v9": 1.0}), "version 'v9'"),
    (lambda: rollout(ps.Migrate("store", "v2", at=1.0, over=10.0),
                     ps.Migrate("store", "v1", at=5.0)), "before the previous migration"),
    (lambda: rollout(ps.Migrate("store", "v2", at=1.0, share=1.5)), "share=1.5"),
    (lambda: rollout(ps.Migrate("store", "v1", at=1.0, share=0.5)), "carries all the traffic"),
    (lambda: rollout(ps.Canary("store", "v2", at=1.0, steps=[(0.1, 0), (1.0, 0)])),
     "step 0 holds for 0"),
    (lambda: rollout(ps.Canary("store", "v2", at=1.0, steps=[(2.0, 10)])), "step 0 (2.0, 10)"),
    (lambda: rollout(ps.Canary("store", "v2", at=1.0, steps=[])), "steps=() must be"),
    (lambda: rollout(ps.UndocumentedChange("store", "v2", at=1.0, adapt=0.0)), "adapt=0.0"),
    (lambda: rollout(ps.Release("store", "v2", at=-1.0)), "at=-1.0"),
])
def test_bad_versions_are_refused(make, message):
    with pytest.raises(ps.ScenarioError, match=re.escape(message)):
        make().spec()


def test_a_version_makes_promises_of_its_own_and_consumers_bind_to_it():
    """v2 offers thumbnails, which v1 never did; a consumer binds to v2 directly."""
    m = rollout(ps.Release("store", "v2", at=40.0))
    app = "app"
    thumbs = m.promise("store.v2", to=app, body=ps.Latency(deadline=1.0), name="thumbnails")
    preview = m.promise(app, to="u", body=ps.Latency(deadline=2.0), conditions=thumbs,
                        name="preview")
    m.workload(preview, interarrival=D(1.0))
    r = ps.simulate(m, horizon=100.0, seed=0, engine="reference")
    rq = r.requests
    early = rq[(rq["promise"] == "preview") & (rq["arrival"] < 40.0)]
    late = rq[(rq["promise"] == "preview") & (rq["arrival"] >= 40.0)]
    assert not early["kept"].any() and late["kept"].all()


def test_migrate_shares_are_absolute_and_others_keep_their_proportions():
    """A 5% canary then share=0.5 is 50% on v2 (not 5% plus half of the other 95%), and
    share=0 rolls v2 back; v1 and v3 keep their 2:1 ratio throughout."""
    m = ps.Model("three versions")
    m.versions("store", {v: ps.AgentTemplate(service_time=0.01) for v in ("v1", "v2", "v3")},
               traffic={"v1": 2 / 3, "v3": 1 / 3})
    m.promise("store", to=m.agent("u"), body=ps.Latency(deadline=1.0), name="get")
    for at, share in ((100.0, 0.05), (200.0, 0.5), (300.0, 0.0)):
        m.inject(ps.Migrate("store", "v2", at=at, share=share))
    split = m.spec().promises[-1].conditions
    assert split.share_at(150.0) == pytest.approx((0.95 * 2 / 3, 0.05, 0.95 / 3))
    assert split.share_at(250.0) == pytest.approx((0.5 * 2 / 3, 0.5, 0.5 / 3))
    assert split.share_at(350.0) == pytest.approx((2 / 3, 0.0, 1 / 3))


@pytest.mark.slow
def test_a_canary_puts_its_absolute_share_of_traffic_on_the_new_version(schema_valid):
    """5% -> 50% -> 100%: each step measures its share of requests on v2, within 3 standard
    errors (each request is bound by an independent draw: binomial)."""
    m = rollout(ps.Canary("store", "v2", at=100.0, steps=[(0.05, 300), (0.5, 300), (1.0, 0)]),
                rate=20.0)
    schema_valid(m.to_dict())
    r = ps.simulate(m, horizon=1_000.0, replications=4, seed=11)
    q = r.requests
    q = q[q["promise"].astype(str).str.startswith("get@")]
    for (start, end), share in zip(((100, 400), (400, 700), (700, 1_000)), (0.05, 0.5, 1.0)):
        window = q[(q["arrival"] >= start) & (q["arrival"] < end)]
        on_v2 = (window["promise"].astype(str) == "get@store.v2").to_numpy()
        se = (share * (1 - share) / on_v2.size) ** 0.5
        assert abs(on_v2.mean() - share) <= 3 * se + 1e-12, (start, on_v2.mean(), share)
        assert on_v2.size > 5_000
