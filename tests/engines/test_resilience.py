"""A caller's defences beyond timeouts and plain retries: which failures it retries,
fallbacks and hedges (both engines), retry budgets and circuit breakers (the reference
engine). Hand traces on deterministic models, the breaker's table, bad settings, scenario
files, the vector engine's handover, and random models with fallbacks and hedges on which the
engines agree.

users -> api (service 1) -> db; db answers errors while a degradation with ``errors=1`` lasts.
"""

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import promisesim as ps
from promisesim.dists import Deterministic as D
from promisesim.engines.vector import VectorEngine
from promisesim.errors import EngineError


def api_db(db_service=2.0, errors_until=20.0, end=2.5, **defences):
    m = ps.Model("defences")
    users = m.agent("users")
    api = m.agent("api", service_time=D(1.0))
    db = m.agent("db", service_time=D(db_service))
    if errors_until:
        m.inject(ps.Degrade("db", at=0.0, duration=errors_until, errors=1.0))
    q = m.promise(db, to=api, body=ps.Latency(deadline=10.0), name="query")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=30.0), name="serve", conditions=q,
                      **defences)
    m.workload(serve, interarrival=D(1.0), end=end)
    return m


def rows(result, promise):
    """(attempt, arrival, latency, outcome) of each request to ``promise``, by arrival."""
    rq = result.requests
    rq = rq[rq["promise"] == promise]
    return sorted(((int(at), a, None if math.isnan(lat) else round(lat, 12), str(o))
                   for at, a, lat, o in zip(rq["attempt"], rq["arrival"], rq["latency"],
                                            rq["outcome"])), key=lambda row: row[1::-1])


def states(result):
    return [(round(t, 12), str(s)) for t, s in zip(result.breakers["time"], result.breakers["state"])]


# -- which failures are retried ----------------------------------------------------------
@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_retry_on_timeouts_leaves_an_error_alone(engine):
    """The call at 1 is answered with an error at 3; the caller retries only timeouts."""
    r = ps.simulate(api_db(end=1.5, retries=2, backoff=ps.Backoff(0.5), retry_on="timeouts"),
                    horizon=30.0, seed=0, engine=engine)
    assert rows(r, "query") == [(0, 1.0, 2.0, "error")]
    assert rows(r, "serve") == [(0, 1.0, None, "condition_failed")]
    again = ps.simulate(api_db(end=1.5, retries=1, backoff=ps.Backoff(0.5),
                               retry_on=["errors"]), horizon=30.0, seed=0, engine=engine)
    assert rows(again, "query") == [(0, 1.0, 2.0, "error"), (1, 3.5, 2.0, "error")]


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_retry_on_errors_leaves_a_timeout_alone(engine):
    """timeout 1: the call at 1 is given up on at 2 and not sent again; db still serves it."""
    r = ps.simulate(api_db(errors_until=None, end=1.5, timeout=1.0, retries=2,
                           retry_on=["errors", "refusals"]), horizon=30.0, seed=0, engine=engine)
    assert rows(r, "query") == [(0, 1.0, 2.0, "kept")]
    assert rows(r, "serve") == [(0, 1.0, None, "condition_failed")]


# -- retry budgets -----------------------------------------------------------------------
def test_a_budget_with_a_floor_of_one_retry_per_window():
    """db (2 per request, one server) errs throughout; calls at 1 and 2. The retry of the
    first is sent at 3.5 (after 0.5), the first of the window; the second's retry (at 5.5)
    and the first's second retry (at 8) find one retry already sent in the last 10: refused,
    each call fails where its last attempt left it."""
    r = ps.simulate(api_db(retries=2, backoff=ps.Backoff(0.5),
                           budget=ps.RetryBudget(ratio=0.0, window=10.0, minimum=1)),
                    horizon=30.0, seed=0)
    assert rows(r, "query") == [(0, 1.0, 2.0, "error"), (0, 2.0, 3.0, "error"),
                                (1, 3.5, 3.5, "error")]
    assert rows(r, "serve") == [(0, 1.0, None, "condition_failed"),
                                (0, 2.0, None, "condition_failed")]


def test_a_budget_as_a_share_of_first_attempts():
    """ratio 0.5, no floor: at 3.5 the two first attempts in the window allow one retry
    (0 < 1); at 5.5 one retry was sent (1 < 1 is false): refused. With ratio 1, 1 < 2: sent."""
    r = ps.simulate(api_db(retries=1, backoff=ps.Backoff(0.5),
                           budget=ps.RetryBudget(ratio=0.5, window=10.0, minimum=0)),
                    horizon=30.0, seed=0)
    assert [a for at, a, _, _ in rows(r, "query") if at] == [3.5]
    # a window of 2: at 3.5 only the first attempt at 2 is in (2 > 1.5): 0 < 0.5, allowed;
    # at 5.5 none is: 0 < 0 is false, refused
    short = ps.simulate(api_db(retries=1, backoff=ps.Backoff(0.5),
                               budget=ps.RetryBudget(ratio=0.5, window=2.0, minimum=0)),
                        horizon=30.0, seed=0)
    assert [a for at, a, _, _ in rows(short, "query") if at] == [3.5]
    generous = ps.simulate(api_db(retries=1, backoff=ps.Backoff(0.5),
                                  budget=ps.RetryBudget(ratio=1.0, window=10.0, minimum=0)),
                           horizon=30.0, seed=0)
    assert [a for at, a, _, _ in rows(generous, "query") if at] == [3.5, 5.5]


# -- circuit breakers --------------------------------------------------------------------
def breaker_model(breaker=None, errors_until=4.0, db_service=0.5, **options):
    return api_db(db_service=db_service, errors_until=errors_until, end=12.5,
                  breaker=breaker or ps.Breaker(failure_rate=0.5, window=2, open_for=5.0),
                  **options)


def test_a_breaker_opens_fails_fast_and_closes_after_a_kept_trial():
    """db errs until 4 (0.5 per request): the calls at 1 and 2 fail at 1.5 and 2.5, two of a
    window of two: it opens at 2.5 and the calls at 3 ... 7 fail at once, recorded at db's
    promise as breaker_open without reaching it. At 7.5 it is half-open: the call at 8 is its
    trial, kept at 8.5, and it closes."""
    r = ps.simulate(breaker_model(), horizon=30.0, seed=0)
    query = rows(r, "query")
    assert query[:2] == [(0, 1.0, 0.5, "error"), (0, 2.0, 0.5, "error")]
    assert query[2:7] == [(0, float(t), None, "breaker_open") for t in range(3, 8)]
    assert query[7:] == [(0, float(t), 0.5, "kept") for t in range(8, 13)]
    assert [o for _, _, _, o in rows(r, "serve")] == ["condition_failed"] * 7 + ["kept"] * 5
    assert states(r) == [(2.5, "open"), (7.5, "half_open"), (8.5, "closed")]
    assert list(r.breakers["promise"].astype(str).unique()) == ["serve"]
    assert list(r.breakers["provider"].astype(str).unique()) == ["query"]
    causes = r.request_causes
    assert set(causes.loc[causes["arrival"] >= 3.0, "cause"]) == {"breaker"}


def test_a_failed_trial_opens_it_again():
    r = ps.simulate(breaker_model(errors_until=9.0), horizon=30.0, seed=0)
    assert states(r) == [(2.5, "open"), (7.5, "half_open"), (8.5, "open"), (13.5, "half_open")]
    assert [o for _, _, _, o in rows(r, "query")][7:] == ["error"] + ["breaker_open"] * 4


def test_half_open_lets_only_its_trials_through():
    """db takes 1.2: errors end at 2.2 and 3.4, which opens it until 8.4. The trial sent at 9
    is out until 10.2, so the call at 10 fails fast; the trial is kept, the breaker closes at
    10.2, in time for the call at 11. (The call at 3, sent before it opened, does not count.)"""
    r = ps.simulate(breaker_model(db_service=1.2), horizon=30.0, seed=0)
    query = rows(r, "query")
    assert [(a, o) for _, a, _, o in query if a >= 8] == [
        (8.0, "breaker_open"), (9.0, "kept"), (10.0, "breaker_open"), (11.0, "kept"),
        (12.0, "kept")]
    assert states(r) == [(3.4, "open"), (8.4, "half_open"), (10.2, "closed")]


def test_a_time_window_forgets_failures_older_than_it():
    """Failures end at 1.5, 2.5, 3.5 (db errs until 4); with two needed, a window of 1.5
    holds the two at 2.5 and opens; one of 0.9 never holds two."""
    opens = ps.simulate(breaker_model(ps.Breaker(0.5, window=1.5, per="time", minimum=2,
                                                 open_for=5.0)), horizon=30.0, seed=0)
    assert states(opens)[0] == (2.5, "open")
    never = ps.simulate(breaker_model(ps.Breaker(0.5, window=0.9, per="time", minimum=2,
                                                 open_for=5.0)), horizon=30.0, seed=0)
    assert states(never) == []
    assert len(never.breakers.columns) == 5


def test_a_timeout_counts_as_a_failure_and_late_calls_sent_before_do_not():
    """No errors, db takes 2, timeout 0.9: the calls at 1 and 2 are given up on at 1.9 and
    2.9, which opens it; db's answers that come later (3, 5) change nothing."""
    r = ps.simulate(breaker_model(errors_until=None, db_service=2.0, timeout=0.9),
                    horizon=30.0, seed=0)
    assert states(r)[:2] == [(2.9, "open"), (7.9, "half_open")]
    query = rows(r, "query")
    assert query[2] == (0, 3.0, None, "breaker_open")


def test_with_retries_every_attempt_counts_and_an_open_breaker_refuses_a_retry():
    """Backoff 0.1, retrying errors only. The call at 1 errs at 1.5, its retry (db 1.6-2.1)
    too: two failures, open at 2.1. Its second retry (2.3) fails fast. The call at 2, sent
    while closed, errs at 2.6 (db was busy until 2.1), which no longer counts; its retry at
    2.7 fails fast, a refusal, not retried again."""
    r = ps.simulate(breaker_model(retries=2, backoff=ps.Backoff(0.1), retry_on="errors"),
                    horizon=30.0, seed=0)
    query = [(at, pytest.approx(a), lat, o) for at, a, lat, o in rows(r, "query") if a < 3]
    assert query == [(0, 1.0, 0.5, "error"), (1, 1.6, 0.5, "error"), (0, 2.0, 0.6, "error"),
                     (2, 2.3, None, "breaker_open"), (1, 2.7, None, "breaker_open")]
    assert states(r) == [(2.1, "open"), (7.1, "half_open"), (8.5, "closed")]


# -- bad settings, files, engines -----------------------------------------------------------
@pytest.mark.parametrize("change,message", [
    (dict(retries=1, retry_on="sometimes"), "retry_on=\\('sometimes',\\) must name one or more"),
    (dict(retries=1, retry_on=[]), "retry_on=\\(\\) must name one or more"),
    (dict(retry_on="errors"), "retry_on says which failures it retries, and it makes no retries"),
    (dict(budget=ps.RetryBudget()), "a budget caps its retries, and it makes none"),
    (dict(retries=1, budget=ps.RetryBudget(ratio=-0.1)), "budget ratio=-0.1 must be non-negative"),
    (dict(retries=1, budget=ps.RetryBudget(window=0)), "budget window=0 must be positive"),
    (dict(retries=1, budget=ps.RetryBudget(minimum=1.5)), "budget minimum=1.5 must be a whole"),
    (dict(breaker=ps.Breaker(failure_rate=1.5)), "failure_rate=1.5 must be a share"),
    (dict(breaker=ps.Breaker(failure_rate=0)), "failure_rate=0 must be positive"),
    (dict(breaker=ps.Breaker(per="requests")), "per='requests' must be 'calls'"),
    (dict(breaker=ps.Breaker(window=2.5)), "window=2.5 counts calls"),
    (dict(breaker=ps.Breaker(window=5, minimum=6)), "minimum=6 is more calls than its window"),
    (dict(breaker=ps.Breaker(open_for=-1)), "open_for=-1 must be positive"),
    (dict(breaker=ps.Breaker(trials=0)), "trials=0 must be a whole number of at least 1"),
    (dict(breaker="yes"), "breaker must be a Breaker"),
])
def test_bad_defences_are_refused(change, message):
    with pytest.raises(ps.ScenarioError, match=f"promise 'serve': .*{message}"):
        api_db(**change).spec()


def test_defences_in_scenario_files_and_the_vector_engines_handover(tmp_path):
    m = breaker_model(ps.Breaker(0.25, window=30.0, per="time", minimum=5, open_for=2.0,
                                 trials=3), retries=1, retry_on=["errors", "timeouts"],
                      budget=ps.RetryBudget(0.2, 5.0, 2))
    path = tmp_path / "m.yaml"
    ps.dump_scenario(m, path)
    text = path.read_text()
    assert "per: time" in text and "retry_on:" in text and "ratio: 0.2" in text
    assert ps.load_scenario(path).model.spec().promises == m.spec().promises
    guarded = breaker_model()
    assert VectorEngine().unsupported(guarded.spec()) == ["circuit breakers (promise 'serve')"]
    with pytest.raises(EngineError, match="circuit breakers"):
        ps.simulate(guarded, horizon=10.0, engine="vector")
    auto = ps.simulate(guarded, horizon=30.0, seed=0)
    assert auto.engine == "reference"


def test_a_bad_breaker_in_a_file_is_one_line_naming_it(tmp_path):
    m = breaker_model()
    path = tmp_path / "m.yaml"
    ps.dump_scenario(m, path)
    path.write_text(path.read_text().replace("open_for: 5.0", "open_for: -5"))
    with pytest.raises(ps.ScenarioError, match="promise 'serve': breaker open_for=-5"):
        ps.load_scenario(path).model.spec()
    path.write_text(path.read_text().replace("open_for: -5", "opens_for: 5"))
    with pytest.raises(ps.ScenarioError, match="opens_for"):
        ps.load_scenario(path)


def test_check_flags_retries_that_can_overload_their_provider_unless_bounded():
    """db at utilisation 0.4: two retries per call could take it to 1.2; one, to 0.8."""
    from promisesim import diagnostics

    def flagged(**defences):
        rows = diagnostics.conflicts(api_db(db_service=0.4, **defences))
        return rows[rows["conflict"] == "retries can overload"]["detail"].tolist()

    assert flagged(retries=2) == ["db at utilisation 0.4 would need 1.2 if every call to "
                                  "'query' were retried 2 time(s); no budget or breaker bounds it"]
    assert flagged(retries=1) == []
    assert flagged(retries=2, budget=ps.RetryBudget()) == []
    assert flagged(retries=2, breaker=ps.Breaker()) == []
    rows = diagnostics.conflicts(api_db(db_service=0.4, retries=2, timeout=0.5,
                                        budget=ps.RetryBudget()))
    assert "retries without backoff or budget" not in set(rows["conflict"])


# -- fallbacks -----------------------------------------------------------------------------
def with_fallback(db_errors_until=5.0, cache_errors=0.0):
    """users -> gateway (instant) -> api (1) -> fallback(db query (2), cache read (0.5))."""
    m = ps.Model("fallback")
    users, gateway = m.agent("users"), m.agent("gateway")
    api = m.agent("api", service_time=D(1.0))
    db = m.agent("db", service_time=D(2.0))
    cache = m.agent("cache", service_time=D(0.5), errors=cache_errors)
    m.inject(ps.Degrade("db", at=0.0, duration=db_errors_until, errors=1.0))
    q = m.promise(db, to=api, body=ps.Latency(deadline=10.0), name="query")
    c = m.promise(cache, to=api, body=ps.Latency(deadline=10.0), name="cached")
    serve = m.promise(api, to=gateway, body=ps.Latency(deadline=30.0), name="serve",
                      conditions=ps.fallback(q, c))
    page = m.promise(gateway, to=users, body=ps.Latency(deadline=30.0), name="page",
                     conditions=serve)
    m.workload(page, interarrival=D(4.0), end=8.5)
    return m


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_a_failed_call_falls_back_and_the_answer_is_degraded_all_the_way_up(engine):
    """Arrival 4: db errs (4-6), the cache answers (6-6.5), api serves (6.5-7.5): kept only
    thanks to the fallback, so degraded, and so is the gateway's request on top of it.
    Arrival 8: db answers (8-10), api (10-11): kept, the cache not called."""
    r = ps.simulate(with_fallback(), horizon=30.0, seed=0, engine=engine)
    assert r.engine == engine
    assert rows(r, "query") == [(0, 4.0, 2.0, "error"), (0, 8.0, 2.0, "kept")]
    assert rows(r, "cached") == [(0, 6.0, 0.5, "kept")]
    assert rows(r, "serve") == [(0, 4.0, 3.5, "degraded"), (0, 8.0, 3.0, "kept")]
    assert rows(r, "page") == [(0, 4.0, 3.5, "degraded"), (0, 8.0, 3.0, "kept")]
    table = r.promises.set_index("promise")
    assert table.loc["page", ["requests", "requests_kept", "requests_degraded"]].tolist() == [2, 1, 1]
    assert table.loc["page", "request_kept_fraction"] == 0.5
    assert "requests_degraded" in set(r.summary()["metric"])
    assert r.request_causes.empty           # degraded is kept, by a fallback: not broken
    absorbed = r.request_absorbed.set_index("condition")
    assert absorbed.loc["query", ["failed_calls", "absorbed"]].tolist() == [1, 1]
    assert "requests_degraded" not in set(ps.simulate(api_db(), horizon=5.0).summary()["metric"])


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_when_the_fallback_fails_too_the_condition_fails(engine):
    r = ps.simulate(with_fallback(cache_errors=1.0), horizon=30.0, seed=0, engine=engine)
    assert rows(r, "cached") == [(0, 6.0, 0.5, "error")]
    assert rows(r, "serve")[0] == (0, 4.0, None, "condition_failed")
    assert rows(r, "page")[0] == (0, 4.0, None, "condition_failed")


# -- hedged requests -----------------------------------------------------------------------
def hedged(a_service=3.0, hedge=1.0, a_errors=0.0):
    """users -> api (instant) -> any_of(a, b, hedge); b takes 0.5."""
    m = ps.Model("hedge")
    users, api = m.agent("users"), m.agent("api")
    a = m.agent("a", service_time=D(a_service), errors=a_errors)
    b = m.agent("b", service_time=D(0.5))
    pa = m.promise(a, to=api, body=ps.Latency(deadline=10.0), name="from-a")
    pb = m.promise(b, to=api, body=ps.Latency(deadline=10.0), name="from-b")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=30.0), name="serve",
                      conditions=ps.any_of(pa, pb, hedge=hedge))
    m.workload(serve, interarrival=D(1.0), end=1.5)
    return m


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_a_hedge_goes_to_the_next_provider_and_the_first_answer_wins(engine):
    """a would take 3 (1-4); at 2 with no answer a copy goes to b (2-2.5), which wins: the
    request is answered at 2.5. a still does its work, recorded kept at 4."""
    r = ps.simulate(hedged(), horizon=30.0, seed=0, engine=engine)
    assert r.engine == engine
    assert rows(r, "from-a") == [(0, 1.0, 3.0, "kept")]
    assert rows(r, "from-b") == [(0, 2.0, 0.5, "kept")]
    assert rows(r, "serve") == [(0, 1.0, 1.5, "kept")]


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_no_hedge_when_the_first_answers_or_fails_in_time(engine):
    fast = ps.simulate(hedged(a_service=0.5), horizon=30.0, seed=0, engine=engine)
    assert rows(fast, "from-b") == [] and rows(fast, "serve") == [(0, 1.0, 0.5, "kept")]
    failed = ps.simulate(hedged(a_service=0.5, a_errors=1.0), horizon=30.0, seed=0,
                         engine=engine)
    assert rows(failed, "from-b") == []
    assert rows(failed, "serve") == [(0, 1.0, None, "condition_failed")]


@pytest.mark.parametrize("build,message", [
    (lambda q, c: ps.fallback(q), "a fallback needs a promise to call first and at least one"),
    (lambda q, c: ps.any_of(q, c, hedge=-1.0), "hedge=-1.0 must be a positive, finite time"),
    (lambda q, c: ps.any_of(q, hedge=1.0), "a hedge sends a second copy to another provider"),
    (lambda q, c: ps.fallback(q, "nowhere"), "condition 'nowhere' is not a promise of the model"),
])
def test_bad_fallbacks_and_hedges_are_refused(build, message):
    m = ps.Model("bad")
    api = m.agent("api")
    q = m.promise(m.agent("db"), to=api, body=ps.Latency(deadline=1.0), name="query")
    c = m.promise(m.agent("cache"), to=api, body=ps.Latency(deadline=1.0), name="cached")
    m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="serve",
              conditions=build(q, c))
    with pytest.raises(ps.ScenarioError, match=f"promise 'serve': .*{message}"):
        m.spec()


def test_a_fallback_that_loops_back_is_a_cycle():
    m = ps.Model("loop")
    api, cache = m.agent("api"), m.agent("cache")
    q = m.promise(m.agent("db"), to=api, body=ps.Latency(deadline=1.0), name="query")
    m.promise(cache, to=api, body=ps.Latency(deadline=1.0), name="cached",
              conditions="refresh")
    m.promise(api, to=cache, body=ps.Latency(deadline=1.0), name="refresh",
              conditions=ps.fallback(q, "cached"))
    with pytest.raises(ps.ScenarioError, match="cycle"):
        m.spec()


def test_fallbacks_and_hedges_in_files_and_the_vector_engines_handover(tmp_path):
    for m in (with_fallback(), hedged()):
        path = tmp_path / "m.yaml"
        ps.dump_scenario(m, path)
        assert ps.load_scenario(path).model.spec().promises == m.spec().promises
        assert VectorEngine().unsupported(m.spec()) == []
    assert "hedge: 1.0" in (tmp_path / "m.yaml").read_text()
    ps.dump_scenario(with_fallback(), tmp_path / "f.yaml")
    assert "fallback: [query, cached]" in (tmp_path / "f.yaml").read_text()
    nested = hedged()   # a hedge over a nested condition is left to the reference engine
    nested.promises[-1] = dataclasses.replace(nested.promises[-1], conditions=ps.any_of(
        ps.all_of("from-a"), "from-b", hedge=1.0))
    assert VectorEngine().unsupported(nested.spec()) == [
        "hedged requests over nested conditions (promise 'serve')"]
    assert ps.simulate(nested, horizon=5.0, seed=0).engine == "reference"


# -- random models -------------------------------------------------------------------------
def _retries_family():
    """The retry tests' model family (tests are not a package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_retries_family", Path(__file__).with_name("test_retries.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_RETRYING = _retries_family()


@st.composite
def falling_back_models(draw):
    """Random models with request failures, orders of work, timeouts and retries, where
    some conditions of two or more items become fallbacks over the same items, and some
    choices of promises hedge after a drawn delay. Agents are not slowed by their load: a
    crash ends several requests at one instant, their fallbacks bring them back to a queue
    at that instant, and a load-dependent slowdown then sees them in an order the engines
    need not share (see the vector engine's notes on ties)."""
    m, family = draw(_RETRYING.retrying_models())
    for i, a in enumerate(m.agents):
        if a.slowdown:
            m.agents[i] = ps.Agent(**{**a.__dict__, "slowdown": 0.0})
    for g, group in enumerate(m.super_agents):
        t = group.member
        if t is not None and t.slowdown:
            member = ps.AgentTemplate(**{**t.__dict__, "slowdown": 0.0})
            m.super_agents[g] = type(group)(**{**group.__dict__, "member": member})
    for i, p in enumerate(m.promises):
        c = p.conditions
        if not isinstance(c, ps.Condition) or len(c.items) < 2 or c.rule == "split":
            continue
        if c.rule == "any" and all(isinstance(x, str) for x in c.items) and draw(st.booleans()):
            event("hedge")
            m.promises[i] = dataclasses.replace(p, conditions=dataclasses.replace(
                c, hedge=draw(st.floats(0.05, 3.0))))
        elif draw(st.booleans()):
            event("fallback")
            m.promises[i] = dataclasses.replace(p, conditions=ps.fallback(*c.items))
    return m, family


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(drawn=falling_back_models(), seed=st.integers(0, 2**63))
def test_random_models_with_fallbacks_and_hedges_agree_exactly(drawn, seed, monkeypatch):
    _RETRYING._TIMED._ORDERED.assert_passes_agree(drawn, seed, monkeypatch)


KNOWN_DISAGREEMENT = """
name: order before, retried fallback
agents:
  - {name: users}
  - name: a0
    failures: {time_to_failure: {exponential: {mean: 0.5}},
               time_to_repair: {exponential: {mean: 0.5}}}
    service_time: {exponential: {mean: 0.5}}
  - name: a1
    failures: {time_to_failure: {exponential: {mean: 19.405968808016535}},
               time_to_repair: {exponential: {mean: 0.5}}}
    service_time: {exponential: {mean: 0.1}}
  - {name: top, service_time: {exponential: {mean: 0.06907212364437139}}, servers: 2,
     order: before}
  - {name: back, service_time: {exponential: {mean: 0.6558222405290824}}}
promises:
  - {name: back-offer, promiser: back, promisee: a0, body: {latency: {deadline: 1.0339312932300682}}}
  - {name: a0-offer, promiser: a0, promisee: top, body: {latency: {deadline: 0.9849991192951547}},
     conditions: [back-offer]}
  - {name: a1-offer, promiser: a1, promisee: top, body: {latency: {deadline: 0.3333333333333333}}}
  - {name: serve, promiser: top, promisee: users, body: {latency: {deadline: 2.732787965940778}},
     conditions: {fallback: [a0-offer, a1-offer]}, timeout: 1.5860574758453327, retries: 1}
workloads:
  - {promise: serve, rate: 0.31125214569155135}
  - {promise: serve, rate: 4.167991604513492, name: spike}
"""


def test_order_before_with_retried_fallbacks_is_left_to_the_reference_engine():
    """The random family found a model on which the vector engine's passes disagree with the
    reference engine: an agent with order 'before' whose fallback calls are retried. Until
    that is fixed, the vector engine refuses such models and auto runs the reference engine."""
    from promisesim.scenario import scenario_from_text

    model = scenario_from_text(KNOWN_DISAGREEMENT).model
    with pytest.raises(ps.EngineError, match="order 'before' with retried fallbacks"):
        ps.simulate(model, horizon=60.0, seed=0, engine="vector")
    result = ps.simulate(model, horizon=60.0, seed=0)
    assert result.engine == "reference" and "retried fallbacks" in result.engine_reason


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="the vector engine disagrees here: to be fixed")
def test_order_before_with_retried_fallbacks_agree_when_forced(engines_forced):
    engines_forced(KNOWN_DISAGREEMENT, "promises")
