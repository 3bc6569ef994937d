"""Replications to a precision: add replications of one model until a confidence interval is narrow.

:func:`replicate` runs replications in batches and stops when the chosen
metric's confidence interval has the half-width asked for (or at a maximum).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .analytic import t_quantile
from .engines.base import Trace
from .errors import ScenarioError, _real
from .executors import _check_executor
from .experiment import _as_spec, _check_horizon, _run_replications, get_engine
from .model.model import Model
from .model.spec import ModelSpec
from .random import Streams
from .results import PROMISE_METRICS, Result

__all__ = ["replicate", "Precision", "PrecisionResult", "PrecisionWarning"]


def _check_replications(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ScenarioError(f"{name}={value!r} must be a whole number of at least {minimum}")
    return int(value)


def _check_confidence(confidence: object) -> float:
    if not _real(confidence) \
            or not 0 < confidence < 1:
        raise ScenarioError(f"confidence={confidence!r} must be between 0 and 1")
    return float(confidence)


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
    workers: int = 1,
    executor: Any = "local",
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
    workers, executor
        Where each batch of replications runs, as for :func:`promisesim.simulate`: the
        result is the same whatever they are.

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
    if not _real(half_width) \
            or not 0 < half_width < math.inf:
        raise ScenarioError(f"half_width={half_width!r} must be a positive, finite number")
    low = _check_replications(min_replications, "min_replications", 2)
    high = _check_replications(max_replications, "max_replications", 2)
    if high < low:
        raise ScenarioError(f"max_replications={high} is below min_replications={low}")
    if batch is not None:
        batch = _check_replications(batch, "batch")
    confidence = _check_confidence(confidence)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ScenarioError(f"workers={workers!r} must be a whole number of at least 1")
    _check_executor(executor)

    streams = Streams(seed)
    chosen = get_engine(engine, spec)
    traces: list[Trace] = []
    values: list[np.ndarray] = []
    n, step, half = 0, low, math.nan
    while True:
        trace = _run_replications(chosen, spec, horizon, streams, range(n, n + step), True,
                                  True, executor, int(workers))
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
    trace = Trace.concat(traces)
    return PrecisionResult(spec, trace, precision=precision, horizon=horizon,
                           replications=n, engine=trace.computed_by or chosen.name, entropy=streams.entropy,
                           spawn_key=tuple(streams.seed_sequence.spawn_key),
                           seed_sequence=streams.seed_sequence)

