"""Renewal processes for many streams at once: instants as cumulative sums of keyed draws."""

from __future__ import annotations

import math

import numpy as np

from .random import Streams, _ONE, _S11, _TWO_POW_M53, _U_GOLDEN, _mix_buffered

__all__ = ["renewal_instants", "renewal_counts"]

#: Elements of one working block (streams x draws): small enough to stay in the CPU's cache,
#: large enough that numpy's per-call overhead is small.
_BLOCK_ELEMENTS = 1 << 16


def renewal_instants(keys: list[tuple[np.ndarray, np.ndarray]], dists: list, horizon: float,
                     start: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Instants of a cycle of durations drawn from ``dists``, repeated, for many streams.

    ``keys[j]`` holds the stream keys of duration ``j`` of the cycle for every row (one
    row per replication, or per agent and replication). Returns flat ``(row, instant,
    phase)`` for every instant below the horizon, sorted by row then time; ``phase`` is the
    index of the duration that *ends* at the instant. Instants are cumulative sums in draw
    order: the same floating-point additions as a sequential event loop. The first
    duration starts at ``start``.
    """
    counts, time, phase = renewal_counts(keys, dists, horizon, start)
    row = np.repeat(np.arange(counts.size), counts)
    return row, time, phase


def renewal_counts(keys: list[tuple[np.ndarray, np.ndarray]], dists: list, horizon: float,
                   start: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`renewal_instants`, with the instants per row (``counts``) in place of ``row``.

    Rows are computed in small groups, and each group's durations in blocks of draws (about
    the expected count plus one standard deviation, at most a cache-sized block): only rows
    still short of the horizon get more. ``phase`` is int8.
    """
    n_parts = len(dists)
    n_rows = keys[0][0].size
    cycle_mean = sum(dist.mean for dist in dists)
    expected = max(horizon - start, 0.0) / cycle_mean
    first = int(expected + math.sqrt(expected) + 2)
    # Rows per group: enough for the first block of draws to fill a working block.
    per_group = max(1, _BLOCK_ELEMENTS // max(1, first * n_parts))
    counts = np.zeros(n_rows, dtype=np.int64)
    times, phases = [], []
    work = _Work()
    for lo in range(0, n_rows, per_group):
        hi = min(n_rows, lo + per_group)
        c, t, p = _group(keys, dists, horizon, lo, hi, n_parts, cycle_mean, start, work)
        counts[lo:hi] = c
        times.append(t)
        phases.append(p)
    if len(times) == 1:
        return counts, times[0], phases[0]
    return counts, np.concatenate(times), np.concatenate(phases)


class _Work:
    """Buffers reused from block to block: fresh ones of this size (a few hundred kB) are
    page-faulted in each time (the allocator hands such blocks back to the system)."""

    def __init__(self) -> None:
        self.size = 0

    def get(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Two uint64 buffers and one float64 buffer of ``shape``."""
        n = shape[0] * shape[1]
        if n > self.size:
            self.size = max(n, _BLOCK_ELEMENTS)
            self.words = np.empty((2, self.size), dtype=np.uint64)
            self.floats = np.empty(self.size)
        return (self.words[0, :n].reshape(shape), self.words[1, :n].reshape(shape),
                self.floats[:n].reshape(shape))


def _durations(dist, k0: np.ndarray, k1: np.ndarray, start: int, width: int,  # type: ignore[no-untyped-def]
               out: np.ndarray, work: _Work) -> None:
    """Draws ``start .. start + width`` of streams ``(k0, k1)`` into ``out``, shape
    ``(streams, width)`` (a view, possibly strided).

    The same operations as :meth:`Streams.draw_at`, done in place on ``work``'s buffers.
    """
    if dist.n_uniforms != 1 or not dist.is_random:
        idx = np.arange(start, start + width, dtype=np.uint64)[None, :]
        out[...] = Streams.draw_at(dist, k0[:, None], k1[:, None], idx)
        return
    x = np.arange(start, start + width, dtype=np.uint64)
    x *= _U_GOLDEN
    w, t, _ = work.get((k0.size, width))
    np.add(x[None, :], k0[:, None], out=w)
    _mix_buffered(w, t)
    w ^= k1[:, None]
    _mix_buffered(w, t)
    w >>= _S11
    w += _ONE
    u = t.view(np.float64)   # the buffer, reused
    np.multiply(w, _TWO_POW_M53, out=u, casting="unsafe")   # exact: below 2**53
    out[...] = dist.from_uniforms(u.reshape(1, -1)).reshape(u.shape)


def _group(keys, dists, horizon: float, lo: int, hi: int, n_parts: int,  # type: ignore[no-untyped-def]
           cycle_mean: float, origin: float, work: _Work) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Instants of rows ``lo .. hi``: counts per row, instants and phases sorted by row."""
    n = hi - lo
    rows = np.arange(n)
    carry = np.full(n, float(origin))
    start = 0
    rounds = []   # (rows, counts, instants, phases) of each block of draws
    remaining = max(horizon - origin, 0.0)
    while rows.size:
        rem = remaining / cycle_mean
        block = int(rem + math.sqrt(rem) + 2)
        block = max(4, min(block, _BLOCK_ELEMENTS // (rows.size * n_parts)))
        width = block * n_parts
        # Streams down the first axis, draws across: the running sum along a row is
        # x[i-1] + x[i] per stream, as in a sequential event loop.
        durations = work.get((rows.size, width))[2]
        g = rows + lo
        for j, (dist, (k0, k1)) in enumerate(zip(dists, keys)):
            _durations(dist, k0[g], k1[g], start, block, durations[:, j::n_parts], work)
        durations[:, 0] += carry[rows]
        instants = np.cumsum(durations, axis=1, out=durations)
        inside = instants < horizon   # a prefix of each row: durations are not negative
        count = np.count_nonzero(inside, axis=1)
        found = instants[inside]
        if n_parts == 1:   # every instant ends the one duration
            phase = np.zeros(found.size, dtype=np.int8)
        else:
            pattern = (np.arange(width) % n_parts).astype(np.int8)
            phase = np.broadcast_to(pattern, inside.shape)[inside]
        rounds.append((rows, count, found, phase))
        more = count == width  # streams whose last instant is still inside need more draws
        last = instants[more, -1]
        carry[rows[more]] = last
        rows = rows[more]
        if rows.size:
            remaining = horizon - float(last.min())
        start += block
    if len(rounds) == 1:
        _, count, t, p = rounds[0]
        return count, t, p
    if n == 1:   # one row: its rounds one after another
        return (np.array([sum(int(r[1][0]) for r in rounds)]), np.concatenate([r[2] for r in rounds]),
                np.concatenate([r[3] for r in rounds]))
    counts = np.zeros(n, dtype=np.int64)
    for rows_r, count_r, _, _ in rounds:
        counts[rows_r] += count_r
    offset = np.zeros(n, dtype=np.int64)   # where each row's next instants go
    offset[1:] = np.cumsum(counts)[:-1]
    total = int(counts.sum())
    time = np.empty(total)
    phase = np.empty(total, dtype=np.int8)
    for rows_r, count_r, t_r, p_r in rounds:
        # position of each instant: its row's offset plus its rank within the round
        seg_start = np.cumsum(count_r) - count_r
        pos = np.repeat(offset[rows_r] - seg_start, count_r) + np.arange(t_r.size)
        time[pos] = t_r
        phase[pos] = p_r
        offset[rows_r] += count_r
    return counts, time, phase
