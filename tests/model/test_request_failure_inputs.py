"""Error probabilities, bursts, degradations and partitions: bad input is refused by name;
scenario files carry them and read back to the same model."""

from __future__ import annotations

import math
import textwrap

import pytest

import promisesim as ps
from promisesim.cli import main
from promisesim.scenario import scenario_from_text


def model(errors=0.0) -> ps.Model:
    m = ps.Model("m")
    users = m.agent("users")
    db = m.agent("db", service_time=ps.Exponential(0.01), errors=errors)
    api = m.agent("api")
    q = m.promise(db, to=api, body=ps.Latency(deadline=1.0), name="query")
    m.workload(m.promise(api, to=users, body=ps.Latency(deadline=1.0), name="serve", conditions=q),
               rate=1.0)
    return m


@pytest.mark.parametrize("errors, words", [
    (1.5, ["agent 'db'", "errors=1.5", "probability"]),
    (-0.1, ["agent 'db'", "errors=-0.1"]),
    (math.nan, ["agent 'db'", "errors=nan"]),
    ("often", ["agent 'db'", "errors='often'"]),
    (True, ["agent 'db'", "errors=True"]),
    (ps.Bursts(rate=0.0, mean_duration=1.0, errors=0.5), ["agent 'db'", "rate=0.0"]),
    (ps.Bursts(rate=1.0, mean_duration=math.inf, errors=0.5), ["agent 'db'", "mean_duration=inf"]),
    (ps.Bursts(rate=1.0, mean_duration=1.0, errors=2.0), ["agent 'db'", "bursts errors=2.0"]),
    (ps.Bursts(rate=1.0, mean_duration=1.0, errors=0.5, baseline=math.nan),
     ["agent 'db'", "baseline=nan"]),
])
def test_bad_error_probabilities_name_the_agent(errors, words):
    with pytest.raises(ps.ScenarioError) as info:
        model(errors).spec()
    for word in words:
        assert word in str(info.value)
    assert info.value.element == ("agent", "db")


@pytest.mark.parametrize("injection, words", [
    (ps.Degrade("ghost", at=1.0), ["degradation 0", "'ghost'", "not an agent"]),
    (ps.Degrade("db", at=5.0, duration=-2.0), ["degradation 0 of 'db'", "duration=-2.0",
                                               "end before it starts"]),
    (ps.Degrade("db", at=5.0, duration=0.0), ["duration=0.0", "end before it starts"]),
    (ps.Degrade("db", at=-1.0), ["degradation 0 of 'db'", "at=-1.0"]),
    (ps.Degrade("db", at=1.0, slower=0.0), ["slower=0.0", "positive"]),
    (ps.Degrade("db", at=1.0, slower=math.nan), ["slower=nan"]),
    (ps.Degrade("db", at=1.0, errors=1.2), ["errors=1.2", "probability"]),
    (ps.Partition("api", "ghost", at=1.0, duration=1.0), ["partition 0", "'ghost'",
                                                          "not an agent"]),
    (ps.Partition("api", "api", at=1.0, duration=1.0), ["partition 0", "'api'", "both sides"]),
    (ps.Partition("api", "db", at=1.0, duration=0.0), ["partition 0", "duration=0.0"]),
    (ps.Partition("api", (), at=1.0, duration=1.0), ["partition 0", "b=()"]),
    (ps.Partition("api", "db", at=math.inf, duration=1.0), ["partition 0", "at=inf"]),
])
def test_bad_degradations_and_partitions_name_the_injection(injection, words):
    m = model()
    m.inject(injection)
    with pytest.raises(ps.ScenarioError) as info:
        m.spec()
    for word in words:
        assert word in str(info.value), str(info.value)


def test_injecting_something_else_lists_every_kind():
    with pytest.raises(ps.ScenarioError) as info:
        model().inject("an outage")
    for kind in ("Outage", "Degrade", "Partition", "ScaleTo", "Autoscaler", "Release", "Retire",
                 "Migrate", "UndocumentedChange"):
        assert kind in str(info.value)


def test_agents_given_as_objects_are_named():
    m = model()
    db = m.agents[1]
    d = m.inject(ps.Degrade(db, at=1.0, duration=2.0, slower=2.0))
    x = m.inject(ps.Partition([m.agents[2]], db, at=1.0, duration=2.0))
    assert d.target == "db" and x.a == ("api",) and x.b == "db"
    m.spec()


SCENARIO = """
name: shop
agents:
  - name: users
  - name: db
    service_time: {exponential: {mean: 0.01}}
    errors: {bursts: {rate: 0.01, mean_duration: 30, errors: 0.5, baseline: 0.001}}
  - name: api
    errors: 0.01
promises:
  - {name: query, promiser: db, promisee: api, body: {latency: {deadline: 0.5}}}
  - {name: serve, promiser: api, promisee: users, body: {latency: {deadline: 1}}, conditions: query,
     late: fail}
workloads:
  - {promise: serve, rate: 2}
injections:
  - degrade: {target: db, at: 100, duration: 600, slower: 3}
  - degrade: {target: db, at: 2000, errors: 0.2}
  - partition: {a: api, b: [db], at: 50, duration: 10, both_ways: false}
  - outage: {target: db, at: 10, duration: 5}
"""


def test_scenario_files_carry_errors_degradations_and_partitions(schema_valid):
    scenario = scenario_from_text(SCENARIO)
    m = scenario.model
    db = next(a for a in m.agents if a.name == "db")
    assert db.errors == ps.Bursts(rate=0.01, mean_duration=30, errors=0.5, baseline=0.001)
    assert m.degradations == [ps.Degrade("db", 100, 600, 3, 0.0), ps.Degrade("db", 2000, None, 1.0, 0.2)]
    assert m.partitions == [ps.Partition("api", ("db",), 50, 10, False)]
    assert [p.late for p in m.promises] == ["wait", "fail"]
    schema_valid(m.to_dict())
    again = ps.Model.from_dict(m.to_dict())
    assert again.to_dict() == m.to_dict() and again.spec() == m.spec()
    assert {"error bursts", "degradation", "partition"} <= m.spec().features


def write(tmp_path, text):
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("old, new, at, words", [   # at: the text of the line named
    ("errors: 0.01", "errors: 1.01", "name: api", ["agent 'api'", "errors=1.01"]),
    ("errors: 0.01", "errors: .nan", "name: api", ["agent 'api'", "errors=nan"]),
    ("slower: 3", "slower: -3", "slower: -3", ["degradation 0 of 'db'", "slower=-3"]),
    ("at: 2000, errors: 0.2", "at: 2000, duration: -1, errors: 0.2", "duration: -1",
     ["degradation 1 of 'db'", "end before it starts"]),
    ("b: [db]", "b: [ghost]", "ghost", ["partition 0", "'ghost'"]),
])
def test_bad_request_failures_in_files_exit_2_with_one_line_naming_the_line(
        tmp_path, capsys, old, new, at, words):
    assert old in SCENARIO
    path = write(tmp_path, SCENARIO.replace(old, new))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if at in text)
    status = main(["run", str(path), "--horizon", "10"])
    err = capsys.readouterr().err
    assert status == 2
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert f"{path}:{line}:" in lines[0], lines[0]
    for word in words:
        assert word in lines[0]


def test_a_bad_late_policy_names_the_promise():
    m = ps.Model("m")
    db, api = m.agent("db"), m.agent("api")
    q = m.promise(db, to=api, body=ps.Latency(deadline=1.0), name="query")
    m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="serve", conditions=q,
              late="retry")
    with pytest.raises(ps.ScenarioError, match="promise 'serve': late='retry' must be 'wait'"):
        m.spec()
