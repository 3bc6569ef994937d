"""What observers see: the tables of :attr:`promisesim.Result.observations`.

An observer checks a promise at instants of its own (or at its promiser's
maintenance runs), or probes it with requests; each check is kept, repaired or
not kept, in CFEngine's terms, and a break is detected by the first check at
or after it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ._renewal import renewal_instants
from ._timeline import Timelines, _last_at_or_before
from .analytic import t_quantile
from .random import Streams

__all__ = ["observations", "observation_summary"]


def _changes_up_to(timeline: Timelines, rep: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Number of changes of each query's replication at instants up to ``t`` (inclusive)."""
    last = _last_at_or_before(timeline.rep, timeline.time, rep, t)
    first = np.searchsorted(timeline.rep, rep)
    return np.where(last >= 0, last - first + 1, 0)


def _first_at_or_after(rep: np.ndarray, time: np.ndarray, q_rep: np.ndarray,
                       q_time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the index of the first instant (sorted by replication, time) of its
    replication at or after its time, and whether there is one."""
    last = _last_at_or_before(rep, time, q_rep, q_time)
    exact = last >= 0
    exact[exact] = time[last[exact]] == q_time[exact]
    nxt = np.where(exact, last, np.where(last >= 0, last + 1, np.searchsorted(rep, q_rep)))
    found = nxt < rep.size
    found[found] = rep[nxt[found]] == q_rep[found]
    return nxt, found


def _check_instants(result: Any, observer: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(replication, instant)`` of an observer's checks, sorted; the same draws the
    engines use for maintenance runs when it checks at them."""
    spec = result.spec
    streams = Streams(result.seed_sequence)
    reps = np.arange(result.replications)
    if observer.interval is None:
        promiser = spec.agents[spec.agent_index[
            spec.promises[spec.promise_index[observer.promise]].promiser]]
        assert promiser.failures is not None and promiser.failures.maintenance is not None
        keys = streams.keys(reps, "maintenance", promiser.name)
        dist = promiser.failures.maintenance.interval
    else:
        keys = streams.keys(reps, "observation", observer.name)
        dist = observer.interval
    rep, time, _ = renewal_instants([keys], [dist], result.horizon)
    return rep, time

def observations(result: Any) -> pd.DataFrame:
    """Per (replication, observer): checks and their CFEngine-style outcomes.

    Columns ``replication, observer, promise, checks, kept, repaired,
    not_kept, kept_share, repaired_share, not_kept_share, breaks_detected,
    mean_detection_delay`` (the mean time from a break's start to the first
    check at or after it, over the breaks some check came after; NaN if none).
    A probing observer's checks are its requests that finished (kept: the
    request was kept; never repaired), and it detects a break by the first
    probe in it that is not kept.
    """
    spec, n_r = result.spec, result.replications
    frames = []
    for observer in spec.observers:
        timeline = result._promise_timelines[spec.promise_index[observer.promise]]
        if observer.probe:
            frames.append(_probe_observations(result, observer, timeline))
            continue
        rep, check = _check_instants(result, observer)
        first = np.ones(rep.size, dtype=bool)
        first[1:] = rep[1:] != rep[:-1]
        previous = np.empty(rep.size)
        previous[1:] = check[:-1]
        previous[first] = 0.0
        now = timeline.value_at(rep, check)
        before = timeline.value_at(rep, previous)
        changed = _changes_up_to(timeline, rep, check) - _changes_up_to(timeline, rep, previous)
        changed[first] += ~timeline.value_at(rep[first], np.zeros(int(first.sum())))  # broken at 0
        repaired = now & (~before | (changed > 0))
        kept = now & ~repaired
        count = lambda mask: np.bincount(rep[mask], minlength=n_r)  # noqa: E731
        checks = np.bincount(rep, minlength=n_r)
        # detection: the first check at or after each break's start
        breaks = ~timeline.value
        b_rep, b_time = timeline.rep[breaks], timeline.time[breaks]
        nxt, found = _first_at_or_after(rep, check, b_rep, b_time)
        delay = check[nxt[found]] - b_time[found]
        detected = np.bincount(b_rep[found], minlength=n_r)
        total_delay = np.bincount(b_rep[found], weights=delay, minlength=n_r)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = lambda x: np.where(checks > 0, x / np.maximum(checks, 1), np.nan)  # noqa: E731
            mean_delay = np.where(detected > 0, total_delay / np.maximum(detected, 1), np.nan)
        frames.append(pd.DataFrame({
            "replication": np.arange(n_r, dtype=np.int32),
            "observer": observer.name,
            "promise": observer.promise,
            "checks": checks,
            "kept": count(kept),
            "repaired": count(repaired),
            "not_kept": count(~now),
            "kept_share": share(count(kept)),
            "repaired_share": share(count(repaired)),
            "not_kept_share": share(count(~now)),
            "breaks_detected": detected,
            "mean_detection_delay": mean_delay,
        }))
    columns = ["replication", "observer", "promise", "checks", "kept", "repaired", "not_kept",
               "kept_share", "repaired_share", "not_kept_share", "breaks_detected",
               "mean_detection_delay"]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    names = [o.name for o in spec.observers]
    frame["observer"] = pd.Categorical(frame["observer"], categories=names)
    frame.attrs.update(result.attrs)
    return frame

def _probe_observations(result: Any, observer: Any, timeline: Any) -> pd.DataFrame:
    """:func:`observations` of an observer that probes with requests."""
    n_r = result.replications
    req = result.requests
    mine = req[(req["workload"] == observer.name) & (req["promise"] == observer.promise)
               & (req["outcome"] != "unfinished")]
    rep = mine["replication"].to_numpy(dtype=np.int64)
    sent = mine["arrival"].to_numpy(dtype=np.float64)
    kept = mine["kept"].to_numpy(dtype=bool)
    checks = np.bincount(rep, minlength=n_r)
    n_kept = np.bincount(rep[kept], minlength=n_r)
    # detection: the first probe not kept at or after each break's start, before its end
    f_rep, f_time = rep[~kept], sent[~kept]
    breaks = np.flatnonzero(~timeline.value)
    b_rep, b_time = timeline.rep[breaks], timeline.time[breaks]
    nxt = breaks + 1
    b_end = np.full(breaks.size, result.horizon)
    later = nxt < timeline.rep.size
    later[later] = timeline.rep[nxt[later]] == b_rep[later]
    b_end[later] = timeline.time[nxt[later]]
    at, found = _first_at_or_after(f_rep, f_time, b_rep, b_time)
    found[found] = f_time[at[found]] < b_end[found]   # while the break lasts
    delay = f_time[at[found]] - b_time[found]
    detected = np.bincount(b_rep[found], minlength=n_r)
    total_delay = np.bincount(b_rep[found], weights=delay, minlength=n_r)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = lambda x: np.where(checks > 0, x / np.maximum(checks, 1), np.nan)  # noqa: E731
        mean_delay = np.where(detected > 0, total_delay / np.maximum(detected, 1), np.nan)
    return pd.DataFrame({
        "replication": np.arange(n_r, dtype=np.int32),
        "observer": observer.name,
        "promise": observer.promise,
        "checks": checks,
        "kept": n_kept,
        "repaired": np.zeros(n_r, dtype=np.int64),
        "not_kept": checks - n_kept,
        "kept_share": share(n_kept),
        "repaired_share": share(np.zeros(n_r)),
        "not_kept_share": share(checks - n_kept),
        "breaks_detected": detected,
        "mean_detection_delay": mean_delay,
    })

def observation_summary(result: Any, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, standard error and confidence interval of each observer's outcome shares and
    detection delay across replications (columns as :meth:`summary`, with ``observer``)."""
    frame = result.observations
    metrics = ["kept_share", "repaired_share", "not_kept_share", "mean_detection_delay"]
    rows = []
    for name, group in frame.groupby("observer", observed=True, sort=False):
        for metric in metrics:
            values = group[metric].to_numpy(dtype=np.float64)
            values = values[~np.isnan(values)]
            n = values.size
            if n == 0:
                continue
            mean = float(values.mean())
            stderr = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            half = t_quantile(0.5 + confidence / 2, n - 1) * stderr if n > 1 else math.nan
            rows.append((name, metric, mean, stderr, mean - half, mean + half, n))
    out = pd.DataFrame(rows, columns=["observer", "metric", "mean", "stderr", "ci_low",
                                      "ci_high", "n"])
    out.attrs.update(result.attrs)
    return out

