"""Objectives (SLOs) judged on a run: the tables behind :attr:`promisesim.Result.objectives`
and :meth:`promisesim.Result.objective_summary`.

The semantics of an objective are in :mod:`promisesim.model.objectives`. Each
objective is evaluated per replication from per-slice counts (requests by
arrival, or standing time), so a window is a sum over consecutive slices and a
rolling window a difference of running sums: linear in the run's size.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from .analytic import t_quantile
from .engines.base import KEPT, UNFINISHED
from .model.objectives import Objective
from .model.promises import Latency

__all__ = ["objectives", "objective_summary", "per_slice", "running_sums", "stacked"]

WINDOW_COLUMNS = ["replication", "objective", "promise", "start", "end", "good", "total",
                  "attained", "met", "budget_used", "longest_burn"]


def _by_requests(result: Any, promise: int) -> bool:
    """Whether a promise is judged by its requests (a latency promise that some workload
    calls) or by its standing over time."""
    return bool(result.spec.requested()[promise]) and isinstance(result.spec.promises[promise].body, Latency)


def per_slice(result: Any, promise: int, width: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(good, total, by_requests)`` per replication and slice of ``width`` from 0 (arrays
    of shape replications x slices, the last slice cut at the horizon): kept and counted
    requests for a promise judged by its requests, else standing time and slice length."""
    n_r = result.replications
    n_slices = max(1, int(math.ceil(result.horizon / width - 1e-9)))
    if _by_requests(result, promise):
        req = result.trace.requests
        if req is None:
            raise ValueError(f"objectives on {result.spec.promises[promise].name!r} count its "
                             "requests: run simulate(..., record_requests=True)")
        mine = (req["promise"] == promise) & (req["outcome"] != UNFINISHED)
        slot = np.minimum((req["arrival"][mine] // width).astype(np.int64), n_slices - 1)
        key = req["replication"][mine].astype(np.int64) * n_slices + slot
        size = n_r * n_slices
        total = np.bincount(key, minlength=size).reshape(n_r, n_slices).astype(np.float64)
        good = np.bincount(key[req["outcome"][mine] == KEPT],
                           minlength=size).reshape(n_r, n_slices).astype(np.float64)
        return good, total, True
    timeline = result._promise_timelines[promise]
    good = timeline.kept_per_slice(result.horizon, width)
    start = np.arange(n_slices) * width
    length = np.minimum(start + width, result.horizon) - start
    return good, np.broadcast_to(length, good.shape).astype(np.float64), False


def running_sums(per_slice: np.ndarray) -> np.ndarray:
    """Per row, the sums over the first 0, 1, ... slices (a leading zero column): the sum over
    slices ``[i, j)`` is ``out[:, j] - out[:, i]``."""
    return np.concatenate([np.zeros((per_slice.shape[0], 1)), np.cumsum(per_slice, axis=1)],
                          axis=1)


def stacked(frames: list[pd.DataFrame], columns: list[str], column: str,
            categories: list[str], attrs: dict) -> pd.DataFrame:
    """One table of per-item ``frames`` (``columns`` when there are none), ``column`` made a
    categorical of ``categories``, with the run's provenance."""
    if not frames:
        frame = pd.DataFrame({c: [] for c in columns})
    else:
        frame = pd.concat(frames, ignore_index=True)
        frame[column] = pd.Categorical(frame[column], categories=categories)
    frame.attrs.update(attrs)
    return frame


def bad_stretches(result: Any, promise: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(replication, start, end)`` of each stretch in which the promise was bad, sorted:
    broken time for a promise judged by time; for one judged by its requests, from a request
    that was not kept to the arrival of the next one that was (or the horizon): the time its
    users saw nothing but broken requests."""
    if not _by_requests(result, promise):
        rep, start, end, value = result._promise_timelines[promise].segments(result.horizon)
        bad = ~value & (end > start)
        return rep[bad], start[bad], end[bad]
    req = result.trace.requests
    if req is None:
        raise ValueError(f"objectives on {result.spec.promises[promise].name!r} count its "
                         "requests: run simulate(..., record_requests=True)")
    mine = (req["promise"] == promise) & (req["outcome"] != UNFINISHED)
    rep = req["replication"][mine].astype(np.int64)
    arrival = req["arrival"][mine]
    order = np.lexsort((arrival, rep))
    rep, arrival = rep[order], arrival[order]
    kept = req["outcome"][mine][order] == KEPT
    # a stretch starts at a broken request that follows a kept one (or opens its replication)
    first = np.ones(rep.size, dtype=bool)
    first[1:] = (rep[1:] != rep[:-1]) | kept[:-1]
    starts = np.flatnonzero(~kept & first)
    # ... and ends at the next kept request of its replication (or the horizon)
    kept_at = np.flatnonzero(kept)
    nxt = np.searchsorted(kept_at, starts)
    end = np.full(starts.size, result.horizon)
    found = nxt < kept_at.size
    found[found] = rep[kept_at[nxt[found]]] == rep[starts[found]]
    end[found] = arrival[kept_at[nxt[found]]]
    return rep[starts], arrival[starts], end


def _longest(stretches: tuple[np.ndarray, np.ndarray, np.ndarray], n_r: int,
             start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per replication and window, the longest part of one bad stretch inside the window
    (windows sorted, of one length: those a stretch overlaps are a contiguous run)."""
    rep, s, e = stretches
    out = np.zeros((n_r, start.size))
    lo = np.searchsorted(end, s, side="right")      # the first window ending after it starts
    hi = np.searchsorted(start, e, side="left")     # past the last starting before it ends
    count = np.maximum(hi - lo, 0)
    which = np.repeat(np.arange(rep.size), count)
    window = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + lo[which]
    overlap = np.minimum(e[which], end[window]) - np.maximum(s[which], start[window])
    np.maximum.at(out, (rep[which], window), overlap)
    return out


def _windows(o: Objective, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of the windows that fit in the horizon."""
    if o.rolling:
        step = float(o.every)  # type: ignore[arg-type]
        count = int(math.floor((horizon - o.window) / step + 1e-9)) + 1 if horizon >= o.window \
            else 0
        end = o.window + step * np.arange(count)
    else:
        count = int(math.floor(horizon / o.window + 1e-9))
        end = o.window * np.arange(1, count + 1)
    return end - o.window, end


def _evaluate(result: Any, o: Objective) -> dict[str, np.ndarray]:
    spec = result.spec
    promise = spec.promise_index[o.promise]
    start, end = _windows(o, result.horizon)
    if start.size == 0:
        raise ValueError(f"objective {o.label!r}: its window ({o.window:g} {spec.time_unit}) is "
                         f"longer than the run ({result.horizon:g}): no window fits; run longer")
    if o.timeslice is not None:
        width = float(o.timeslice)
    else:   # occurrences with no slices: one slice per window, or per step when rolling
        width = float(o.every) if o.rolling else float(o.window)
    good, total, by_requests = per_slice(result, promise, width)
    if o.budgeting == "timeslices":
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, good / np.where(total > 0, total, 1.0), 1.0)
        slack = 1e-9 if by_requests else 1e-9 * width   # rounding of summed standing time
        good = (share >= o.timeslice_target - slack).astype(np.float64)
        total = np.ones_like(good)
    first = np.rint(start / width).astype(np.int64)
    last = np.rint(end / width).astype(np.int64)
    cs_good, cs_total = running_sums(good), running_sums(total)
    w_good = cs_good[:, last] - cs_good[:, first]            # replications x windows
    w_total = cs_total[:, last] - cs_total[:, first]
    with np.errstate(invalid="ignore", divide="ignore"):
        attained = np.where(w_total > 0, w_good / np.where(w_total > 0, w_total, 1.0), np.nan)
        bad = 1.0 - attained
        allowed = 1.0 - o.target
        used = bad / allowed if allowed > 0 else np.where(bad > 1e-12, np.inf, 0.0)
    met = np.isnan(attained) | (attained >= o.target - 1e-12)
    n_r, n_w = w_good.shape
    longest = _longest(bad_stretches(result, promise), n_r, start, end)
    return {
        "replication": np.repeat(np.arange(n_r, dtype=np.int32), n_w),
        "start": np.tile(start, n_r),
        "end": np.tile(end, n_r),
        "good": w_good.ravel(),
        "total": w_total.ravel(),
        "attained": attained.ravel(),
        "met": met.ravel(),
        "budget_used": np.where(np.isnan(attained), 0.0, used).ravel(),
        "longest_burn": longest.ravel(),
    }


def objectives(result: Any) -> pd.DataFrame:
    """One row per (replication, objective, window). See :attr:`promisesim.Result.objectives`."""
    spec = result.spec
    labels = [o.label for o in spec.objectives]
    frames = []
    for code, o in enumerate(spec.objectives):
        part = _evaluate(result, o)
        n = part["replication"].size
        frames.append(pd.DataFrame({
            "replication": part["replication"],
            "objective": pd.Categorical.from_codes(np.full(n, code), categories=labels),
            "promise": o.promise,
            **{k: part[k] for k in WINDOW_COLUMNS[3:]},
        }))
    return stacked(frames, WINDOW_COLUMNS, "promise", [p.name for p in spec.promises],
                   result.attrs)


def _wilson(met: int, n: int, confidence: float) -> tuple[float, float]:
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = met / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def objective_summary(result: Any, confidence: float = 0.95) -> pd.DataFrame:
    """Per objective across replications. See :meth:`promisesim.Result.objective_summary`."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} must be between 0 and 1")
    table = result.objectives
    rows = []
    for o in result.spec.objectives:
        part = table[table["objective"] == o.label]
        met = part["met"].to_numpy(dtype=bool)
        n = met.size
        if o.rolling:   # overlapping windows: replications are the independent units
            share = part.groupby("replication")["met"].mean().to_numpy(dtype=np.float64)
            mean = float(share.mean())
            if share.size > 1:
                half = t_quantile(0.5 + confidence / 2, share.size - 1) * share.std(ddof=1) \
                    / math.sqrt(share.size)
                low, high = max(0.0, mean - half), min(1.0, mean + half)
            else:
                low = high = math.nan
        else:           # calendar windows: each window a trial
            mean = float(met.mean())
            low, high = _wilson(int(met.sum()), n, confidence)
        attained = part["attained"].to_numpy(dtype=np.float64)
        rows.append((o.label, o.promise, o.target, o.window, n, mean, low, high,
                     float(np.nanmean(attained)) if np.isfinite(attained).any() else math.nan,
                     float(np.nanmin(attained)) if np.isfinite(attained).any() else math.nan,
                     float(part["budget_used"].mean())))
    out = pd.DataFrame(rows, columns=["objective", "promise", "target", "window", "windows",
                                      "probability_met", "ci_low", "ci_high", "mean_attained",
                                      "worst_attained", "mean_budget_used"])
    out.attrs.update(result.attrs)
    out.attrs["confidence"] = confidence
    return out
