"""Retries with backoff, on both engines: hand traces, the keyed draws of jitter, bad
settings, and random models on which the engines agree exactly.

users -> api (service 1) -> db (service 2), deterministic; db answers errors while a
degradation with ``errors=1`` lasts.
"""

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import promisesim as ps
from promisesim.dists import Deterministic as D
from promisesim.dists import Uniform
from promisesim.engines.vector import VectorEngine
from promisesim.errors import EngineError
from promisesim.random import StreamReader, Streams

ENGINES = ["reference", "vector"]


def api_db(retries=2, backoff=None, timeout=None, errors_until=3.0, end=1.5):
    m = ps.Model("retries")
    users = m.agent("users")
    api = m.agent("api", service_time=D(1.0))
    db = m.agent("db", service_time=D(2.0))
    if errors_until:
        m.inject(ps.Degrade("db", at=0.0, duration=errors_until, errors=1.0))
    q = m.promise(db, to=api, body=ps.Latency(deadline=10.0), name="query")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=30.0), name="serve", conditions=q,
                      retries=retries, backoff=backoff, timeout=timeout)
    m.workload(serve, interarrival=D(1.0), end=end)
    return m


def rows(result, promise):
    rq = result.requests
    rq = rq[rq["promise"] == promise]
    return [(int(at), a, None if math.isnan(lat) else round(lat, 12), str(o))
            for at, a, lat, o in zip(rq["attempt"], rq["arrival"], rq["latency"], rq["outcome"])]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_error_is_retried_after_the_backoff(engine):
    """The call at 1.0 is answered with an error at 3.0 (db errs until 3.0); after 0.5 the
    retry reaches db at 3.5, is kept at 5.5, and api serves until 6.5."""
    r = ps.simulate(api_db(backoff=ps.Backoff(0.5)), horizon=30.0, seed=0, engine=engine)
    assert r.engine == engine
    assert rows(r, "query") == [(0, 1.0, 2.0, "error"), (1, 3.5, 2.0, "kept")]
    assert rows(r, "serve") == [(0, 1.0, 5.5, "kept")]


@pytest.mark.parametrize("engine", ENGINES)
def test_exponential_backoff_and_the_last_attempt_failing(engine):
    """db errs until 12: attempts at 1, then after each error (2 later) waits of 0.5, 1, 2:
    attempts at 1, 3.5, 6.5, 10.5, all errors; the call fails with the last at 12.5."""
    r = ps.simulate(api_db(retries=3, backoff=ps.Backoff(0.5, multiplier=2.0), errors_until=12.0),
                    horizon=30.0, seed=0, engine=engine)
    assert rows(r, "query") == [(0, 1.0, 2.0, "error"), (1, 3.5, 2.0, "error"),
                                (2, 6.5, 2.0, "error"), (3, 10.5, 2.0, "error")]
    assert rows(r, "serve") == [(0, 1.0, None, "condition_failed")]
    capped = ps.simulate(api_db(retries=3, backoff=ps.Backoff(0.5, maximum=0.75),
                                errors_until=12.0), horizon=30.0, seed=0, engine=engine)
    assert [a for _, a, _, _ in rows(capped, "query")] == [1.0, 3.5, 6.25, 9.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_retry_after_a_timeout_adds_load_to_a_provider_still_busy(engine):
    """timeout 1: the first attempt (db 1-3) is given up at 2 and retried at once; db serves
    the retry after the first (3-5), past its own timeout (3): both fail, db did both."""
    r = ps.simulate(api_db(retries=1, timeout=1.0, errors_until=None, end=1.5), horizon=30.0,
                    seed=0, engine=engine)
    assert rows(r, "query") == [(0, 1.0, 2.0, "kept"), (1, 2.0, 3.0, "kept")]
    assert rows(r, "serve") == [(0, 1.0, None, "condition_failed")]


@pytest.mark.parametrize("engine", ENGINES)
def test_jitter_draws_from_the_keyed_stream_of_each_retry(engine):
    """Full jitter: the wait before retry j is u * 0.5 * 2**(j - 1), u draw k of
    ("backoff", path of retry j's node)."""
    m = api_db(retries=2, backoff=ps.Backoff(0.5, jitter="full"), errors_until=6.0)
    r = ps.simulate(m, horizon=30.0, seed=11, engine=engine)
    assert r.engine == engine
    node = m.spec().call_trees[0].condition.items[0]
    streams = Streams(11)
    u1 = StreamReader(streams, Uniform(0.0, 1.0), 0, "backoff", node.retries[0].path)[0]
    u2 = StreamReader(streams, Uniform(0.0, 1.0), 0, "backoff", node.retries[1].path)[0]
    sent = [a for _, a, _, _ in rows(r, "query")]
    assert sent[0] == 1.0
    assert sent[1] == 3.0 + 0.5 * u1
    assert sent[2] == sent[1] + 2.0 + 1.0 * u2
    equal = ps.Backoff(0.5, jitter="equal")
    assert equal.wait(2, 0.0) == 0.5 and equal.wait(2, 1.0) == 1.0


@pytest.mark.parametrize("change,message", [
    (dict(retries=-1), "retries=-1 must be a whole number from 0 to 100"),
    (dict(retries=1.5), "retries=1.5 must be a whole number"),
    (dict(retries=True), "retries=True must be a whole number"),
    (dict(retries=0, backoff=ps.Backoff(1.0)), "a backoff is the wait before a retry"),
    (dict(backoff=ps.Backoff(1.0, multiplier=0.5)), "multiplier=0.5 must be at least 1"),
    (dict(backoff=ps.Backoff(-1.0)), "backoff initial=-1.0 must be non-negative"),
    (dict(backoff=ps.Backoff(1.0, jitter="half")), "jitter='half' must be 'full', 'equal'"),
])
def test_bad_retries_are_refused(change, message):
    with pytest.raises(ps.ScenarioError, match=f"promise 'serve': .*{message}"):
        api_db(**change).spec()


def test_retries_round_trip_through_scenario_files_and_run_on_the_vector_engine(tmp_path):
    m = api_db(backoff=ps.Backoff(0.5, maximum=4.0, jitter="equal"))
    assert VectorEngine().unsupported(m.spec()) == []
    assert ps.simulate(m, horizon=10.0, seed=0).engine == "vector"
    path = tmp_path / "m.yaml"
    ps.dump_scenario(m, path)
    text = path.read_text()
    assert "retries: 2" in text and "jitter: equal" in text
    assert ps.load_scenario(path).model.spec().promises == m.spec().promises


def test_a_retry_chain_longer_than_the_pass_limit_is_still_the_vector_engines():
    """db errs until 60: every attempt of the one call errs, 20 retries, one pass each."""
    m = api_db(retries=20, backoff=ps.Backoff(0.5, multiplier=1.0), errors_until=60.0)
    vec = ps.simulate(m, horizon=80.0, seed=0, engine="vector")
    ref = ps.simulate(m, horizon=80.0, seed=0, engine="reference")
    assert vec.engine == "vector"
    assert rows(vec, "query") == rows(ref, "query")
    assert [a for a, *_ in rows(vec, "query")] == list(range(21))


def test_the_vector_engine_leaves_retry_budgets_to_the_reference_engine():
    m = api_db()
    m.promises[-1] = dataclasses.replace(m.promises[-1], budget=ps.RetryBudget(ratio=0.1))
    assert VectorEngine().unsupported(m.spec()) == ["retry budgets (promise 'serve')"]
    with pytest.raises(EngineError, match="retry budgets"):
        ps.simulate(m, horizon=10.0, engine="vector")


def test_check_flags_immediate_retries_of_calls_that_time_out():
    from promisesim import diagnostics

    def flagged(m):
        rows = diagnostics.conflicts(m)
        return rows[rows["conflict"] == "retries without backoff or budget"]["detail"].tolist()

    assert flagged(api_db(timeout=1.0)) == [
        "2 retries at once, without a budget, of calls that time out after 1"]
    assert flagged(api_db(timeout=1.0, backoff=ps.Backoff(0.2))) == []
    assert flagged(api_db()) == []   # no timeout: retries of errors only


# -- random models -----------------------------------------------------------------------
def _timeouts():
    """The timeout tests' model family (tests are not a package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_timeouts_family", Path(__file__).with_name("test_timeouts.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TIMED = _timeouts()


@st.composite
def retrying_models(draw):
    """Random models with request failures, orders of work and timeouts, and retries drawn
    for the promises that make calls: how many, a backoff (none, or exponential or not,
    with a cap or not, with either jitter) and the kinds of failure retried. (A backoff
    without jitter sends the retries of the requests one crash ended at one instant, in
    an order the engines may not share: see the vector engine's notes on ties.)"""
    m, family = draw(_TIMED.timed_models())
    for i, p in enumerate(m.promises):
        if p.conditions is None or not draw(st.booleans()):
            continue
        event("retries")
        backoff = draw(st.one_of(st.none(), st.builds(
            ps.Backoff, st.floats(0.0, 2.0), st.sampled_from([1.0, 2.0]),
            st.one_of(st.none(), st.floats(0.5, 3.0)),
            st.sampled_from(["full", "equal"]))))
        retry_on = draw(st.one_of(st.none(), st.lists(
            st.sampled_from(["errors", "timeouts", "refusals"]), min_size=1, max_size=3,
            unique=True).map(tuple)))
        m.promises[i] = dataclasses.replace(p, retries=draw(st.integers(1, 3)), backoff=backoff,
                                            retry_on=retry_on)
    return m, family


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(drawn=retrying_models(), seed=st.integers(0, 2**63))
def test_random_models_with_retries_agree_exactly(drawn, seed, monkeypatch):
    _TIMED._ORDERED.assert_passes_agree(drawn, seed, monkeypatch)


#: A model the random family found on which the vector engine disagrees: a retried k-of-n call
#: whose provider has a load-dependent slowdown and, while degraded, answers with errors (so
#: calls to it are retried). Without the slowdown, the errors or the retries both agree.
SLOWED_AND_RETRIED = """
name: slowed and retried
agents:
- {name: users}
- {name: a0, service_time: {lognormal: {mean: 0.043783796537285764, sigma: 0.6875095075550887}}}
- {name: a1, service_time: {lognormal: {mean: 0.39598735952465, sigma: 0.5}}, slowdown: 0.3}
- {name: a2, service_time: {uniform: {low: 0.11986117134651736, high: 0.7309475443365465}}}
- {name: a3, service_time: {uniform: {low: 0.1608992458922529, high: 0.3306110671241298}}}
- {name: top, service_time: {exponential: {mean: 0.6}}}
super_agents:
- {name: grp, size: 4, rule: all, member: {servers: 2, service_time:
    {lognormal: {mean: 0.39509512947207076, sigma: 0.4787972850882555}}}}
promises:
- {name: a0-offer, promiser: a0, promisee: top, body: availability}
- {name: a1-offer, promiser: a1, promisee: top, body: {latency: {deadline: 1.3226805816912552}}}
- {name: a2-offer, promiser: a2, promisee: top, body: availability}
- {name: a3-offer, promiser: a3, promisee: top, body: {latency: {deadline: 1.47390395044847}}}
- {name: grp-offer, promiser: grp, promisee: top, body: {latency: {deadline: 1.0}}}
- {name: serve, promiser: top, promisee: users, body: {latency: {deadline: 1.9253121611221997}},
   retries: 2, conditions: {k_of: {k: 2, of: [a0-offer, a1-offer, a2-offer, a3-offer,
   grp-offer]}}}
- {name: status, promiser: top, promisee: users, body: availability,
   conditions: {k_of: {k: 2, of: [a0-offer, a1-offer, a2-offer, a3-offer, grp-offer]}}}
workloads:
- {promise: serve, rate: 0.778335035262401}
- {promise: a1-offer, rate: 0.38815185891917103, name: direct}
injections:
- degrade: {target: a1, at: 7.616345196048017e-270, duration: 20.304291002784115,
    slower: 10.0, errors: 0.2}
"""


def test_retried_calls_to_a_slowed_agent_are_left_to_the_reference_engine():
    from promisesim.scenario import scenario_from_text

    model = scenario_from_text(SLOWED_AND_RETRIED).model
    with pytest.raises(ps.EngineError, match="retried calls to an agent with a load-dependent "
                                             "slowdown \\(agent 'a1'\\)"):
        ps.simulate(model, horizon=60.0, seed=0, engine="vector")
    result = ps.simulate(model, horizon=60.0, seed=0)
    assert result.engine == "reference" and "slowdown" in result.engine_reason


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="the vector engine disagrees here: to be fixed")
def test_retried_calls_to_a_slowed_agent_agree_when_forced(engines_forced):
    engines_forced(SLOWED_AND_RETRIED, "requests")
