"""Burn-rate alerts judged on a run: when each would fire, and how well it warns of the windows
that miss their objective (:attr:`promisesim.Result.alerts`,
:meth:`promisesim.Result.alert_summary`).

The semantics of an alert are in :class:`promisesim.model.objectives.Alert`. An
alert is judged against the objective's calendar windows (of the objective's
length, from 0, even for a rolling objective): a window that missed the
objective is *detected* when a firing overlaps it, and the *lead* is how long
before the window's error budget was spent (counted by occurrences, at the
alert's step) the first such firing began (negative: after). A firing that
overlaps no missed window is a *false alarm*.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from .model.objectives import Alert, Objective
from .openslo import seconds_per_unit
from .slo import _evaluate, per_slice, running_sums, stacked

__all__ = ["alerts", "alert_summary"]

_COLUMNS = ["replication", "alert", "objective", "start", "end"]


def _objective(result: Any, a: Alert) -> Objective:
    return next(o for o in result.spec.objectives if o.label == a.objective)


def _cumulative(result: Any, a: Alert, o: Objective) -> tuple[np.ndarray, np.ndarray]:
    """Running sums of the bad and total counts per step (replications x steps + 1)."""
    good, total, _ = per_slice(result, result.spec.promise_index[o.promise], a.step)
    return running_sums(total - good), running_sums(total)


def _burn(result: Any, a: Alert, o: Objective) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation instants and whether it fires at each (replications x instants)."""
    step = a.step
    cs_bad, cs_total = _cumulative(result, a, o)
    n = int(math.floor(result.horizon / step + 1e-9))
    k = np.arange(1, n + 1)
    allowed = 1.0 - o.target
    fire = np.ones((cs_bad.shape[0], n), dtype=bool)
    for window in (a.long, a.short):
        lo = np.maximum(k - int(round(window / step)), 0)
        bad = cs_bad[:, k] - cs_bad[:, lo]
        count = cs_total[:, k] - cs_total[:, lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(count > 0, bad / np.where(count > 0, count, 1.0), 0.0)
            burn = share / allowed if allowed > 0 else np.where(share > 0, np.inf, 0.0)
        fire &= burn >= a.burn_rate * (1 - 1e-12)
    return k * step, fire


def _periods(instants: np.ndarray, fire: np.ndarray, horizon: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(replication, start, end) of each firing period: from the first instant it fires to the
    first after at which it does not (or the horizon)."""
    padded = np.pad(fire.astype(np.int8), ((0, 0), (1, 1)))
    edges = np.diff(padded, axis=1)
    rep_on, at_on = np.nonzero(edges == 1)
    rep_off, at_off = np.nonzero(edges == -1)    # same order: row by row, left to right
    ends = np.append(instants, horizon)
    return rep_on.astype(np.int32), instants[at_on], ends[at_off]


def alerts(result: Any) -> pd.DataFrame:
    """One row per firing period of each alert. See :attr:`promisesim.Result.alerts`."""
    spec = result.spec
    labels = [a.label for a in spec.alerts]
    frames = []
    for code, a in enumerate(spec.alerts):
        instants, fire = _burn(result, a, _objective(result, a))
        rep, start, end = _periods(instants, fire, result.horizon)
        frames.append(pd.DataFrame({
            "replication": rep,
            "alert": pd.Categorical.from_codes(np.full(rep.size, code), categories=labels),
            "objective": a.objective, "start": start, "end": end}))
    return stacked(frames, _COLUMNS, "objective", [o.label for o in spec.objectives],
                   result.attrs)


def alert_summary(result: Any) -> pd.DataFrame:
    """Per alert, how well it warns. See :meth:`promisesim.Result.alert_summary`."""
    rows = []
    unit = seconds_per_unit(result.spec.time_unit)
    firings = result.alerts
    for a in result.spec.alerts:
        o = _objective(result, a)
        mine = firings[firings["alert"] == a.label]
        rep = mine["replication"].to_numpy(dtype=np.int64)
        start, end = mine["start"].to_numpy(), mine["end"].to_numpy()
        windows = _evaluate(result, dataclasses.replace(o, rolling=False, step=None))
        n_w = int(windows["start"].size // result.replications)
        missed = ~windows["met"].reshape(result.replications, n_w)
        # the calendar windows each firing overlaps: [lo, hi] (the run may end mid-window)
        lo = np.minimum((start // o.window).astype(np.int64), n_w)
        hi = np.minimum(np.ceil(end / o.window - 1e-12).astype(np.int64) - 1, n_w - 1)
        cs_missed = running_sums(missed.astype(np.float64))
        false = (cs_missed[rep, np.maximum(hi + 1, lo)] - cs_missed[rep, lo]) == 0
        covered = np.zeros((missed.shape[0], n_w + 1), dtype=np.int64)
        inside = lo <= hi
        np.add.at(covered, (rep[inside], lo[inside]), 1)
        np.add.at(covered, (rep[inside], hi[inside] + 1), -1)
        detected = (np.cumsum(covered, axis=1)[:, :n_w] > 0) & missed
        leads = []
        cs_bad, cs_total = _cumulative(result, a, o)
        for r, j in zip(*np.nonzero(detected)):
            w_lo, w_hi = j * o.window, (j + 1) * o.window
            hit = (rep == r) & (end > w_lo) & (start < w_hi)
            first = max(float(start[hit].min()), w_lo)
            i0, i1 = int(round(w_lo / a.step)), int(round(w_hi / a.step))
            bad = cs_bad[r, i0 + 1:i1 + 1] - cs_bad[r, i0]
            allowed = (1 - o.target) * (cs_total[r, i1] - cs_total[r, i0])
            spent = np.flatnonzero(bad > allowed + 1e-9)
            if spent.size:
                leads.append(w_lo + (spent[0] + 1) * a.step - first)
        span = result.replications * result.horizon
        per_30d = (false.sum() / (span * unit) * 30 * 86_400.0) if unit is not None else math.nan
        rows.append((a.label, a.objective, int(rep.size), int(missed.size), int(missed.sum()),
                     int(detected.sum()),
                     float(detected.sum() / missed.sum()) if missed.sum() else math.nan,
                     int(false.sum()), per_30d,
                     float(np.mean(leads)) if leads else math.nan))
    out = pd.DataFrame(rows, columns=["alert", "objective", "firings", "windows",
                                      "windows_missed", "missed_detected", "detected_share",
                                      "false_alarms", "false_alarms_per_30d", "mean_lead"])
    out.attrs.update(result.attrs)
    return out
