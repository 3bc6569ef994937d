"""Scenario files: a model (and how to run it) as YAML data.

A scenario file maps one to one onto the Python model
(:meth:`promisesim.Model.to_dict`), plus an optional ``run`` section::

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

Files are read with PyYAML's safe loader only: a scenario is data, never
code. Errors name the element and the line it is defined on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import ScenarioError, _real
from .model.model import Model
from .model.schema import keys

__all__ = ["Scenario", "load_scenario", "dump_scenario", "scenario_from_text"]

_RUN_KEYS, _ = keys("run")


@dataclass
class Scenario:
    """A model with the settings to run it, as read from a scenario file.

    Attributes
    ----------
    model : Model
    horizon : float or None
    replications : int
    seed : int or None
    engine : str
    """

    model: Model
    horizon: float | None = None
    replications: int = 1
    seed: int | None = None
    engine: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        data = self.model.to_dict()
        run: dict[str, Any] = {"replications": self.replications, "engine": self.engine}
        if self.horizon is not None:
            run["horizon"] = self.horizon
        if self.seed is not None:
            run["seed"] = self.seed
        data["run"] = run
        return data


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when installed: large files load fast), reading ``1e3`` as a
    number (YAML 1.2) rather than a string."""


class _Dumper(yaml.SafeDumper):
    """The safe dumper, quoting strings that :class:`_Loader` would read as numbers, and
    writing numpy's scalars (which a model may hold: they are valid numbers) as plain ones."""


_Dumper.add_multi_representer(np.integer, lambda d, v: d.represent_int(int(v)))
_Dumper.add_multi_representer(np.floating, lambda d, v: d.represent_float(float(v)))
_Dumper.add_multi_representer(np.bool_, lambda d, v: d.represent_bool(bool(v)))


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


#: Deepest nesting a scenario file may have (the model's own forms need fewer than 12 levels).
_MAX_DEPTH = 64


def _marks(node: yaml.Node, path: tuple, out: dict[tuple, int],
           seen: set[int] | None = None) -> None:
    """Record the line of every element, and refuse what a scenario has no use for: a value
    used twice through an alias (an alias bomb grows exponentially; a recursive one never
    ends) and nesting deeper than :data:`_MAX_DEPTH`."""
    seen = set() if seen is None else seen
    line = node.start_mark.line + 1
    if id(node) in seen:
        raise ScenarioError(f"line {line}: this value is used again through an alias (*name); "
                            "aliases are not allowed in scenario files: write the value out")
    if len(path) > _MAX_DEPTH:
        raise ScenarioError(f"line {line}: nested more than {_MAX_DEPTH} levels deep")
    out[path] = line
    if isinstance(node, yaml.MappingNode):
        seen.add(id(node))
        keys: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in keys:
                raise ScenarioError(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice")
            keys.add(key)
            _marks(value_node, path + (key,), out, seen)
    elif isinstance(node, yaml.SequenceNode):
        seen.add(id(node))
        for i, item in enumerate(node.value):
            _marks(item, path + (i,), out, seen)


def _locate(data: Any, marks: dict[tuple, int], exc: ScenarioError) -> int | None:
    """The line of the element an error is about, if it can be found."""
    if not isinstance(data, dict):
        return None
    message = str(exc)
    if message.startswith(("run:", "scenario:")):
        keys = re.findall(r"'([^']+)'|\b(\w+)=", message)
        section: tuple = ("run",) if message.startswith("run:") else ()
        for quoted, assigned in keys:
            line = marks.get(section + (quoted or assigned,))
            if line is not None:
                return line
        return marks.get(section, 1)
    sections = {"agent": "agents", "promise": "promises", "workload": "workloads",
                "super-agent": "super_agents", "observer": "observers"}
    candidates: list[tuple[str, str]] = []
    if exc.element is not None:
        candidates.append(exc.element)
    for m in re.finditer(r"(agents|super_agents|promises|workloads|injections|observers|objectives|alerts)"
                         r"\[(\d+)\]",
                         message):
        return marks.get((m.group(1), int(m.group(2))))
    m = re.match(r"(outage|degradation|partition) (\d+)\b", message)
    if m is not None:   # the n-th injection of its kind, wherever it is in the list
        key = {"outage": "outage", "degradation": "degrade", "partition": "partition"}[m.group(1)]
        entries = data.get("injections")
        if isinstance(entries, list):
            of_kind = [i for i, entry in enumerate(entries) if isinstance(entry, dict) and key in entry]
            if int(m.group(2)) < len(of_kind):
                return marks.get(("injections", of_kind[int(m.group(2))]))
    for m in re.finditer(r"(super-agent|(?<!-)\bagent|promise|workload|outage|observer) '([^']*)'",
                         message):
        candidates.append((m.group(1), m.group(2)))
    for kind, name in candidates:
        if kind == "outage" and name.isdigit():
            return marks.get(("injections", int(name)))
        entries = data.get(sections.get(kind, ""), None)
        if isinstance(entries, list):
            found = [i for i, entry in enumerate(entries) if isinstance(entry, dict)
                     and entry.get("name", entry.get("promise") if kind == "workload" else None) == name]
            if found:
                # "defined twice" is about the second definition; anything else, the first
                index = found[-1] if "twice" in message else found[0]
                return marks.get((sections[kind], index))
    return None


def _depth(data: Any, limit: int) -> int:
    """How deep ``data`` nests (at most ``limit + 1``: deeper is not looked at)."""
    stack = [(data, 0)]
    deepest = 0
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return deepest


def _from_json(text: str, source: str) -> Any:
    """A scenario written as JSON (which is YAML too), read at C speed: large machine-made
    files load in a fraction of the time. The same refusals as for YAML: a key given twice,
    nesting deeper than :data:`_MAX_DEPTH` (JSON has no aliases)."""
    import json

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ScenarioError(f"{source}: key {key!r} appears twice")
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except RecursionError:
        raise ScenarioError(f"{source}: nested more than {_MAX_DEPTH} levels deep") from None
    except ValueError as exc:   # json.JSONDecodeError
        if isinstance(exc, ScenarioError):
            raise
        raise ScenarioError(f"{source}:{getattr(exc, 'lineno', 1)}: not valid JSON: "
                            f"{getattr(exc, 'msg', exc)}") from None
    if _depth(data, _MAX_DEPTH) > _MAX_DEPTH:
        raise ScenarioError(f"{source}: nested more than {_MAX_DEPTH} levels deep")
    return data


def scenario_from_text(text: str, *, source: str = "<scenario>") -> Scenario:
    """Parse a scenario from YAML text (or JSON, which is read faster) and validate its
    model.

    Raises
    ------
    ScenarioError
        Prefixed with ``source:line:`` where the offending element is found (in YAML; a
        JSON file's errors name the element, not the line).
    """
    if text.lstrip().startswith("{"):
        data = _from_json(text, source)
        try:
            return _scenario(data)
        except ScenarioError as exc:
            raise ScenarioError(f"{source}: {exc}", element=exc.element) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError("1: the file is empty")
        marks: dict[tuple, int] = {}
        _marks(node, (), marks)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{mark.line + 1}: " if mark is not None else ""
        raise ScenarioError(f"{source}:{line}not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    except ScenarioError as exc:
        raise ScenarioError(f"{source}:{str(exc).removeprefix('line ')}") from None
    finally:
        loader.dispose()
    try:
        return _scenario(data)
    except ScenarioError as exc:
        line = _locate(data, marks, exc)
        where = f"{source}:{line}" if line is not None else source
        raise ScenarioError(f"{where}: {exc}", element=exc.element) from None


def _scenario(data: Any) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"a scenario is a mapping with 'agents' and 'promises', got {type(data).__name__}")
    model = Model.from_dict(data)
    model.spec()  # validate now, so errors name the file
    run = data.get("run") or {}
    if not isinstance(run, dict):
        raise ScenarioError(f"run: expected a mapping, got {run!r}")
    unknown = set(run) - _RUN_KEYS
    if unknown:
        raise ScenarioError(f"run: unknown key(s) {sorted(unknown)}; allowed: {sorted(_RUN_KEYS)}")
    scenario = Scenario(model)
    if "horizon" in run:
        h = run["horizon"]
        if not _real(h) or not 0 < h < float("inf"):
            raise ScenarioError(f"run: horizon={h!r} must be a positive, finite number")
        scenario.horizon = float(h)
    if "replications" in run:
        r = run["replications"]
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ScenarioError(f"run: replications={r!r} must be a whole number of at least 1")
        scenario.replications = r
    if "seed" in run and run["seed"] is not None:
        s = run["seed"]
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ScenarioError(f"run: seed={s!r} must be a non-negative whole number")
        scenario.seed = s
    if "engine" in run:
        scenario.engine = str(run["engine"])
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (YAML, safe loader only).

    Raises
    ------
    ScenarioError
        If the file cannot be read or is invalid; the message names the
        file, the line and the element.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not a UTF-8 text file") from None
    return scenario_from_text(text, source=str(path))


def dump_scenario(scenario: Scenario | Model, path: str | Path | None = None) -> str:
    """Write a model (or a scenario with run settings) as YAML; return the text.

    Reading the text back with :func:`load_scenario` gives an equal model.
    """
    data = scenario.to_dict()
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None,
                     allow_unicode=True)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text
