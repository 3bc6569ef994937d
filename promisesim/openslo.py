"""Objectives as OpenSLO documents (``apiVersion: openslo/v1``, ``kind: SLO``).

An objective of a model maps to one OpenSLO SLO: the promise judged is its
``indicatorRef`` (the name of the indicator: the promise's name), the window its
``timeWindow`` (``duration``, ``isRolling``), the budgeting its
``budgetingMethod`` (``Occurrences`` or ``Timeslices``), the target (and the
slice's target and length) its one entry of ``objectives``. Durations are
written in OpenSLO's form (``28d``, ``5m``, ``30s``) from the model's time unit.

Reading takes every ``kind: SLO`` document of a file (others, such as ``SLI``
or ``Service``, are skipped) and makes one objective per entry of its
``objectives``. What OpenSLO does not say, promisesim decides: a calendar
window starts at time 0 (its ``calendar`` start is ignored); a rolling window
is evaluated every ``timeSliceWindow`` when there is one, else every
twenty-fourth of its duration, unless the annotation ``promisesim/step`` gives
a duration. ``RatioTimeslices`` budgeting is not supported. Files are read with
the safe YAML loader; errors name the document and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ScenarioError
from .model.objectives import Objective

__all__ = ["read_openslo", "openslo_objectives", "write_openslo"]

#: Seconds per OpenSLO duration unit (months, quarters and years are not fixed: refused).
_UNITS = {"s": 1.0, "m": 60.0, "h": 3_600.0, "d": 86_400.0, "w": 604_800.0}
#: Seconds per model time unit that can be converted.
_MODEL_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
                "min": 60.0, "minute": 60.0, "minutes": 60.0, "m": 60.0, "h": 3_600.0,
                "hour": 3_600.0, "hours": 3_600.0, "d": 86_400.0, "day": 86_400.0,
                "days": 86_400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_BUDGETING = {"Occurrences": "occurrences", "Timeslices": "timeslices"}


def seconds_per_unit(time_unit: str) -> float | None:
    """Seconds in one of a model's time units, when the unit names a fixed length (else None)."""
    return _MODEL_UNITS.get(str(time_unit).strip().lower())


def _seconds_per(time_unit: str) -> float:
    factor = seconds_per_unit(time_unit)
    if factor is None:
        raise ScenarioError(f"OpenSLO durations need a model time unit in seconds, minutes, hours "
                            f"or days (one of {', '.join(sorted(_MODEL_UNITS))}), got "
                            f"{time_unit!r}")
    return factor


def _duration(text: Any, where: str, per: float) -> float:
    m = _DURATION.match(text) if isinstance(text, str) else None
    if m is None:
        raise ScenarioError(f"{where}: {text!r} is not an OpenSLO duration such as 28d, 1h, 5m "
                            "or 30s (months, quarters and years are not fixed lengths)")
    value = float(m.group(1)) * _UNITS[m.group(2)] / per
    if value <= 0:
        raise ScenarioError(f"{where}: {text!r} must be a positive duration")
    return value


def _format(value: float, per: float) -> str:
    seconds = value * per
    for unit in ("w", "d", "h", "m", "s"):
        n = seconds / _UNITS[unit]
        if n >= 1 and abs(n - round(n)) < 1e-9 * max(1.0, n):
            return f"{int(round(n))}{unit}"
    return f"{seconds:g}s"


def _get(mapping: Any, key: str, where: str, kind: type | tuple = object) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ScenarioError(f"{where}: missing {key!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ScenarioError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got "
                            f"{value!r}")
    return value


def read_openslo(path: str | Path, *, time_unit: str = "s") -> list[Objective]:
    """The objectives of the ``kind: SLO`` documents of an OpenSLO file (see
    :func:`openslo_objectives`); errors are prefixed with the file's name."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    try:
        return openslo_objectives(text, time_unit=time_unit)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None


def openslo_objectives(text: str, *, time_unit: str = "s") -> list[Objective]:
    """The objectives of the ``kind: SLO`` documents in OpenSLO YAML text, durations
    converted to ``time_unit`` (the model's).

    Raises
    ------
    ScenarioError
        For a document that is not valid YAML or lacks what an objective needs, naming it.
    """
    from .scenario import _Loader

    per = _seconds_per(time_unit)
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ScenarioError(f"OpenSLO: {line}not valid YAML ({problem})") from None
    out: list[Objective] = []
    for d, doc in enumerate(documents):
        if doc is None or (isinstance(doc, dict) and doc.get("kind") != "SLO"):
            continue
        where = f"OpenSLO document {d}"
        if not isinstance(doc, dict):
            raise ScenarioError(f"{where}: expected a mapping with kind: SLO, got {doc!r}")
        version = doc.get("apiVersion")
        if version != "openslo/v1":
            raise ScenarioError(f"{where}: apiVersion {version!r} is not supported (openslo/v1)")
        name = _get(_get(doc, "metadata", where, dict), "name", f"{where}.metadata", str)
        where = f"OpenSLO SLO {name!r}"
        spec = _get(doc, "spec", where, dict)
        annotations = doc["metadata"].get("annotations") or {}
        if "indicatorRef" in spec:
            promise = _get(spec, "indicatorRef", f"{where}.spec", str)
        else:
            indicator = _get(spec, "indicator", f"{where}.spec", dict)
            promise = _get(_get(indicator, "metadata", f"{where}.spec.indicator", dict), "name",
                           f"{where}.spec.indicator.metadata", str)
        windows = _get(spec, "timeWindow", f"{where}.spec", list)
        if len(windows) != 1:
            raise ScenarioError(f"{where}.spec.timeWindow: expected one window, got {len(windows)}")
        window_spec = windows[0]
        window = _duration(_get(window_spec, "duration", f"{where}.spec.timeWindow[0]"),
                           f"{where}.spec.timeWindow[0].duration", per)
        rolling = window_spec.get("isRolling", False) if isinstance(window_spec, dict) else False
        if not isinstance(rolling, bool):
            raise ScenarioError(f"{where}.spec.timeWindow[0].isRolling: expected true or false, "
                                f"got {rolling!r}")
        method = _get(spec, "budgetingMethod", f"{where}.spec", str)
        if method not in _BUDGETING:
            raise ScenarioError(f"{where}.spec.budgetingMethod: {method!r} is not supported "
                                f"(one of {', '.join(_BUDGETING)})")
        entries = _get(spec, "objectives", f"{where}.spec", list)
        if not entries:
            raise ScenarioError(f"{where}.spec.objectives: empty")
        for i, entry in enumerate(entries):
            at = f"{where}.spec.objectives[{i}]"
            target = _get(entry, "target", at)
            timeslice = None
            slice_target = 1.0
            if method == "Timeslices":
                timeslice = _duration(_get(entry, "timeSliceWindow", at), f"{at}.timeSliceWindow",
                                      per)
                slice_target = _get(entry, "timeSliceTarget", at)
            step = None
            if rolling:
                given = annotations.get("promisesim/step") if isinstance(annotations, dict) else None
                step = (_duration(given, f"{where}.metadata.annotations.promisesim/step", per)
                        if given is not None else timeslice if timeslice is not None
                        else window / 24)
            label = entry.get("displayName") if isinstance(entry, dict) else None
            label = name if len(entries) == 1 else f"{name}-{label or i}"
            out.append(Objective(promise, target, window, rolling, _BUDGETING[method], timeslice,
                                 slice_target, step, label))
    return out


def write_openslo(objectives: list[Objective] | tuple[Objective, ...], *, time_unit: str = "s",
                  service: str = "model") -> str:
    """OpenSLO YAML text (one ``kind: SLO`` document per objective) for ``objectives``."""
    from .scenario import _Dumper

    per = _seconds_per(time_unit)
    docs = []
    for o in objectives:
        entry: dict[str, Any] = {"target": o.target}
        if o.budgeting == "timeslices":
            entry["timeSliceTarget"] = o.timeslice_target
            entry["timeSliceWindow"] = _format(float(o.timeslice), per)  # type: ignore[arg-type]
        metadata: dict[str, Any] = {"name": o.label}
        default_step = o.timeslice if o.timeslice is not None and o.budgeting == "timeslices" \
            else o.window / 24
        if o.rolling and abs(float(o.every) - default_step) > 1e-9 * default_step:  # type: ignore[arg-type]
            metadata["annotations"] = {"promisesim/step": _format(float(o.every), per)}  # type: ignore[arg-type]
        docs.append({
            "apiVersion": "openslo/v1",
            "kind": "SLO",
            "metadata": metadata,
            "spec": {
                "service": service,
                "indicatorRef": o.promise,
                "timeWindow": [{"duration": _format(float(o.window), per),
                                "isRolling": bool(o.rolling)}],
                "budgetingMethod": "Timeslices" if o.budgeting == "timeslices" else "Occurrences",
                "objectives": [entry],
            },
        })
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
