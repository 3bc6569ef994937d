"""Boolean states over time for every replication at once (agents up, promises kept).

A :class:`Timelines` holds one piecewise-constant boolean function of time on
``[0, horizon)`` per replication, as its *changes*: flat arrays ``rep, time,
value`` sorted by replication then time, where each row is an instant at
which the value changes. Every function is true at time 0 unless a change at
time 0 says otherwise; consecutive changes of a replication alternate, and all
instants are below the horizon. Combining timelines merges their change
instants and keeps running counts, so every result is exact, and every
operation is a handful of numpy calls whatever the number of replications.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Callable

import numpy as np


def slice_count(horizon: float, width: float) -> int:
    """How many slices ``[j * width, (j + 1) * width)`` cover ``[0, horizon)``: the last
    starts before the horizon (``horizon / width`` can round up past a whole number)."""
    n = int(math.ceil(horizon / width))
    return n - 1 if n > 1 and (n - 1) * width >= horizon else n


@dataclass(frozen=True)
class Timelines:
    """Changes of one boolean state in each of ``n_reps`` replications (see the module docstring)."""

    rep: np.ndarray
    time: np.ndarray
    value: np.ndarray
    n_reps: int

    @staticmethod
    def from_changes(rep: np.ndarray, time: np.ndarray, value: np.ndarray, n_reps: int,
                     horizon: float) -> "Timelines":
        """Normalise raw changes: sort, keep the last value at each instant, drop non-changes."""
        rep = np.asarray(rep, dtype=np.int64)
        time = np.asarray(time, dtype=np.float64)
        value = np.asarray(value, dtype=bool)
        keep = time < horizon
        rep, time, value = rep[keep], time[keep], value[keep]
        order = np.lexsort((time, rep))
        return _normalise(rep[order], time[order], value[order], n_reps)

    @staticmethod
    def always(n_reps: int) -> "Timelines":
        empty = np.empty(0)
        return Timelines(empty.astype(np.int64), empty, empty.astype(bool), n_reps)

    def value_at(self, rep: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The value in replication ``rep[i]`` at instant ``t[i]`` (a change at ``t`` counts)."""
        if self.time.size == 0:
            return np.ones(np.shape(t), dtype=bool)
        last = _last_at_or_before(self.rep, self.time, np.asarray(rep), np.asarray(t, dtype=float))
        return np.where(last >= 0, self.value[np.maximum(last, 0)], True)

    def segments(self, horizon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(rep, start, end, value)`` of every segment, the first of each replication included."""
        n, m = self.n_reps, self.rep.size
        # each replication's initial segment goes just before its first change
        first = np.searchsorted(self.rep, np.arange(n)) + np.arange(n)
        rest = np.ones(n + m, dtype=bool)
        rest[first] = False
        rep = np.empty(n + m, dtype=np.int64)
        start = np.zeros(n + m)
        value = np.ones(n + m, dtype=bool)
        rep[first] = np.arange(n)
        rep[rest], start[rest], value[rest] = self.rep, self.time, self.value
        end = np.empty(rep.size)
        end[:-1] = start[1:]
        last = np.ones(rep.size, dtype=bool)
        last[:-1] = rep[1:] != rep[:-1]
        end[last] = horizon
        nonempty = end > start   # a change at time 0 empties the initial segment
        return rep[nonempty], start[nonempty], end[nonempty], value[nonempty]

    def kept_per_slice(self, horizon: float, width: float) -> np.ndarray:
        """The time kept in each slice ``[j * width, (j + 1) * width)`` of the horizon (the last
        one cut at the horizon), per replication: an array (replications x slices)."""
        n_slices = slice_count(horizon, width)
        broken = np.zeros((self.n_reps, n_slices + 1))
        full = np.zeros((self.n_reps, n_slices + 1))   # whole broken slices, as differences
        rep, start, end, value = self.segments(horizon)
        rep, start, end = rep[~value], start[~value], end[~value]
        first = np.minimum((start // width).astype(np.int64), n_slices - 1)
        last = np.minimum((end // width).astype(np.int64), n_slices)
        same = first == last
        np.add.at(broken, (rep[same], first[same]), end[same] - start[same])
        rep, start, end, first, last = (x[~same] for x in (rep, start, end, first, last))
        np.add.at(broken, (rep, first), (first + 1) * width - start)     # the first, in part
        np.add.at(broken, (rep, last), end - last * width)              # the last, in part
        np.add.at(full, (rep, first + 1), 1.0)                           # those in between
        np.add.at(full, (rep, last), -1.0)
        broken += np.cumsum(full, axis=1) * width
        lengths = np.minimum(np.arange(1, n_slices + 1) * width, horizon) \
            - np.arange(n_slices) * width
        return lengths[None, :] - broken[:, :n_slices]

    def metrics(self, horizon: float) -> dict[str, np.ndarray]:
        """Per replication: kept time, broken time, breaks, longest break, mean time to restore.

        A break still under way at the horizon counts in ``breaks`` and
        ``longest_break`` but not in ``mean_time_to_restore`` (NaN when no break ended).
        """
        n = self.n_reps
        rep, start, end, value = self.segments(horizon)
        length = end - start
        broken = ~value
        broken_time = np.bincount(rep[broken], weights=length[broken], minlength=n)
        breaks = np.bincount(rep[broken], minlength=n)
        longest = np.zeros(n)
        np.maximum.at(longest, rep[broken], length[broken])
        ended = broken & (end < horizon)
        restored = np.bincount(rep[ended], minlength=n)
        restore_time = np.bincount(rep[ended], weights=length[ended], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mttr = np.where(restored > 0, restore_time / np.maximum(restored, 1), np.nan)
        return {
            "kept_fraction": (horizon - broken_time) / horizon,
            "broken_time": broken_time,
            "breaks": breaks,
            "longest_break": longest,
            "mean_time_to_restore": mttr,
        }


def at_least(parts: list[Timelines], k: int) -> Timelines:
    """True where at least ``k`` of ``parts`` are true (AND for k = len, OR for k = 1)."""
    if len(parts) == 1 and k == 1:
        return parts[0]
    n_reps = parts[0].n_reps
    rep = np.concatenate([p.rep for p in parts])
    time = np.concatenate([p.time for p in parts])
    delta = np.concatenate([np.where(p.value, 1, -1) for p in parts])
    if rep.size == 0:
        return Timelines.always(n_reps) if len(parts) >= k else _never(n_reps)
    order = np.lexsort((time, rep))
    rep, time, delta = rep[order], time[order], delta[order]
    # running count of true parts within each replication, all true at time 0
    running = np.cumsum(delta)
    first = np.ones(rep.size, dtype=bool)
    first[1:] = rep[1:] != rep[:-1]
    base = np.maximum.accumulate(np.where(first, np.arange(rep.size), 0))
    before = running[base] - delta[base]
    count = len(parts) + running - before
    return _normalise(rep, time, count >= k, n_reps)


def _never(n_reps: int) -> Timelines:
    return Timelines(np.arange(n_reps, dtype=np.int64), np.zeros(n_reps),
                     np.zeros(n_reps, dtype=bool), n_reps)


def _normalise(rep: np.ndarray, time: np.ndarray, value: np.ndarray, n_reps: int) -> Timelines:
    """From rows sorted by (rep, time): the last value at each instant, changes only."""
    n = rep.size
    if n == 0:
        return Timelines(rep, time, value, n_reps)
    last = np.ones(n, dtype=bool)
    last[:-1] = (rep[1:] != rep[:-1]) | (time[1:] != time[:-1])
    rep, time, value = rep[last], time[last], value[last]
    previous = np.ones(rep.size, dtype=bool)       # every state starts true
    previous[1:] = value[:-1]
    previous[np.flatnonzero(np.r_[True, rep[1:] != rep[:-1]])] = True
    change = value != previous
    return Timelines(rep[change], time[change], value[change], n_reps)


def _last_at_or_before(ch_rep: np.ndarray, ch_time: np.ndarray, q_rep: np.ndarray,
                       q_time: np.ndarray) -> np.ndarray:
    """Index of the last change with the query's replication and ``time <= query time``, or -1.

    Changes are sorted by (replication, time). Queries in order, over few replications,
    are placed by runs (:func:`_by_replication`); others by a binary search of every
    query at once within its replication's changes (no sort: a table's many lookups of
    a few queries each among many changes cost the queries, not the changes).
    """
    n = ch_time.size
    q_rep = np.asarray(q_rep, dtype=np.int64).ravel()
    q_time = np.asarray(q_time, dtype=np.float64).ravel()
    if n == 0:
        return np.full(q_time.size, -1, dtype=np.int64)
    if q_rep.size and bool((q_rep[1:] >= q_rep[:-1]).all()):
        first, last = int(q_rep[0]), int(q_rep[-1])
        if last - first <= max(64, q_rep.size >> 8):
            return _by_replication(ch_rep, ch_time, q_rep, q_time, first, last, _last_index)
    start, after, _ = _first_after(ch_rep, ch_time, q_rep, q_time)
    return np.where(after > start, after - 1, -1)


def _first_after(ch_rep: np.ndarray, ch_time: np.ndarray, q_rep: np.ndarray,
                 q_time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query, its replication's changes ``start:end`` and the index of the first
    of them strictly after the query (``end`` if none): a binary search of every query at
    once, no sort. Changes are sorted by (replication, time) and not empty."""
    n = ch_time.size
    start = np.searchsorted(ch_rep, q_rep, side="left")
    end = np.searchsorted(ch_rep, q_rep, side="right")
    lo, hi = start.copy(), end.copy()
    # the answer lies in [lo, hi]: halve that range for every query (a change at the query
    # instant counts as before it)
    for _ in range(int(np.max(hi - lo, initial=0)).bit_length()):
        open_ = lo < hi
        mid = (lo + hi) >> 1
        after = ch_time[np.minimum(mid, n - 1)] > q_time
        np.copyto(hi, mid, where=open_ & after)
        np.copyto(lo, mid + 1, where=open_ & ~after)
    return start, lo, end


def _by_replication(ch_rep: np.ndarray, ch_time: np.ndarray, q_rep: np.ndarray,
                    q_time: np.ndarray, first: int, last: int,
                    gaps: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """For queries sorted by replication, few replications (``first`` to ``last``): the
    value of the gap between changes that each query falls in. ``gaps(c, d)`` gives the
    ``d - c + 1`` values of a replication whose changes are ``c:d``: before the first
    change, then after each (a change at the query instant counts as before it).

    Where a replication's queries are in time order (the usual case: requests in arrival
    order), its few changes are placed among its many queries and the answer is a run of
    equal values between consecutive changes: one ``np.repeat`` for every replication.
    Otherwise each query is searched among its replication's changes."""
    reps = np.arange(first, last + 2)
    q_bounds = np.searchsorted(q_rep, reps).tolist()
    c_bounds = np.searchsorted(ch_rep, reps).tolist()
    values: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    for i in range(reps.size - 1):
        a, b = q_bounds[i], q_bounds[i + 1]
        if a == b:
            continue
        c, d = c_bounds[i], c_bounds[i + 1]
        t = q_time[a:b]
        values_here = gaps(c, d)
        if b - a == 1 or bool((t[1:] >= t[:-1]).all()):
            at = np.searchsorted(t, ch_time[c:d], side="left")   # the gap after change j from here
            values.append(values_here)
            lengths.append(np.diff(at, prepend=0, append=b - a))
        else:
            values.append(values_here[np.searchsorted(ch_time[c:d], t, side="right")])
            lengths.append(np.ones(b - a, dtype=np.int64))
    return np.repeat(np.concatenate(values), np.concatenate(lengths))


def _last_index(c: int, d: int) -> np.ndarray:
    """Gap values for :func:`_last_at_or_before`: the index of the change before, or -1."""
    covers = np.arange(c - 1, d)
    covers[0] = -1
    return covers


def _next_change_time(ch_rep: np.ndarray, ch_time: np.ndarray, q_rep: np.ndarray,
                      q_time: np.ndarray) -> np.ndarray:
    """Instant of the first change strictly after each query in the query's replication,
    or inf. Changes are sorted by (replication, time).

    For queries sorted by replication, few replications, each in time order (requests in
    arrival order), the answer is a run of equal instants between consecutive changes: one
    ``np.repeat`` of the change instants (:func:`_by_replication`). Otherwise each query
    is searched among its replication's changes (:func:`_first_after`).
    """
    n = ch_time.size
    q_rep = np.asarray(q_rep, dtype=np.int64).ravel()
    q_time = np.asarray(q_time, dtype=np.float64).ravel()
    if n == 0 or q_rep.size == 0:
        return np.full(q_time.size, np.inf)
    first, last = int(q_rep[0]), int(q_rep[-1])
    if last - first <= max(64, q_rep.size >> 8) and bool((q_rep[1:] >= q_rep[:-1]).all()):
        return _by_replication(ch_rep, ch_time, q_rep, q_time, first, last,
                               lambda c, d: np.append(ch_time[c:d], np.inf))
    _, after, end = _first_after(ch_rep, ch_time, q_rep, q_time)
    return np.where(after < end, ch_time[np.minimum(after, n - 1)], np.inf)


def _values_at_ordered(ch_time: np.ndarray, ch_value: np.ndarray, ch_bounds: np.ndarray,
                       q_rep: np.ndarray, q_time: np.ndarray) -> np.ndarray | None:
    """The value of a boolean state (true before its replication's first change) at each
    query, for queries sorted by (replication, time); a change at the query instant counts.

    Changes of replication ``r`` are ``ch_bounds[r]:ch_bounds[r + 1]``, sorted by time.
    Rather than searching each query among the changes, each change (few) is placed among
    the queries (many) and flips the state there: the result is one running XOR of a
    boolean array. Returns None when the queries are not in that order, or span too many
    replications for a loop over them (then use :func:`_last_at_or_before`).
    """
    nq = q_time.size
    if nq == 0:
        return np.ones(0, dtype=bool)
    first, last = int(q_rep[0]), int(q_rep[-1])
    if last - first > max(64, nq >> 8) or not bool((q_rep[1:] >= q_rep[:-1]).all()):
        return None
    reps = np.arange(first, last + 2)
    q_bounds = np.searchsorted(q_rep, reps).tolist()
    c_bounds = np.asarray(ch_bounds)[first:last + 2].tolist()
    flips = []
    for i in range(reps.size - 1):
        a, b = q_bounds[i], q_bounds[i + 1]
        c, d = c_bounds[i], c_bounds[i + 1]
        if a == b or c == d:
            continue
        t = q_time[a:b]
        if b - a > 1 and not bool((t[1:] >= t[:-1]).all()):
            return None
        values = ch_value[c:d]
        changed = np.empty(d - c, dtype=bool)
        changed[0] = not values[0]
        np.not_equal(values[1:], values[:-1], out=changed[1:])
        flips.append(a + np.searchsorted(t, ch_time[c:d][changed], side="left"))
        if not values[-1]:
            flips.append(np.array([b]))   # back to true for the next replication's queries
    marks = np.zeros(nq + 1, dtype=bool)
    marks[0] = True
    if flips:
        np.bitwise_xor.at(marks.view(np.uint8), np.concatenate(flips), 1)
    return np.logical_xor.accumulate(marks[:nq])
