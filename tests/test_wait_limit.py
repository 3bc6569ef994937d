"""A wait limit (an agent's max_wait): a request that waited that long in the queue leaves,
rejected, as a function platform's queue does."""

import math

import pandas as pd
import pytest

import promisesim as ps
from promisesim.errors import ScenarioError


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_a_trace_followed_by_hand(engine):
    """One server, service 1, wait limit 0.6. 0.25 is served until 1.25; 0.5 waits and leaves
    at 1.1; 0.75 has waited 0.5 when the server frees at 1.25 (served until 2.25, latency
    1.5); 1.125 would wait until 2.25 and leaves at 1.725."""
    m = ps.Model("wait limit")
    s = m.agent("s", service_time=1.0, max_wait=0.6)
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=5.0), name="p")
    m.workload(p, interarrival=0.25, end=0.8)
    m.workload(p, interarrival=1.125, end=1.2, name="late")
    q = ps.simulate(m, horizon=10.0, seed=1, engine=engine).requests.sort_values("arrival")
    assert q["arrival"].tolist() == [0.25, 0.5, 0.75, 1.125]
    assert q["outcome"].tolist() == ["kept", "rejected", "kept", "rejected"]
    assert q["latency"].tolist() == pytest.approx([1.0, math.nan, 1.5, math.nan], nan_ok=True)


def test_a_caller_learns_of_the_rejection_when_the_request_leaves():
    """A caller whose call was turned away at the wait limit fails then, not on arrival."""
    m = ps.Model("caller")
    s = m.agent("s", service_time=1.0, max_wait=0.6)
    api = m.agent("api")
    q = m.promise(s, to=api, body=ps.Latency(deadline=5.0), name="q")
    p = m.promise(api, to=m.agent("u"), body=ps.Latency(deadline=5.0), name="p", conditions=q,
                  late="fail", timeout=None)
    m.workload(q, interarrival=0.25, end=0.3, name="first")      # holds the server until 1.25
    m.workload(p, interarrival=0.5, end=0.6)                     # waits from 0.5, leaves at 1.1
    for engine in ("reference", "vector"):
        rows = ps.simulate(m, horizon=5.0, seed=1, engine=engine).requests
        rows = rows[rows["arrival"] == 0.5].set_index("promise")
        assert rows.loc["q", "outcome"] == "rejected"
        assert rows.loc["p", "outcome"] == "condition_failed"


def test_m_m_1_with_a_deterministic_wait_limit_loses_barrers_share():
    """M/M/1+D (Barrer, 1957): with load rho = lambda/mu and wait limit d, the share of
    requests that leave unserved is (1 - rho) rho e^{-(mu - lambda) d} /
    (1 - rho^2 e^{-(mu - lambda) d}); within 3 standard errors over replications."""
    lam, mu, d = 0.8, 1.0, 0.7
    m = ps.Model("M/M/1+D")
    s = m.agent("s", service_time=ps.Exponential(1.0 / mu), max_wait=d)
    m.workload(m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=1e6), name="p"), rate=lam)
    q = ps.simulate(m, horizon=20_000.0, replications=10, seed=3, engine="vector").requests
    share = (q["outcome"] == "rejected").groupby(q["replication"]).mean()
    rho, x = lam / mu, math.exp(-(mu - lam) * d)
    expected = (1 - rho) * rho * x / (1 - rho**2 * x)
    se = share.std(ddof=1) / math.sqrt(share.size)
    assert se < 0.003 and abs(share.mean() - expected) <= 3 * se, (share.mean(), expected, se)


def test_the_wait_limit_round_trips_and_is_checked(schema_valid):
    m = ps.Model("round trip")
    m.agent("fn", servers=10, keep_alive=60.0, cold_start=0.5, max_wait=2.0, limit=40)
    data = schema_valid(m.to_dict())
    assert data["agents"][0]["max_wait"] == 2.0
    assert ps.Model.from_dict(data).spec() == m.spec()
    for value in (0.0, -1.0, math.inf, "2s"):
        bad = ps.Model("bad")
        bad.agent("x", max_wait=value)
        with pytest.raises(ScenarioError, match=f"agent 'x': max_wait={value!r} must be a "
                                                "positive, finite time"):
            bad.spec()


def test_engines_agree_under_crashes_limits_and_instances():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "engines"))
    from test_equivalence import assert_same

    m = ps.Model("stress")
    a = m.agent("a", service_time=ps.Exponential(0.5), servers=2, max_wait=0.4, limit=5,
                failures=ps.Failures(ps.Exponential(80.0), ps.Exponential(5.0)))
    b = m.agent("b", service_time=ps.Exponential(0.3), max_wait=1.0, keep_alive=2.0,
                cold_start=0.3, servers=3)
    top = m.agent("top", max_wait=0.5, servers=2, service_time=ps.Exponential(0.1))
    pa = m.promise(a, to=top, body=ps.Latency(deadline=1.0), name="pa")
    pb = m.promise(b, to=top, body=ps.Latency(deadline=1.0), name="pb")
    pt = m.promise(top, to=m.agent("u"), body=ps.Latency(deadline=2.0), name="pt",
                   conditions=ps.all_of(pa, pb))
    m.workload(pt, rate=3.0)
    m.workload(pa, rate=1.0, name="direct")
    ref, _ = assert_same(m, 300.0, 2, 5)
    counts = ref.requests["outcome"].value_counts()
    assert counts["rejected"] > 300 and counts["lost"] > 0
    assert isinstance(ref.requests, pd.DataFrame)


@pytest.mark.parametrize("order", ["around", "before"])
def test_a_request_gone_at_the_wait_limit_makes_no_calls(order):
    """Served first then calling (before), or calling on taking a server (around): a request
    that left at the wait limit never called; both engines agree."""
    m = ps.Model("calls")
    db = m.agent("db", service_time=0.125)
    s = m.agent("s", service_time=1.0, max_wait=0.6, order=order)
    q = m.promise(db, to=s, body=ps.Latency(deadline=5.0), name="q")
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=5.0), name="p", conditions=q)
    # before: 0.25 served until 1.25 and calls then; 0.5 leaves at 1.1; 0.75 served from
    # 1.25 (waited 0.5) and calls at 2.25. around: 0.25 calls at once and holds the server
    # until 1.375 (0.125 + 1.0), so 0.5 and 0.75 both leave (at 1.1 and 1.35), uncalled.
    m.workload(p, interarrival=0.25, end=0.8)
    tables = [ps.simulate(m, horizon=10.0, seed=1, engine=e).requests for e in ("reference",
                                                                                "vector")]
    pd.testing.assert_frame_equal(*tables, check_exact=True)
    calls = tables[0][tables[0]["promise"] == "q"]
    assert sorted(calls["arrival"]) == ([1.25, 2.25] if order == "before" else [0.25])
