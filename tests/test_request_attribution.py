"""Request-based attribution: which agent broke each broken request, and how."""

import pytest

import promisesim as ps
from promisesim.dists import Deterministic as D


def shop(late="wait"):
    """users -> api, which calls payments and db (both needed); a request every 2 from 2."""
    m = ps.Model("shop")
    users = m.agent("users")
    pay = m.agent("payments", service_time=D(0.5))
    db = m.agent("db", service_time=D(0.25))
    api = m.agent("api")
    charge = m.promise(pay, to=api, body=ps.Latency(deadline=1.0), name="charge")
    orders = m.promise(db, to=api, body=ps.Latency(deadline=1.0), name="orders")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=1.2), name="serve",
                      conditions=ps.all_of(charge, orders), late=late)
    m.workload(serve, interarrival=D(2.0))
    m.inject(ps.Degrade(pay, at=5.0, duration=4.0, errors=1.0))    # 6, 8: error answers
    m.inject(ps.Outage(db, at=11.0, duration=2.0))                 # 12: db down
    m.inject(ps.Degrade(pay, at=13.0, duration=2.0, slower=3.0))   # 14: 1.5, late
    return m


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_each_broken_request_is_blamed_on_the_call_that_broke_it(engine):
    r = ps.simulate(shop(), horizon=17.0, seed=0, engine=engine)
    causes = r.request_causes
    rows = [(a, str(p), str(o), str(g), str(c), w) for a, p, o, g, c, w in zip(
        causes["arrival"], causes["promise"], causes["outcome"], causes["agent"], causes["cause"],
        causes["weight"])]
    assert rows == [
        (6.0, "serve", "condition_failed", "payments", "errors", 1.0),
        (8.0, "serve", "condition_failed", "payments", "errors", 1.0),
        (12.0, "serve", "condition_failed", "db", "down", 1.0),
        (14.0, "serve", "late", "payments", "late", 1.0),   # api waited for the late answer
    ]
    summary = r.request_cause_summary()
    assert [(str(g), str(c), n, s) for g, c, n, s in zip(
        summary["agent"], summary["cause"], summary["requests"], summary["share"])] == [
        ("payments", "errors", 2.0, 0.5), ("db", "down", 1.0, 0.25), ("payments", "late", 1.0, 0.25)]


def test_a_caller_that_fails_on_late_answers_blames_the_late_call():
    r = ps.simulate(shop(late="fail"), horizon=17.0, seed=0, engine="vector")
    late = r.request_causes[r.request_causes["arrival"] == 14.0]
    assert late[["outcome", "agent", "cause"]].astype(str).values.tolist() == [
        ["condition_failed", "payments", "late"]]


def test_several_causes_share_one_request_and_a_root_that_fails_itself_is_its_own_cause():
    m = ps.Model("two down")
    users = m.agent("users")
    a, b, api = m.agent("a"), m.agent("b"), m.agent("api", errors=1.0)
    pa = m.promise(a, to=api, body=ps.Latency(deadline=1.0), name="pa")
    pb = m.promise(b, to=api, body=ps.Latency(deadline=1.0), name="pb")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=1.0), name="serve",
                      conditions=ps.k_of(1, pa, pb))
    m.workload(serve, interarrival=D(2.0))
    m.inject(ps.Outage(a, at=1.0, duration=2.0))
    m.inject(ps.Outage(b, at=1.0, duration=2.0))
    r = ps.simulate(m, horizon=5.0, seed=0, engine="reference")
    rows = r.request_causes[["arrival", "agent", "cause", "weight"]].astype(
        {"agent": str, "cause": str}).values.tolist()
    assert rows == [[2.0, "a", "down", 0.5], [2.0, "b", "down", 0.5],   # both providers down
                    [4.0, "api", "errors", 1.0]]                         # api's own error answer


def test_request_causes_need_the_requests():
    r = ps.simulate(shop(), horizon=17.0, seed=0, record_requests=False)
    with pytest.raises(ValueError, match="record_requests=True"):
        r.request_causes
