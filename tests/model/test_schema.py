"""The JSON Schema of scenario files: made from the model's classes, shipped, and in step with
the reader (which takes its keys from it) and with the model's own validation."""

import copy
import json
from pathlib import Path

import pytest
import yaml

import promisesim as ps
from promisesim.model import schema

jsonschema = pytest.importorskip("jsonschema")

PACKAGE = Path(ps.__file__).parent
EXAMPLES = sorted((PACKAGE / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    document = schema.scenario_schema()
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def test_the_shipped_file_is_the_generated_schema():
    shipped = (PACKAGE / "scenario.schema.json").read_text(encoding="utf-8")
    assert shipped == schema.schema_text(), \
        "regenerate it: promisesim schema > promisesim/scenario.schema.json"


def test_promisesim_schema_prints_it(capsys):
    from promisesim.cli import main

    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == schema.scenario_schema()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_and_its_dump_validate(validator, path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert not list(validator.iter_errors(data))
    # the form the library writes (every optional field it emits) validates too
    dumped = yaml.safe_load(ps.dump_scenario(ps.load_scenario(path)))
    assert not list(validator.iter_errors(dumped))


def _errors(validator, data):
    return [(list(e.absolute_path), e.message) for e in validator.iter_errors(data)]


def test_a_mutated_file_fails_naming_the_key(validator):
    data = yaml.safe_load((PACKAGE / "examples" / "web_api.yaml").read_text())
    bad = copy.deepcopy(data)
    bad["agents"][0]["servrs"] = 2
    (where, message), = _errors(validator, bad)
    assert where == ["agents", 0] and "'servrs' was unexpected" in message
    bad = copy.deepcopy(data)
    del bad["promises"][1]["promiser"]
    (where, message), = _errors(validator, bad)
    assert where == ["promises", 1] and "'promiser' is a required property" in message
    bad = copy.deepcopy(data)
    bad["run"]["engine"] = "fast"
    (where, message), = _errors(validator, bad)
    assert where == ["run", "engine"] and "'fast' is not one of" in message
    # the reader refuses the same files, naming the same key
    for key in ("servrs",):
        with pytest.raises(ps.ScenarioError, match=key):
            ps.Model.from_dict({**data, "agents": [{**data["agents"][0], key: 2}]})


@pytest.mark.parametrize("element", sorted(schema.ELEMENTS))
def test_reader_and_schema_agree_on_each_elements_keys(element):
    allowed, required = schema.keys(element)
    definition = schema.scenario_schema()["$defs"][element]
    assert set(definition["properties"]) == allowed
    assert set(definition.get("required", ())) == required


BASE = """
name: choices
agents:
  - {name: db, service_time: 0.01}
  - {name: api, service_time: 0.02}
  - {name: user}
super_agents:
  - {name: pool, size: 2, member: {service_time: 0.01}}
promises:
  - {name: q, promiser: db, promisee: api, body: {latency: {deadline: 1}}}
  - {name: r, promiser: pool, promisee: api, body: {latency: {deadline: 1}}}
  - name: p
    promiser: api
    promisee: user
    body: {latency: {deadline: 1}}
    conditions: [q, r]
    retries: 1
    backoff: {initial: 0.1}
    breaker: {}
objectives:
  - {promise: p, target: 0.99, window: 100}
"""


@pytest.mark.parametrize("path, key", [
    (("agents", 0), "order"), (("promises", 2), "late"), (("super_agents", 0), "balance"),
    (("promises", 2, "breaker"), "per"), (("promises", 2, "backoff"), "jitter"),
    (("objectives", 0), "budgeting"), (("super_agents", 0), "rule"),
])
def test_every_choice_the_schema_offers_is_one_the_model_takes(validator, path, key):
    base = yaml.safe_load(BASE)
    element = base
    for step in path:
        element = element[step]
    choices = schema._BY_NAME[key]["enum"]
    needs = {"k": {"k": 1}, "timeslices": {"timeslice": 10}}   # what a choice brings along
    for value in choices:
        element[key] = value
        for extra in needs.values():
            for k in extra:
                element.pop(k, None)
        element.update(needs.get(value, {}))
        assert not _errors(validator, base)
        ps.Model.from_dict(base).spec()         # the model accepts it too
    element[key] = "nonsense"
    assert _errors(validator, base)
    with pytest.raises(ps.ScenarioError, match="nonsense"):
        ps.Model.from_dict(base).spec()
