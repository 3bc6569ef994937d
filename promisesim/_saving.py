"""A result as a folder: the model, the engine's raw output and the run's provenance.

``Result.save(path)`` writes

``result.json``
    The format, the promisesim version, horizon, replications, the engine, and the root
    seed (entropy, spawn key, pool size): what :func:`promisesim.load_result` needs besides
    the files below. Written last: a folder without it holds no whole result.
``scenario.yaml``
    The model, as a scenario file (:func:`promisesim.load_scenario` reads it).
``<part>.parquet``
    The engine's trace, one Parquet file per part that the run kept (``agent_changes``,
    ``requests`` or ``request_counts``, ``promise_metrics``, ``breakers``), columns as the
    engine wrote them.

Every table of a result is a function of these, so a loaded result's tables equal the
saved one's exactly. Nothing is pickled: a saved result from elsewhere is read as data and
checked (columns, types, codes within the model) before any table is built from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._sweep_folder import _write_atomic
from .engines.base import (AGENT_CHANGE_COLUMNS, BREAKER_COLUMNS, BREAKER_STATES, CAUSES,
                           COUNT_COLUMNS, INSTANCE_COLUMNS, OUTCOMES, REQUEST_COLUMNS,
                           TIMELINE_COLUMNS, Trace)
from .errors import ScenarioError
from .model.model import Model
from .model.spec import ModelSpec

FORMAT = "promisesim-result/1"
MANIFEST = "result.json"
SCENARIO = "scenario.yaml"
#: The trace's parts, with their columns.
PARTS = {"agent_changes": AGENT_CHANGE_COLUMNS, "requests": REQUEST_COLUMNS,
         "request_counts": COUNT_COLUMNS, "promise_metrics": TIMELINE_COLUMNS,
         "breakers": BREAKER_COLUMNS, "instances": INSTANCE_COLUMNS}


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ImportError("saving and loading results needs pyarrow: "
                          "pip install 'promisesim[parquet]'") from None
    return pyarrow


def save(result: Any, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``result`` (a :class:`~promisesim.Result`) to the folder ``path``; see the module."""
    pa = _pyarrow()
    folder = Path(path)
    spec: ModelSpec = result.spec
    if spec.scenario is None:
        raise ValueError("this result's model has no scenario form (its ModelSpec was not "
                         "built by Model.spec()): save needs the model it was run on")
    # the scenario must describe exactly the model that ran, or the loaded result would lie
    if Model.from_dict(spec.scenario).spec() != spec:
        raise ValueError("this result's model differs from its scenario form (the ModelSpec "
                         "was changed after Model.spec() built it): it cannot be saved")
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file: save needs a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MANIFEST).exists():
            raise FileExistsError(f"{folder} is a folder that holds other files: save a result "
                                  "to a new or empty folder")
        if not overwrite:
            raise FileExistsError(f"{folder} already holds a saved result: pass overwrite=True "
                                  "to replace it")
        (folder / MANIFEST).unlink()     # the folder holds no whole result until the end
    folder.mkdir(parents=True, exist_ok=True)

    from .scenario import dump_scenario

    text = dump_scenario(Model.from_dict(spec.scenario))
    _write_atomic(folder / SCENARIO, lambda handle: handle.write(text.encode("utf-8")))
    trace: Trace = result.trace
    parts = []
    for name, columns in PARTS.items():
        data = getattr(trace, name)
        target = folder / f"{name}.parquet"
        if data is None:
            target.unlink(missing_ok=True)
            continue
        table = pa.table({column: np.asarray(data[column]) for column in columns})
        _write_atomic(target, lambda handle, table=table: pa.parquet.write_table(table, handle))
        parts.append(name)
    seeds = result.seed_sequence
    entropy = seeds.entropy
    manifest = {
        "format": FORMAT,
        "promisesim_version": result.attrs["promisesim_version"],
        "model": spec.name,
        "horizon": result.horizon,
        "replications": result.replications,
        "engine": result.engine,
        "engine_reason": result.engine_reason,
        "computed_by": trace.computed_by,
        "entropy": result.entropy,
        "seed_sequence": {
            "entropy": entropy if isinstance(entropy, int) or entropy is None
            else [int(x) for x in entropy],
            "spawn_key": [int(k) for k in seeds.spawn_key],
            "pool_size": int(seeds.pool_size),
            "n_children_spawned": int(seeds.n_children_spawned),
        },
        "parts": parts,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    _write_atomic(folder / MANIFEST, lambda handle: handle.write(text.encode("utf-8")))
    return folder


def _whole(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ScenarioError(f"{where}={value!r} must be a whole number of at least {low}")
    return value


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ScenarioError(f"{folder}: not a folder (a saved result is a folder with {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{folder}: no {MANIFEST}, so no whole saved result (an interrupted "
                            "save, or not a result folder)") from None
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: not a readable result manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ScenarioError(f"{path}: not a saved promisesim result (format {FORMAT})")
    return manifest


def _codes(values: np.ndarray, n: int, where: str) -> None:
    if values.size and (values.min() < 0 or values.max() >= n):
        raise ScenarioError(f"{where} holds codes outside 0..{n - 1}: the saved trace does not "
                            "belong to the saved model")


def _read_part(pa: Any, path: Path, columns: dict[str, Any]) -> dict[str, np.ndarray]:
    try:
        table = pa.parquet.read_table(path)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: missing (the manifest names it)") from None
    except (OSError, pa.ArrowException) as exc:
        raise ScenarioError(f"{path}: not a readable Parquet file ({exc})") from None
    if sorted(table.column_names) != sorted(columns):
        raise ScenarioError(f"{path}: columns {table.column_names} are not the expected "
                            f"{list(columns)}")
    out = {}
    for name, dtype in columns.items():
        column = table.column(name)
        if column.null_count:
            raise ScenarioError(f"{path}: column {name!r} has missing values")
        values = column.to_numpy()
        if values.dtype != np.dtype(dtype):
            raise ScenarioError(f"{path}: column {name!r} is {values.dtype}, expected "
                                f"{np.dtype(dtype)}")
        out[name] = values
    return out


def load(path: str | Path) -> dict[str, Any]:
    """The arguments of :class:`~promisesim.Result` for the result saved in ``path``."""
    from .scenario import load_scenario

    folder = Path(path)
    manifest = _read_manifest(folder)
    pa = _pyarrow()
    where = folder / MANIFEST
    spec = load_scenario(folder / SCENARIO).model.spec()
    horizon = manifest.get("horizon")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float)) or not 0 < horizon < np.inf:
        raise ScenarioError(f"{where}: horizon={horizon!r} must be a positive, finite time")
    replications = _whole(manifest.get("replications"), f"{where}: replications", 1)
    engine = manifest.get("engine")
    computed_by = manifest.get("computed_by")
    if not isinstance(engine, str) or not (computed_by is None or isinstance(computed_by, str)):
        raise ScenarioError(f"{where}: engine and computed_by must be names")
    seeds = manifest.get("seed_sequence")
    if not isinstance(seeds, dict):
        raise ScenarioError(f"{where}: seed_sequence must be a mapping")
    entropy = seeds.get("entropy")
    if isinstance(entropy, list):
        for x in entropy:
            _whole(x, f"{where}: seed_sequence.entropy")
    else:
        _whole(entropy, f"{where}: seed_sequence.entropy")
    spawn_key = seeds.get("spawn_key")
    if not isinstance(spawn_key, list):
        raise ScenarioError(f"{where}: seed_sequence.spawn_key must be a list")
    for k in spawn_key:
        _whole(k, f"{where}: seed_sequence.spawn_key")
    seed_sequence = np.random.SeedSequence(
        entropy, spawn_key=spawn_key,
        pool_size=_whole(seeds.get("pool_size"), f"{where}: seed_sequence.pool_size", 4),
        n_children_spawned=_whole(seeds.get("n_children_spawned"),
                                  f"{where}: seed_sequence.n_children_spawned"))
    parts = manifest.get("parts")
    if not isinstance(parts, list) or not set(parts) <= set(PARTS):
        raise ScenarioError(f"{where}: parts must be a list of {list(PARTS)}")
    data = {name: _read_part(pa, folder / f"{name}.parquet", PARTS[name]) if name in parts
            else None for name in PARTS}
    if data["agent_changes"] is None and data["promise_metrics"] is None:
        raise ScenarioError(f"{where}: a result keeps agent_changes or promise_metrics")
    if data["requests"] is None and data["request_counts"] is None:
        raise ScenarioError(f"{where}: a result keeps requests or request_counts")
    n_agents, n_promises = len(spec.agents), len(spec.promises)
    ranges = {"replication": replications, "agent": n_agents, "promise": n_promises,
              "provider": n_promises, "workload": len(spec.workloads), "cause": len(CAUSES),
              "outcome": len(OUTCOMES), "state": len(BREAKER_STATES)}
    for name, columns in data.items():
        if columns is None:
            continue
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ScenarioError(f"{folder / name}.parquet: columns of different lengths")
        for column, values in columns.items():
            if column in ranges:
                _codes(values, ranges[column], f"{folder / name}.parquet: column {column!r}")
    changes = data["instances"]
    if changes is not None and not np.isin(changes["change"], (-1, 1)).all():
        raise ScenarioError(f"{folder / 'instances'}.parquet: column 'change' holds values "
                            "other than -1 and 1")
    trace = Trace(data["agent_changes"], data["requests"], data["request_counts"],
                  data["promise_metrics"], computed_by, data["breakers"], data["instances"])
    return {"spec": spec, "trace": trace, "horizon": float(horizon),
            "replications": replications, "engine": engine,
            "entropy": _whole(manifest.get("entropy"), f"{where}: entropy"),
            "spawn_key": tuple(spawn_key), "seed_sequence": seed_sequence,
            "engine_reason": str(manifest.get("engine_reason", ""))}
