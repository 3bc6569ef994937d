"""Experiments at scale: replications to a precision and parameter sweeps.

:func:`replicate`
    Adds replications of one model in batches until the confidence interval
    of a chosen metric is narrow enough (or a maximum is reached).
:func:`sweep`
    Runs a model at every point of a grid (or a list) of parameter values,
    serially, on local processes or on a Dask cluster, with a progress bar,
    and optionally writes each finished point to Parquet so that an
    interrupted sweep resumes where it stopped.
:func:`load_sweep`
    Reads a sweep folder written by :func:`sweep` back into a :class:`SweepResult`.

Parameters are addressed as paths into the scenario-file form of the model
(see :mod:`promisesim.parameters`), for example ``agents[db].servers`` or
``injections[0].outage.duration``. :func:`replicate` lives in
:mod:`promisesim.precision`, the sweep folder's format in
:mod:`promisesim._sweep_folder`, executors in :mod:`promisesim.executors`; the
names users need are importable from here.

Random numbers: every point of a sweep uses the same root seed, and
streams are keyed by replication and entity *name* (see
:mod:`promisesim.random`), so points share their draws (common random
numbers) and differences between points are not noise from reseeding.
Replication ``r`` of a point depends only on ``(seed, r)``, so results are
identical whichever executor runs them and however many workers it has.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._sweep_folder import (_FORMAT, _MANIFEST, _import_pyarrow, _model_hash, _prepare_folder,
                            _read_manifest, _read_point, _write_point)
from .cost import DEFAULT_MAX_EVENTS, check_limit
from .cost import check as check_cost
from .errors import ScenarioError
from .executors import EXECUTORS, _check_executor, _default_workers, execute
from .experiment import _check_horizon, _is_terminal, get_engine, simulate
from .model.model import Model
from .parameters import _SUMMARY_COLUMNS, _base_dict, _model_at, _points, set_parameter
from .precision import (Precision, PrecisionResult, PrecisionWarning, _check_confidence,
                        _check_replications, replicate)
from .random import Streams

__all__ = [
    "replicate",
    "sweep",
    "load_sweep",
    "set_parameter",
    "Precision",
    "PrecisionResult",
    "PrecisionWarning",
    "SweepResult",
    "EXECUTORS",
]


# -- one point -----------------------------------------------------------------------------------


def _run_point(task: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Run one point of a sweep. ``task`` is plain data, so it pickles cheaply to any worker.

    Returns the point's summary and per-replication promises tables (without
    provenance ``.attrs``) and the name of the engine that ran it.
    """
    model = _model_at(task["model"], task["values"])
    seed = np.random.SeedSequence(task["entropy"], spawn_key=tuple(task["spawn_key"]))
    result = simulate(model, horizon=task["horizon"], replications=task["replications"],
                      seed=seed, engine=task["engine"], max_events=task["max_events"])
    summary = result.summary(confidence=task["confidence"])
    promises = result.promises.copy()
    summary.attrs.clear()
    promises.attrs.clear()
    return summary, promises, result.engine


# -- sweeps ---------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What :func:`sweep` returns: tidy tables over all points.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per (point, promise, metric): ``point``, one column per
        parameter (named by its path), then ``promise, metric, mean, stderr,
        ci_low, ci_high, n`` as in :meth:`promisesim.Result.summary`.
    promises : pandas.DataFrame
        One row per (point, replication, promise): ``point``, the parameter
        columns, then the columns of :attr:`promisesim.Result.promises`.
    points : pandas.DataFrame
        One row per point: ``point``, the parameter columns and ``engine``
        (the engine that ran it).
    parameters : tuple of str
        The parameter paths, in column order.
    horizon : float
        Simulated time per replication, in the model's time unit.
    replications : int
        Replications per point.
    entropy : int
        Root seed entropy shared by every point.
    spawn_key : tuple of int
        The root ``SeedSequence``'s spawn key (empty unless it was a spawned child).
    resumed : tuple of int
        Points read back from the ``out`` folder rather than computed (``resume=True``).
    missing : tuple of int
        Points without results (only from :func:`load_sweep` on an unfinished folder).
    """

    summary: pd.DataFrame
    promises: pd.DataFrame
    points: pd.DataFrame
    parameters: tuple[str, ...]
    horizon: float
    replications: int
    entropy: int
    spawn_key: tuple[int, ...] = ()
    resumed: tuple[int, ...] = field(default=())
    missing: tuple[int, ...] = field(default=())

    def __repr__(self) -> str:
        return (f"SweepResult(points={len(self.points)}, parameters={list(self.parameters)}, "
                f"replications={self.replications}, horizon={self.horizon!r})")


def _assemble(points_table: pd.DataFrame, parameters: list[str],
              outcomes: dict[int, tuple[pd.DataFrame, pd.DataFrame, str]],
              attrs: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    finished = sorted(outcomes)
    left = points_table[["point", *parameters]]
    tables = []
    for pieces, empty in (([outcomes[i][0] for i in finished], _SUMMARY_COLUMNS),
                          ([outcomes[i][1] for i in finished], ())):
        counts = [len(piece) for piece in pieces]
        rows = np.repeat(np.asarray(finished, dtype=np.int64), counts)
        body = (pd.concat(pieces, ignore_index=True) if pieces
                else pd.DataFrame(columns=pd.Index(empty)))
        frame = pd.concat([left.iloc[rows].reset_index(drop=True), body], axis=1)
        frame.attrs.update(attrs)
        tables.append(frame)
    return tables[0], tables[1]


def _points_table(parameters: list[str], points: list[dict[str, Any]]) -> pd.DataFrame:
    columns: dict[str, Any] = {"point": np.arange(len(points), dtype=np.int64)}
    for name in parameters:
        values = [point[name] for point in points]
        if any(isinstance(v, (dict, list)) for v in values):  # keep structured values whole
            column = np.empty(len(values), dtype=object)
            column[:] = values
            columns[name] = column
        else:
            columns[name] = values
    return pd.DataFrame(columns)


def sweep(
    model: Model | Mapping[str, Any],
    parameters: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    horizon: float,
    replications: int = 1,
    seed: int | np.random.SeedSequence | None = None,
    engine: str = "auto",
    executor: Any = "local",
    workers: int | None = None,
    progress: bool = True,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    confidence: float = 0.95,
    max_events: float = DEFAULT_MAX_EVENTS,
) -> SweepResult:
    """Run a model at every point of a grid or list of parameter values.

    Parameters
    ----------
    model : Model or mapping
        The base model, or its scenario-file form (:meth:`promisesim.Model.to_dict`;
        a ``run`` section is ignored). It is not modified.
    parameters : mapping of str to list, or list of mappings
        A grid ``{path: [values, ...], ...}`` (every combination, the last
        parameter varying fastest) or an explicit list of points
        ``[{path: value, ...}, ...]`` setting the same parameters. Paths
        address the scenario-file form, e.g. ``"agents[db].servers"``,
        ``"workloads[answers].rate"``; see :mod:`promisesim.sweep`. Values are
        plain data in the model's units (times in its time unit, rates per time unit).
    horizon : float
        Simulated time per replication, in the model's time unit.
    replications : int
        Replications per point.
    seed : int, numpy.random.SeedSequence or None
        Root entropy, the same for every point (common random numbers).
        ``None`` takes fresh entropy once, recorded in the results; resuming
        with ``seed=None`` reuses the folder's.
    engine : str
        As for :func:`promisesim.simulate`, for every point.
    executor : {"local", "serial", "dask"}, distributed.Client or concurrent.futures.Executor
        ``"local"`` (default): a pool of ``workers`` processes (started with
        an explicit ``forkserver`` or ``spawn`` context; scripts need the
        ``if __name__ == "__main__":`` guard). ``"serial"``: this process.
        ``"dask"``: a ``distributed.LocalCluster`` of ``workers`` single-threaded
        worker processes on 127.0.0.1, closed afterwards (needs the ``dask``
        extra). A ``distributed.Client`` or an ``Executor`` you pass is used,
        not closed. Workers receive plain data (the model dict, the point's
        values, the seed's entropy), never generator objects. The tables do
        not depend on the executor or the number of workers.
    workers : int or None
        Processes for ``"local"`` and ``"dask"``; default: the CPUs available.
    progress : bool
        Show a progress bar on stderr (never when stderr is not a terminal).
    out : path or None
        A folder to write each finished point to, as it finishes (Parquet:
        ``summary/point-NNNNN.parquet`` and ``promises/point-NNNNN.parquet``,
        each written to a temporary name and renamed, so a kill never leaves
        half a file), with a manifest ``sweep.json`` describing the sweep.
        It must be new or empty unless ``resume`` (needs the ``parquet`` extra).
    resume : bool
        Continue the sweep in ``out``: finished points are read, not
        recomputed. A folder holding a different sweep (model, points,
        horizon, replications, seed, engine or confidence) is refused.
    confidence : float
        Two-sided level of the summary's confidence intervals.
    max_events : float
        The most events one point may simulate (see :func:`promisesim.simulate`); every
        point is checked before any runs.

    Returns
    -------
    SweepResult
        ``.summary`` and ``.promises`` (tidy, one column per parameter plus
        ``point``) and ``.points``; provenance in each table's ``.attrs``.

    Raises
    ------
    ScenarioError
        If a parameter path leads nowhere (the message names it and what is
        there), a value makes the model invalid (it names the point), an
        argument is invalid, or ``out`` holds something else.
    EngineError
        If the engine cannot run some point.
    ImportError
        If ``executor="dask"`` or ``out`` is used without its extra installed.

    Examples
    --------
    >>> import promisesim as ps
    >>> from promisesim.sweep import sweep
    >>> m = ps.Model("queue", time_unit="s")
    >>> db = m.agent("db", service_time=ps.Exponential(mean=0.5))
    >>> answers = m.promise(db, to=m.agent("users"), body=ps.Latency(deadline=2.0), name="answers")
    >>> _ = m.workload(answers, rate=1.0)
    >>> result = sweep(m, {"agents[db].servers": [1, 2]}, horizon=200.0, replications=3,
    ...                seed=1, executor="serial")
    >>> kept = result.summary.query("metric == 'request_kept_fraction'")
    >>> list(kept["agents[db].servers"])
    [1, 2]
    >>> bool(kept["mean"].iloc[1] > kept["mean"].iloc[0])
    True
    """
    base = _base_dict(model)
    names, points = _points(parameters)
    horizon = _check_horizon(horizon)
    replications = _check_replications(replications, "replications")
    confidence = _check_confidence(confidence)
    if not isinstance(engine, str):
        raise ScenarioError(f"engine={engine!r} must be the name of an engine")
    _check_executor(executor)
    if workers is None:
        workers = _default_workers()
    workers = _check_replications(workers, "workers")
    if resume and out is None:
        raise ScenarioError("resume=True needs out=, the folder of the sweep to resume")
    folder = Path(out) if out is not None else None
    if folder is not None:
        _import_pyarrow()

    max_events = check_limit(max_events)
    # Validate everything before running anything: each path alone, then each whole point.
    for name in names:
        try:
            _model_at(base, {name: points[0][name]})
        except ScenarioError as exc:
            message = str(exc)
            raise ScenarioError(message if message.startswith(f"parameter {name!r}")
                                else f"parameter {name!r}: {message}") from None
    for index, point in enumerate(points):
        try:
            spec = _model_at(base, point).spec()
            get_engine(engine, spec)
            check_cost(spec, horizon, replications, False, max_events)
        except ScenarioError as exc:
            values = ", ".join(f"{k}={v!r}" for k, v in point.items())
            raise ScenarioError(f"point {index} ({values}): {exc}", element=exc.element) from None

    if seed is None and resume and folder is not None and folder.is_dir():
        previous = _read_manifest(folder)
        if previous is not None:
            seed = np.random.SeedSequence(int(previous["seed"]["entropy"]),
                                          spawn_key=tuple(previous["seed"]["spawn_key"]))
    streams = Streams(seed)
    entropy = streams.entropy
    spawn_key = tuple(int(k) for k in streams.seed_sequence.spawn_key)

    from . import __version__

    attrs = {"model": base.get("name", "model"), "time_unit": base.get("time_unit", "s"),
             "promisesim_version": __version__, "entropy": entropy, "spawn_key": spawn_key,
             "horizon": horizon, "replications": replications, "confidence": confidence,
             "parameters": tuple(names)}
    outcomes: dict[int, tuple[pd.DataFrame, pd.DataFrame, str]] = {}
    if folder is not None:
        manifest = {
            "format": _FORMAT, "model_sha256": _model_hash(base), "parameters": names,
            "points": points, "horizon": horizon, "replications": replications,
            "seed": {"entropy": entropy, "spawn_key": list(spawn_key)}, "engine": engine,
            "confidence": confidence, "model": base, "promisesim_version": __version__,
        }
        _prepare_folder(folder, manifest, resume)
        for index in range(len(points)):
            loaded = _read_point(folder, index, len(points), points[index])
            if loaded is not None:
                outcomes[index] = loaded

    resumed = tuple(sorted(outcomes))
    tasks = [(index, {"model": base, "values": point, "horizon": horizon,
                      "replications": replications, "entropy": entropy,
                      "spawn_key": list(spawn_key), "engine": engine, "confidence": confidence,
                      "max_events": max_events})
             for index, point in enumerate(points) if index not in outcomes]

    from tqdm import tqdm

    bar = tqdm(total=len(points), initial=len(outcomes), unit="point", desc=str(attrs["model"]),
               file=sys.stderr, disable=not progress or not _is_terminal(sys.stderr))

    def done(index: int, outcome: tuple[pd.DataFrame, pd.DataFrame, str]) -> None:
        if folder is not None:
            _write_point(folder, index, len(points), points[index], outcome)
        outcomes[index] = outcome
        bar.update(1)

    try:
        execute(_run_point, executor, workers, tasks, done, name="point")
    finally:
        bar.close()

    table = _points_table(names, points)
    table["engine"] = [outcomes[i][2] for i in range(len(points))]
    summary, promises = _assemble(table, names, outcomes, attrs)
    table.attrs.update(attrs)
    return SweepResult(summary=summary, promises=promises, points=table, parameters=tuple(names),
                       horizon=horizon, replications=replications, entropy=entropy,
                       spawn_key=spawn_key, resumed=resumed)


def load_sweep(out: str | os.PathLike[str]) -> SweepResult:
    """Read the sweep folder ``out`` written by ``sweep(..., out=out)``, finished or not.

    Parameters
    ----------
    out : path
        The folder holding ``sweep.json`` and the point files.

    Returns
    -------
    SweepResult
        The tables of the finished points; ``missing`` lists the others
        (resume the sweep to compute them).

    Raises
    ------
    ScenarioError
        If the folder holds no sweep manifest or a point file cannot be read.
    """
    folder = Path(out)
    _import_pyarrow()
    manifest = _read_manifest(folder) if folder.is_dir() else None
    if manifest is None:
        raise ScenarioError(f"{folder}: holds no sweep ({_MANIFEST} is missing)")
    names = list(manifest["parameters"])
    points = list(manifest["points"])
    spawn_key = tuple(int(k) for k in manifest["seed"]["spawn_key"])
    base = manifest.get("model", {})
    attrs = {"model": base.get("name", "model"), "time_unit": base.get("time_unit", "s"),
             "promisesim_version": manifest.get("promisesim_version"),
             "entropy": int(manifest["seed"]["entropy"]), "spawn_key": spawn_key,
             "horizon": float(manifest["horizon"]), "replications": int(manifest["replications"]),
             "confidence": float(manifest["confidence"]), "parameters": tuple(names)}
    outcomes = {}
    for index in range(len(points)):
        loaded = _read_point(folder, index, len(points), points[index])
        if loaded is not None:
            outcomes[index] = loaded
    table = _points_table(names, points)
    table["engine"] = [outcomes[i][2] if i in outcomes else None for i in range(len(points))]
    summary, promises = _assemble(table, names, outcomes, attrs)
    table.attrs.update(attrs)
    return SweepResult(summary=summary, promises=promises, points=table, parameters=tuple(names),
                       horizon=attrs["horizon"], replications=attrs["replications"],
                       entropy=attrs["entropy"], spawn_key=spawn_key,
                       missing=tuple(i for i in range(len(points)) if i not in outcomes))

