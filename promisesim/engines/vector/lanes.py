"""Lanes for the queue kernels: a queue cut where it is empty, guessed, then proven.

:func:`~promisesim.engines.vector.events.event_queue` runs one iteration per event of
its longest lane, so its cost is the longest stretch of requests it must take in
order. A queue that is empty when a request arrives forgets everything before it:
from there on it is a lane of its own. Which requests find it empty is known only
after serving those before, so :func:`lanes_queue` guesses (at first: every request
finds it empty), serves every lane from an empty queue, and drops each cut where a
request before it had not left when it arrived, as served; the lanes a dropped cut
joins run again, and so on. When no cut looks busy, every lane is right: the first of
each segment starts empty, so it is right, so the cut after it is truly empty, so the
lane after it is right, and so on. Each round drops a cut, so the rounds end; after
:data:`MAX_ROUNDS`, the stretches still unsettled run cut only where proven. The
results are exactly those of one lane per segment.

Where requests join as they arrive and none slows the others,
:func:`arrival_order_queue` serves the lanes a request at a time instead of an event
at a time.
"""

from __future__ import annotations

import numpy as np

from .events import event_queue

__all__ = ["lanes_queue", "arrival_order_queue"]

#: Rounds of guesses before the stretches (between proven cuts) still unsettled run in
#: lanes cut only where proven. Each round runs again only the lanes it merged. Measured:
#: 10 rounds for M/M/1/5 at load 0.9 over 80,000 requests (80,000, 62,823, 56,013,
#: 38,601, 17,744, 6,131, 1,362, 320, 181, 56 requests run in rounds 1 to 10), 4 to 5 for
#: the front of a limited tandem.
MAX_ROUNDS = 16


def lanes_queue(segment: np.ndarray, arrival: np.ndarray, service: np.ndarray,
                enters: np.ndarray, servers: int, limit: int | None, slowdown: float,
                ready: np.ndarray | None = None, began: np.ndarray | None = None,
                pin: tuple[np.ndarray, np.ndarray] | None = None,
                patience: float | None = None, sure: np.ndarray | None = None,
                rounds: int = MAX_ROUNDS) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~promisesim.engines.vector.events.event_queue` (same arguments and results,
    no instances), its lanes cut where the queue is empty.

    ``sure``: requests known to find the queue empty (a segment's first always does).
    """
    n = arrival.size
    first = np.r_[True, segment[1:] != segment[:-1]] if n else np.zeros(0, dtype=bool)
    sure = first if sure is None else sure | first
    departure = arrival.copy()
    rejected = np.zeros(n, dtype=bool)
    unset = None if began is None else began.copy()   # (a wrong guess may have set some)
    resolves = arrival if ready is None else ready
    left = np.empty(n)
    # every request joins as it arrives and none slows the others: a step per request
    on_arrival = not slowdown and (ready is None or np.array_equal(ready, arrival))

    def run(idx: np.ndarray, cut: np.ndarray) -> None:
        """Serve requests ``idx`` (whole lanes) in the lanes ``cut`` starts."""
        if idx.size == 0:
            return
        lane = np.cumsum(cut)[idx]
        sub_began = None if unset is None else unset[idx]
        sub_pin = None if pin is None else (pin[0][idx], pin[1][idx])
        if on_arrival:
            d, r = arrival_order_queue(lane, arrival[idx], service[idx], enters[idx],
                                       servers, limit, began=sub_began, pin=sub_pin,
                                       patience=patience)
        else:
            d, r = event_queue(lane, arrival[idx], service[idx], enters[idx], servers, limit,
                               slowdown, ready=None if ready is None else ready[idx],
                               began=sub_began, pin=sub_pin, patience=patience)
        departure[idx], rejected[idx] = d, r
        if began is not None:
            began[idx] = sub_began
        # when each stopped counting: turned away at once, left at a wait limit, left
        # after its calls (conditions failed), or served; inf: inside until a crash
        left[idx] = np.where(r, d, np.maximum(d, resolves[idx]))

    cut = np.ones(n, dtype=bool)            # guess: every request finds the queue empty
    run(np.arange(n), cut)
    for attempt in range(rounds + 1):
        heads = np.flatnonzero(cut)
        if heads.size <= 1:
            break
        # a lane's start looks empty if every request before it in its segment left
        # before it arrived, as computed
        latest = _running_max(np.maximum.reduceat(left, heads), segment[heads])
        busy = np.r_[False, latest[:-1] >= arrival[heads[1:]]] & ~sure[heads]
        if not busy.any():
            # Every lane was served from an empty queue and every cut looks empty: the
            # first lane of each segment starts empty, so it is right, so the cut after
            # it is empty, so the lane after it is right, and so on.
            break
        cut = cut.copy()
        if attempt == rounds:
            # out of rounds: the stretches between proven cuts that still have a cut that
            # looks busy run again, cut where proven only (the others are right, as above)
            stretch = np.cumsum(sure)
            again = np.zeros(stretch[-1] + 1, dtype=bool)
            again[stretch[heads[busy]]] = True
            again = again[stretch]
            cut[again] = sure[again]
            run(np.flatnonzero(again), cut)
            break
        cut[heads[busy]] = False            # runs with the lane before it
        lane = np.cumsum(cut)
        changed = np.zeros(lane[-1] + 1, dtype=bool)
        changed[lane[heads[busy]]] = True
        run(np.flatnonzero(changed[lane]), cut)
    return departure, rejected


def _running_max(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The maximum of ``values`` up to each position within runs of equal ``group``
    (sorted), exactly: a running maximum of (group, rank of the value) packed in one
    integer."""
    n = values.size
    order = np.argsort(values, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    base = np.cumsum(np.r_[False, group[1:] != group[:-1]]) * n
    return values[order[np.maximum.accumulate(base + rank) - base]]


def arrival_order_queue(segment: np.ndarray, arrival: np.ndarray, service: np.ndarray,
                        enters: np.ndarray, servers: int, limit: int | None,
                        began: np.ndarray | None = None,
                        pin: tuple[np.ndarray, np.ndarray] | None = None,
                        patience: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~promisesim.engines.vector.events.event_queue` for requests that join as
    they arrive, without slowdown or instances: a step per request rather than per event.

    Then every request's fate is known when it arrives: FIFO on ``servers`` is the
    Kiefer-Wolfowitz recursion (it takes the server that frees first, when it frees or on
    arrival), a request that would wait longer than ``patience`` leaves then instead
    (``start > arrival + patience``: a server freeing at that instant takes it first, as
    in the event loop), and the ``limit`` counts the requests admitted before it that
    have not left (a departure or a wait limit at its arrival instant comes first). The
    loop steps through the k-th request of every lane at once, lanes longest first (the
    lanes still going are a prefix, so the state is sliced, not gathered).
    """
    n = arrival.size
    departure = arrival.copy()
    rejected = np.zeros(n, dtype=bool)
    if n == 0:
        return departure, rejected
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
    length = np.diff(np.r_[starts, n])
    order = np.argsort(-length, kind="stable")
    starts, length = starts[order], length[order]
    cap = None if limit is None else int(limit)
    # when each admitted request inside leaves (at most ``limit`` inside; none: not counted)
    inside = None if cap is None else np.full((starts.size, min(cap, n)), -np.inf)
    free = np.full((starts.size, servers), -np.inf)          # when each server frees
    wait = np.inf if patience is None else float(patience)
    going = np.searchsorted(-length, -np.arange(1, length[0] + 1), side="right")
    rows = np.arange(starts.size)
    for k in range(int(length[0])):
        m = int(going[k])                    # lanes with a k-th request
        i = starts[:m] + k
        r = rows[:m]
        a = arrival[i]
        if inside is not None:
            full = (inside[:m] > a[:, None]).sum(axis=1) >= cap
            rejected[i[full]] = True
            joins = ~full & enters[i]
        else:
            joins = enters[i]
        if not joins.any():
            continue
        i, r, a = i[joins], r[joins], a[joins]
        if servers == 1:
            j = np.zeros(i.size, dtype=np.int64)
            f = free[r, 0]
        else:
            j = np.argmin(free[r], axis=1)
            f = free[r, j]
        start = np.maximum(a, f)
        takes = ~(start > a + wait)
        s = start + service[i]
        if pin is not None:
            s = np.where(start == pin[0][i], pin[1][i], s)
        left = np.where(takes, s, a + wait)
        departure[i] = left
        rejected[i[~takes]] = True
        free[r[takes], j[takes]] = s[takes]
        if began is not None:
            began[i[takes]] = start[takes]
        if inside is not None:
            slot = np.argmin(inside[r], axis=1)   # one that has left (there is room)
            inside[r, slot] = left
    return departure, rejected
