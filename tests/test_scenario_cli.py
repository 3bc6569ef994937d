"""Scenario files (YAML) and the command line ``promisesim run``."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import promisesim as ps
from promisesim.analytic import availability
from promisesim.cli import main
from promisesim.scenario import dump_scenario, scenario_from_text

EXAMPLE = Path(ps.__file__).parent / "examples" / "web_api.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RECORD_KEYS = {"promise", "metric", "mean", "stderr", "ci_low", "ci_high"}


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    try:   # argparse's own errors (bad argument values) exit; ours return the status
        status = main([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert lines[0].startswith("promisesim: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


def records(out: str) -> dict[tuple[str, str], dict]:
    data = json.loads(out)
    assert isinstance(data, list) and data
    return {(r["promise"], r["metric"]): r for r in data}


# A tiny model: 'up' is broken exactly while the outage holds 'server' down on [0, 5).
TINY = """
    name: tiny
    time_unit: h
    agents:
      - name: server
      - name: users
    promises:
      - name: up
        promiser: server
        promisee: users
        body: availability
    injections:
      - outage: {target: server, at: 0, duration: 5}
    run: {horizon: 10, replications: 2, seed: 3}
"""

# One server failing at random (MTTF 10 h, MTTR 1 h): results depend on the seed.
RANDOM = """
    name: random
    time_unit: h
    agents:
      - name: server
        failures:
          time_to_failure: {exponential: {mean: 10}}
          time_to_repair: {exponential: {mean: 1}}
      - name: users
    promises:
      - name: up
        promiser: server
        promisee: users
        body: availability
    run: {horizon: 200, replications: 4, seed: 3}
"""

# A promise made on behalf of another agent; the 'p3' entry starts on line 14.
ABOUT = """
    name: bad
    time_unit: s
    agents:
      - name: users
      - name: api
      - name: db
    promises:
      - name: p1
        promiser: db
        promisee: api
        body: availability
      # the next promise is not api's to make
      # (it is about db's behaviour)
      - name: p3
        promiser: api
        promisee: users
        about: db
        body: availability
"""


# -- the shipped example ---------------------------------------------------------------------------

def test_example_loads_and_validates():
    scenario = ps.load_scenario(EXAMPLE)
    spec = scenario.model.spec()
    assert {a.name for a in spec.agents} == {"users", "api", "db", "code-primary", "code-mirror"}
    assert {p.name for p in spec.promises} == {"db-answers", "code-primary", "code-mirror", "answers"}
    assert scenario.horizon == 604800.0
    assert scenario.replications == 20
    assert scenario.seed == 20261126
    assert len(spec.workloads) == 1 and len(spec.outages) == 1


def test_example_round_trips_through_dict():
    model = ps.load_scenario(EXAMPLE).model
    assert ps.Model.from_dict(model.to_dict()).spec() == model.spec()


def test_example_round_trips_through_yaml():
    scenario = ps.load_scenario(EXAMPLE)
    text = dump_scenario(scenario.model)
    again = scenario_from_text(text)
    assert again.model.spec() == scenario.model.spec()
    assert again.model.to_dict() == scenario.model.to_dict()
    # with its run settings too
    again = scenario_from_text(dump_scenario(scenario))
    assert again.model.spec() == scenario.model.spec()
    assert (again.horizon, again.replications, again.seed, again.engine) == (
        scenario.horizon, scenario.replications, scenario.seed, scenario.engine)


def test_dump_scenario_writes_file(tmp_path):
    model = ps.load_scenario(EXAMPLE).model
    path = tmp_path / "copy.yaml"
    text = dump_scenario(model, path)
    assert path.read_text(encoding="utf-8") == text
    assert ps.load_scenario(path).model.spec() == model.spec()


# -- round trip of random models ---------------------------------------------------------------------

# Names that YAML would read as something other than a string unless quoted. (A name with a
# line break or another control character is refused: see tests/model/test_validation.py.)
AWKWARD = ["yes", "no", "on", "null", "~", "1.5", "0x1F", "1e3", "true", "a: b", "#hash",
           "- dash", "[x]", "{y}", "*star", "&amp", "!bang", "%pct", "'q'", '"dq"', "é ü",
           "trailing ", "12:30"]

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
non_negative = st.floats(min_value=0.0, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def distributions(draw, *, positive_mean: bool = False):
    kind = draw(st.sampled_from(["exponential", "deterministic", "uniform", "lognormal", "empirical"]))
    if kind == "exponential":
        return ps.Exponential(mean=draw(positive))
    if kind == "deterministic":
        return ps.Deterministic(draw(positive if positive_mean else non_negative))
    if kind == "uniform":
        low = draw(non_negative)
        return ps.Uniform(low=low, high=low + draw(positive))
    if kind == "lognormal":
        return ps.LogNormal(mean=draw(positive), sigma=draw(st.floats(0.01, 3.0)))
    values = draw(st.lists(non_negative, min_size=1, max_size=4))
    if positive_mean:
        values.append(draw(positive))
    return ps.Empirical(values)


@st.composite
def conditions(draw, candidates: list[str], depth: int = 0):
    items = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3))
    if depth == 0 and draw(st.booleans()):
        items.append(draw(conditions(candidates, depth=1)))
    rule = draw(st.sampled_from(["all", "any", "k"]))
    if rule == "all":
        return ps.all_of(*items)
    if rule == "any":
        return ps.any_of(*items)
    return ps.k_of(draw(st.integers(1, len(items))), *items)


@st.composite
def models(draw):
    unit = draw(st.sampled_from(["s", "h", "ms"] + AWKWARD))
    m = ps.Model(draw(st.sampled_from(["m", "web shop"] + AWKWARD)), time_unit=unit)
    pool = ["users", "api", "db", "cache"] + AWKWARD
    names = draw(st.lists(st.sampled_from(pool), min_size=2, max_size=4, unique=True))
    for name in names:
        failures = None
        if draw(st.booleans()):
            failures = ps.Failures(time_to_failure=draw(distributions(positive_mean=True)),
                                   time_to_repair=draw(distributions(positive_mean=True)))
        kwargs = {}
        if draw(st.booleans()):
            kwargs["service_time"] = draw(distributions())
        if draw(st.booleans()):
            kwargs["servers"] = draw(st.integers(1, 8))
        m.agent(name, failures=failures, **kwargs)
    promise_names = draw(st.lists(st.sampled_from(["p", "q", "r", "s", "t"] + AWKWARD),
                                  min_size=2, max_size=5, unique=True))
    for pname in promise_names:
        relied_on = sorted({p.promisee for p in m.promises if p.accepted})
        if relied_on and draw(st.booleans()):
            promiser = draw(st.sampled_from(relied_on))  # so that it can have conditions
        else:
            promiser = draw(st.sampled_from(names))
        promisee = draw(st.sampled_from(names))
        body = ps.Latency(deadline=draw(positive)) if draw(st.booleans()) else ps.Availability()
        usable = [p.name for p in m.promises if p.promisee == promiser and p.accepted]
        cond = draw(conditions(usable)) if usable and draw(st.integers(0, 3)) else None
        m.promise(promiser, to=promisee, body=body, name=pname, conditions=cond,
                  accepted=draw(st.sampled_from([True, True, False])),
                  about=draw(st.sampled_from([None, promiser])))
    for i, p in enumerate(m.promises):
        if isinstance(p.body, ps.Latency) and draw(st.booleans()):
            m.workload(p, rate=draw(positive), name=draw(st.sampled_from([None, f"w{i}"])))
    for _ in range(draw(st.integers(0, 2))):
        m.inject(ps.Outage(draw(st.sampled_from(names)), at=draw(non_negative), duration=draw(positive)))
    m.spec()  # the strategy only builds valid models
    return m


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_random_models_round_trip_through_yaml(model):
    spec = model.spec()
    assert ps.Model.from_dict(model.to_dict()).spec() == spec
    text = dump_scenario(model)
    loaded = scenario_from_text(text).model
    assert loaded.spec() == spec
    assert loaded.name == model.name and loaded.time_unit == model.time_unit
    assert loaded.to_dict() == model.to_dict()


# -- errors in files name the file and the line -------------------------------------------------------

def test_promise_about_another_agent_names_file_line_and_agents(tmp_path, capsys):
    path = write(tmp_path, ABOUT)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "name: p3" in text)
    assert line == 14
    status, out, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    assert out == ""
    message = assert_one_line_error(err)
    assert f"{path}:{line}:" in message
    for word in ("'p3'", "'api'", "'db'"):
        assert word in message


def test_load_scenario_error_carries_file_line_and_element(tmp_path):
    path = write(tmp_path, ABOUT)
    with pytest.raises(ps.ScenarioError, match=rf"^{re.escape(str(path))}:14: .*'p3'.*'api'.*'db'") as info:
        ps.load_scenario(path)
    assert info.value.element == ("promise", "p3")


def test_invalid_yaml_syntax(tmp_path, capsys):
    path = write(tmp_path, """
        agents:
          - name: a
            servers: [1, 2
          - name: b
    """)
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    message = assert_one_line_error(err)
    assert re.search(rf"{re.escape(str(path))}:\d+: ", message), message
    assert "YAML" in message


def test_invalid_yaml_indentation_reports_its_line(tmp_path, capsys):
    path = write(tmp_path, "agents:\n  - name: a\n\tname: b\n")
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    assert f"{path}:3:" in assert_one_line_error(err)


def test_duplicate_keys_are_refused(tmp_path, capsys):
    path = write(tmp_path, """
        agents:
          - name: a
            servers: 2
            servers: 3
    """)
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    message = assert_one_line_error(err)
    assert f"{path}:4:" in message
    assert "'servers'" in message and "twice" in message


def test_duplicate_top_level_keys_are_refused(tmp_path, capsys):
    path = write(tmp_path, """
        agents:
          - name: a
        agents:
          - name: b
    """)
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    assert f"{path}:3:" in assert_one_line_error(err)


BASE = """
    agents:
      - name: a
      - name: b
    promises:
      - name: p
        promiser: a
        promisee: b
        body: {latency: {deadline: 1}}
"""

UNKNOWN_KEYS = {
    "agent": BASE.replace("- name: a", "- name: a\n        colour: red"),
    "promise": BASE + "        colour: red\n",
    "latency body": BASE.replace("{deadline: 1}", "{deadline: 1, colour: red}"),
    "failures": BASE.replace(
        "- name: a",
        "- name: a\n        failures: {time_to_failure: 1, time_to_repair: 1, colour: red}"),
    "exponential": BASE.replace("- name: a", "- name: a\n        service_time: {exponential: {mean: 1, colour: red}}"),
    "empirical": BASE.replace("- name: a", "- name: a\n        service_time: {empirical: {values: [1], colour: red}}"),
    "condition": BASE + "        conditions: {colour: [p]}\n",
    "workload": BASE + "    workloads:\n      - {promise: p, rate: 1, colour: red}\n",
    "outage": BASE + "    injections:\n      - outage: {target: a, at: 0, duration: 1, colour: red}\n",
    "top level": BASE + "    colour: red\n",
    "run": BASE + "    run: {horizon: 10, colour: red}\n",
}


@pytest.mark.parametrize("where", list(UNKNOWN_KEYS))
def test_unknown_key_is_refused_naming_the_key(tmp_path, capsys, where):
    path = write(tmp_path, UNKNOWN_KEYS[where])
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2, f"an unknown key in {where} was accepted"
    message = assert_one_line_error(err)
    assert str(path) in message
    assert "colour" in message


@pytest.mark.parametrize("where", list(UNKNOWN_KEYS))
def test_unknown_key_error_gives_the_line(tmp_path, capsys, where):
    path = write(tmp_path, UNKNOWN_KEYS[where])
    lines = path.read_text().splitlines()
    colour = next(i for i, text in enumerate(lines, 1) if "colour" in text)
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    message = assert_one_line_error(err)
    found = re.search(rf"{re.escape(str(path))}:(\d+):", message)
    assert found, f"no line number in {message!r}"
    # the line of the key itself or of the entry that holds it
    assert 1 <= int(found.group(1)) <= colour


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nowhere.yaml"
    status, out, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    assert out == ""
    message = assert_one_line_error(err)
    assert str(path) in message


def test_directory_instead_of_file(tmp_path, capsys):
    status, _, err = run_cli(capsys, "run", tmp_path, "--horizon", "10")
    assert status == 2
    assert str(tmp_path) in assert_one_line_error(err)


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.mkdir", "!!python/object/new:os.mkdir"])
def test_python_tags_are_refused_and_not_executed(tmp_path, capsys, tag):
    target = tmp_path / "pwned"
    path = write(tmp_path, f"""
        name: {tag} ["{target}"]
        agents:
          - name: a
    """)
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    message = assert_one_line_error(err)
    assert str(path) in message
    assert not target.exists()


def test_python_object_tag_is_refused(tmp_path, capsys):
    path = write(tmp_path, """
        agents:
          - !!python/object:collections.OrderedDict {name: a}
    """)
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    assert f"{path}:2:" in assert_one_line_error(err)


def test_empty_file_names_the_file_once(tmp_path, capsys):
    path = write(tmp_path, "")
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    message = assert_one_line_error(err)
    assert message.count(str(path)) == 1, message
    assert "empty" in message


def test_duplicate_agent_points_at_the_second_definition(tmp_path, capsys):
    path = write(tmp_path, """
        agents:
          - name: a
          - name: b
          - name: a
    """)
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    message = assert_one_line_error(err)
    assert "agent 'a' is defined twice" in message
    assert f"{path}:4:" in message, message


def test_non_string_workload_name_is_a_scenario_error(tmp_path, capsys):
    path = write(tmp_path, BASE + "    workloads:\n      - {promise: p, rate: 1, name: [1, 2]}\n")
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    message = assert_one_line_error(err)
    assert f"{path}:10:" in message and "workload" in message


@pytest.mark.parametrize("snippet, words", [
    ("    injections:\n      - outage: {target: a, at: -5, duration: 1}\n", ["outage", "'a'", "at=-5"]),
    ("    workloads:\n      - {promise: p, rate: .nan}\n", ["workload 'p'", "rate=nan"]),
    ("    workloads:\n      - {promise: p, rate: 0}\n", ["workload 'p'", "rate=0"]),
    ("    workloads:\n      - {promise: ghost, rate: 1}\n", ["workload 'ghost'"]),
    ("    injections:\n      - outage: {target: ghost, at: 0, duration: 1}\n", ["outage", "'ghost'"]),
])
def test_bad_numbers_and_references_in_files(tmp_path, capsys, snippet, words):
    path = write(tmp_path, BASE + snippet)
    line = len(path.read_text().splitlines())
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    message = assert_one_line_error(err)
    assert f"{path}:{line}:" in message
    for word in words:
        assert word in message


def test_bad_distribution_in_file_names_agent_and_line(tmp_path, capsys):
    path = write(tmp_path, BASE.replace(
        "- name: b", "- name: b\n        service_time: {uniform: {low: 2, high: 1}}"))
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 2
    message = assert_one_line_error(err)
    assert f"{path}:3:" in message
    assert "agent 'b'" in message and "Uniform" in message


@pytest.mark.parametrize("args, word", [
    (["--horizon", "0"], "horizon"),
    (["--horizon", "inf"], "horizon"),
    (["--horizon", "nan"], "horizon"),
    (["--replications", "0", "--horizon", "10"], "replications"),
    (["--engine", "warp", "--horizon", "10"], "warp"),
    ([], "horizon"),
])
def test_bad_run_settings_on_the_command_line(tmp_path, capsys, args, word):
    path = write(tmp_path, BASE)
    status, out, err = run_cli(capsys, "run", path, *args)
    assert status == 2
    assert out == ""
    assert word in assert_one_line_error(err)


def test_bad_arguments_give_status_two(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run"])
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# -- running ----------------------------------------------------------------------------------------------

def test_availability_matches_closed_form(tmp_path, capsys):
    path = write(tmp_path, """
        name: one server
        time_unit: h
        agents:
          - name: server
            failures:
              time_to_failure: {exponential: {mean: 1000}}
              time_to_repair: {exponential: {mean: 2}}
          - name: users
        promises:
          - name: up
            promiser: server
            promisee: users
            body: availability
        run: {horizon: 87600, replications: 200, seed: 1}
    """)
    status, out, err = run_cli(capsys, "run", path, "--json")
    assert status == 0, err
    data = json.loads(out)
    for record in data:
        assert RECORD_KEYS <= set(record)
    kept = records(out)[("up", "kept_fraction")]
    expected = availability(1000.0, 2.0)
    assert expected == pytest.approx(0.998004, abs=1e-6)
    assert kept["n"] == 200
    assert 0 < kept["stderr"] < 1e-3
    assert abs(kept["mean"] - expected) <= 3 * kept["stderr"], (kept, expected)
    assert kept["ci_low"] <= kept["mean"] <= kept["ci_high"]


def test_text_output_names_the_run(tmp_path, capsys):
    path = write(tmp_path, TINY)
    status, out, _ = run_cli(capsys, "run", path)
    assert status == 0
    first, *rest = out.splitlines()
    assert first.startswith("tiny: 2 replications of 10 h")
    assert any(line.split()[:1] == ["up"] for line in rest), out


def test_out_writes_tables_and_plot(tmp_path, capsys):
    path = write(tmp_path, TINY)
    folder = tmp_path / "results" / "nested"
    status, out, err = run_cli(capsys, "run", path, "--out", folder)
    assert status == 0, err
    for name in ("summary.csv", "promises.csv", "intervals.csv", "events.csv"):
        text = (folder / name).read_text(encoding="utf-8")
        assert len(text.splitlines()) >= 2, f"{name} has no rows: {text!r}"
    summary = (folder / "summary.csv").read_text().splitlines()
    assert summary[0] == "promise,metric,mean,stderr,ci_low,ci_high,n"
    assert "up,kept_fraction,0.5," in "\n".join(summary)
    events = (folder / "events.csv").read_text()
    assert "outage" in events
    png = (folder / "kept.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 1000


def test_replications_override(tmp_path, capsys):
    path = write(tmp_path, TINY)
    status, out, _ = run_cli(capsys, "run", path, "--json")
    assert status == 0
    assert records(out)[("up", "kept_fraction")]["n"] == 2
    status, out, _ = run_cli(capsys, "run", path, "--json", "--replications", "5")
    assert status == 0
    assert {r["n"] for r in json.loads(out)} == {5}
    status, out, _ = run_cli(capsys, "run", path, "--json", "-r", "3")
    assert {r["n"] for r in json.loads(out)} == {3}


def test_horizon_override(tmp_path, capsys):
    path = write(tmp_path, TINY)  # down on [0, 5): kept 1 - 5 / horizon
    status, out, _ = run_cli(capsys, "run", path, "--json")
    assert status == 0
    assert records(out)[("up", "kept_fraction")]["mean"] == pytest.approx(0.5)
    status, out, _ = run_cli(capsys, "run", path, "--json", "--horizon", "20")
    assert status == 0
    assert records(out)[("up", "kept_fraction")]["mean"] == pytest.approx(0.75)
    assert records(out)[("up", "broken_time")]["mean"] == pytest.approx(5.0)


def test_horizon_from_command_line_when_file_has_none(tmp_path, capsys):
    path = write(tmp_path, TINY.replace("horizon: 10, ", ""))
    status, out, _ = run_cli(capsys, "run", path, "--json", "--horizon", "50")
    assert status == 0
    assert records(out)[("up", "kept_fraction")]["mean"] == pytest.approx(0.9)


def test_seed_override_and_reproducibility(tmp_path, capsys):
    file_seed_3 = write(tmp_path, RANDOM, "three.yaml")
    file_seed_4 = write(tmp_path, RANDOM.replace("seed: 3", "seed: 4"), "four.yaml")
    _, a, _ = run_cli(capsys, "run", file_seed_3, "--json")
    _, b, _ = run_cli(capsys, "run", file_seed_3, "--json")
    assert a == b  # same seed, same output
    _, c, _ = run_cli(capsys, "run", file_seed_3, "--json", "--seed", "4")
    _, d, _ = run_cli(capsys, "run", file_seed_4, "--json")
    assert c == d  # --seed replaces the file's seed
    assert c != a  # and it matters
    _, e, _ = run_cli(capsys, "run", file_seed_3, "--json", "--seed", "4")
    assert e == c


def test_same_seed_on_command_line_gives_identical_json(tmp_path, capsys):
    path = write(tmp_path, RANDOM.replace("seed: 3", "seed: null"))
    status1, a, _ = run_cli(capsys, "run", path, "--json", "--seed", "11")
    status2, b, _ = run_cli(capsys, "run", path, "--json", "--seed", "11")
    assert status1 == status2 == 0
    assert a == b
    assert records(a)[("up", "kept_fraction")]["mean"] < 1.0


def test_json_has_no_nan(tmp_path, capsys):
    # one replication: standard errors are undefined and must be null, not NaN
    path = write(tmp_path, TINY)
    status, out, _ = run_cli(capsys, "run", path, "--json", "-r", "1")
    assert status == 0
    assert "NaN" not in out
    kept = records(out)[("up", "kept_fraction")]
    assert kept["stderr"] is None and kept["n"] == 1


def test_example_runs_from_the_command_line(capsys):
    status, out, err = run_cli(capsys, "run", EXAMPLE, "--json", "-r", "1", "--horizon", "3600")
    assert status == 0, err
    found = records(out)
    assert ("answers", "kept_fraction") in found
    assert ("answers", "requests") in found


def test_agents_only_scenario_runs(tmp_path, capsys):
    path = write(tmp_path, """
        agents:
          - name: lonely
    """)
    status, _, err = run_cli(capsys, "run", path, "--horizon", "10")
    assert status == 0, err


def test_aliases_and_deep_nesting_are_refused_in_one_line(tmp_path):
    """An alias bomb (nine levels of nine copies: 9^9 values once expanded), a recursive alias
    and 200 nested lists: each a ScenarioError naming the line, at once."""
    import time

    from promisesim.scenario import scenario_from_text

    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [" + ", ".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    cases = [(bomb + "agents: []\n", "f.yaml:1: this value is used again through an alias"),
             ("agents: &x [*x]\n", "f.yaml:1: this value is used again through an alias"),
             ("agents:" + " [" * 200 + "]" * 200 + "\n", "f.yaml:1: nested more than 64 levels")]
    for text, message in cases:
        start = time.perf_counter()
        with pytest.raises(ps.ScenarioError, match=message):
            scenario_from_text(text, source="f.yaml")
        assert time.perf_counter() - start < 10.0   # refused before anything grows (no hang)


@pytest.mark.parametrize("args,message", [
    (["--seed", "-1"], "argument --seed: -1 must be at least 0"),
    (["--seed", "x"], "argument --seed: 'x' is not a whole number"),
    (["--replications", "0"], "argument --replications/-r: 0 must be at least 1"),
    (["--workers", "0"], "argument --workers: 0 must be at least 1"),
])
def test_bad_command_line_numbers_are_one_line_before_anything_runs(args, message, capsys):
    from promisesim.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["run", str(Path(ps.__file__).parent / "examples" / "web_api.yaml"), *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == f"promisesim: error: {message}\n"


def test_out_pointing_at_a_file_is_refused_before_the_run(tmp_path, capsys):
    from promisesim.cli import main

    target = tmp_path / "taken"
    target.write_text("x")
    for command in (["run"], ["sweep", "-p", "agents[db].servers=2"]):
        with pytest.raises(SystemExit) as exit_:
            main([command[0], str(Path(ps.__file__).parent / "examples" / "web_api.yaml"),
                  *command[1:], "--out", str(target)])
        assert exit_.value.code == 2
        assert capsys.readouterr().err == f"promisesim: error: argument --out: {target} is a file, not a folder\n"


def test_an_unknown_key_names_the_closest_allowed_one():
    from promisesim.scenario import scenario_from_text

    with pytest.raises(ps.ScenarioError, match=r"f.yaml:3: scenario: unknown key\(s\) \['versions'\];"
                                               r" .*\('versions': did you mean 'versioned'\?\)$"):
        scenario_from_text("name: x\nagents: [{name: a}]\nversions: []\n", source="f.yaml")
    with pytest.raises(ps.ScenarioError) as far:
        scenario_from_text("agents: [{name: a, zzz: 2}]\n", source="f.yaml")
    assert "did you mean" not in str(far.value)


def test_out_writes_every_table_and_the_whole_result(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    import pandas as pd

    example = Path(ps.__file__).parent / "examples" / "web_api.yaml"
    folder = tmp_path / "out"
    status, _, err = run_cli(capsys, "run", example, "--horizon", "20000", "-r", "2",
                             "--seed", "4", "--no-progress", "--out", folder)
    assert status == 0, err
    for name in ("causes.csv", "request_causes.csv", "intervals.csv"):
        assert len((folder / name).read_text().splitlines()) >= 2, name
    again = ps.load_result(folder / "result")
    direct = ps.simulate(ps.load_scenario(example).model, horizon=20_000.0, replications=2,
                         seed=4)
    requests = pd.read_parquet(folder / "requests.parquet")
    pd.testing.assert_frame_equal(requests, direct.requests, check_categorical=False,
                                  check_dtype=False)
    assert len(requests) > 1000
    pd.testing.assert_frame_equal(again.requests, direct.requests)
    pd.testing.assert_frame_equal(again.promises, direct.promises)
    # a second run into the same folder replaces the saved result
    status, _, err = run_cli(capsys, "run", example, "--horizon", "20000", "-r", "1",
                             "--no-progress", "--out", folder)
    assert status == 0, err
    assert ps.load_result(folder / "result").replications == 1


def test_out_that_cannot_be_written_is_refused_before_the_run(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    example = Path(ps.__file__).parent / "examples" / "web_api.yaml"
    status, out, err = run_cli(capsys, "run", example, "--out", blocker / "below")
    assert status == 2 and out == ""
    assert err.startswith(f"promisesim: error: --out {blocker / 'below'}: cannot write there")
    assert len(err.splitlines()) == 1


def test_a_scenario_written_as_json_loads_as_its_yaml_does(tmp_path):
    import yaml

    example = Path(ps.__file__).parent / "examples" / "web_api.yaml"
    data = yaml.safe_load(example.read_text())
    path = tmp_path / "web_api.json"
    path.write_text(json.dumps(data, indent=1))
    from_json, from_yaml = ps.load_scenario(path), ps.load_scenario(example)
    assert from_json.model.spec() == from_yaml.model.spec()
    assert (from_json.horizon, from_json.replications, from_json.seed) == \
        (from_yaml.horizon, from_yaml.replications, from_yaml.seed)
    from promisesim.scenario import scenario_from_text

    with pytest.raises(ps.ScenarioError, match=r"f.json: key 'name' appears twice"):
        scenario_from_text('{"name": "a", "name": "b", "agents": []}', source="f.json")
    with pytest.raises(ps.ScenarioError, match="nested more than 64 levels"):
        scenario_from_text('{"agents": ' + "[" * 100 + "]" * 100 + "}")
    with pytest.raises(ps.ScenarioError, match="nested more than 64 levels"):
        scenario_from_text('{"agents": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(ps.ScenarioError, match=r"f.json:2: not valid JSON"):
        scenario_from_text('{"agents": [],\n "x": }', source="f.json")
    with pytest.raises(ps.ScenarioError, match=r"f.json: agents\[0\]: missing key"):
        scenario_from_text('{"agents": [{}]}', source="f.json")


def test_check_knockout_takes_the_run_options(capsys):
    """--horizon, --replications, --seed and --engine override the file's run section for the
    knock-out runs: a short run ranks the single point of failure first."""
    path = Path(ps.__file__).parent / "examples" / "web_api.yaml"
    status, out, _ = run_cli(capsys, "check", path, "--knockout", "--horizon", "3600",
                             "--replications", "2", "--seed", "4", "--engine", "vector", "--json")
    assert status == 0
    ranking = json.loads(out)["knockout"]
    assert ranking[0]["agent"] == "db" and len(ranking) == 5
    status, _, err = run_cli(capsys, "check", path, "--knockout", "--engine", "nope")
    assert status == 2 and "engine" in err
