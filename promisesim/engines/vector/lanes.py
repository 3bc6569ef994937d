"""Lanes for the event loop: a queue cut where it is empty, guessed, then proven.

:func:`~promisesim.engines.vector.events.event_queue` runs one iteration per event of
its longest lane, so its cost is the longest stretch of requests it must take in
order. A queue that is empty when a request arrives forgets everything before it:
from there on it is a lane of its own. Which requests find it empty is known only
after serving those before, so :func:`lanes_queue` guesses (at first: every request
finds it empty), runs every lane in lockstep, and checks each guess against what the
lane before found: a lane that starts at a proven cut is right, and so is the cut
after it if every request of the lane left before the next one arrived. Cuts that look
wrong are dropped (the lanes they separated run again as one); the proven prefix grows
by at least one lane a round, and typically all of it in a few rounds, because where
the queue is busy the first round already shows it. The results are those of one run
over the whole segments, exactly: only lanes from proven cuts are kept.
"""

from __future__ import annotations

import numpy as np

from .events import event_queue

__all__ = ["lanes_queue"]

#: Rounds of guesses before the remaining requests run in lanes cut only where proven.
#: Measured on M/M/1/K at load 0.9 and a limited tandem: 3 to 5 rounds settle every cut.
MAX_ROUNDS = 8


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
    if n == 0:
        return event_queue(segment, arrival, service, enters, servers, limit, slowdown,
                           ready=ready, began=began, pin=pin, patience=patience)
    first = np.r_[True, segment[1:] != segment[:-1]]
    sure = first if sure is None else sure | first
    cut = np.ones(n, dtype=bool)            # guess: every request finds the queue empty
    final = np.zeros(n, dtype=bool)         # requests whose results are proven
    departure = arrival.copy()
    rejected = np.zeros(n, dtype=bool)
    resolves = arrival if ready is None else ready
    unset = None if began is None else began.copy()   # (a guess may have set some)
    for attempt in range(rounds + 1):
        if attempt == rounds:
            cut = sure                      # give up guessing: proven cuts only
        idx = np.flatnonzero(~final)
        lane = np.cumsum(cut)[idx]
        sub_began = None if unset is None else unset[idx]
        d, r = event_queue(lane, arrival[idx], service[idx], enters[idx], servers, limit,
                           slowdown, ready=None if ready is None else ready[idx],
                           began=sub_began,
                           pin=None if pin is None else (pin[0][idx], pin[1][idx]),
                           patience=patience)
        departure[idx], rejected[idx] = d, r
        if began is not None:
            began[idx] = sub_began
        if attempt == rounds:
            break
        # when each request stopped counting: turned away at once, left at a wait limit,
        # left after its calls (conditions failed), or served; inf: inside until a crash
        left = np.where(r, d, np.maximum(d, resolves[idx]))
        starts = np.flatnonzero(np.r_[True, lane[1:] != lane[:-1]])
        head = idx[starts]
        # a lane's start looks empty if every request before it (in its segment, as this
        # round found them) left before it arrived
        latest = _running_max(left, segment[idx])
        looks = np.r_[True, latest[starts[1:] - 1] < arrival[head[1:]]]
        proven = sure[head]
        # proven: a chain of lanes from a proven start, each looking empty after the last
        broken = np.cumsum(~(looks | proven))
        chain = np.cumsum(proven) - 1       # (the first pending lane's start is proven)
        now = broken == broken[np.flatnonzero(proven)][chain]
        sure = sure.copy()
        sure[head[now]] = True
        cut = cut.copy()
        cut[head[~looks & ~proven]] = False   # looked busy: runs with the lane before
        # a lane is done when its start and the start after it are proven
        after = idx[np.r_[starts[1:], idx.size] - 1] + 1   # the request after each lane
        nxt = (after >= n) | sure[np.minimum(after, n - 1)]
        done = now & nxt
        if done.all():
            break
        final[idx[np.repeat(done, np.diff(np.r_[starts, idx.size]))]] = True
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
