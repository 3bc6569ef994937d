"""Probability distributions for times: failures, repairs, service, arrivals.

Every distribution is a frozen dataclass with its analytic ``mean`` and
``var``, and is sampled by *inverse transform* from uniforms in ``(0, 1]``
(:meth:`Distribution.from_uniforms`). Both engines feed it the same uniforms
from :class:`promisesim.random.Streams`, which is what makes their results
agree draw for draw. :meth:`Distribution.sample` draws from any
``numpy.random.Generator`` for users who want plain samples.

All values are durations in the model's time unit and are never negative.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .errors import ScenarioError, _real

__all__ = [
    "as_time",
    "Distribution",
    "Exponential",
    "Deterministic",
    "Uniform",
    "LogNormal",
    "Empirical",
    "distribution_from_dict",
]


#: The largest parameter a distribution takes: a draw of it, summed over a run, stays far
#: from overflowing (1e15 seconds are 30 million years).
MAX_PARAMETER = 1e15


def _check_positive(owner: str, name: str, value: float, *, allow_zero: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ScenarioError(f"{owner}: {name}={value!r} must be a number") from None
    if not math.isfinite(value):
        raise ScenarioError(f"{owner}: {name}={value!r} must be finite")
    if value > MAX_PARAMETER:
        raise ScenarioError(f"{owner}: {name}={value!r} must be at most {MAX_PARAMETER:g}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ScenarioError(f"{owner}: {name}={value!r} must be {bound}")
    return value


@dataclass(frozen=True)
class Distribution:
    """Base class: a non-negative random duration.

    Subclasses define :attr:`n_uniforms` (uniforms consumed per draw),
    :meth:`from_uniforms`, :attr:`mean` and :attr:`var`.
    """

    n_uniforms: ClassVar[int] = 1
    kind: ClassVar[str] = ""

    @property
    def mean(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def var(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def is_random(self) -> bool:
        """Whether draws vary (``False`` for :class:`Deterministic`)."""
        return True

    def from_uniforms(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Transform uniforms of shape ``(n_uniforms, n)`` in ``(0, 1]`` into ``n`` draws."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values using ``rng``.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness; it is advanced.
        size : int
            Number of draws.

        Returns
        -------
        numpy.ndarray of float64, shape ``(size,)``
        """
        u = 1.0 - rng.random((self.n_uniforms, int(size)))  # (0, 1]
        return self.from_uniforms(u)

    def to_dict(self) -> dict[str, Any]:
        """The scenario-file form: ``{kind: {parameter: value, ...}}``."""
        params = {k: v for k, v in self.__dict__.items()}
        if "values" in params:
            params["values"] = [float(x) for x in params["values"]]
        return {self.kind: params}


@dataclass(frozen=True)
class Exponential(Distribution):
    """Exponential distribution with the given ``mean`` (rate ``1/mean``).

    Examples
    --------
    >>> Exponential(mean=2.0).var
    4.0
    """

    mean_: float = field(metadata={"name": "mean"})
    kind: ClassVar[str] = "exponential"

    def __init__(self, mean: float) -> None:
        object.__setattr__(self, "mean_", _check_positive("Exponential", "mean", mean))

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def var(self) -> float:
        return self.mean_**2

    def from_uniforms(self, u: np.ndarray) -> np.ndarray:
        return -self.mean_ * np.log(u[0])

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: {"mean": self.mean_}}

    def __repr__(self) -> str:
        return f"Exponential(mean={self.mean_!r})"


@dataclass(frozen=True)
class Deterministic(Distribution):
    """Always the same ``value`` (zero allowed). Consumes no randomness in effect."""

    value: float
    kind: ClassVar[str] = "deterministic"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "value", _check_positive("Deterministic", "value", self.value, allow_zero=True)
        )

    @property
    def mean(self) -> float:
        return self.value

    @property
    def var(self) -> float:
        return 0.0

    @property
    def is_random(self) -> bool:
        return False

    def from_uniforms(self, u: np.ndarray) -> np.ndarray:
        return np.full(u.shape[1], self.value)


@dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform on ``[low, high]``, with ``0 <= low < high``."""

    low: float
    high: float
    kind: ClassVar[str] = "uniform"

    def __post_init__(self) -> None:
        low = _check_positive("Uniform", "low", self.low, allow_zero=True)
        high = _check_positive("Uniform", "high", self.high)
        if not low < high:
            raise ScenarioError(f"Uniform: low={low!r} must be below high={high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def var(self) -> float:
        return (self.high - self.low) ** 2 / 12.0

    def from_uniforms(self, u: np.ndarray) -> np.ndarray:
        return self.high - (self.high - self.low) * u[0]


@dataclass(frozen=True)
class LogNormal(Distribution):
    """Log-normal distribution: its own ``mean`` (or ``mu``) and the ``sigma`` of its log.

    Give exactly one of

    * ``mean``: the distribution's own mean (the first positional argument), so the
      log is normal with mean ``log(mean) - sigma**2 / 2``;
    * ``mu``: the mean of the underlying normal (numpy's ``lognormal(mean=...)``,
      Ciw's and most simulators' convention), so the distribution's mean is
      ``exp(mu + sigma**2 / 2)``.

    The two are easy to mix up (``mean=0.1, sigma=0.5`` and ``mu=0.1, sigma=0.5``
    differ by a factor of 12.6 in their means), so a scenario file names which:
    ``lognormal: {mean: 0.1, sigma: 0.5}`` or ``lognormal: {mu: -2.4, sigma: 0.5}``.
    Draws use the Box-Muller transform of two uniforms.
    """

    mean_: float
    sigma: float
    mu_: float
    by_mu: bool
    n_uniforms: ClassVar[int] = 2
    kind: ClassVar[str] = "lognormal"

    def __init__(self, mean: float | None = None, sigma: float | None = None, *,
                 mu: float | None = None) -> None:
        if sigma is None:
            raise ScenarioError("LogNormal: sigma (of the log) is required")
        sigma = _check_positive("LogNormal", "sigma", sigma)
        if sigma > 20:   # exp(sigma**2): the variance's factor overflows from about 26.6
            raise ScenarioError(f"LogNormal: sigma={sigma!r} must be at most 20 (the mean is "
                                "exp(sigma**2 / 2) times the median: 5e86 at 20)")
        if (mean is None) == (mu is None):
            raise ScenarioError("LogNormal: give mean (the distribution's own) or mu (of its "
                                f"log), not {'both' if mean is not None else 'neither'}")
        if mean is not None:
            mean = _check_positive("LogNormal", "mean", mean)
            location = math.log(mean) - 0.5 * sigma**2
        else:
            if not _real(mu) or not math.isfinite(float(mu)):  # type: ignore[arg-type]
                raise ScenarioError(f"LogNormal: mu={mu!r} must be a finite number")
            location = float(mu)  # type: ignore[arg-type]
            try:
                mean = math.exp(location + 0.5 * sigma**2)
            except OverflowError:
                mean = math.inf
            if not math.isfinite(mean) or mean <= 0:
                raise ScenarioError(f"LogNormal: mu={mu!r}, sigma={sigma!r} give a mean of "
                                    f"{mean!r}: not a usable duration")
        object.__setattr__(self, "mean_", mean)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "mu_", location)
        object.__setattr__(self, "by_mu", mu is not None)

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def var(self) -> float:
        try:
            return (math.exp(self.sigma**2) - 1.0) * self.mean_**2
        except OverflowError:   # sigma above about 26.6
            return math.inf

    @property
    def mu(self) -> float:
        """Mean of the underlying normal."""
        return self.mu_

    def from_uniforms(self, u: np.ndarray) -> np.ndarray:
        normal = np.sqrt(-2.0 * np.log(u[0])) * np.cos(2.0 * np.pi * u[1])
        return np.exp(self.mu_ + self.sigma * normal)

    def to_dict(self) -> dict[str, Any]:
        if self.by_mu:
            return {self.kind: {"mu": self.mu_, "sigma": self.sigma}}
        return {self.kind: {"mean": self.mean_, "sigma": self.sigma}}

    def __repr__(self) -> str:
        if self.by_mu:
            return f"LogNormal(mu={self.mu_!r}, sigma={self.sigma!r})"
        return f"LogNormal(mean={self.mean_!r}, sigma={self.sigma!r})"


@dataclass(frozen=True)
class Empirical(Distribution):
    """Resample observed durations with equal probability (for example measured latencies).

    Parameters
    ----------
    values : sequence of float
        At least one finite, non-negative value.
    """

    values: tuple[float, ...]
    kind: ClassVar[str] = "empirical"

    def __post_init__(self) -> None:
        if isinstance(self.values, (str, bytes)) or not hasattr(self.values, "__len__"):
            raise ScenarioError(f"Empirical: values must be a sequence of numbers, got {self.values!r}")
        try:
            arr = np.asarray(self.values, dtype=float).ravel()
        except (TypeError, ValueError):
            raise ScenarioError("Empirical: values must be numbers") from None
        if arr.size == 0:
            raise ScenarioError("Empirical: values must not be empty")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > MAX_PARAMETER):
            raise ScenarioError(f"Empirical: values must be finite, non-negative and at most "
                                f"{MAX_PARAMETER:g}")
        object.__setattr__(self, "values", tuple(float(x) for x in arr))

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def var(self) -> float:
        return float(np.var(self.values))

    def from_uniforms(self, u: np.ndarray) -> np.ndarray:
        values = np.asarray(self.values)
        index = np.minimum((u[0] * values.size).astype(np.int64), values.size - 1)
        return values[index]


_KINDS: dict[str, type[Distribution]] = {
    cls.kind: cls for cls in (Exponential, Deterministic, Uniform, LogNormal, Empirical)
}


def as_time(value: Any) -> Any:
    """A plain number as a :class:`Deterministic` time, as scenario files read it (a real number
    that is finite and not negative, numpy's included); anything else unchanged, for the model's
    checks to name."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
            and math.isfinite(float(value)) and float(value) >= 0:
        return Deterministic(float(value))
    return value


def distribution_from_dict(data: Any, *, where: str = "distribution") -> Distribution:
    """Build a distribution from its scenario-file form.

    A bare number is :class:`Deterministic`; otherwise a mapping with one key
    naming the kind, for example ``{"exponential": {"mean": 3600}}`` or
    ``{"empirical": [0.1, 0.2]}``.
    """
    if isinstance(data, Distribution):
        return data
    if isinstance(data, bool):
        raise ScenarioError(f"{where}: expected a number or a distribution, got {data!r}")
    if isinstance(data, (int, float)):
        return Deterministic(float(data))
    if not isinstance(data, dict) or len(data) != 1:
        raise ScenarioError(
            f"{where}: expected one of {sorted(_KINDS)} as a one-key mapping, got {data!r}"
        )
    (kind, params), = data.items()
    cls = _KINDS.get(kind)
    if cls is None:
        raise ScenarioError(f"{where}: unknown distribution {kind!r}; known: {sorted(_KINDS)}")
    try:
        if cls is Empirical and isinstance(params, list):
            return Empirical(tuple(params))
        if cls is Deterministic and isinstance(params, (int, float)) and not isinstance(params, bool):
            return Deterministic(float(params))
        if not isinstance(params, dict):
            raise ScenarioError(f"{where}: parameters of {kind!r} must be a mapping, got {params!r}")
        if cls is Empirical:
            if set(params) != {"values"}:
                raise ScenarioError(f"{where}: 'empirical' takes one key, 'values', got {sorted(params)}")
            if not isinstance(params["values"], list):
                raise ScenarioError(f"{where}: empirical values must be a list of numbers")
            return Empirical(tuple(params["values"]))
        return cls(**params)
    except TypeError as exc:
        raise ScenarioError(f"{where}: bad parameters for {kind!r}: {exc}") from None
    except ScenarioError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
