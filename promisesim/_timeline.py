"""Piecewise-constant boolean functions of time on ``[0, horizon)``.

A timeline is ``(times, values)``: ``times[0] == 0``, strictly increasing;
``values[i]`` holds on ``[times[i], times[i+1])`` and the last value up to
the horizon; consecutive values differ. Combining timelines merges their
breakpoints and evaluates each with ``searchsorted``, so results are exact.
"""

from __future__ import annotations

import numpy as np

Timeline = tuple[np.ndarray, np.ndarray]

ALWAYS = (np.zeros(1), np.ones(1, dtype=bool))


def normalise(times: np.ndarray, values: np.ndarray, horizon: float) -> Timeline:
    """Drop empty segments and merge equal neighbours; clip to ``[0, horizon)``."""
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=bool)
    keep = times < horizon
    times, values = times[keep], values[keep]
    # A segment is empty when the next breakpoint is at the same time: the later value wins.
    nonempty = np.ones(times.size, dtype=bool)
    nonempty[:-1] = times[1:] > times[:-1]
    times, values = times[nonempty], values[nonempty]
    change = np.ones(times.size, dtype=bool)
    change[1:] = values[1:] != values[:-1]
    return times[change], values[change]


def from_changes(change_times: np.ndarray, change_values: np.ndarray, horizon: float,
                 initial: bool = True) -> Timeline:
    """A timeline that starts at ``initial`` and takes ``change_values[i]`` at ``change_times[i]``."""
    times = np.concatenate(([0.0], change_times))
    values = np.concatenate(([initial], change_values)).astype(bool)
    return normalise(times, values, horizon)


def at_least(timelines: list[Timeline], k: int, horizon: float) -> Timeline:
    """True where at least ``k`` of the timelines are true."""
    if len(timelines) == 1 and k == 1:
        return timelines[0]
    grid = np.unique(np.concatenate([t for t, _ in timelines]))
    count = np.zeros(grid.size, dtype=np.int64)
    for times, values in timelines:
        count += values[np.searchsorted(times, grid, side="right") - 1]
    return normalise(grid, count >= k, horizon)


def value_at(timeline: Timeline, t: float) -> bool:
    times, values = timeline
    return bool(values[np.searchsorted(times, t, side="right") - 1])


def segments(timeline: Timeline, horizon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(start, end, value)`` of each segment."""
    times, values = timeline
    ends = np.append(times[1:], horizon)
    return times, ends, values
