"""Validation of models: every bad input raises ScenarioError naming the offending element."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

import promisesim as ps

NAN, INF = math.nan, math.inf


def q(name: str) -> str:
    """Regex for an element name as the messages quote it: 'name'."""
    return re.escape(repr(name))


def base() -> ps.Model:
    """Three agents and no promises: users <- api <- db."""
    m = ps.Model("validation", time_unit="s")
    m.agent("users")
    m.agent("api", service_time=ps.Exponential(mean=0.01), servers=2)
    m.agent("db", failures=ps.Failures(time_to_failure=ps.Exponential(mean=100.0),
                                      time_to_repair=ps.Exponential(mean=1.0)))
    return m


def with_serve() -> ps.Model:
    """base() plus db -> api 'answers' (latency) and api -> users 'serve' (latency, if answers)."""
    m = base()
    m.promise("db", to="api", body=ps.Latency(deadline=0.1), name="answers")
    m.promise("api", to="users", body=ps.Latency(deadline=0.3), name="serve", conditions="answers")
    return m


# -- a valid model ------------------------------------------------------------------------------

def test_valid_model_passes_spec():
    m = with_serve()
    m.agent("mirror")
    m.promise("mirror", to="api", body=ps.Availability(), name="code")
    m.promise("api", to="users", body=ps.Availability(), name="up",
              conditions=ps.any_of("answers", ps.k_of(1, "code")))
    m.workload("serve", rate=2.0)
    m.inject(ps.Outage("db", at=0.0, duration=5.0))
    spec = m.spec()
    assert isinstance(spec, ps.ModelSpec)
    names = [p.name for p in spec.promises]
    assert sorted(names) == ["answers", "code", "serve", "up"]
    # dependency order: conditions come before the promises that use them
    assert names.index("answers") < names.index("serve")
    assert names.index("answers") < names.index("up")
    assert names.index("code") < names.index("up")
    assert [a.name for a in spec.agents] == ["users", "api", "db", "mirror"]
    assert len(spec.call_trees) == 1
    assert {"latency", "conditions", "workload", "outage", "random_failures"} <= spec.features
    # validating does not change the model: a second spec is equal
    assert m.spec() == spec


def test_about_own_behaviour_is_allowed():
    m = base()
    m.promise("api", to="users", body=ps.Availability(), name="p", about="api")
    assert m.spec().promises[0].name == "p"


# -- unknown references ---------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["promiser", "promisee"])
def test_unknown_agent_in_promise(role):
    m = base()
    who = {"promiser": "api", "promisee": "users"}
    who[role] = "ghost"
    m.promise(who["promiser"], to=who["promisee"], body=ps.Availability(), name="p7")
    with pytest.raises(ps.ScenarioError, match=rf"promise {q('p7')}.*{role} {q('ghost')}") as info:
        m.spec()
    assert info.value.element == ("promise", "p7")


def test_unknown_promise_in_condition():
    m = base()
    m.promise("api", to="users", body=ps.Availability(), name="p", conditions="nowhere")
    with pytest.raises(ps.ScenarioError, match=rf"promise {q('p')}.*condition {q('nowhere')}"):
        m.spec()


def test_unknown_promise_nested_in_condition():
    m = base()
    m.promise("db", to="api", body=ps.Availability(), name="q")
    m.promise("api", to="users", body=ps.Availability(), name="p",
              conditions=ps.all_of("q", ps.any_of("q", "nowhere")))
    with pytest.raises(ps.ScenarioError, match=rf"promise {q('p')}.*{q('nowhere')}"):
        m.spec()


def test_unknown_promise_in_workload():
    m = with_serve()
    m.workload("nowhere", rate=1.0)
    with pytest.raises(ps.ScenarioError, match=rf"workload .*promise {q('nowhere')}") as info:
        m.spec()
    assert info.value.element[0] == "workload"


def test_unknown_outage_target():
    m = base()
    m.inject(ps.Outage("ghost", at=1.0, duration=1.0))
    with pytest.raises(ps.ScenarioError, match=rf"outage .*target {q('ghost')}"):
        m.spec()


# -- Promise Theory rules ---------------------------------------------------------------------------

def test_promise_on_behalf_of_another_agent():
    m = base()
    m.promise("api", to="users", body=ps.Availability(), name="p3", about="db")
    with pytest.raises(ps.ScenarioError,
                       match=r"promise 'p3' is made by 'api' on behalf of 'db'") as info:
        m.spec()
    assert info.value.element == ("promise", "p3")


def test_condition_not_made_to_the_promiser_is_refused():
    m = base()
    # 'q' is made by db to users, but 'p' is api's promise: nobody promised 'q' to api
    m.promise("db", to="users", body=ps.Availability(), name="q")
    m.promise("api", to="users", body=ps.Availability(), name="p", conditions="q")
    with pytest.raises(ps.ScenarioError, match=r"promise 'p'.*condition 'q'") as info:
        m.spec()
    message = str(info.value)
    for agent in ("db", "users", "api"):
        assert repr(agent) in message
    # in plain words, with the fix: a promise to the promiser, made by the other agent
    assert "unquenched" not in message
    assert "make 'q' to 'api'" in message


def test_condition_not_accepted_is_refused():
    m = base()
    m.promise("db", to="api", body=ps.Availability(), name="q", accepted=False)
    m.promise("api", to="users", body=ps.Availability(), name="p", conditions="q")
    with pytest.raises(ps.ScenarioError, match=r"promise 'p'.*condition 'q'.*'api'.*accepted=False"):
        m.spec()


def test_unaccepted_promise_without_dependants_is_valid():
    m = base()
    m.promise("db", to="api", body=ps.Availability(), name="q", accepted=False)
    assert not m.spec().promises[0].accepted


def test_condition_cycle_of_two():
    m = base()
    m.promise("api", to="db", body=ps.Availability(), name="p1", conditions="p2")
    m.promise("db", to="api", body=ps.Availability(), name="p2", conditions="p1")
    with pytest.raises(ps.ScenarioError, match=r"cycle: 'p1' -> 'p2' -> 'p1'"):
        m.spec()


def test_condition_cycle_of_three():
    m = base()
    m.promise("api", to="users", body=ps.Availability(), name="p1", conditions="p2")
    m.promise("db", to="api", body=ps.Availability(), name="p2", conditions="p3")
    m.promise("users", to="db", body=ps.Availability(), name="p3", conditions="p1")
    with pytest.raises(ps.ScenarioError, match=r"cycle: 'p1' -> 'p2' -> 'p3' -> 'p1'"):
        m.spec()


def test_condition_cycle_lists_only_the_cycle():
    m = base()
    # p0 depends on the cycle p1 <-> p2 but is not part of it
    m.promise("db", to="users", body=ps.Availability(), name="p0", conditions="p1")
    m.promise("api", to="db", body=ps.Availability(), name="p1", conditions="p2")
    m.promise("db", to="api", body=ps.Availability(), name="p2", conditions="p1")
    with pytest.raises(ps.ScenarioError, match=r"cycle: 'p1' -> 'p2' -> 'p1'") as info:
        m.spec()
    assert "'p0'" not in str(info.value)


def test_promise_conditioned_on_itself():
    m = base()
    m.promise("api", to="api", body=ps.Availability(), name="selfish", conditions="selfish")
    with pytest.raises(ps.ScenarioError, match=r"cycle: 'selfish' -> 'selfish'"):
        m.spec()


# -- numbers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("at, duration, bad", [
    (-1.0, 1.0, "at"),
    (NAN, 1.0, "at"),
    (INF, 1.0, "at"),
    (0.0, -1.0, "duration"),
    (0.0, 0.0, "duration"),
    (0.0, NAN, "duration"),
    (0.0, INF, "duration"),
    ("soon", 1.0, "at"),
])
def test_bad_outage_times(at, duration, bad):
    m = base()
    m.inject(ps.Outage("db", at=at, duration=duration))
    with pytest.raises(ps.ScenarioError, match=rf"outage .*{q('db')}.*{bad}=") as info:
        m.spec()
    assert info.value.element[0] == "outage"


def test_outage_at_zero_is_valid():
    m = base()
    m.inject(ps.Outage("db", at=0.0, duration=1.0))
    assert m.spec().outages[0].at == 0.0


@pytest.mark.parametrize("rate", [-1.0, 0.0, 0, NAN, INF, "fast", True])
def test_bad_workload_rate(rate):
    m = with_serve()
    m.workload("serve", rate=rate)
    with pytest.raises(ps.ScenarioError, match=rf"workload {q('serve')}.*rate=") as info:
        m.spec()
    assert info.value.element == ("workload", "serve")


@pytest.mark.parametrize("deadline", [0.0, -0.5, NAN, INF, None])
def test_bad_latency_deadline(deadline):
    m = base()
    m.promise("api", to="users", body=ps.Latency(deadline=deadline), name="slow")
    with pytest.raises(ps.ScenarioError, match=rf"promise {q('slow')}.*deadline="):
        m.spec()


@pytest.mark.parametrize("make, pattern", [
    (lambda: ps.Exponential(mean=-1), r"Exponential.*mean=-1"),
    (lambda: ps.Exponential(mean=0), r"Exponential.*mean=0"),
    (lambda: ps.Exponential(mean=NAN), r"Exponential.*mean=nan"),
    (lambda: ps.Exponential(mean=INF), r"Exponential.*mean=inf"),
    (lambda: ps.Uniform(low=2, high=1), r"Uniform.*low=2.*high=1"),
    (lambda: ps.Uniform(low=-1, high=1), r"Uniform.*low=-1"),
    (lambda: ps.Uniform(low=0, high=INF), r"Uniform.*high=inf"),
    (lambda: ps.LogNormal(mean=1.0, sigma=0), r"LogNormal.*sigma=0"),
    (lambda: ps.LogNormal(mean=1.0, sigma=-1), r"LogNormal.*sigma=-1"),
    (lambda: ps.LogNormal(mean=-1.0, sigma=1), r"LogNormal.*mean=-1"),
    (lambda: ps.LogNormal(mean=NAN, sigma=1), r"LogNormal.*mean=nan"),
    (lambda: ps.LogNormal(mean=1.0, sigma=INF), r"LogNormal.*sigma=inf"),
    (lambda: ps.Empirical([]), r"Empirical.*empty"),
    (lambda: ps.Empirical([-1]), r"Empirical.*non-negative"),
    (lambda: ps.Empirical([1.0, NAN]), r"Empirical.*finite"),
    (lambda: ps.Empirical([INF]), r"Empirical.*finite"),
    (lambda: ps.Deterministic(-1), r"Deterministic.*value=-1"),
    (lambda: ps.Deterministic(NAN), r"Deterministic.*value=nan"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_bad_distribution_parameters(make, pattern):
    with pytest.raises(ps.ScenarioError, match=pattern):
        make()


def test_failures_need_positive_mean_times():
    m = ps.Model()
    m.agent("flaky", failures=ps.Failures(time_to_failure=ps.Deterministic(0.0),
                                        time_to_repair=ps.Exponential(mean=1.0)))
    with pytest.raises(ps.ScenarioError, match=r"agent 'flaky'.*time_to_failure"):
        m.spec()


def test_failures_need_distributions_or_times():
    m = ps.Model()
    m.agent("flaky", failures=ps.Failures(time_to_failure=ps.Exponential(mean=1.0),
                                        time_to_repair="two"))
    with pytest.raises(ps.ScenarioError, match=r"agent 'flaky'.*time_to_repair"):
        m.spec()


@pytest.mark.parametrize("k", [2, 3, 0, -1])
def test_k_of_out_of_range(k):
    m = base()
    m.promise("db", to="api", body=ps.Availability(), name="q1")
    m.promise("users", to="api", body=ps.Availability(), name="q2")
    m.promise("api", to="users", body=ps.Availability(), name="p",
              conditions=ps.any_of("q1", ps.k_of(k, "q2")))
    with pytest.raises(ps.ScenarioError, match=rf"promise 'p'.*k={k}\b"):
        m.spec()


def test_k_of_n_valid_bounds():
    m = base()
    m.promise("db", to="api", body=ps.Availability(), name="q1")
    m.promise("users", to="api", body=ps.Availability(), name="q2")
    m.promise("api", to="users", body=ps.Availability(), name="p", conditions=ps.k_of(2, "q1", "q2"))
    m.promise("api", to="db", body=ps.Availability(), name="r", conditions=ps.k_of(1, "q1", "q2"))
    assert len(m.spec().promises) == 4


def test_empty_condition_is_refused():
    m = base()
    m.promise("api", to="users", body=ps.Availability(), name="p", conditions=ps.all_of())
    with pytest.raises(ps.ScenarioError, match=r"promise 'p'.*no promises"):
        m.spec()


@pytest.mark.parametrize("servers", [0, 1.5, -2, True, "4"])
def test_bad_servers(servers):
    m = ps.Model()
    m.agent("pool", servers=servers)
    with pytest.raises(ps.ScenarioError, match=rf"agent 'pool'.*servers={re.escape(repr(servers))}") as info:
        m.spec()
    assert info.value.element == ("agent", "pool")


@pytest.mark.parametrize("horizon", [0, 0.0, -1.0, INF, NAN, "10", None])
def test_bad_horizon(horizon):
    m = base()
    m.promise("api", to="users", body=ps.Availability(), name="up")
    with pytest.raises(ps.ScenarioError, match=r"horizon="):
        ps.simulate(m, horizon=horizon, seed=1)


@pytest.mark.parametrize("replications", [0, -3, 1.5, True])
def test_bad_replications(replications):
    m = base()
    m.promise("api", to="users", body=ps.Availability(), name="up")
    with pytest.raises(ps.ScenarioError, match=rf"replications={re.escape(repr(replications))}"):
        ps.simulate(m, horizon=10.0, replications=replications, seed=1)


def test_simulate_refuses_invalid_model_with_scenario_error():
    m = base()
    m.promise("api", to="users", body=ps.Availability(), name="p3", about="db")
    with pytest.raises(ps.ScenarioError, match=r"'p3' is made by 'api' on behalf of 'db'"):
        ps.simulate(m, horizon=10.0, seed=1)


# -- names ---------------------------------------------------------------------------------------------

def test_duplicate_agent_names():
    m = base()
    m.agent("db")
    with pytest.raises(ps.ScenarioError, match=r"agent 'db' is defined twice") as info:
        m.spec()
    assert info.value.element == ("agent", "db")


def test_duplicate_promise_names():
    m = base()
    m.promise("db", to="api", body=ps.Availability(), name="same")
    m.promise("api", to="users", body=ps.Availability(), name="same")
    with pytest.raises(ps.ScenarioError, match=r"promise 'same' is defined twice") as info:
        m.spec()
    assert info.value.element == ("promise", "same")


def test_duplicate_workload_labels():
    m = with_serve()
    m.workload("serve", rate=1.0)
    m.workload("serve", rate=2.0)
    with pytest.raises(ps.ScenarioError, match=r"workload 'serve' is defined twice"):
        m.spec()


@pytest.mark.parametrize("name", ["", "   ", "a/b"])
def test_bad_agent_names(name):
    m = ps.Model()
    m.agent(name)
    with pytest.raises(ps.ScenarioError, match=rf"agent.*{q(name)}"):
        m.spec()


def test_workload_on_availability_promise():
    m = base()
    m.promise("api", to="users", body=ps.Availability(), name="up")
    m.workload("up", rate=1.0)
    with pytest.raises(ps.ScenarioError, match=r"workload 'up'.*'up' promises availability") as info:
        m.spec()
    assert info.value.element == ("workload", "up")


def test_scenario_error_is_a_value_error():
    m = base()
    m.agent("db")
    with pytest.raises(ValueError):
        m.spec()


@pytest.mark.parametrize("field, value", [("limit", 0), ("limit", 2.5), ("limit", True),
                                          ("slowdown", -0.1), ("slowdown", NAN), ("slowdown", "x")])
def test_bad_limits_under_stress_name_the_agent(field, value):
    m = base()
    m.agent("pool", **{field: value})
    with pytest.raises(ps.ScenarioError, match=rf"agent 'pool'.*{field}={re.escape(repr(value))}"):
        m.spec()


@pytest.mark.parametrize("start, end, bad", [(-1.0, None, "start"), (NAN, None, "start"),
                                             (5.0, 5.0, "end"), (5.0, 2.0, "end"),
                                             (0.0, INF, "end")])
def test_bad_workload_windows_name_the_workload(start, end, bad):
    m = with_serve()
    m.workload("serve", rate=1.0, start=start, end=end, name="spike")
    with pytest.raises(ps.ScenarioError, match=rf"workload 'spike'.*{bad}=") as info:
        m.spec()
    assert info.value.element == ("workload", "spike")


def test_a_plain_number_is_a_deterministic_time_in_python_as_in_files():
    from promisesim.dists import Deterministic
    from promisesim.scenario import scenario_from_text

    m = ps.Model("numbers")
    api = m.agent("api", service_time=0.01,
                  failures=ps.Failures(time_to_failure=3_600, time_to_repair=60))
    serve = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="serve")
    m.workload(serve, interarrival=2)
    m.observe(serve, interval=30, name="watch")
    assert api.service_time == Deterministic(0.01)
    assert api.failures.time_to_repair == Deterministic(60.0)
    text = """\
agents:
  - {name: api, service_time: 0.01, failures: {time_to_failure: 3600, time_to_repair: 60}}
  - {name: users}
promises:
  - {name: serve, promiser: api, promisee: users, body: {latency: {deadline: 1.0}}}
workloads:
  - {promise: serve, interarrival: 2}
observers:
  - {name: watch, promise: serve, interval: 30}
"""
    from_file = scenario_from_text(text).model
    assert from_file.spec().agents == m.spec().agents
    assert from_file.spec().workloads == m.spec().workloads
    assert from_file.spec().observers == m.spec().observers
    a = ps.simulate(m, horizon=20_000.0, seed=1).promises
    b = ps.simulate(from_file, horizon=20_000.0, seed=1).promises
    pd.testing.assert_frame_equal(a, b, check_flags=False)
    with pytest.raises(ps.ScenarioError, match="agent 'bad': service_time must be a distribution"):
        bad = ps.Model("bad")
        bad.agent("bad", service_time=-1.0)
        bad.spec()


# -- hostile values that used to pass or fail obscurely ---------------------------------------
@pytest.mark.parametrize("name", ["a\x07b", "tab\there", "line\nbreak", "\ud800"])
def test_names_with_control_characters_are_refused(name):
    m = ps.Model("m")
    m.agent(name)
    with pytest.raises(ps.ScenarioError, match="names may hold only printable characters") as e:
        m.spec()
    assert e.value.element == ("agent", name)


def test_one_member_given_as_a_string_is_not_read_as_its_letters():
    m = ps.Model("m")
    for name in ("db", "d", "b"):
        m.agent(name)
    with pytest.raises(ps.ScenarioError, match=r"members='db' must be a list of agents \(for "
                                               r"one member: members=\['db'\]\)"):
        m.super_agent("grp", members="db")
    assert m.super_agent("grp", members=["db"]).members == ("db",)
    m.spec()


@pytest.mark.parametrize("flag", ["record_requests", "record_changes"])
def test_run_flags_must_be_booleans(flag):
    m = ps.Model("m")
    m.promise(m.agent("a"), to=m.agent("u"), body=ps.Availability(), name="up")
    with pytest.raises(ps.ScenarioError, match=f"{flag}='no' must be True or False"):
        ps.simulate(m, horizon=1.0, **{flag: "no"})


def test_a_model_without_agents_is_refused_in_plain_words():
    with pytest.raises(ps.ScenarioError, match="model 'empty' has no agents"):
        ps.simulate(ps.Model("empty"), horizon=1.0)


def test_numpy_numbers_are_numbers_and_files_write_them_plainly(tmp_path):
    import numpy as np

    def build(num, whole):
        m = ps.Model("np")
        db = m.agent("db", service_time=ps.Exponential(num(0.25)), servers=whole(2),
                     limit=whole(5))
        p = m.promise(db, to=m.agent("u"), body=ps.Latency(deadline=whole(1)), name="p")
        m.workload(p, rate=num(2.0))
        m.inject(ps.Outage(db, at=num(10.0), duration=num(5.0)))
        return m

    plain = build(float, int)
    numpy = build(np.float32, np.int64)   # (values a float32 holds exactly)
    path = tmp_path / "np.yaml"
    ps.dump_scenario(numpy, path)
    assert "np." not in path.read_text() and "servers: 2" in path.read_text()
    again = ps.load_scenario(path).model
    for m in (numpy, again):
        r = ps.simulate(m, horizon=60.0, seed=2)
        pd.testing.assert_frame_equal(r.requests, ps.simulate(plain, horizon=60.0, seed=2).requests)


def test_a_misspelt_name_gets_the_closest_one_as_a_hint():
    m = base()
    m.promise("db", to="api", body=ps.Latency(deadline=1.0), name="db-answers")
    m.promise("api", to="users", body=ps.Latency(deadline=1.0), name="serve",
              conditions="db-answer")
    with pytest.raises(ps.ScenarioError,
                       match=r"condition 'db-answer' is not a promise of the model; did you mean "
                             r"'db-answers'\?"):
        m.spec()
    m = base()
    m.promise("api", to="usres", body=ps.Availability(), name="p")
    with pytest.raises(ps.ScenarioError, match=r"promisee 'usres' .*did you mean 'users'\?"):
        m.spec()
    m = base()
    m.inject(ps.Outage("zzz", at=1.0, duration=1.0))
    with pytest.raises(ps.ScenarioError) as info:      # nothing close: no hint
        m.spec()
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("name", [{"a": 1}, ["a"], 7, None])
def test_a_name_that_is_not_text_is_refused_in_python_and_in_files(name):
    m = ps.Model("names")
    m.agent(name)
    with pytest.raises(ps.ScenarioError, match="agent name .* must be text"):
        m.spec()
    from promisesim.scenario import scenario_from_text
    import yaml

    text = yaml.safe_dump({"agents": [{"name": name}]})
    with pytest.raises(ps.ScenarioError, match=r"(agents\[0\]: name=.* must be a name|agent name None must be text)"):
        scenario_from_text(text)


def test_values_the_fuzz_run_found():
    """Each was a traceback before: a huge sigma (sigma**2 overflowed), a text time among
    the scalings of one super-agent (sorted before they were checked)."""
    with pytest.raises(ps.ScenarioError, match=r"LogNormal: sigma=21.0 must be at most 20"):
        ps.LogNormal(mean=1.0, sigma=21.0)
    with pytest.raises(ps.ScenarioError, match=r"Exponential: mean=1e\+308 must be at most 1e\+15"):
        ps.Exponential(mean=1e308)     # its draws overflowed (a warning mid-run)
    m = ps.Model("scaling")
    m.super_agent("fn", size=1, member=ps.AgentTemplate())
    m.inject(ps.ScaleTo("fn", size=2, at=10.0))
    m.inject(ps.ScaleTo("fn", size=3, at="soon"))
    with pytest.raises(ps.ScenarioError, match=r"scale_to 'fn': at='soon' must be"):
        m.spec()


def test_a_name_longer_than_200_characters_is_refused():
    m = ps.Model("long")
    m.agent("a" * 201)
    with pytest.raises(ps.ScenarioError, match="names may be at most 200 characters long, not 201"):
        m.spec()
    m = ps.Model("long enough")
    m.agent("a" * 200)
    m.spec()
