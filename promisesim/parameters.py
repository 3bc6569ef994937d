"""Parameters of a model addressed as paths into its scenario-file form.

Paths are keys separated by dots into :meth:`promisesim.Model.to_dict`, with
list entries picked by name in brackets (an entry's ``name``, a workload's
``promise`` when it has no name, or a position)::

    agents[db].servers
    agents[db].failures.time_to_failure.exponential.mean
    workloads[answers].rate
    promises[serve].body.latency.deadline
    injections[0].outage.duration

Because brackets delimit names, names containing dots work
(``agents[db.eu-1].servers``). A key that the form leaves out because it
has its default (``servers: 1``, no ``failures``) can be set; a missing key
on the way to the last one is an error.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ScenarioError
from .model.model import Model
from .model.spec import ModelSpec
from .results import PROMISE_METRICS

__all__ = ["set_parameter"]

#: Columns of a summary table: a parameter may not take one of these names.
_SUMMARY_COLUMNS = ("promise", "metric", "mean", "stderr", "ci_low", "ci_high", "n")

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH_HELP = ("write keys separated by dots and pick list entries by name or position in "
              "brackets, for example agents[db].servers or injections[0].outage.duration")


def _parse_path(path: object) -> list[tuple[str, str]]:
    """``"agents[db].servers"`` -> ``[("key", "agents"), ("pick", "db"), ("key", "servers")]``."""
    if not isinstance(path, str) or not path:
        raise ScenarioError(f"parameter {path!r}: a parameter is named by a non-empty string; "
                            + _PATH_HELP)
    steps: list[tuple[str, str]] = []
    i = 0
    expect_key = True
    while i < len(path):
        if expect_key:
            m = _KEY.match(path, i)
            if m is None:
                raise ScenarioError(f"parameter {path!r}: expected a key at character {i + 1}; "
                                    + _PATH_HELP)
            steps.append(("key", m.group()))
            i = m.end()
            expect_key = False
        elif path[i] == "[":
            end = path.find("]", i + 1)
            if end < 0:
                raise ScenarioError(f"parameter {path!r}: '[' at character {i + 1} is not closed; "
                                    + _PATH_HELP)
            steps.append(("pick", path[i + 1:end]))
            i = end + 1
        elif path[i] == ".":
            i += 1
            expect_key = True
        else:
            raise ScenarioError(f"parameter {path!r}: unexpected {path[i]!r} at character {i + 1}; "
                                + _PATH_HELP)
    if expect_key:
        raise ScenarioError(f"parameter {path!r}: ends with a dot; {_PATH_HELP}")
    return steps


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, bool):
        return f"{value!r} (a boolean)"
    if isinstance(value, (int, float)):
        return f"{value!r} (a number)"
    return repr(value)


def _label(entry: Any) -> Any:
    """What picks a list entry by name: its ``name``, a workload's ``promise``, or a bare string."""
    if isinstance(entry, dict):
        return entry.get("name", entry.get("promise"))
    return entry if isinstance(entry, str) else None


def _pick(entries: list, selector: str, where: str, path: str) -> int:
    found = [i for i, entry in enumerate(entries) if _label(entry) == selector]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ScenarioError(f"parameter {path!r}: {len(found)} entries of {where} are called "
                            f"{selector!r}; pick one by position, e.g. {where}[{found[0]}]")
    if re.fullmatch(r"\d+", selector) and int(selector) < len(entries):
        return int(selector)
    labels = [str(_label(e)) for e in entries if _label(e) is not None]
    there = (f"its entries: {', '.join(labels)}, or a position 0 to {len(entries) - 1}" if labels
             else f"positions 0 to {len(entries) - 1}" if entries else "it is empty")
    raise ScenarioError(f"parameter {path!r}: {where} has no entry {selector!r}; {there}")


def _join(where: str, step: tuple[str, str]) -> str:
    kind, text = step
    return f"{where}[{text}]" if kind == "pick" else (f"{where}.{text}" if where else text)


def set_parameter(data: dict[str, Any], path: str, value: Any) -> None:
    """Set the parameter ``path`` of a model in scenario-file form, in place.

    Parameters
    ----------
    data : dict
        A model as :meth:`promisesim.Model.to_dict` returns it.
    path : str
        Keys separated by dots; list entries picked by name or position in
        brackets (see :mod:`promisesim.sweep`).
    value : object
        The new value (plain data: a number, string, boolean, list or mapping).

    Raises
    ------
    ScenarioError
        If the path is malformed or leads nowhere; the message names the path
        and what exists where it stopped. The value itself is checked when the
        model is rebuilt (:meth:`promisesim.Model.from_dict`).

    Examples
    --------
    >>> data = {"agents": [{"name": "db.eu", "servers": 2}]}
    >>> set_parameter(data, "agents[db.eu].servers", 8)
    >>> data["agents"][0]["servers"]
    8
    """
    steps = _parse_path(path)
    node: Any = data
    where = ""
    for index, step in enumerate(steps):
        kind, text = step
        last = index == len(steps) - 1
        if kind == "key":
            if not isinstance(node, dict):
                raise ScenarioError(f"parameter {path!r}: {where} is {_describe(node)}, "
                                    f"which has no key {text!r}")
            if last:
                node[text] = value  # a key left out at its default may be set
                return
            if text not in node:
                keys = ", ".join(map(str, node)) or "nothing"
                raise ScenarioError(f"parameter {path!r}: {where or 'the model'} has no {text!r}; "
                                    f"it has: {keys}")
            node = node[text]
        else:
            if not isinstance(node, list):
                raise ScenarioError(f"parameter {path!r}: {where} is {_describe(node)}, "
                                    f"not a list to pick [{text}] from")
            position = _pick(node, text, where, path)
            if last:
                node[position] = value
                return
            node = node[position]
        where = _join(where, step)


def _plain(value: Any, path: str) -> Any:
    """Numpy scalars to Python; reject what is not plain data (it travels as JSON and to workers)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_plain(v, path) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, path) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ScenarioError(f"parameter {path!r}: value {value!r} is not plain data "
                        "(a number, string, boolean, list or mapping)")


def _base_dict(model: Any) -> dict[str, Any]:
    """The scenario-file form of ``model`` (a Model, a Scenario or such a mapping), without ``run``."""
    from .scenario import Scenario

    if isinstance(model, Scenario):
        model = model.model
    if isinstance(model, Model):
        data = model.to_dict()
    elif isinstance(model, Mapping):
        data = Model.from_dict({k: v for k, v in model.items() if k != "run"}).to_dict()
    elif isinstance(model, ModelSpec):
        raise ScenarioError("sweep needs a Model (or its scenario-file form), not a ModelSpec: "
                            "parameters are addressed in the scenario-file form")
    else:
        raise ScenarioError(f"model must be a Model or its scenario-file form, got {type(model).__name__}")
    return data


def _model_at(base: dict[str, Any], values: Mapping[str, Any]) -> Model:
    data = copy.deepcopy(base)
    for path, value in values.items():
        set_parameter(data, path, value)
    return Model.from_dict(data)


def _points(parameters: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """Parameter names and the points: a grid's Cartesian product, or a list of points."""
    if isinstance(parameters, Mapping):
        names = list(parameters)
        for name in names:
            values = parameters[name]
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
                raise ScenarioError(f"parameter {name!r}: a grid gives a list of values, got {values!r}")
        grid = [[_plain(v, name) for v in parameters[name]] for name in names]
        for name, values in zip(names, grid):
            if not values:
                raise ScenarioError(f"parameter {name!r}: the grid gives no values")
        points = [dict(zip(names, combo)) for combo in itertools.product(*grid)]
    elif isinstance(parameters, Sequence) and not isinstance(parameters, (str, bytes)):
        if not parameters:
            raise ScenarioError("the list of points is empty")
        points = []
        names = []
        for i, point in enumerate(parameters):
            if not isinstance(point, Mapping):
                raise ScenarioError(f"points[{i}]: a point is a mapping of parameter to value, got {point!r}")
            if i == 0:
                names = list(point)
            elif set(point) != set(names):
                raise ScenarioError(f"points[{i}] sets {sorted(point)} but points[0] sets "
                                    f"{sorted(names)}: every point must set the same parameters")
            points.append({name: _plain(point[name], name) for name in names})
    else:
        raise ScenarioError("parameters must be a grid (a mapping of parameter to a list of values) "
                            f"or a list of points (mappings of parameter to value), got {parameters!r}")
    for name in names:
        _parse_path(name)
        if name == "point" or name in _SUMMARY_COLUMNS or name in PROMISE_METRICS:
            raise ScenarioError(f"parameter {name!r}: clashes with a column of the result tables")
    return names, points

