"""Timeouts: a caller gives up on a call that has not answered ``timeout`` after it was
sent; both engines, by hand and against each other.

users -> api (one server, service 1) -> db (one server, service 2); requests at 0.5 and
1.0, as in the order-of-work tests. The provider still does the work a caller gave up on.
"""

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import promisesim as ps
from promisesim.dists import Deterministic as D

ENGINES = ["reference", "vector"]


def api_db(order="after", timeout=None, db_slower=None):
    m = ps.Model("timeouts")
    users = m.agent("users")
    db = m.agent("db", service_time=D(2.0))
    a = m.agent("api", service_time=D(1.0), order=order)
    q = m.promise(db, to=a, body=ps.Latency(deadline=10.0), name="query")
    serve = m.promise(a, to=users, body=ps.Latency(deadline=10.0), name="serve", conditions=q,
                      timeout=timeout)
    m.workload(serve, interarrival=D(0.5), end=1.2)
    if db_slower is not None:
        m.inject(ps.Degrade("db", at=0.0, slower=db_slower))
    return m


def rows(result, promise):
    rq = result.requests
    rq = rq[rq["promise"] == promise].sort_values("index")
    return [(a, None if math.isnan(lat) else round(lat, 12), str(o))
            for a, lat, o in zip(rq["arrival"], rq["latency"], rq["outcome"])]


FAILED = (None, "condition_failed")

HAND = {
    # db serves the calls 0.5-2.5 and 2.5-4.5; the second answer comes after 1.0 + 2.5
    ("after", 2.5): ([(0.5, 3.0, "kept"), (1.0, *FAILED)],
                     [(0.5, 2.0, "kept"), (1.0, 3.5, "kept")]),
    # the first gives up at 2.0 and frees api's server; the second calls at 2.0, but db is
    # still serving the first call (to 2.5), so the second's answer (4.5) is too late too
    ("around", 1.5): ([(0.5, *FAILED), (1.0, *FAILED)],
                      [(0.5, 2.0, "kept"), (2.0, 2.5, "kept")]),
    # no timeout hit: the order-of-work trace
    ("around", 2.5): ([(0.5, 3.0, "kept"), (1.0, 5.5, "kept")],
                      [(0.5, 2.0, "kept"), (3.5, 2.0, "kept")]),
    # served 0.5-1.5 and 1.5-2.5, then the calls: answers at 3.5 and 5.5, given up at 3.0, 4.0
    ("before", 1.5): ([(0.5, *FAILED), (1.0, *FAILED)],
                      [(1.5, 2.0, "kept"), (2.5, 3.0, "kept")]),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("order,timeout", sorted(HAND))
def test_timeouts_by_hand(engine, order, timeout):
    r = ps.simulate(api_db(order, timeout), horizon=20.0, seed=0, engine=engine)
    assert r.engine == engine
    assert (rows(r, "serve"), rows(r, "query")) == HAND[order, timeout]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_timeout_ends_the_wait_for_a_provider_that_never_answers(engine):
    """db 100x slower: its answers would come at 200.5 and beyond the horizon. Without a
    timeout the callers are still waiting at the horizon (past their deadline: late); with
    one they fail at 1.5 and 2.0, while db's answers are still to come."""
    waiting = ps.simulate(api_db(db_slower=100.0), horizon=20.0, seed=0, engine=engine)
    assert rows(waiting, "serve") == [(0.5, None, "late"), (1.0, None, "late")]
    given_up = ps.simulate(api_db(timeout=1.0, db_slower=100.0), horizon=20.0, seed=0,
                           engine=engine)
    assert rows(given_up, "serve") == [(0.5, *FAILED), (1.0, *FAILED)]
    assert rows(given_up, "query") == [(0.5, None, "late"), (1.0, None, "late")]
    horizon_before_deadlines = ps.simulate(api_db(timeout=1.0, db_slower=100.0), horizon=5.0,
                                           seed=0, engine=engine)
    assert rows(horizon_before_deadlines, "query") == [(0.5, None, "unfinished"),
                                                      (1.0, None, "unfinished")]
    assert rows(horizon_before_deadlines, "serve") == [(0.5, *FAILED), (1.0, *FAILED)]


@pytest.mark.parametrize("timeout,message", [
    (-1.0, "timeout=-1.0 must be positive"), (0.0, "must be positive"),
    (float("nan"), "must be finite"), ("1s", "must be a number")])
def test_bad_timeouts_are_refused(timeout, message):
    with pytest.raises(ps.ScenarioError, match=f"promise 'serve': .*{message}"):
        api_db(timeout=timeout).spec()


def test_a_timeout_needs_calls_and_round_trips_through_scenario_files(tmp_path):
    m = ps.Model("no calls")
    m.promise(m.agent("a"), to=m.agent("u"), body=ps.Latency(deadline=1.0), name="p",
              timeout=0.5)
    with pytest.raises(ps.ScenarioError, match="promise 'p': timeout=0.5 .* makes none"):
        m.spec()
    path = tmp_path / "m.yaml"
    ps.dump_scenario(api_db("around", 1.5), path)
    assert "timeout: 1.5" in path.read_text()
    again = ps.load_scenario(path).model
    assert again.spec().promises == api_db("around", 1.5).spec().promises


def _ordered():
    """The order-of-work tests' model family (tests are not a package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_order_of_work_family", Path(__file__).with_name("test_order_of_work.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ORDERED = _ordered()


@st.composite
def timed_models(draw):
    """Random models with request failures and orders of work, and timeouts drawn for the
    promises that make calls (from shorter than a service time to longer than most
    responses)."""
    m, family = draw(_ORDERED.ordered_models())
    for i, p in enumerate(m.promises):
        if p.conditions is not None and draw(st.booleans()):
            m.promises[i] = dataclasses.replace(p, timeout=draw(st.floats(0.05, 3.0)))
    return m, family


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(drawn=timed_models(), seed=st.integers(0, 2**63))
def test_random_models_with_timeouts_agree_exactly(drawn, seed, monkeypatch):
    _ORDERED.assert_passes_agree(drawn, seed, monkeypatch)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_call_given_up_on_is_the_cause_of_the_broken_request(engine):
    """The second request's call is kept by db (3.5 against its deadline of 10), but api
    gave up on it at 2.5: db's slowness, as api's timeout, broke it."""
    r = ps.simulate(api_db("after", 2.5), horizon=20.0, seed=0, engine=engine)
    causes = r.request_causes
    assert list(zip(causes["index"], causes["agent"].astype(str), causes["cause"].astype(str),
                    causes["weight"])) == [(1, "db", "timeout", 1.0)]


def test_check_flags_a_timeout_that_cannot_help():
    from promisesim import diagnostics

    def timeouts(m):
        rows = diagnostics.conflicts(m)
        return rows[rows["conflict"] == "timeout beyond its deadline"].to_dict("records")

    assert timeouts(api_db(timeout=12.0)) == [{   # serve's deadline is 10
        "agent": "api", "promise": "serve", "conflict": "timeout beyond its deadline",
        "detail": "timeout 12 >= deadline 10"}]
    assert timeouts(api_db(timeout=2.5)) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_a_call_given_up_on_counts_as_failed_for_its_caller(engine):
    r = ps.simulate(api_db("after", 2.5), horizon=20.0, seed=0, engine=engine)
    assert r.request_absorbed.to_dict("records") == [
        {"replication": 0, "promise": "serve", "condition": "query", "failed_calls": 1,
         "absorbed": 0}]
