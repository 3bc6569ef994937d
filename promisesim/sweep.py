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
(:meth:`promisesim.Model.to_dict`): keys separated by dots, list entries
picked by name in brackets (an entry's ``name``, a workload's ``promise``
when it has no name, or a position)::

    agents[db].servers
    agents[db].failures.time_to_failure.exponential.mean
    workloads[answers].rate
    promises[serve].body.latency.deadline
    injections[0].outage.duration

Because brackets delimit names, names containing dots work
(``agents[db.eu-1].servers``). A key that the form leaves out because it
has its default (``servers: 1``, no ``failures``) can be set; a missing key
on the way to the last one is an error.

Random numbers: every point of a sweep uses the same root seed, and
streams are keyed by replication and entity *name* (see
:mod:`promisesim.random`), so points share their draws (common random
numbers) and differences between points are not noise from reseeding.
Replication ``r`` of a point depends only on ``(seed, r)``, so results are
identical whichever executor runs them and however many workers it has.
"""

from __future__ import annotations

import concurrent.futures
import copy
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .analytic import t_quantile
from .engines.base import Trace
from .errors import ScenarioError
from .experiment import _as_spec, _check_horizon, get_engine, simulate
from .model.model import Model
from .model.spec import ModelSpec
from .random import Streams
from .results import PROMISE_METRICS, Result

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

#: Executors by name; :func:`sweep` also takes a ``distributed.Client`` or a
#: ``concurrent.futures.Executor``.
EXECUTORS = ("serial", "local", "dask")

_SUMMARY_COLUMNS = ("promise", "metric", "mean", "stderr", "ci_low", "ci_high", "n")
_MANIFEST = "sweep.json"
_FORMAT = "promisesim-sweep/1"
_TABLES = ("summary", "promises")


def _check_replications(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ScenarioError(f"{name}={value!r} must be a whole number of at least {minimum}")
    return int(value)


def _check_confidence(confidence: object) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) \
            or not 0 < confidence < 1:
        raise ScenarioError(f"confidence={confidence!r} must be between 0 and 1")
    return float(confidence)


# -- replications to a precision -------------------------------------------------------------


class PrecisionWarning(UserWarning):
    """:func:`replicate` stopped at ``max_replications`` without reaching its target."""


@dataclass(frozen=True)
class Precision:
    """How :func:`replicate` chose its number of replications.

    Attributes
    ----------
    promise, metric : str
        The column of ``Result.promises`` (for that promise) the target is about.
    target : float
        The half-width asked for, in the metric's unit.
    half_width : float
        The half-width reached (NaN if the metric was defined in fewer than
        two replications).
    confidence : float
        Two-sided level of the Student-t interval.
    met : bool
        Whether ``half_width <= target``; ``False`` means ``max_replications``
        was reached first (a :class:`PrecisionWarning` was issued).
    replications : int
        How many replications it took.
    batches : int
        How many engine runs it took.
    """

    promise: str
    metric: str
    target: float
    half_width: float
    confidence: float
    met: bool
    replications: int
    batches: int


class PrecisionResult(Result):
    """A :class:`~promisesim.results.Result` that also records its stopping rule.

    It holds exactly what ``simulate(model, replications=n, ...)`` returns with
    the same seed and engine; :attr:`precision` says how ``n`` was chosen, and
    the ``.attrs`` of every table carry it as ``precision_*`` entries.
    """

    def __init__(self, spec: ModelSpec, trace: Trace, *, precision: Precision,
                 **kwargs: Any) -> None:
        super().__init__(spec, trace, **kwargs)
        self.precision = precision

    @property
    def attrs(self) -> dict[str, Any]:
        attrs = super().attrs
        p = self.precision
        attrs.update({
            "precision_promise": p.promise,
            "precision_metric": p.metric,
            "precision_target": p.target,
            "precision_half_width": p.half_width,
            "precision_confidence": p.confidence,
            "precision_met": p.met,
        })
        return attrs

    def __repr__(self) -> str:
        p = self.precision
        return (super().__repr__()[:-1] + f", half_width={p.half_width:.3g}"
                f"{' <= ' if p.met else ' > '}{p.target:.3g})")


def _half_width(values: np.ndarray, confidence: float) -> float:
    """Half-width of the Student-t interval of the mean, as in ``Result.summary`` (NaN ignored)."""
    values = values[~np.isnan(values)]
    n = values.size
    if n < 2:
        return math.nan
    return float(t_quantile(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))


def _metric_values(spec: ModelSpec, trace: Trace, first: int, count: int, horizon: float,
                   promise: str, metric: str) -> np.ndarray:
    """Per-replication values of one metric in a batch of replications ``first .. first+count-1``."""
    # Results index replications from 0: shift the batch there (a replication's metrics do
    # not depend on its index), so each batch is tabulated once, not the whole run again.
    def shift(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: (v - first).astype(v.dtype) if k == "replication" else v for k, v in columns.items()}

    shifted = Trace(shift(trace.agent_changes), None, shift(trace.counts()))
    table = Result(spec, shifted, horizon=horizon, replications=count, engine="", entropy=0).promises
    return table.loc[table["promise"] == promise, metric].to_numpy(dtype=np.float64)


def replicate(
    model: Model | ModelSpec,
    *,
    horizon: float,
    promise: str,
    metric: str,
    half_width: float,
    min_replications: int = 10,
    max_replications: int = 1000,
    batch: int | None = None,
    seed: int | np.random.SeedSequence | None = None,
    engine: str = "auto",
    confidence: float = 0.95,
) -> PrecisionResult:
    """Run replications until the confidence interval of one metric is narrow enough.

    Replications are added in batches. After each batch the Student-t
    interval of the mean of ``metric`` for ``promise`` (the interval
    ``Result.summary`` reports) is computed; the run stops as soon as at
    least ``min_replications`` ran and its half-width is at most
    ``half_width``, or when ``max_replications`` ran.

    Parameters
    ----------
    model : Model or ModelSpec
        The description to simulate. It is validated, not modified.
    horizon : float
        Simulated time per replication, in the model's time unit.
    promise : str
        Name of the promise the target is about.
    metric : str
        A column of ``Result.promises``, for example ``"kept_fraction"`` or
        ``"request_kept_fraction"``.
    half_width : float
        Target half-width of the interval, in the metric's unit (a fraction
        for the ``*_fraction`` metrics, the model's time unit for times).
    min_replications : int
        Replications of the first batch (at least 2). Stopping on a small
        sample is unreliable: the estimate of the spread is itself noisy.
    max_replications : int
        Upper bound on the count; reaching it without meeting the target
        issues a :class:`PrecisionWarning` and sets ``precision.met = False``.
    batch : int or None
        Replications added per step after the first batch. ``1`` stops at the
        smallest count meeting the target. ``None`` (default) estimates the
        count needed from the current standard error (half-widths shrink as
        ``1 / sqrt(n)``) and adds that many, at most doubling the count.
    seed : int, numpy.random.SeedSequence or None
        Root entropy. Replication ``r`` draws from streams keyed by ``(seed, r)``
        only, so the result equals ``simulate(model, replications=n, seed=seed)``
        for the count ``n`` it stopped at.
    engine : str
        As for :func:`promisesim.simulate`.
    confidence : float
        Two-sided level of the interval.

    Returns
    -------
    PrecisionResult
        A :class:`~promisesim.results.Result` with ``.precision`` (a
        :class:`Precision`: the count, the half-width reached, whether the
        target was met), also in each table's ``.attrs``.

    Raises
    ------
    ScenarioError
        If the model or an argument is invalid, or the promise or metric is unknown.
    EngineError
        If the named engine cannot run the model.

    Examples
    --------
    >>> import warnings
    >>> import promisesim as ps
    >>> from promisesim.sweep import replicate
    >>> m = ps.Model("one server", time_unit="h")
    >>> srv = m.agent("server", failures=ps.Failures(
    ...     time_to_failure=ps.Exponential(mean=100.0), time_to_repair=ps.Exponential(mean=1.0)))
    >>> up = m.promise(srv, to=m.agent("users"), body=ps.Availability(), name="up")
    >>> result = replicate(m, horizon=1_000.0, promise="up", metric="kept_fraction",
    ...                    half_width=0.002, seed=1)
    >>> result.precision.met, result.precision.half_width <= 0.002
    (True, True)
    >>> row = result.summary(["kept_fraction"]).iloc[0]
    >>> bool(row["n"] == result.replications >= 10)
    True
    """
    spec = _as_spec(model)
    horizon = _check_horizon(horizon)
    if promise not in spec.promise_index:
        raise ScenarioError(f"promise {promise!r} is not in the model; its promises: "
                            + ", ".join(repr(p.name) for p in spec.promises),
                            element=("promise", str(promise)))
    if metric not in PROMISE_METRICS:
        raise ScenarioError(f"metric {metric!r} is not a column of Result.promises; "
                            f"known: {', '.join(PROMISE_METRICS)}")
    if isinstance(half_width, bool) or not isinstance(half_width, (int, float)) \
            or not 0 < half_width < math.inf:
        raise ScenarioError(f"half_width={half_width!r} must be a positive, finite number")
    low = _check_replications(min_replications, "min_replications", 2)
    high = _check_replications(max_replications, "max_replications", 2)
    if high < low:
        raise ScenarioError(f"max_replications={high} is below min_replications={low}")
    if batch is not None:
        batch = _check_replications(batch, "batch")
    confidence = _check_confidence(confidence)

    streams = Streams(seed)
    chosen = get_engine(engine, spec)
    traces: list[Trace] = []
    values: list[np.ndarray] = []
    n, step, half = 0, low, math.nan
    while True:
        trace = chosen.run(spec, horizon=horizon, streams=streams, replications=range(n, n + step))
        traces.append(trace)
        values.append(_metric_values(spec, trace, n, step, horizon, promise, metric))
        n += step
        half = _half_width(np.concatenate(values), confidence)
        met = half <= half_width  # False while NaN (fewer than two defined values)
        if met or n >= high:
            break
        if batch is not None:
            step = batch
        elif math.isfinite(half) and half > 0:
            needed = math.ceil(n * (half / half_width) ** 2)
            step = min(max(needed - n, 1), n)
        else:
            step = n
        step = min(step, high - n)
    if not met:
        warnings.warn(
            f"replicate: after max_replications={n} replications the {confidence:.0%} half-width "
            f"of {metric} for promise {promise!r} is {half:.3g}, above the target {half_width:.3g}",
            PrecisionWarning, stacklevel=2)
    precision = Precision(promise=promise, metric=metric, target=float(half_width),
                          half_width=half, confidence=confidence, met=bool(met),
                          replications=n, batches=len(traces))
    return PrecisionResult(spec, Trace.concat(traces), precision=precision, horizon=horizon,
                           replications=n, engine=chosen.name, entropy=streams.entropy,
                           spawn_key=tuple(streams.seed_sequence.spawn_key),
                           seed_sequence=streams.seed_sequence)


# -- parameter paths ---------------------------------------------------------------------------

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


# -- one point -----------------------------------------------------------------------------------


def _run_point(task: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Run one point of a sweep. ``task`` is plain data, so it pickles cheaply to any worker.

    Returns the point's summary and per-replication promises tables (without
    provenance ``.attrs``) and the name of the engine that ran it.
    """
    model = _model_at(task["model"], task["values"])
    seed = np.random.SeedSequence(task["entropy"], spawn_key=tuple(task["spawn_key"]))
    result = simulate(model, horizon=task["horizon"], replications=task["replications"],
                      seed=seed, engine=task["engine"])
    summary = result.summary(confidence=task["confidence"])
    promises = result.promises.copy()
    summary.attrs.clear()
    promises.attrs.clear()
    return summary, promises, result.engine


# -- executors -----------------------------------------------------------------------------------

_Done = Callable[[int, tuple[pd.DataFrame, pd.DataFrame, str]], None]


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _process_context() -> Any:
    # An explicit context object: the global start method stays as the user set it. Not
    # "fork": forking a process that runs threads (tqdm's monitor, a Dask client) can
    # deadlock, and Python 3.14 stops defaulting to it.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _is_dask_client(executor: Any) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(executor, distributed.Client)


def _check_executor(executor: Any) -> None:
    if isinstance(executor, str):
        if executor not in EXECUTORS:
            raise ScenarioError(f"executor={executor!r}: expected one of {', '.join(EXECUTORS)}, "
                                "a distributed.Client or a concurrent.futures.Executor")
        if executor == "dask":
            _import_distributed()
    elif not (_is_dask_client(executor) or isinstance(executor, concurrent.futures.Executor)):
        raise ScenarioError(f"executor={executor!r}: expected one of {', '.join(EXECUTORS)}, "
                            "a distributed.Client or a concurrent.futures.Executor")


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError("executor='dask' needs dask.distributed: "
                          "pip install 'promisesim[dask]'") from None
    return distributed


def _run_futures(executor: concurrent.futures.Executor, tasks: list[tuple[int, dict]],
                 done: _Done, own: bool) -> None:
    futures = {executor.submit(_run_point, task): index for index, task in tasks}
    try:
        for future in concurrent.futures.as_completed(futures):
            done(futures[future], future.result())
    except BaseException:
        for future in futures:
            future.cancel()
        if own:
            _stop(executor)
        raise
    if own:
        executor.shutdown(wait=True)


def _stop(pool: concurrent.futures.Executor) -> None:
    """Stop a process pool of ours at once (on an error or Ctrl-C), not after its running points.

    Without this, the interpreter's exit would wait for the points in progress, whose results
    are thrown away anyway.
    """
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def _run_dask(client: Any, tasks: list[tuple[int, dict]], done: _Done) -> None:
    distributed = _import_distributed()
    token = uuid.uuid4().hex
    futures = [client.submit(_run_point, task, key=f"promisesim-point-{token}-{index}", pure=False)
               for index, task in tasks]
    positions = {future.key: index for future, (index, _) in zip(futures, tasks)}
    try:
        for future in distributed.as_completed(futures):
            done(positions[future.key], future.result())
    except BaseException:
        client.cancel(futures)
        raise


def _execute(executor: Any, workers: int, tasks: list[tuple[int, dict]], done: _Done) -> None:
    if not tasks:
        return
    if _is_dask_client(executor):
        _run_dask(executor, tasks, done)
    elif isinstance(executor, concurrent.futures.Executor):
        _run_futures(executor, tasks, done, own=False)
    elif executor == "serial" or (executor == "local" and min(workers, len(tasks)) == 1):
        for index, task in tasks:  # one process is enough: spare the start-up of another
            done(index, _run_point(task))
    elif executor == "local":
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                                                      mp_context=_process_context())
        _run_futures(pool, tasks, done, own=True)
    else:  # "dask": a cluster of our own, closed afterwards
        distributed = _import_distributed()
        with warnings.catch_warnings():
            # Without a dashboard the scheduler still serves /health on 127.0.0.1, at port 8787
            # if free: another cluster there only moves it, which is no news to the user.
            warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               host="127.0.0.1", dashboard_address=None)
        try:
            with distributed.Client(cluster) as client:
                _run_dask(client, tasks, done)
        finally:
            cluster.close()


# -- the sweep folder ------------------------------------------------------------------------------


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _model_hash(base: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(base).encode("utf-8")).hexdigest()


def _point_file(out: Path, table: str, index: int, n_points: int) -> Path:
    width = max(5, len(str(n_points - 1)))
    return out / table / f"point-{index:0{width}d}.parquet"


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temporary file in the same folder, then rename it into place.

    A kill at any moment leaves either no file or the whole file (``os.replace`` is
    atomic); the temporary name starts with a dot, so Parquet readers skip leftovers.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _import_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError("writing a sweep to a folder needs pyarrow: "
                          "pip install 'promisesim[parquet]'") from None


def _read_manifest(out: Path) -> dict[str, Any] | None:
    path = out / _MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: not a readable sweep manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise ScenarioError(f"{path}: not a promisesim sweep manifest (format {_FORMAT})")
    return manifest


_COMPARED = ("model_sha256", "parameters", "points", "horizon", "replications", "seed", "engine",
             "confidence")


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for key in _COMPARED:
        if _canonical(old.get(key)) != _canonical(new.get(key)):
            if key in ("points", "parameters", "model_sha256"):
                out.append("the model" if key == "model_sha256" else f"the {key}")
            else:
                out.append(f"{key} ({_canonical(old.get(key))} there, {_canonical(new.get(key))} here)")
    return out


def _prepare_folder(out: Path, manifest: dict[str, Any], resume: bool) -> None:
    """Check ``out`` against the sweep about to run; write the manifest if it is new."""
    existing = _read_manifest(out) if out.is_dir() else None
    if out.exists() and not out.is_dir():
        raise ScenarioError(f"{out}: exists and is not a folder")
    busy = out.is_dir() and any(out.iterdir())
    if existing is None and busy:
        raise ScenarioError(f"{out}: the folder is not empty and holds no sweep ({_MANIFEST}); "
                            "choose a new or empty folder")
    if existing is not None and not resume:
        raise ScenarioError(f"{out}: the folder holds a sweep already; choose a new or empty folder, "
                            "or pass resume=True (--resume) to finish that sweep")
    if existing is not None:
        differences = _differences(existing, manifest)
        if differences:
            raise ScenarioError(f"{out}: holds a different sweep ({'; '.join(differences)} differ); "
                                "resume it with the same settings, or choose another folder")
        for table in _TABLES:  # temporary files of a killed run
            for leftover in (out / table).glob(".point-*.tmp"):
                leftover.unlink(missing_ok=True)
        return
    for table in _TABLES:
        (out / table).mkdir(parents=True, exist_ok=True)
    encoded = (json.dumps(manifest, indent=1, allow_nan=True) + "\n").encode("utf-8")

    def write(handle: Any) -> None:
        handle.write(encoded)

    _write_atomic(out / _MANIFEST, write)


def _read_point(out: Path, index: int, n_points: int) -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
    paths = [_point_file(out, table, index, n_points) for table in _TABLES]
    if not all(p.exists() for p in paths):
        return None
    frames = []
    for path in paths:
        try:
            frames.append(pd.read_parquet(path))
        except (OSError, ValueError) as exc:  # a damaged file (pyarrow's errors are ValueErrors)
            raise ScenarioError(f"{path}: cannot read this point ({exc}); delete it to recompute "
                                "the point") from None
    engine = str(frames[0].attrs.get("engine", ""))
    for frame in frames:
        frame.attrs.clear()
    return frames[0], frames[1], engine


def _write_point(out: Path, index: int, n_points: int,
                 outcome: tuple[pd.DataFrame, pd.DataFrame, str]) -> None:
    summary, promises, engine = outcome
    # promises first: a point counts as finished once its summary file exists
    for table, frame in (("promises", promises), ("summary", summary)):
        stored = frame.copy(deep=False)
        stored.attrs.clear()
        stored.attrs.update({"point": index, "engine": engine})  # pandas keeps attrs in Parquet

        def write(handle: Any, stored: pd.DataFrame = stored) -> None:
            stored.to_parquet(handle, index=False)

        _write_atomic(_point_file(out, table, index, n_points), write)


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


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)  # sys.stderr is None under pythonw
    return bool(isatty is not None and isatty())


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
            get_engine(engine, _model_at(base, point).spec())
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
            loaded = _read_point(folder, index, len(points))
            if loaded is not None:
                outcomes[index] = loaded

    resumed = tuple(sorted(outcomes))
    tasks = [(index, {"model": base, "values": point, "horizon": horizon,
                      "replications": replications, "entropy": entropy,
                      "spawn_key": list(spawn_key), "engine": engine, "confidence": confidence})
             for index, point in enumerate(points) if index not in outcomes]

    from tqdm import tqdm

    bar = tqdm(total=len(points), initial=len(outcomes), unit="point", desc=str(attrs["model"]),
               file=sys.stderr, disable=not progress or not _is_terminal(sys.stderr))

    def done(index: int, outcome: tuple[pd.DataFrame, pd.DataFrame, str]) -> None:
        if folder is not None:
            _write_point(folder, index, len(points), outcome)
        outcomes[index] = outcome
        bar.update(1)

    try:
        _execute(executor, workers, tasks, done)
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
        loaded = _read_point(folder, index, len(points))
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
