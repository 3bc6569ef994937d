"""The scenario file's form as a JSON Schema, made from the model's own classes.

Each element of a file is the dataclass it builds: its keys are the dataclass's fields,
the required ones are the fields without a default, an optional field whose default is
``None`` may be ``null``; distributions take the parameters of their constructors. Only the
type of each value is written here, by field name. The reader
(:meth:`promisesim.Model.from_dict`) takes its allowed and required keys from
:func:`keys`, so the file form is written down once; the schema adds the value types and
the choices, for editors and validators. The model's validation stays the judge of values
(a schema cannot say ``low < high`` or that a promise's promiser exists).

``promisesim schema`` prints it; ``promisesim/scenario.schema.json`` is the same text,
shipped for editors (VS Code's YAML extension reads it with a
``# yaml-language-server: $schema=...`` first line).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from functools import cache
from typing import Any

from ..dists import _KINDS, LogNormal
from .agents import PLACEMENTS, Agent, Bursts, Failures, Maintenance
from .injections import Autoscaler, Degrade, Observer, Outage, Partition, ScaleTo, Workload
from .objectives import Alert, Objective
from .promises import RETRY_ON, Backoff, Breaker, Promise, RetryBudget
from .super_agents import AgentTemplate, SuperAgent
from .versions import Canary, Migrate, Release, Retire, Rollback, UndocumentedChange, Versioned

__all__ = ["scenario_schema", "schema_text", "keys", "name_keys", "ENGINES"]

#: Engines a scenario file's ``run.engine`` may name.
ENGINES = ("auto", "reference", "vector")

_NAME = {"type": "string", "minLength": 1}
_NUMBER = {"type": "number"}
_TIME = {"type": "number", "minimum": 0}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_COUNT = {"type": "integer", "minimum": 0}
_WHOLE = {"type": "integer", "minimum": 1}
_FLAG = {"type": "boolean"}
_DIST = {"$ref": "#/$defs/distribution"}
_NAMES = {"type": "array", "items": _NAME}


#: An agent's errors: a probability per answer, or bursts of them.
_ERRORS = {"oneOf": [_SHARE, {"type": "object",
                              "properties": {"bursts": {"$ref": "#/$defs/error_bursts"}},
                              "required": ["bursts"], "additionalProperties": False}]}


def _enum(*values: str) -> dict[str, Any]:
    return {"enum": list(values)}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


#: The type of a field by its name, wherever it appears.
_BY_NAME: dict[str, dict[str, Any]] = {
    "name": _NAME, "promise": _NAME, "promiser": _NAME, "promisee": _NAME, "target": _NAME,
    "objective": _NAME, "version": _NAME, "to": _NAME, "about": _NAME,
    "at": _TIME, "duration": _TIME, "start": _TIME, "end": _TIME, "timeout": _POSITIVE,
    "over": _TIME, "delay": _TIME, "cooldown": _TIME, "window": _POSITIVE, "long": _POSITIVE,
    "short": _POSITIVE, "every": _POSITIVE, "step": _POSITIVE, "timeslice": _POSITIVE,
    "mean_duration": _POSITIVE, "open_for": _TIME, "initial": _TIME, "adapt": _TIME, "maximum": _TIME,
    "rate": _POSITIVE, "errors": _SHARE, "baseline": _SHARE, "share": _SHARE, "success": _SHARE,
    "reuse": _SHARE, "failure_rate": _SHARE, "ratio": _NUMBER, "slower": _POSITIVE,
    "multiplier": _NUMBER, "slowdown": _TIME, "burn_rate": _POSITIVE,
    "timeslice_target": _SHARE, "utilisation": _SHARE,
    "servers": _WHOLE, "limit": _COUNT, "retries": _COUNT, "minimum": _COUNT, "trials": _WHOLE,
    "size": _COUNT, "k": _WHOLE, "min_size": _WHOLE, "max_size": _WHOLE,
    "drain": _FLAG, "both_ways": _FLAG, "probe": _FLAG, "rolling": _FLAG, "accepted": _FLAG,
    "service_time": _DIST, "interarrival": _DIST, "time_to_failure": _DIST,
    "time_to_repair": _DIST, "hop": _DIST, "startup": _DIST, "warm_startup": _DIST,
    "keep_alive": _POSITIVE, "cold_start": _DIST, "placement": _enum(*PLACEMENTS),
    "max_wait": _POSITIVE,
    "failures": _ref("failures"), "maintenance": _ref("maintenance"),
    "backoff": _ref("backoff"), "budget": _ref("budget"), "breaker": _ref("breaker"),
    "conditions": _ref("condition"), "member": _ref("template"),
    "order": _enum("after", "around", "before"), "late": _enum("wait", "fail"),
    "rule": _enum("any", "all", "k", "all_to_all"), "balance": _enum("first", "random"),
    "per": _enum("calls", "time"), "jitter": _enum("full", "equal"),
    "budgeting": _enum("occurrences", "timeslices"),
    "members": _NAMES, "retry_on": {"type": "array", "items": _enum(*RETRY_ON)},
}
#: Where a field's type depends on its element.
_BY_ELEMENT: dict[tuple[type, str], dict[str, Any]] = {
    (Objective, "target"): {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    (Breaker, "window"): _POSITIVE,
    (Autoscaler, "interval"): _POSITIVE,
    (Observer, "interval"): _DIST,
    (Maintenance, "interval"): _DIST,
    (Agent, "errors"): _ERRORS,
    (AgentTemplate, "errors"): _ERRORS,
    (Partition, "a"): {"oneOf": [_NAME, _NAMES]},
    (Partition, "b"): {"oneOf": [_NAME, _NAMES]},
    (Promise, "body"): _ref("body"),
    (Versioned, "versions"): {"type": "object", "minProperties": 1, "additionalProperties": {
        "oneOf": [_ref("template"), {"type": "null"}]}},
    (Versioned, "traffic"): {"type": "object", "additionalProperties": _SHARE},
    (Migrate, "to"): _NAME,
    (Canary, "to"): _NAME,
    (Canary, "rollback"): _ref("rollback"),
    (Rollback, "interval"): _POSITIVE,
    (Rollback, "max_broken"): _SHARE,
    (Rollback, "min_requests"): _WHOLE,
    (Canary, "steps"): {"type": "array", "minItems": 1, "items": {
        "type": "array", "prefixItems": [_SHARE, _TIME], "minItems": 2, "maxItems": 2,
        "description": "[share, hold]"}},
}
#: Fields that a file must give although the class has a default.
_REQUIRED_IN_FILES = {Versioned: {"versions"}}
#: Each element of a file and the class it builds.
ELEMENTS: dict[str, type] = {
    "agent": Agent, "template": AgentTemplate, "super_agent": SuperAgent,
    "versioned": Versioned, "promise": Promise, "workload": Workload, "observer": Observer,
    "objective": Objective, "alert": Alert, "failures": Failures, "maintenance": Maintenance,
    "error_bursts": Bursts, "backoff": Backoff, "budget": RetryBudget, "breaker": Breaker,
    "outage": Outage, "degrade": Degrade, "partition": Partition, "scale_to": ScaleTo,
    "autoscaler": Autoscaler, "release": Release, "retire": Retire, "migrate": Migrate,
    "canary": Canary, "rollback": Rollback,
    "undocumented_change": UndocumentedChange,
}
#: The one-key mappings of ``injections``, in the order the reader's error lists them.
INJECTIONS = ("outage", "degrade", "partition", "scale_to", "autoscaler", "release", "retire",
              "migrate", "canary", "undocumented_change")
#: Top-level keys, with the element each list holds.
TOP = {"name": _NAME, "time_unit": _NAME, "agents": "agent", "super_agents": "super_agent",
       "versioned": "versioned", "promises": "promise", "workloads": "workload",
       "injections": "injection", "observers": "observer", "objectives": "objective",
       "alerts": "alert", "run": _ref("run")}
#: The ``run`` section: settings of a run, not part of the model.
RUN = {"horizon": _POSITIVE, "replications": _WHOLE, "seed": {"type": ["integer", "null"],
                                                              "minimum": 0},
       "engine": _enum(*ENGINES)}


def _fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _optional(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


@cache
def keys(element: str) -> tuple[frozenset[str], frozenset[str]]:
    """The allowed and the required keys of ``element`` (a name of :data:`ELEMENTS`, or
    ``"scenario"`` or ``"run"``) in a scenario file."""
    if element == "scenario":
        return frozenset(TOP), frozenset({"agents"})
    if element == "run":
        return frozenset(RUN), frozenset()
    cls = ELEMENTS[element]
    fields = _fields(cls)
    required = {f.name for f in fields if not _optional(f)} | _REQUIRED_IN_FILES.get(cls, set())
    return frozenset(f.name for f in fields), frozenset(required)


@cache
def name_keys(element: str) -> frozenset[str]:
    """The keys of ``element`` whose values are names (text), as the schema types them."""
    if element in ("scenario", "run"):
        return frozenset({"name", "time_unit"}) if element == "scenario" else frozenset()
    cls = ELEMENTS[element]
    return frozenset(f.name for f in _fields(cls)
                     if _BY_ELEMENT.get((cls, f.name), _BY_NAME.get(f.name)) is _NAME)


def _object(properties: dict[str, Any], required: set[str] | frozenset[str] = frozenset(),
            description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties,
                           "additionalProperties": False}
    if required:
        out["required"] = sorted(required)
    if description:
        out["description"] = description
    return out


def _summary(cls: type) -> str | None:
    """The first paragraph of a class's docstring, in plain text (no reST roles)."""
    text = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([\w]+)`", r"\1", text)
    return text.replace("``", "") or None


def _element(name: str) -> dict[str, Any]:
    cls = ELEMENTS[name]
    allowed, required = keys(name)
    properties = {}
    for f in _fields(cls):
        kind = _BY_ELEMENT.get((cls, f.name), _BY_NAME.get(f.name))
        if kind is None:   # a new field must be given a type here: the schema test says so
            raise KeyError(f"no schema type for {cls.__name__}.{f.name}")
        if f.default is None:
            kind = {"oneOf": [kind, {"type": "null"}]}
        properties[f.name] = kind
    return _object(properties, required, _summary(cls))


def _distribution() -> dict[str, Any]:
    """A plain number (a fixed time) or a one-key mapping naming a distribution, with the
    parameters of its constructor."""
    choices: list[dict[str, Any]] = [{"type": "number", "minimum": 0,
                                      "description": "a fixed time (deterministic)"}]
    for kind, cls in sorted(_KINDS.items()):
        params = [p for p in inspect.signature(cls).parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        number = dict(_NUMBER)
        if kind == "empirical":
            values = {"type": "array", "items": _NUMBER, "minItems": 1}
            body: dict[str, Any] = {"oneOf": [values, _object({"values": values}, {"values"})]}
        elif kind == "deterministic":
            body = {"oneOf": [number, _object({"value": number}, {"value"})]}
        elif cls is LogNormal:   # exactly one of mean and mu, with sigma
            props = {p.name: number for p in params}
            body = {"oneOf": [_object(props, {"mean", "sigma"}), _object(props, {"mu", "sigma"})]}
        else:
            body = _object({p.name: number for p in params},
                           {p.name for p in params if p.default is p.empty})
        choices.append(_object({kind: body}, {kind}, _summary(cls)))
    return {"oneOf": choices}


def _condition() -> dict[str, Any]:
    items = {"type": "array", "items": _ref("condition")}   # a name or a nested condition
    any_of = _object({"of": items, "choose": _enum("first", "random"),
                      "mode": _enum("pull", "push"), "detect": _TIME,
                      "hedge": {"oneOf": [_TIME, {"type": "null"}]}}, {"of"})
    return {"oneOf": [
        {**_NAME, "description": "one promise, needed"},
        {**items, "description": "all of these, needed"},
        _object({"all_of": items}, {"all_of"}),
        _object({"any_of": {"oneOf": [items, any_of]}}, {"any_of"}),
        _object({"k_of": _object({"k": _WHOLE, "of": items}, {"k", "of"})}, {"k_of"}),
        _object({"fallback": {**items, "minItems": 1}}, {"fallback"}),
    ]}


@cache
def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, as a dict."""
    defs: dict[str, Any] = {name: _element(name) for name in ELEMENTS}
    defs["distribution"] = _distribution()
    defs["condition"] = _condition()
    defs["body"] = {"oneOf": [
        _enum("availability"),
        _object({"availability": {"oneOf": [_object({}), {"type": "null"}]}}, {"availability"}),
        _object({"latency": _object({"deadline": _POSITIVE}, {"deadline"})}, {"latency"}),
    ]}
    defs["injection"] = {"oneOf": [_object({kind: _ref(kind)}, {kind}) for kind in INJECTIONS]}
    defs["run"] = _object(RUN, description="Settings of a run (overridden on the command line).")
    properties = {key: ({"type": "array", "items": _ref(value)} if isinstance(value, str)
                        else value) for key, value in TOP.items()}
    allowed, required = keys("scenario")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "promisesim scenario",
        "description": "A model of agents and their promises, with injected faults and the "
                       "settings of a run; see promisesim.load_scenario.",
        **_object(properties, required),
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as JSON text (what ``promisesim schema`` prints)."""
    return json.dumps(scenario_schema(), indent=2) + "\n"
