"""Exact traces with deterministic distributions: every event and request, by hand."""

import math
import re

import numpy as np
import pytest

import promisesim as ps
from promisesim.dists import Deterministic as D

H = 30.0


def agent_events(result, replication=0):
    ev = result.events
    ev = ev[(ev["replication"] == replication) & (ev["kind"] == "agent")]
    return [(str(e), t, str(k), str(c)) for e, t, k, c in
            zip(ev["entity"], ev["time"], ev["event"], ev["cause"])]


def request_rows(result, promise):
    rq = result.requests
    rq = rq[rq["promise"] == promise].sort_values(["index"])
    return [(int(i), a, None if math.isnan(lat) else round(lat, 12), str(o))
            for i, a, lat, o in zip(rq["index"], rq["arrival"], rq["latency"], rq["outcome"])]


def test_failure_and_repair_cycle():
    m = ps.Model("cycle")
    a = m.agent("a", failures=ps.Failures(time_to_failure=D(10.0), time_to_repair=D(2.0)))
    m.promise(a, to=m.agent("u"), body=ps.Availability(), name="up")
    r = ps.simulate(m, horizon=H, seed=0)
    assert agent_events(r) == [
        ("a", 10.0, "down", "failure"), ("a", 12.0, "up", "failure"),
        ("a", 22.0, "down", "failure"), ("a", 24.0, "up", "failure"),
    ]
    row = r.promises.iloc[0]
    assert row["kept_fraction"] == (H - 4.0) / H
    assert row["breaks"] == 2 and row["longest_break"] == 2.0 and row["mean_time_to_restore"] == 2.0
    assert row["broken_time"] == 4.0


def test_outage_overlays_failures_and_the_failure_clock_keeps_running():
    m = ps.Model("overlay")
    a = m.agent("a", failures=ps.Failures(time_to_failure=D(10.0), time_to_repair=D(2.0)))
    m.promise(a, to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.Outage("a", at=11.0, duration=5.0))
    r = ps.simulate(m, horizon=H, seed=0)
    assert agent_events(r) == [
        ("a", 10.0, "down", "failure"), ("a", 16.0, "up", "outage"),
        ("a", 22.0, "down", "failure"), ("a", 24.0, "up", "failure"),
    ]
    iv = r.intervals
    iv = iv[iv["entity"] == "up"]
    assert list(zip(iv["state"].astype(str), iv["start"], iv["end"])) == [
        ("kept", 0.0, 10.0), ("broken", 10.0, 16.0), ("kept", 16.0, 22.0),
        ("broken", 22.0, 24.0), ("kept", 24.0, H)]


def test_outage_at_time_zero_and_past_the_horizon():
    m = ps.Model("edges")
    a, b = m.agent("a"), m.agent("b")
    u = m.agent("u")
    m.promise(a, to=u, body=ps.Availability(), name="a-up")
    m.promise(b, to=u, body=ps.Availability(), name="b-up")
    m.inject(ps.Outage("a", at=0.0, duration=3.0))
    m.inject(ps.Outage("b", at=25.0, duration=100.0))
    r = ps.simulate(m, horizon=H, seed=0).promises.set_index("promise")
    assert r.loc["a-up", "kept_fraction"] == 27.0 / H
    assert r.loc["a-up", "breaks"] == 1 and r.loc["a-up", "mean_time_to_restore"] == 3.0
    assert r.loc["b-up", "kept_fraction"] == 25.0 / H
    assert r.loc["b-up", "longest_break"] == 5.0
    assert math.isnan(r.loc["b-up", "mean_time_to_restore"])  # still broken at the horizon


def test_fifo_queue_with_deterministic_arrivals_and_service():
    m = ps.Model("queue")
    s = m.agent("s", service_time=D(1.5))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=2.0), name="p")
    m.workload(p, interarrival=D(1.0))
    r = ps.simulate(m, horizon=5.5, seed=0)
    # arrivals 1, 2, 3, 4, 5; departures 2.5, 4, 5.5, 7, 8.5 (one server, FIFO). The horizon
    # is half open: the departure at 5.5 is not seen. Request 2 is unanswered but its deadline
    # (5.0) has passed: late. Requests 3 and 4 have their deadlines ahead: unfinished.
    assert request_rows(r, "p") == [
        (0, 1.0, 1.5, "kept"), (1, 2.0, 2.0, "kept"), (2, 3.0, None, "late"),
        (3, 4.0, None, "unfinished"), (4, 5.0, None, "unfinished"),
    ]
    row = r.promises.iloc[0]
    assert (row["requests"], row["requests_kept"], row["requests_unfinished"]) == (3, 2, 2)
    assert row["request_kept_fraction"] == 2 / 3  # unfinished requests are left out
    r = ps.simulate(m, horizon=6.0, seed=0)
    assert request_rows(r, "p")[2] == (2, 3.0, 2.5, "late")


def test_unanswered_request_past_its_deadline_at_the_horizon_is_late():
    m = ps.Model("overdue")
    s = m.agent("s", service_time=D(10.0))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=2.0), name="p")
    m.workload(p, interarrival=D(1.0))
    r = ps.simulate(m, horizon=4.5, seed=0)
    # arrivals 1..4; none answered by 4.5; deadlines 3, 4 passed; 5, 6 ahead
    assert [o for *_, o in request_rows(r, "p")] == ["late", "late", "unfinished", "unfinished"]


def test_two_servers():
    m = ps.Model("two servers")
    s = m.agent("s", service_time=D(2.5), servers=2)
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=3.0), name="p")
    m.workload(p, interarrival=D(1.0))
    r = ps.simulate(m, horizon=5.0, seed=0)
    # arrivals 1, 2, 3, 4: starts 1, 2, 3.5, 4.5 -> departures 3.5, 4.5, 6, 7
    rows = request_rows(r, "p")
    assert rows[0] == (0, 1.0, 2.5, "kept")
    assert rows[1] == (1, 2.0, 2.5, "kept")
    assert [o for *_, o in rows[2:]] == ["unfinished", "unfinished"]


def test_conditional_chain_calls_then_queues():
    m = ps.Model("chain")
    u = m.agent("u")
    api = m.agent("api", service_time=D(0.5))
    db = m.agent("db", service_time=D(0.25))
    answers = m.promise(db, to=api, body=ps.Latency(deadline=0.3), name="answers")
    serve = m.promise(api, to=u, body=ps.Latency(deadline=1.0), conditions=answers, name="serve")
    m.workload(serve, interarrival=D(2.0))
    m.inject(ps.Outage("db", at=3.0, duration=2.0))
    r = ps.simulate(m, horizon=8.0, seed=0)
    # arrivals 2, 4, 6: the one at 4 finds db down
    assert request_rows(r, "answers") == [(0, 2.0, 0.25, "kept"), (1, 4.0, None, "promiser_down"),
                                          (2, 6.0, 0.25, "kept")]
    assert request_rows(r, "serve") == [(0, 2.0, 0.75, "kept"), (1, 4.0, None, "condition_failed"),
                                        (2, 6.0, 0.75, "kept")]


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_a_caller_waits_for_a_late_answer_unless_it_fails_on_late_ones(engine):
    def model(late):
        m = ps.Model("late call")
        u = m.agent("u")
        api = m.agent("api", service_time=D(0.1))
        db = m.agent("db", service_time=D(0.5))
        answers = m.promise(db, to=api, body=ps.Latency(deadline=0.3), name="answers")
        serve = m.promise(api, to=u, body=ps.Latency(deadline=deadline), conditions=answers,
                          name="serve", late=late)
        m.workload(serve, interarrival=D(2.0))
        return m

    deadline = 5.0
    r = ps.simulate(model("wait"), horizon=3.0, seed=0, engine=engine)
    # db broke its promise to api (late), but api went on with the answer and kept its own
    assert request_rows(r, "answers") == [(0, 2.0, 0.5, "late")]
    assert request_rows(r, "serve") == [(0, 2.0, 0.6, "kept")]
    deadline = 0.55   # the late answer makes the caller late too
    r = ps.simulate(model("wait"), horizon=3.0, seed=0, engine=engine)
    assert request_rows(r, "serve") == [(0, 2.0, 0.6, "late")]
    r = ps.simulate(model("fail"), horizon=3.0, seed=0, engine=engine)
    assert request_rows(r, "answers") == [(0, 2.0, 0.5, "late")]
    assert request_rows(r, "serve") == [(0, 2.0, None, "condition_failed")]


def test_crash_loses_requests_inside_and_refuses_new_ones():
    m = ps.Model("crash")
    s = m.agent("s", service_time=D(1.0),
                failures=ps.Failures(time_to_failure=D(9.7), time_to_repair=D(1.5)))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=2.0), name="p")
    m.workload(p, interarrival=D(1.0))
    r = ps.simulate(m, horizon=13.5, seed=0)
    rows = request_rows(r, "p")
    outcomes = {i: o for i, _, _, o in rows}
    assert all(outcomes[i] == "kept" for i in range(8))      # arrivals 1..8 answered by 9
    assert outcomes[8] == "lost"                              # arrival 9, in service at 9.7
    assert outcomes[9] == "promiser_down"                     # arrival 10, down until 11.2
    assert outcomes[10] == "promiser_down"                    # arrival 11
    assert outcomes[11] == "kept"                             # arrival 12: restarted empty
    assert rows[11][2] == 1.0


def test_choice_uses_the_first_provider_that_is_up():
    m = ps.Model("choice")
    u = m.agent("u")
    api = m.agent("api")
    primary = m.agent("primary", service_time=D(0.1))
    mirror = m.agent("mirror", service_time=D(0.2))
    p1 = m.promise(primary, to=api, body=ps.Latency(deadline=1.0), name="p1")
    p2 = m.promise(mirror, to=api, body=ps.Latency(deadline=1.0), name="p2")
    serve = m.promise(api, to=u, body=ps.Latency(deadline=1.0), conditions=ps.any_of(p1, p2),
                      name="serve")
    m.workload(serve, interarrival=D(1.0))
    m.inject(ps.Outage("primary", at=2.5, duration=2.0))
    m.inject(ps.Outage("mirror", at=3.5, duration=0.2))
    r = ps.simulate(m, horizon=6.5, seed=0)
    # arrivals 1..6; primary down at 3 and 4 -> mirror; mirror up at 3 and 4 (down 3.5-3.7)
    assert [i for i, *_ in request_rows(r, "p1")] == [0, 1, 4, 5]
    assert [i for i, *_ in request_rows(r, "p2")] == [2, 3]
    assert [lat for _, _, lat, _ in request_rows(r, "serve")] == [0.1, 0.1, 0.2, 0.2, 0.1, 0.1]


def test_k_of_n_waits_for_the_k_fastest_kept_answers():
    m = ps.Model("quorum")
    u = m.agent("u")
    api = m.agent("api", service_time=D(0.0))
    promises = []
    for i, service in enumerate((0.1, 0.2, 0.3)):
        a = m.agent(f"r{i}", service_time=D(service))
        promises.append(m.promise(a, to=api, body=ps.Latency(deadline=1.0), name=f"q{i}"))
    serve = m.promise(api, to=u, body=ps.Latency(deadline=1.0), conditions=ps.k_of(2, *promises),
                      name="serve")
    m.workload(serve, interarrival=D(1.0))
    m.inject(ps.Outage("r1", at=1.5, duration=1.0))
    m.inject(ps.Outage("r0", at=2.5, duration=1.0))
    m.inject(ps.Outage("r2", at=2.5, duration=1.0))
    r = ps.simulate(m, horizon=3.5, seed=0)
    # t=1: 2nd fastest 0.2; t=2: r1 down -> 0.3; t=3: two down -> fails at once
    assert request_rows(r, "serve") == [(0, 1.0, 0.2, "kept"), (1, 2.0, 0.3, "kept"),
                                        (2, 3.0, None, "condition_failed")]


def test_availability_conditions_compose_over_time():
    m = ps.Model("compose")
    u = m.agent("u")
    top = m.agent("top")
    parts = [m.agent(n) for n in ("x", "y", "z")]
    ps_ = [m.promise(a, to=top, body=ps.Availability(), name=f"{a.name}-up") for a in parts]
    m.promise(top, to=u, body=ps.Availability(), conditions=ps.k_of(2, *ps_), name="two")
    m.promise(top, to=u, body=ps.Availability(), conditions=ps.any_of(*ps_), name="any")
    m.promise(top, to=u, body=ps.Availability(), conditions=ps.all_of(*ps_), name="all")
    m.inject(ps.Outage("x", at=1.0, duration=4.0))   # x down [1, 5)
    m.inject(ps.Outage("y", at=3.0, duration=4.0))   # y down [3, 7)
    m.inject(ps.Outage("z", at=4.0, duration=4.0))   # z down [4, 8)
    r = ps.simulate(m, horizon=10.0, seed=0).promises.set_index("promise")
    # number up: [0,1) 3, [1,3) 2, [3,4) 1, [4,5) 0, [5,7) 1, [7,8) 2, [8,10) 3
    assert r.loc["all", "kept_fraction"] == pytest.approx(0.3)
    assert r.loc["all", "breaks"] == 1 and r.loc["all", "longest_break"] == 7.0
    assert r.loc["two", "kept_fraction"] == pytest.approx(0.6)
    assert r.loc["two", "breaks"] == 1 and r.loc["two", "longest_break"] == 4.0
    assert r.loc["any", "kept_fraction"] == pytest.approx(0.9)
    assert r.loc["any", "breaks"] == 1 and r.loc["any", "mean_time_to_restore"] == 1.0


def test_events_name_the_cause_of_a_break():
    m = ps.Model("cause")
    u, api, db = m.agent("u"), m.agent("api"), m.agent("db")
    dbp = m.promise(db, to=api, body=ps.Availability(), name="db-up")
    m.promise(api, to=u, body=ps.Availability(), conditions=dbp, name="api-up")
    m.inject(ps.Outage("db", at=1.0, duration=1.0))
    m.inject(ps.Outage("api", at=5.0, duration=1.0))
    ev = ps.simulate(m, horizon=10.0, seed=0).events
    broken = ev[(ev["entity"] == "api-up") & (ev["event"] == "broken")]
    assert list(zip(broken["time"], broken["cause"])) == [(1.0, "promise 'db-up' broken"),
                                                          (5.0, "agent 'api' down")]


def test_states_are_half_open_for_simultaneous_arrivals():
    """A request arriving exactly when an outage starts is refused; one arriving exactly
    when it ends is served, whatever order the processes were created in."""
    for at, duration in ((2.0, 1.0), (1.5, 1.5), (2.0, 2.0)):
        m = ps.Model("ties")
        s = m.agent("s", service_time=D(0.25))
        p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="p")
        m.workload(p, interarrival=D(1.0))
        m.inject(ps.Outage("s", at=at, duration=duration))
        rows = request_rows(ps.simulate(m, horizon=5.0, seed=0), "p")
        for _, arrival, _, outcome in rows:
            down = at <= arrival < at + duration
            assert outcome == ("promiser_down" if down else "kept"), (at, duration, arrival)


def test_completion_at_the_crash_instant_is_lost():
    m = ps.Model("crash instant")
    s = m.agent("s", service_time=D(1.0))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=5.0), name="p")
    m.workload(p, interarrival=D(2.0))
    m.inject(ps.Outage("s", at=3.0, duration=0.5))
    rows = request_rows(ps.simulate(m, horizon=4.5, seed=0), "p")
    assert rows == [(0, 2.0, None, "lost"), (1, 4.0, None, "unfinished")]


def test_failure_starting_as_an_outage_ends_is_one_state():
    m = ps.Model("no blip")
    a = m.agent("a", failures=ps.Failures(time_to_failure=D(7.0), time_to_repair=D(2.0)))
    m.promise(a, to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.Outage("a", at=3.0, duration=4.0))     # ends at 7.0, when the failure starts
    r = ps.simulate(m, horizon=10.0, seed=0)
    assert agent_events(r) == [("a", 3.0, "down", "outage"), ("a", 9.0, "up", "failure")]
    assert r.promises.iloc[0]["breaks"] == 1


def test_zero_length_repairs_and_up_periods_change_nothing():
    from promisesim.dists import Empirical
    m = ps.Model("zeros")
    # up 5, repair 0 (no failure), up 0 ... every draw is 0 or 5
    a = m.agent("a", service_time=D(0.5), failures=ps.Failures(
        time_to_failure=Empirical((0.0, 5.0)), time_to_repair=Empirical((0.0, 5.0))))
    p = m.promise(a, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="p")
    m.workload(p, interarrival=D(1.0))
    r = ps.simulate(m, horizon=200.0, replications=3, seed=4)
    # the trace and the timelines agree: every change recorded is a real change of state
    ev = r.events[r.events["kind"] == "agent"]
    for _, g in ev.groupby("replication"):
        assert (np.diff(g["time"].to_numpy()) > 0).all()
        assert (g["event"].astype(str).to_numpy()[1:] != g["event"].astype(str).to_numpy()[:-1]).all()
    # no request is lost without the agent going down
    assert r.requests["outcome"].eq("lost").sum() <= (ev["event"] == "down").sum()
    counts = r.promises["breaks"].sum()
    assert counts == (ev["event"] == "down").sum()


def test_one_promise_in_two_branches_gets_independent_service_times():
    m = ps.Model("branches")
    u, api = m.agent("u"), m.agent("api")
    q = m.promise(m.agent("q", service_time=ps.Exponential(1.0), servers=4), to=api,
                  body=ps.Latency(deadline=10.0), name="q")
    r_ = m.promise(m.agent("r", service_time=ps.Exponential(1.0)), to=api,
                   body=ps.Latency(deadline=10.0), name="r")
    serve = m.promise(api, to=u, body=ps.Latency(deadline=10.0), name="serve",
                      conditions=ps.all_of(ps.any_of(q, r_), ps.any_of(q, r_)))
    m.workload(serve, interarrival=D(5.0))
    paths = [n.path for n in (m.spec().call_trees[0].condition.items[0].items
                              + m.spec().call_trees[0].condition.items[1].items)]
    assert len(set(paths)) == 4
    rq = ps.simulate(m, horizon=50.0, seed=1).requests
    lat = rq[rq["promise"] == "q"].groupby("index")["latency"].apply(list)
    assert all(len(x) == 2 and x[0] != x[1] for x in lat)


def test_answer_due_exactly_at_the_horizon_is_unfinished_not_late():
    m = ps.Model("edge")
    s = m.agent("s", service_time=D(2.0))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=2.0), name="p")
    m.workload(p, interarrival=D(3.0))
    assert request_rows(ps.simulate(m, horizon=5.0, seed=0), "p") == [(0, 3.0, None, "unfinished")]


def test_delivered_fraction_has_one_basis_per_promise():
    m = ps.Model("basis")
    s = m.agent("s", service_time=D(3.0))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="p")
    m.workload(p, rate=0.3)
    r = ps.simulate(m, horizon=6.0, replications=8, seed=3)
    pr = r.promises
    has = pr["requests"] > 0
    assert (pr.loc[has, "delivered_fraction"] == 0.0).all()     # every answer is late
    assert pr.loc[~has, "delivered_fraction"].isna().all()      # no requests: undefined, not 1


def test_availability_conditions_below_a_check_are_not_expanded():
    m = ps.Model("deep availability")
    u = m.agent("u")
    x = [m.agent(f"x{i}") for i in range(20)]
    below = None
    for i in range(19, 0, -1):   # l_i: x_i promises x_(i-1) availability, if l_(i+1)
        below = m.promise(x[i], to=x[i - 1], body=ps.Availability(), name=f"l{i}",
                          conditions=below)
    serve = m.promise(x[0], to=u, body=ps.Latency(deadline=1.0), conditions=below, name="serve")
    m.workload(serve, rate=1.0)
    tree = m.spec().call_trees[0]
    assert not tree.condition.items[0].is_request
    assert tree.condition.items[0].condition is None


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_workload_window_makes_a_spike(engine):
    m = ps.Model("spike")
    s = m.agent("s", service_time=D(0.25))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="p")
    m.workload(p, interarrival=D(2.0), name="base")
    m.workload(p, interarrival=D(0.5), name="spike", start=4.0, end=6.0)
    r = ps.simulate(m, horizon=10.0, seed=0, engine=engine)
    rq = r.requests
    spike = rq[rq["workload"] == "spike"]
    # the first one gap after the start; none at the end (half open)
    assert list(spike["arrival"]) == [4.5, 5.0, 5.5]
    assert list(rq[rq["workload"] == "base"]["arrival"]) == [2.0, 4.0, 6.0, 8.0]


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_capacity_limit_rejects_beyond_it(engine):
    m = ps.Model("limit")
    s = m.agent("s", service_time=D(2.4), limit=2)
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=10.0), name="p")
    m.workload(p, interarrival=D(1.0))
    r = ps.simulate(m, horizon=8.5, seed=0, engine=engine)
    # arrivals 1..8. Request 0 is served 1-3.4, 1 waits (3.4-5.8), 2 finds two inside:
    # rejected; 3 (at 4, 0 has left) is served 5.8-8.2; 4 rejected; 5 (at 6, 1 has left)
    # waits behind 3; 6 and 7 rejected.
    assert [o for *_, o in request_rows(r, "p")] == [
        "kept", "kept", "rejected", "kept", "rejected", "unfinished", "rejected", "rejected"]
    assert r.promises.iloc[0]["requests"] == 7    # rejected requests count, as not kept


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_load_dependent_slowdown_stretches_service_under_load(engine):
    m = ps.Model("slow")
    s = m.agent("s", service_time=D(1.0), slowdown=0.5)
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=10.0), name="p")
    m.workload(p, interarrival=D(0.5), end=1.2)
    r = ps.simulate(m, horizon=20.0, seed=0, engine=engine)
    # arrivals 0.5, 1.0: request 0 starts alone (1.0), ends 1.5; request 1 waited, starts
    # at 1.5 alone: 1.0, ends 2.5.
    assert request_rows(r, "p") == [(0, 0.5, 1.0, "kept"), (1, 1.0, 1.5, "kept")]
    m = ps.Model("slow2")
    s = m.agent("s", service_time=D(1.0), slowdown=0.5, servers=2)
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=10.0), name="p")
    m.workload(p, interarrival=D(0.25), end=0.6)
    r = ps.simulate(m, horizon=20.0, seed=0, engine=engine)
    # arrivals 0.25 (alone: 1.0), 0.5 (one other in service: 1.5)
    assert request_rows(r, "p") == [(0, 0.25, 1.0, "kept"), (1, 0.5, 1.5, "kept")]


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_limit_counts_requests_waiting_for_their_calls_and_rejected_ones_call_nobody(engine):
    m = ps.Model("limited caller")
    api = m.agent("api", service_time=D(0.8), limit=2)
    db = m.agent("db", service_time=D(1.5), servers=3)
    q = m.promise(db, to=api, body=ps.Latency(deadline=10.0), name="q")
    p = m.promise(api, to=m.agent("u"), body=ps.Latency(deadline=10.0), name="p", conditions=q)
    m.workload(p, interarrival=D(1.0))
    r = ps.simulate(m, horizon=7.5, seed=0, engine=engine)
    # arrivals 1..7; each admitted request waits 1.5 for db, then is served 0.8. Request 2
    # (at 3) finds 0 in service (2.5-3.3) and 1 waiting for db (2-3.5): two inside, rejected.
    # So is 5 (at 6: 3 in service 5.5-6.3, 4 waiting for db); 6's call is still out at 7.5.
    assert request_rows(r, "p") == [
        (0, 1.0, 2.3, "kept"), (1, 2.0, 2.3, "kept"), (2, 3.0, None, "rejected"),
        (3, 4.0, 2.3, "kept"), (4, 5.0, 2.3, "kept"), (5, 6.0, None, "rejected"),
        (6, 7.0, None, "unfinished")]
    # a rejected request makes no calls
    assert [(i, a) for i, a, *_ in request_rows(r, "q")] == [
        (0, 1.0), (1, 2.0), (3, 4.0), (4, 5.0), (6, 7.0)]


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_a_caller_queues_in_order_of_answers_and_slows_down_for_queued_requests_only(engine):
    m = ps.Model("slow caller")
    u, api = m.agent("u"), m.agent("api", service_time=D(1.2), slowdown=0.5)
    db, db2 = m.agent("db", service_time=D(0.25)), m.agent("db2", service_time=D(2.3))
    q = m.promise(db, to=api, body=ps.Latency(deadline=10.0), name="q")
    q2 = m.promise(db2, to=api, body=ps.Latency(deadline=10.0), name="q2")
    slow = m.promise(api, to=u, body=ps.Latency(deadline=10.0), name="slow", conditions=q2)
    fast = m.promise(api, to=u, body=ps.Latency(deadline=10.0), name="fast", conditions=q)
    m.workload(slow, interarrival=D(1.0), end=1.5, name="slow")
    m.workload(fast, interarrival=D(1.0), start=1.0, end=3.5, name="fast")
    r = ps.simulate(m, horizon=10.0, seed=0, engine=engine)
    # slow 0 arrives at 1 and has its answer at 3.3. fast 0 (at 2, answer 2.25) starts with
    # slow 0 waiting for db2, which does not slow it: 1.2, to 3.45. fast 1 (at 3, answer
    # 3.25) queues before slow 0 (answer 3.3) and starts at 3.45 with slow 0 queued: 1.2 *
    # 1.5, to 5.25; slow 0 then alone: to 6.45.
    assert request_rows(r, "fast") == [(0, 2.0, 1.45, "kept"), (1, 3.0, 2.25, "kept")]
    assert request_rows(r, "slow") == [(0, 1.0, 5.45, "kept")]


def test_vector_engine_names_the_features_it_lacks():
    m = ps.Model("limit")
    s = m.agent("s", limit=3, slowdown=0.1)
    db = m.agent("db", service_time=D(0.1))
    q = m.promise(db, to=s, body=ps.Latency(deadline=1.0), name="q")
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="p", conditions=q)
    m.workload(p, rate=1.0)
    # a limit or slowdown on an agent that calls others, and autoscalers: supported (auto
    # runs the first on the reference engine where it or a callee is overloaded, which is
    # faster for it, and says so)
    assert ps.simulate(m, horizon=5.0, engine="vector").engine == "vector"
    assert ps.simulate(m, horizon=5.0).engine == "vector"   # db at load 0.1
    m.workload(p, rate=12.0, name="peak")
    auto = ps.simulate(m, horizon=5.0)
    assert auto.engine == "reference" and "agent 's' has a capacity limit" in auto.engine_reason
    assert "'db' is offered more work than it serves (load 1.3)" in auto.engine_reason
    assert ps.simulate(autoscaled(), horizon=5.0, engine="vector").engine == "vector"
    assert ps.simulate(autoscaled(), horizon=5.0, replications=1).engine == "vector"


def choice_model(**options):
    """Calls to 'main' or 'spare' (instant answers); main is down on [10, 20)."""
    m = ps.Model("choice")
    u, api = m.agent("u"), m.agent("api")
    main, spare = m.agent("main"), m.agent("spare")
    a = m.promise(main, to=api, body=ps.Latency(deadline=1.0), name="a")
    b = m.promise(spare, to=api, body=ps.Latency(deadline=1.0), name="b")
    p = m.promise(api, to=u, body=ps.Latency(deadline=1.0), conditions=ps.any_of(a, b, **options),
                  name="p")
    m.workload(p, interarrival=D(1.0))
    m.inject(ps.Outage("main", at=10.0, duration=10.0))
    return m


def test_pull_choice_with_detection_delay_fails_until_it_notices():
    r = ps.simulate(choice_model(detect=2.5), horizon=30.0, seed=0)
    rq = r.requests
    # main is believed up until 12.5: requests at 10, 11, 12 call it and fail; 13..22 go to
    # spare (main is believed down until 22.5), then back to main (fail-back)
    failed = list(rq[(rq["promise"] == "p") & (rq["outcome"] != "kept")]["arrival"])
    assert failed == [10.0, 11.0, 12.0]
    spare = sorted(rq[rq["promise"] == "b"]["arrival"])
    assert spare == [float(t) for t in range(13, 23)]


def test_push_choice_stays_with_its_new_provider():
    r = ps.simulate(choice_model(detect=2.5, mode="push"), horizon=30.0, seed=0)
    rq = r.requests
    failed = list(rq[(rq["promise"] == "p") & (rq["outcome"] != "kept")]["arrival"])
    assert failed == [10.0, 11.0, 12.0]
    assert sorted(rq[rq["promise"] == "b"]["arrival"]) == [float(t) for t in range(13, 30)]


def test_random_choice_spreads_requests_over_providers_believed_up():
    m = choice_model(choose="random")
    r = ps.simulate(m, horizon=2000.0, seed=3)
    rq = r.requests
    share = (rq["promise"] == "b").sum() / (rq["promise"] == "p").sum()
    # main is down 10 of 2000 time units: spare gets about half of the rest, plus those 10
    assert abs(share - (0.5 * 1990 + 10) / 2000) < 0.05
    assert (rq[rq["promise"] == "p"]["outcome"] == "kept").all()
    again = ps.simulate(m, horizon=2000.0, seed=3).requests
    assert again.equals(rq)


def test_choice_options_round_trip_and_are_checked(schema_valid):
    m = choice_model(detect=2.5, mode="push")
    schema_valid(m.to_dict())
    back = ps.Model.from_dict(m.to_dict())
    assert back.to_dict() == m.to_dict()
    assert back.spec() == m.spec()
    for options, message in [({"choose": "best"}, "choose='best'"), ({"mode": "poll"}, "mode='poll'"),
                             ({"detect": -1.0}, "detect=-1.0"),
                             ({"mode": "push", "choose": "random"}, "choose must be 'first'")]:
        with pytest.raises(ps.ScenarioError, match=f"promise 'p'.*{re.escape(message)}"):
            choice_model(**options).spec()


def autoscaled(**policy):
    m = ps.Model("autoscaled")
    web = m.super_agent("web", size=1, startup=3.0,
                        member=ps.AgentTemplate(service_time=D(0.8)))
    p = m.promise(web, to=m.agent("u"), body=ps.Latency(deadline=5.0), name="serve")
    m.workload(p, interarrival=D(1.0), end=25.5)
    m.inject(ps.Autoscaler(web, **{"utilisation": 0.5, "interval": 10.0, "delay": 2.0,
                                   "min_size": 1, "max_size": 3, **policy}))
    return m


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_autoscaler_resizes_on_observed_utilisation(engine):
    r = ps.simulate(autoscaled(), horizon=60.0, seed=0, engine=engine)
    iv = r.intervals
    web1 = iv[iv["entity"] == "web.1"]
    # at 10 it sees 7.2 busy seconds of 10 on one member (0.72 > 0.5): it wants
    # ceil(0.72 / 0.5) = 2, asked for at 12, serving after the 3 s start-up; at 20 it sees
    # 8 of 2 x 10 (a load of 0.8 members: still 2); at 30, 4.8 (0.48: one), applied at 32
    assert list(zip(web1["start"], web1["end"], web1["state"])) == [
        (0.0, 15.0, "down"), (15.0, 32.0, "up"), (32.0, 60.0, "down")]
    assert (iv[iv["entity"] == "web.2"]["state"] == "down").all()


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_autoscaler_cooldown_and_bounds(engine):
    r = ps.simulate(autoscaled(cooldown=30.0), horizon=60.0, seed=0, engine=engine)
    iv = r.intervals
    web1 = iv[iv["entity"] == "web.1"]
    # the shrink wanted at 30 waits out the cooldown: it happens at the next observation
    # at least 30 after the resize decided at 10, that is at 40 (applied at 42)
    assert list(zip(web1["start"], web1["end"], web1["state"])) == [
        (0.0, 15.0, "down"), (15.0, 42.0, "up"), (42.0, 60.0, "down")]
    r = ps.simulate(autoscaled(max_size=1), horizon=60.0, seed=0, engine=engine)
    assert len(r.spec.agents) == len(autoscaled(max_size=1).spec().agents)
    assert "web.1" not in set(r.intervals["entity"].astype(str))


def test_scale_down_drains_and_an_outage_loses():
    m = ps.Model("drain")
    web = m.super_agent("web", size=2, balance="random",
                        member=ps.AgentTemplate(service_time=D(5.0), servers=10))
    p = m.promise(web, to=m.agent("u"), body=ps.Latency(deadline=20.0), name="serve")
    m.workload(p, interarrival=D(1.0), end=12.5)
    m.inject(ps.ScaleTo(web, size=1, at=10.5))
    r = ps.simulate(m, horizon=40.0, seed=0)
    rq = r.requests
    inner = rq[rq["promise"] == "serve@web.1"]
    assert (inner["arrival"] < 10.5).all() and len(inner) > 0
    assert (inner["outcome"] == "kept").all()               # those inside at 10.5 finish
    assert (inner["arrival"] > 5.5).any()
    m.inject(ps.Outage("web.1", at=10.5, duration=1.0))     # a crash at the same instant
    rq = ps.simulate(m, horizon=40.0, seed=0).requests
    lost = rq[(rq["promise"] == "serve@web.1") & (rq["arrival"] > 5.5)]
    assert (lost["outcome"] == "lost").all() and len(lost) > 0


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_a_super_agent_front_orders_its_work_like_a_plain_agent(engine):
    """Calls first, then the agent's own work, for a plain agent and a super-agent's front
    alike: swapping an agent and its provider for a tier keeps the latency (2 + 1, not the
    larger of the two)."""
    m = ps.Model("front")
    u = m.agent("u")
    tier = m.super_agent("tier", size=1, member=ps.AgentTemplate(service_time=D(2.0)),
                         service_time=D(1.0))
    db, plain = m.agent("db", service_time=D(2.0)), m.agent("plain", service_time=D(1.0))
    q = m.promise(db, to=plain, body=ps.Latency(deadline=10.0), name="q")
    m.workload(m.promise(tier, to=u, body=ps.Latency(deadline=10.0), name="tier"),
               interarrival=D(5.0))
    m.workload(m.promise(plain, to=u, body=ps.Latency(deadline=10.0), name="plain", conditions=q),
               interarrival=D(5.0))
    r = ps.simulate(m, horizon=9.0, seed=0, engine=engine)
    assert request_rows(r, "tier") == request_rows(r, "plain") == [(0, 5.0, 3.0, "kept")]


def test_request_counts_are_per_replication_promise_and_outcome_in_order():
    import collections

    import numpy as np

    from promisesim.engines.base import count_requests

    rng = np.random.default_rng(3)
    req = {"replication": rng.integers(0, 4, 500).astype(np.int32),
           "promise": rng.integers(0, 5, 500).astype(np.int32),
           "outcome": rng.integers(0, 11, 500).astype(np.int8)}
    counts = count_requests(req)
    expected = sorted(collections.Counter(zip(*(req[k].tolist() for k in
                                                ("replication", "promise", "outcome")))).items())
    assert list(zip(zip(counts["replication"].tolist(), counts["promise"].tolist(),
                        counts["outcome"].tolist()), counts["count"].tolist())) == expected
