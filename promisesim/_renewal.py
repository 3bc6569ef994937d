"""Renewal processes for many streams at once: instants as cumulative sums of keyed draws."""

from __future__ import annotations

import math

import numpy as np

from .random import Streams

__all__ = ["renewal_instants"]


def renewal_instants(keys: list[tuple[np.ndarray, np.ndarray]], dists: list, horizon: float,
                     start: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Instants of a cycle of durations drawn from ``dists``, repeated, for many streams.

    ``keys[j]`` holds the stream keys of duration ``j`` of the cycle for every row (one
    row per replication, or per agent and replication). Returns flat ``(row, instant,
    phase)`` for every instant below the horizon, sorted by row then time; ``phase`` is the
    index of the duration that *ends* at the instant. Instants are cumulative sums in draw
    order: the same floating-point additions as a sequential event loop. Durations are
    drawn in blocks, and only rows still short of the horizon get more. The first
    duration starts at ``start``.
    """
    n_parts = len(dists)
    n_rows = keys[0][0].size
    expected = max(horizon - start, 0.0) / sum(dist.mean for dist in dists)
    # About the expected count plus one standard deviation: the few streams that need more
    # are topped up; drawing far more than needed would cost more than the extra rounds.
    block = int(expected + math.sqrt(expected) + 2)
    rows = np.arange(n_rows)
    carry = np.full(n_rows, float(start))
    start = 0
    out_row, out_time, out_phase = [], [], []
    while rows.size:
        # Draw index runs down the first axis, streams across: the running sum over axis 0
        # adds whole contiguous rows at a time, and is still x[i-1] + x[i] per stream.
        idx = np.arange(start, start + block, dtype=np.uint64)[:, None]
        durations = np.empty((block * n_parts, rows.size))
        for j, (dist, (k0, k1)) in enumerate(zip(dists, keys)):
            durations[j::n_parts] = Streams.draw_at(dist, k0[None, rows], k1[None, rows], idx)
        durations[0] += carry[rows]
        instants = np.cumsum(durations, axis=0)
        inside = instants < horizon
        c, r = np.nonzero(inside)
        out_row.append(rows[r])
        out_time.append(instants[inside])   # the same (c-major) order as nonzero
        out_phase.append(c % n_parts)
        more = inside[-1]  # streams whose last instant is still inside need more draws
        carry[rows[more]] = instants[-1, more]
        rows = rows[more]
        start += block
        block = max(4, block // 2)
    row = np.concatenate(out_row)
    time = np.concatenate(out_time)
    phase = np.concatenate(out_phase)
    # Within a stream, later rounds and later draws are later instants: a stable sort by
    # stream is enough.
    order = np.argsort(row, kind="stable")
    return row[order], time[order], phase[order]
