"""Request-level failures, by hand: error answers, degradations, partitions; both engines.

Deterministic times throughout, so every record can be written down; the
engines must agree with the hand-made trace and (where times tie) with each
other.
"""

import math

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import promisesim as ps
from promisesim.dists import Deterministic as D
from promisesim.dists import Exponential, Uniform
from promisesim.random import StreamReader, Streams

ENGINES = ["reference", "vector"]


def _equivalence():
    """The equivalence tests' model family and comparison (tests are not a package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_equivalence_family", Path(__file__).with_name("test_equivalence.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_FAMILY = _equivalence()


def rows(result, promise):
    rq = result.requests
    rq = rq[rq["promise"] == promise].sort_values(["index"])
    return [(int(i), a, None if math.isnan(lat) else round(lat, 12), str(o))
            for i, a, lat, o in zip(rq["index"], rq["arrival"], rq["latency"], rq["outcome"])]


def api_db(db_errors=0.0, db_service=0.5, deadline=10.0):
    """users -> api -> db, a request every 2 time units from 2 on (at 2, 4, 6, ...)."""
    m = ps.Model("api-db")
    users = m.agent("users")
    db = m.agent("db", service_time=D(db_service), errors=db_errors)
    api = m.agent("api")
    q = m.promise(db, to=api, body=ps.Latency(deadline=deadline), name="query")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=deadline), name="serve",
                      conditions=q)
    m.workload(serve, interarrival=D(2.0))
    return m


@pytest.mark.parametrize("engine", ENGINES)
def test_an_error_answer_is_answered_not_kept_and_fails_the_caller(engine):
    r = ps.simulate(api_db(db_errors=1.0), horizon=7.0, seed=0, engine=engine)
    # db serves each request (0.5) and answers an error; api's condition fails then
    assert rows(r, "query") == [(0, 2.0, 0.5, "error"), (1, 4.0, 0.5, "error"),
                                (2, 6.0, 0.5, "error")]
    assert rows(r, "serve") == [(0, 2.0, None, "condition_failed"), (1, 4.0, None, "condition_failed"),
                                (2, 6.0, None, "condition_failed")]
    row = r.promises.set_index("promise").loc["query"]
    assert row["requests"] == 3 and row["requests_kept"] == 0
    assert ps.simulate(api_db(db_errors=0.0), horizon=7.0, seed=0,
                       engine=engine).promises["requests_kept"].tolist() == [3, 3]


@pytest.mark.parametrize("engine", ENGINES)
def test_errors_follow_the_keyed_draws_of_each_request(engine):
    """Request ``k`` at a node is an error iff draw ``k`` of ("error", node path) is below
    the probability: computed here from the streams themselves."""
    p, horizon, seed = 0.3, 200.0, 11
    r = ps.simulate(api_db(db_errors=p), horizon=horizon, seed=seed, engine=engine)
    path = r.spec.call_trees[0].condition.items[0].path
    reader = StreamReader(Streams(seed), Uniform(0.0, 1.0), 0, "error", path)
    got = [o == "error" for *_, o in rows(r, "query")]
    expected = [reader[k] < p for k in range(len(got))]
    assert got == expected and 0 < sum(got) < len(got)


def test_errors_on_one_agent_change_no_other_draw():
    def model(errors):
        m = ps.Model("two")
        users = m.agent("users")
        for name, e in (("x", errors), ("y", 0.0)):
            a = m.agent(name, service_time=Exponential(0.4), errors=e)
            m.workload(m.promise(a, to=users, body=ps.Latency(deadline=1.0), name=name), rate=1.0)
        return m

    base = ps.simulate(model(0.0), horizon=500.0, seed=3, engine="reference").requests
    with_errors = ps.simulate(model(0.4), horizon=500.0, seed=3, engine="reference").requests
    y0, y1 = (t[t["promise"] == "y"].reset_index(drop=True) for t in (base, with_errors))
    pd.testing.assert_frame_equal(y0, y1)
    x0, x1 = (t[t["promise"] == "x"].reset_index(drop=True) for t in (base, with_errors))
    assert (x0["latency"].to_numpy() == x1["latency"].to_numpy()).all()   # same service draws
    assert (x1["outcome"] == "error").sum() > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_degradation_slows_the_requests_that_join_the_queue_while_it_lasts(engine):
    m = api_db(db_service=1.0)
    m.inject(ps.Degrade("db", at=5.0, duration=4.0, slower=3.0))
    r = ps.simulate(m, horizon=13.5, seed=0, engine=engine)
    # joins at 6 and 8 (inside [5, 9)): served 3.0 each, FIFO; at 10 and 12 the agent is
    # itself again, behind the queue the slow ones left
    assert rows(r, "query") == [(0, 2.0, 1.0, "kept"), (1, 4.0, 1.0, "kept"), (2, 6.0, 3.0, "kept"),
                                (3, 8.0, 4.0, "kept"), (4, 10.0, 3.0, "kept"),
                                (5, 12.0, None, "unfinished")]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_permanent_change_with_errors_composes_with_the_agents_own(engine):
    m = api_db(db_errors=0.0)
    m.inject(ps.Degrade("db", at=5.0, slower=2.0, errors=1.0))   # duration None: for good
    r = ps.simulate(m, horizon=20.0, seed=0, engine=engine)
    got = rows(r, "query")
    assert got[:2] == [(0, 2.0, 0.5, "kept"), (1, 4.0, 0.5, "kept")]
    assert all(lat == 1.0 and o == "error" for _, a, lat, o in got[2:] if a + 1.0 < 20.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_partition_cuts_calls_across_it_and_nothing_else(engine):
    m = api_db()
    m.inject(ps.Partition("api", "db", at=5.0, duration=4.0))
    r = ps.simulate(m, horizon=13.0, seed=0, engine=engine)
    assert rows(r, "query") == [(0, 2.0, 0.5, "kept"), (1, 4.0, 0.5, "kept"),
                                (2, 6.0, None, "partitioned"), (3, 8.0, None, "partitioned"),
                                (4, 10.0, 0.5, "kept"), (5, 12.0, 0.5, "kept")]
    assert [o for *_, o in rows(r, "serve")] == ["kept", "kept", "condition_failed",
                                                 "condition_failed", "kept", "kept"]
    # the agents stay up: the promises' standing over time is untouched
    assert r.promises["kept_fraction"].tolist() == [1.0, 1.0]
    # one way only: calls from db to api would fail, calls from api to db go through
    one_way = api_db()
    one_way.inject(ps.Partition("db", "api", at=5.0, duration=4.0, both_ways=False))
    r = ps.simulate(one_way, horizon=13.0, seed=0, engine=engine)
    assert r.promises["requests_kept"].tolist() == [6, 6]


@pytest.mark.parametrize("engine", ENGINES)
def test_users_cut_off_from_the_front_door(engine):
    m = api_db()
    m.inject(ps.Partition(["users"], ["api", "db"], at=3.0, duration=2.0))
    r = ps.simulate(m, horizon=7.0, seed=0, engine=engine)
    assert [o for *_, o in rows(r, "serve")] == ["kept", "partitioned", "kept"]
    assert len(rows(r, "query")) == 2     # the cut-off request never called db


# -- the engines agree on random models with request-level failures -----------------------------

probabilities = st.sampled_from([0.0, 0.05, 0.3, 1.0])


@st.composite
def failing_models(draw):
    """The equivalence family's models, with errors, bursts, degradations and partitions, and
    callers that fail on late answers."""
    m = draw(_FAMILY.models())
    names = [a.name for a in m.agents if a.name != "users"]
    for i, a in enumerate(m.agents):
        if a.name == "users":
            continue
        kind = draw(st.sampled_from(["none", "none", "constant", "bursts"]))
        if kind == "constant":
            m.agents[i] = ps.Agent(**{**a.__dict__, "errors": draw(probabilities)})
        elif kind == "bursts":
            m.agents[i] = ps.Agent(**{**a.__dict__, "errors": ps.Bursts(
                rate=draw(st.floats(0.02, 0.5)), mean_duration=draw(st.floats(0.5, 10.0)),
                errors=draw(probabilities), baseline=draw(st.sampled_from([0.0, 0.02])))})
    for g, group in enumerate(m.super_agents):
        if group.member is not None and draw(st.booleans()):
            member = ps.AgentTemplate(**{**group.member.__dict__, "errors": draw(probabilities)})
            m.super_agents[g] = type(group)(**{**group.__dict__, "member": member})
    for _ in range(draw(st.integers(0, 3))):
        m.inject(ps.Degrade(draw(st.sampled_from(names)), at=draw(st.floats(0.0, 50.0)),
                            duration=draw(st.none() | st.floats(0.5, 30.0)),
                            slower=draw(st.sampled_from([1.0, 0.5, 3.0, 10.0])),
                            errors=draw(st.sampled_from([0.0, 0.2, 1.0]))))
    for i, promise in enumerate(m.promises):   # callers that wait for late answers, or not
        if promise.conditions is not None and draw(st.booleans()):
            m.promises[i] = ps.Promise(**{**promise.__dict__, "late": "fail"})
    everyone = names + ["users"]
    for _ in range(draw(st.integers(0, 2))):
        a = draw(st.sampled_from(everyone))
        b = draw(st.sampled_from([n for n in everyone if n != a]))
        m.inject(ps.Partition(a, b, at=draw(st.floats(0.0, 50.0)),
                              duration=draw(st.floats(0.5, 30.0)), both_ways=draw(st.booleans())))
    return m


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=failing_models(), seed=st.integers(0, 2**63))
def test_random_models_with_request_failures_agree_exactly(model, seed):
    _FAMILY.assert_same(model, 60.0, 3, seed)


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(model=failing_models(), seed=st.integers(0, 2**63))
def test_time_windows_with_request_failures_give_the_counts_of_one_pass(model, seed, monkeypatch):
    """Errors and degradations change service, not the queues' carry-over: counts computed
    in short windows of time are those of one pass."""
    _FAMILY._assert_windows_change_nothing(model, 60.0, 3, seed, monkeypatch, records=40)
