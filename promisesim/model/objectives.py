"""Objectives (SLOs): how whoever assesses a promise judges it over windows of time.

A promise is kept or not request by request (or instant by instant); its
assessor judges it over a *window*: "99.9% of requests within 300 ms over 28
days". An :class:`Objective` says which share must be good over each window and
how the good share is counted (OpenSLO's *budgeting method*):

* ``"occurrences"``: the share of good events in the window. For a latency
  promise with traffic the events are its requests (by arrival; kept ones are
  good, degraded ones are not, unfinished ones are left out); otherwise (an
  availability promise, or a latency promise nobody sends requests to) the
  share of the window's time the promise was standing.
* ``"timeslices"``: the window is cut into slices of ``timeslice``; a slice is
  good when its good share (as above, within the slice; a slice without
  requests is good) reaches ``timeslice_target``; the attained share is the
  share of good slices.

Windows are *calendar* windows by default, ``[0, W), [W, 2W), ...``, the
complete ones within the horizon; with ``rolling=True`` the window is the last
``W`` at every ``step`` from ``W`` on (``step`` defaults to the timeslice).
A window *meets* the objective when its attained share is at least ``target``.
Its *error budget* is the bad share the target allows, ``1 - target``;
``budget_used`` is the bad share over it (1: all spent; above 1: missed).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from ..errors import ScenarioError, did_you_mean

__all__ = ["Objective", "Alert", "check_objectives", "check_alerts"]


@dataclass(frozen=True)
class Objective:
    """An objective on a promise (an SLO). See the module docstring for the semantics.

    Parameters
    ----------
    promise : str
        The promise judged.
    target : float
        The share that must be good over each window (for example 0.999).
    window : float
        The window's length, in the model's time unit.
    rolling : bool
        Calendar windows (False, the default) or a rolling window evaluated every ``step``.
    budgeting : {"occurrences", "timeslices"}
        How the good share of a window is counted.
    timeslice : float, optional
        The length of a slice (``budgeting="timeslices"``); the window must be a whole
        number of slices.
    timeslice_target : float
        The good share a slice needs to be good (default 1: all of it).
    step : float, optional
        How often a rolling window is evaluated (default: ``timeslice``; needed with
        occurrences budgeting).
    name : str, optional
        Defaults to ``"<promise>@<target>/<window>"``.
    """

    promise: str
    target: float
    window: float
    rolling: bool = False
    budgeting: str = "occurrences"
    timeslice: float | None = None
    timeslice_target: float = 1.0
    step: float | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.name is not None else \
            f"{self.promise}@{self.target:g}/{self.window:g}"

    @property
    def every(self) -> float | None:
        """How often a rolling window is evaluated."""
        return self.step if self.step is not None else self.timeslice

    def to_dict(self) -> dict:
        out: dict = {"promise": self.promise, "target": self.target, "window": self.window}
        if self.name is not None:
            out["name"] = self.name
        if self.rolling:
            out["rolling"] = True
        if self.budgeting != "occurrences":
            out["budgeting"] = self.budgeting
        if self.timeslice is not None:
            out["timeslice"] = self.timeslice
        if self.timeslice_target != 1.0:
            out["timeslice_target"] = self.timeslice_target
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class Alert:
    """A burn-rate alert on an objective, with two windows (as in common SRE practice: for
    example 14.4 times the budget's rate over both the last hour and the last 5 minutes).

    Every ``every`` time units (from ``every`` on) it computes the *burn rate* over the last
    ``long`` and the last ``short`` time units: the bad share there (of the promise's
    requests, or of its time for a promise judged by time, whatever the objective's
    budgeting) over the objective's error budget ``1 - target``; it fires while both reach
    ``burn_rate``. (A window that would begin before 0 begins at 0.)

    Parameters
    ----------
    objective : str
        The objective's label (its name, or ``"<promise>@<target>/<window>"``).
    long, short : float
        The two windows; each a whole number of ``every``.
    burn_rate : float
        The burn rate at which it fires.
    every : float, optional
        How often it is evaluated (default: ``short``).
    name : str, optional
        Defaults to ``"<objective>:<burn_rate>x/<long>/<short>"``.
    """

    objective: str
    long: float
    short: float
    burn_rate: float
    every: float | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.name is not None else \
            f"{self.objective}:{self.burn_rate:g}x/{self.long:g}/{self.short:g}"

    @property
    def step(self) -> float:
        return float(self.every if self.every is not None else self.short)

    def to_dict(self) -> dict:
        out: dict = {"objective": self.objective, "long": self.long, "short": self.short,
                     "burn_rate": self.burn_rate}
        if self.every is not None:
            out["every"] = self.every
        if self.name is not None:
            out["name"] = self.name
        return out


def _time(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 < float(value) < math.inf:
        raise ScenarioError(f"{owner}: {name}={value!r} must be a positive, finite time")
    return float(value)


def _share(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 < float(value) <= 1:
        raise ScenarioError(f"{owner}: {name}={value!r} must be a share above 0 and at most 1")
    return float(value)


def _whole(owner: str, what: str, length: float, unit: float) -> None:
    n = length / unit
    if abs(n - round(n)) > 1e-9 * max(1.0, n) or round(n) < 1:
        raise ScenarioError(f"{owner}: {what}")
    if round(n) > 10_000_000:
        raise ScenarioError(f"{owner}: {length:g} / {unit:g} is {n:,.0f} slices: too many")


def check_objectives(objectives: list[Objective], promises: set[str]) -> None:
    """Refuse objectives with bad settings, naming the objective. Raises ScenarioError."""
    seen: set[str] = set()
    for i, o in enumerate(objectives):
        if not isinstance(o, Objective):
            raise ScenarioError(f"objectives[{i}]: expected an Objective, got {o!r}")
        if o.name is not None and (not isinstance(o.name, str) or not o.name.strip()):
            raise ScenarioError(f"objectives[{i}]: name {o.name!r} must be a non-empty string")
        owner = f"objective {o.label!r} (objectives[{i}])" if isinstance(o.promise, str) \
            else f"objectives[{i}]"
        element = ("objective", o.label if isinstance(o.promise, str) else str(i))
        try:
            if o.promise not in promises:
                raise ScenarioError(f"{owner}: promise {o.promise!r} is not a promise of the model"
                                    f"{did_you_mean(o.promise, promises)}")
            if o.label in seen:
                raise ScenarioError(f"{owner} is defined twice; give each a distinct name")
            seen.add(o.label)
            _share(owner, "target", o.target)
            window = _time(owner, "window", o.window)
            if not isinstance(o.rolling, bool):
                raise ScenarioError(f"{owner}: rolling={o.rolling!r} must be true or false")
            if o.budgeting not in ("occurrences", "timeslices"):
                raise ScenarioError(f"{owner}: budgeting={o.budgeting!r} must be 'occurrences' "
                                    "or 'timeslices'")
            _share(owner, "timeslice_target", o.timeslice_target)
            if o.timeslice is not None:
                slice_ = _time(owner, "timeslice", o.timeslice)
                _whole(owner, f"window={o.window!r} must be a whole number of timeslices "
                              f"({o.timeslice!r})", window, slice_)
            elif o.budgeting == "timeslices":
                raise ScenarioError(f"{owner}: timeslices budgeting needs a timeslice")
            if o.step is not None:
                if not o.rolling:
                    raise ScenarioError(f"{owner}: step is how often a rolling window is "
                                        "evaluated, and this one is a calendar window")
                _time(owner, "step", o.step)
            if o.rolling:
                if o.every is None:
                    raise ScenarioError(f"{owner}: a rolling window is evaluated every step; "
                                        "give a step (or a timeslice)")
                _whole(owner, f"window={o.window!r} must be a whole number of steps "
                              f"({o.every!r})", window, float(o.every))
                if o.timeslice is not None:
                    _whole(owner, f"step={o.every!r} must be a whole number of timeslices "
                                  f"({o.timeslice!r})", float(o.every), float(o.timeslice))
        except ScenarioError as exc:
            raise ScenarioError(str(exc), element=element) from None


def check_alerts(alerts: list[Alert], objectives: dict[str, Objective]) -> None:
    """Refuse alerts with bad settings, naming the alert. Raises ScenarioError."""
    seen: set[str] = set()
    for i, a in enumerate(alerts):
        if not isinstance(a, Alert):
            raise ScenarioError(f"alerts[{i}]: expected an Alert, got {a!r}")
        if a.name is not None and (not isinstance(a.name, str) or not a.name.strip()):
            raise ScenarioError(f"alerts[{i}]: name {a.name!r} must be a non-empty string")
        if not isinstance(a.objective, str):
            raise ScenarioError(f"alerts[{i}]: objective {a.objective!r} must be an objective's "
                                "name")
        owner = f"alert {a.label!r} (alerts[{i}])"
        try:
            if a.objective not in objectives:
                raise ScenarioError(f"{owner}: objective {a.objective!r} is not an objective of "
                                    f"the model (its objectives: {sorted(objectives)})")
            if a.label in seen:
                raise ScenarioError(f"{owner} is defined twice; give each a distinct name")
            seen.add(a.label)
            long = _time(owner, "long", a.long)
            short = _time(owner, "short", a.short)
            if short > long:
                raise ScenarioError(f"{owner}: short={a.short!r} must not be longer than "
                                    f"long={a.long!r}")
            rate = a.burn_rate
            if isinstance(rate, bool) or not isinstance(rate, numbers.Real) \
                    or not 0 < float(rate) < math.inf:
                raise ScenarioError(f"{owner}: burn_rate={rate!r} must be a positive, finite "
                                    "number")
            if a.every is not None:
                _time(owner, "every", a.every)
            _whole(owner, f"long={a.long!r} must be a whole number of evaluation steps "
                          f"({a.step!r})", long, a.step)
            _whole(owner, f"short={a.short!r} must be a whole number of evaluation steps "
                          f"({a.step!r})", short, a.step)
            window = float(objectives[a.objective].window)
            _whole(owner, f"its objective's window ({window:g}) must be a whole number of "
                          f"evaluation steps ({a.step!r})", window, a.step)
        except ScenarioError as exc:
            raise ScenarioError(str(exc), element=("alert", a.label)) from None
