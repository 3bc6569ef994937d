"""FIFO queues without a limit: departures from ready instants and service times.

Single-server queues by running sums restarted at busy periods; multi-server
queues by the Kiefer-Wolfowitz recursion, run on chunks of the history (few
replications) or in lockstep over replications (many).
"""

from __future__ import annotations

import numpy as np

from .kernels import _segmented_accumulate

#: From this many replications in a batch, multi-server queues use the lockstep recursion
#: (one step per queue position for all replications) rather than recursing within busy
#: periods. Measured on the quorum benchmark (16 replications a batch): busy periods 1.3x
#: faster; their loop's trip count is the longest busy period, not the longest history.
_LOCKSTEP_MIN_REPLICATIONS = 256


def _single_server(rep: np.ndarray, ready: np.ndarray, service: np.ndarray,
                   segment: np.ndarray, pin: Pin | None = None) -> np.ndarray | None:
    """Departures of single-server FIFO queues without a loop over requests.

    Within a busy period each departure is the previous one plus a service time, so the
    departures are a running sum restarted at each busy period (bit-identical to the
    event loop's ``max(ready, previous departure) + service``). Busy periods start where a
    request finds the server idle: found from a Lindley estimate (cumulative maximum),
    then checked against the exact departures and corrected until they agree. Returns
    None if that does not settle (the caller then uses the general recursion). A request
    pinned (``pin``) that takes the server at its pinned instant restarts the sum there,
    at its pinned departure.
    """
    n = rep.size
    group = np.ones(n, dtype=bool)
    group[1:] = (rep[1:] != rep[:-1]) | (segment[1:] != segment[:-1])
    # Nobody waits (a server with no service time, or a light load): every departure is
    # max(ready, previous departure) + service with ready the larger.
    bound = ready + service if pin is None else _pinned(ready, service, pin)
    if bool((group[1:] | (ready[1:] >= bound[:-1])).all()):
        return bound
    # Lindley estimate: d_i = S_i + max_{j <= i} (r_j - S_{j-1}) within each group
    total = _segmented_accumulate(np.add, service, group, 0.0)
    estimate = total + _segmented_accumulate(np.maximum, ready - (total - service), group, -np.inf)
    if pin is not None:
        return _single_server_pinned(group, ready, service, bound, pin, estimate)
    starts = group.copy()   # where the request finds the server idle
    starts[1:] |= ready[1:] > estimate[:-1]
    values = np.where(starts, bound, service)
    done = _segmented_accumulate(np.add, values, starts, 0.0)
    for _ in range(8):
        checked = group.copy()
        checked[1:] |= ready[1:] > done[:-1]
        if np.array_equal(checked, starts):
            return done
        changed = checked != starts
        # busy periods are independent: recompute only those that changed
        sub = _periods_to_redo(checked, changed)
        s_sub = checked[sub]
        values = np.where(s_sub, bound[sub], service[sub])
        done[sub] = _segmented_accumulate(np.add, values, s_sub, 0.0)
        starts = checked
    return None


def _single_server_pinned(group: np.ndarray, ready: np.ndarray, service: np.ndarray,
                          bound: np.ndarray, pin: Pin, estimate: np.ndarray) -> np.ndarray | None:
    """:func:`_single_server` with pinned requests: a request restarts the running sum
    where it finds the server idle (at ``bound``) or, busy, takes it at its pinned instant
    (at its pinned departure). From a guess (pinned departures where pinned, the Lindley
    ``estimate`` elsewhere), corrected until the restarts agree with the departures they
    give: each correction settles at least the first wrong request of each busy period,
    and pins that hold (the usual case) are right from the start."""
    at, end = pin
    done = np.where(np.isnan(at), estimate, end)
    for _ in range(16):
        previous = np.where(group, -np.inf, np.r_[-np.inf, done[:-1]])
        idle = group | (ready > previous)
        held = ~idle & (previous == at)   # busy, and the server frees at the pinned instant
        restart = idle | held
        values = np.where(idle, bound, np.where(held, end, service))
        new = _segmented_accumulate(np.add, values, restart, 0.0)
        if np.array_equal(new, done):
            return done
        done = new
    return None


#: Pinned requests of a queue (:func:`_fifo`): ``(at, end)``, float arrays aligned with its
#: requests. A request that takes its server exactly at ``at`` leaves at ``end`` (not at
#: ``at + service``: no float ``service`` need give that sum); NaN ``at``: not pinned.
Pin = tuple[np.ndarray, np.ndarray]


def _pinned(start: np.ndarray, service: np.ndarray, pin: Pin) -> np.ndarray:
    """Departures of requests taking their server at ``start``: ``start + service``, or the
    pinned departure where ``start`` is the pinned instant."""
    at, end = pin
    return np.where(start == at, end, start + service)


def _fifo(rep: np.ndarray, ready: np.ndarray, service: np.ndarray, segment: np.ndarray,
          servers: int, n_reps: int, start: np.ndarray | None = None,
          pin: Pin | None = None) -> np.ndarray:
    """Departure instants of FIFO queues with ``servers`` servers, one queue per replication.

    Entries are sorted by (replication, ready instant). ``segment`` (the instant of the
    next crash) changes when a crash has emptied the queue. The loop advances every
    replication by one queue position per iteration (Kiefer-Wolfowitz recursion: each
    request takes the server that frees first), so its trip count is the longest queue
    history of one replication, not the number of events. ``start``, if given, receives
    when each request takes its server (``max(ready, free)``, the instant each departure
    adds the service time to). ``pin`` (:data:`Pin`): requests whose departure is fixed
    if they take their server at a given instant.
    """
    n = rep.size
    if servers == 1 and n:
        done = _single_server(rep, ready, service, segment, pin)
        if done is not None:
            if start is not None:
                _single_server_starts(rep, ready, segment, done, start)
            return done
    # Below many replications the lockstep loop would take one step per request for little
    # work, so run chunks of the history at once instead (see _LOCKSTEP_MIN_REPLICATIONS;
    # measured since: chunks are also 2 to 8x faster than lockstep at 256 to 10,000
    # replications, except for an overloaded queue, whose corrections walk its history).
    if servers > 1 and n and n_reps < _LOCKSTEP_MIN_REPLICATIONS:
        done = _multi_server(rep, ready, service, segment, servers, start, pin)
        if done is not None:
            return done
    return _lockstep(rep, ready, service, segment, servers, n_reps, start, pin)


def _single_server_starts(rep: np.ndarray, ready: np.ndarray, segment: np.ndarray,
                          done: np.ndarray, start: np.ndarray) -> None:
    """When each request of single-server queues took the server: its ready instant, or the
    departure before it in the same queue if later (written into ``start``)."""
    start[:] = ready
    if rep.size > 1:
        same = (rep[1:] == rep[:-1]) & (segment[1:] == segment[:-1])
        np.maximum(ready[1:], np.where(same, done[:-1], -np.inf), out=start[1:])


def _multi_server(rep: np.ndarray, ready: np.ndarray, service: np.ndarray, segment: np.ndarray,
                  servers: int, start: np.ndarray | None = None,
                  pin: Pin | None = None) -> np.ndarray | None:
    """Departures of multi-server FIFO queues: the Kiefer-Wolfowitz recursion run on
    fixed-length chunks of the queue history at once, each guessed to start empty, then
    corrected where that guess was wrong.

    ``free`` (the servers' free instants, sorted) is all the state: a request leaves at
    ``max(ready, free[0]) + service`` and its server's instant is replaced by that. Ready
    instants never decrease within a queue, so once a request finds every server free
    (``ready >= free[-1]``) the older instants no longer matter: two states that agree above
    ``ready`` give the same departures from there on. So the history is cut into chunks
    (:func:`_chunk_length` requests) advanced together, each from an empty queue. A chunk
    whose first request, after the previous chunk's final state, would not find every
    server free is recomputed from that state by a lane that walks on (into later chunks if
    need be) until its queue empties or is reset by a crash: the lanes' loop runs for the
    longest such stretch, a busy period, not for the history. A lane started from a state
    that a lane behind it later corrects is overwritten by that lane, position by position,
    up to where the corrected queue empties, after which both agree (states only ever err
    low, and the recursion is monotone in its state).

    Chunks are advanced a tile at a time (about :data:`_TILE_ELEMENTS` requests), copied
    into small reused buffers with positions as rows: large fresh arrays would cost page
    faults, and whole-array transposes a pass through memory each.
    """
    n = rep.size
    # a queue starts empty: each replication (rep is sorted), and after each crash
    resets = np.union1d(np.searchsorted(rep, np.arange(rep[0] + 1, rep[-1] + 1)),
                        np.flatnonzero(segment[1:] != segment[:-1]) + 1)
    width = _chunk_length(n)
    chunks = -(-n // width)
    tile = min(chunks, max(1, _TILE_ELEMENTS // width))
    chunk_of, offset = np.divmod(resets, width)
    starts_empty = np.zeros(chunks, dtype=bool)   # chunk starts at a reset (or is the first)
    starts_empty[0] = True
    starts_empty[chunk_of[offset == 0]] = True
    inside = offset > 0
    chunk_of, offset = chunk_of[inside], offset[inside]
    tile_bounds = np.searchsorted(chunk_of, np.arange(0, chunks + tile, tile)).tolist()
    grid_ready = np.empty((width, tile))
    grid_service = np.empty((width, tile))
    grid_done = np.empty((width, tile))
    grid_start = None if start is None else np.empty((width, tile))
    grid_at = None if pin is None else np.empty((width, tile))
    grid_end = None if pin is None else np.empty((width, tile))
    free = [np.empty(tile) for _ in range(servers)]
    spare = np.empty(tile)
    final = np.empty((servers, chunks))   # each chunk's state after its last request
    done = np.empty(n)
    for t, lo in enumerate(range(0, chunks, tile)):
        hi = min(chunks, lo + tile)
        cols = hi - lo
        first, last = lo * width, min(n, hi * width)
        whole = (last - first) // width   # chunks of this tile without padding
        cut = first + whole * width
        r, s, d = grid_ready[:, :cols], grid_service[:, :cols], grid_done[:, :cols]
        r[:, :whole] = ready[first:cut].reshape(whole, width).T
        s[:, :whole] = service[first:cut].reshape(whole, width).T
        if cut < last:   # the history's last, short chunk
            r[:last - cut, whole] = ready[cut:last]
            r[last - cut:, whole] = np.inf
            s[:last - cut, whole] = service[cut:last]
            s[last - cut:, whole] = 0.0
        if pin is not None:
            for grid, values in zip((grid_at, grid_end), pin):
                g = grid[:, :cols]
                g[:, :whole] = values[first:cut].reshape(whole, width).T
                if cut < last:
                    g[:last - cut, whole] = values[cut:last]
                    g[last - cut:, whole] = np.nan
        rows = [f[:cols] for f in free]
        tmp = spare[:cols]
        for f in rows:
            f.fill(-np.inf)
        a, b = tile_bounds[t], tile_bounds[t + 1]
        reset_at: dict[int, list[int]] = {}
        for o, c in zip(offset[a:b].tolist(), (chunk_of[a:b] - lo).tolist()):
            reset_at.setdefault(o, []).append(c)
        for j in range(width):
            at = reset_at.get(j)
            if at is not None:
                for f in rows:
                    f[at] = -np.inf
            finish = d[j]
            np.maximum(r[j], rows[0], out=finish)
            if grid_start is not None:
                grid_start[j, :cols] = finish
            if pin is None:
                finish += s[j]
            else:
                finish[...] = np.where(finish == grid_at[j, :cols], grid_end[j, :cols],
                                       finish + s[j])
            # the first free server takes it: drop rows[0], insert finish among the others
            if servers == 2:
                np.minimum(rows[1], finish, out=rows[0])
                np.maximum(rows[1], finish, out=rows[1])
            else:
                np.minimum(rows[1], finish, out=rows[0])
                np.maximum(rows[1], finish, out=tmp)
                for k in range(2, servers):   # (tmp, rows[k]) sorted into rows[k - 1], rows[k]
                    np.minimum(rows[k], tmp, out=rows[k - 1])
                    np.maximum(rows[k], tmp, out=tmp)
                rows[-1], tmp = tmp, rows[-1]
        done[first:cut].reshape(whole, width)[...] = d[:, :whole].T
        if cut < last:
            done[cut:last] = d[:last - cut, whole]
        if start is not None:
            start[first:cut].reshape(whole, width)[...] = grid_start[:, :whole].T
            if cut < last:
                start[cut:last] = grid_start[:last - cut, whole]
        for k, f in enumerate(rows):
            final[k, lo:hi] = f
    # chunks whose first request, after the previous chunk, would not find every server free
    wrong = np.flatnonzero(~starts_empty[1:] & (ready[width:chunks * width:width] < final[-1, :-1])) + 1
    if wrong.size:
        _correct_lanes(done, ready, service, resets, final[:, wrong - 1], wrong * width, start,
                       pin)
    return done


#: Requests per tile of :func:`_multi_server` (chunks advanced at once): its three buffers
#: stay in a 2 MB L2 cache, and a step's numpy calls work on ~1,000 chunks. Measured on the
#: quorum and scaling queues: 2**17 beat 2**16 by 10 to 15%, and 2**18 was slower.
_TILE_ELEMENTS = 1 << 17


def _chunk_length(n: int) -> int:
    """Requests per chunk of :func:`_multi_server`: longer chunks mean fewer chunks to
    correct, shorter ones fewer (per-call costly) steps. Odd: a power-of-two stride makes
    the transposing copies into chunk-major grids thrash the cache (measured 8x slower)."""
    return int(min(128, max(16, np.sqrt(n) / 4))) | 1


def _correct_lanes(done: np.ndarray, ready: np.ndarray, service: np.ndarray, resets: np.ndarray,
                   free: np.ndarray, position: np.ndarray, start: np.ndarray | None = None,
                   pin: Pin | None = None) -> None:
    """Recompute ``done`` in place from ``position`` on (ascending), for each lane from its
    state ``free`` (servers x lanes, sorted), until the lane's queue empties (a request finds
    every server free), is reset (a position in ``resets``, sorted), or the history ends.

    A lane that reaches the position the next lane started from makes that one redundant
    (the lane behind is the right one, and overwrites it up to where its queue empties, after
    which both agree): the next lane stops there. In an overloaded stretch of many chunks,
    only the first lane then walks it."""
    end = np.append(resets, done.size)[np.searchsorted(resets, position, side="right")]
    free = free.copy()
    first = position.copy()
    while position.size:
        if position.size > 1:
            caught = position[:-1] >= first[1:]
            if caught.any():
                keep = np.r_[True, ~caught]
                position, free, end, first = position[keep], free[:, keep], end[keep], first[keep]
        if position.size <= _SCALAR_LANES:   # few lanes left: numpy calls would cost more
            # the lane furthest behind last: where lanes overlap, it is the one that is right
            for j in np.argsort(position, kind="stable")[::-1].tolist():
                _walk_lane(done, ready, service, int(position[j]), int(end[j]),
                           sorted(free[:, j].tolist()), start, pin)
            return
        r = ready[position]
        d = np.maximum(r, free[0])
        if start is not None:
            start[position] = d
        if pin is None:
            d += service[position]
        else:
            d = np.where(d == pin[0][position], pin[1][position], d + service[position])
        done[position] = d
        _take_first_server(free, d)
        position = position + 1
        going = position < end
        going[going] = ready[position[going]] < free[-1, going]
        if not going.all():
            position, free, end, first = position[going], free[:, going], end[going], first[going]


#: From this few lanes, :func:`_correct_lanes` walks each on its own with Python floats: a
#: step over a handful of lanes costs about ten numpy calls (some microseconds each), a
#: step of one lane in Python about one. Measured on the benchmark ``flaky`` (a queue
#: overloaded for ten minutes: 128,807 steps of 4 lanes): 1.26 s in numpy calls, 0.14 s so.
_SCALAR_LANES = 8

#: Requests per slice a lane walk (:func:`_walk_lane`) converts to Python floats at once.
_WALK_BLOCK = 4096


def _walk_lane(done: np.ndarray, ready: np.ndarray, service: np.ndarray, position: int,
               end: int, free: list[float], start: np.ndarray | None, pin: Pin | None) -> None:
    """One lane of :func:`_correct_lanes`, from ``position`` and its servers' free instants
    ``free`` (sorted), with the same floating-point operations: until a request finds every
    server free, or ``end``."""
    from bisect import insort

    p = position
    while p < end:
        q = min(end, p + _WALK_BLOCK)
        r, s = ready[p:q].tolist(), service[p:q].tolist()
        at, fixed = (pin[0][p:q].tolist(), pin[1][p:q].tolist()) if pin is not None else (None, None)
        began: list[float] = []
        out: list[float] = []
        stop = False
        for i in range(q - p):
            d = r[i] if r[i] > free[0] else free[0]
            began.append(d)
            d = fixed[i] if at is not None and d == at[i] else d + s[i]   # type: ignore[index]
            out.append(d)
            del free[0]
            insort(free, d)
            following = r[i + 1] if i + 1 < q - p else (float(ready[q]) if q < end else None)
            if following is None or not following < free[-1]:
                stop = True
                break
        done[p:p + len(out)] = out
        if start is not None:
            start[p:p + len(began)] = began
        if stop:
            return
        p = q


def _periods_to_redo(starts: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """Positions of the periods (each from a ``starts`` position to the next) that hold a
    ``changed`` position."""
    period = np.cumsum(starts) - 1
    flag = np.zeros(int(period[-1]) + 1, dtype=bool)
    flag[period[changed]] = True
    return np.flatnonzero(flag[period])


def _lockstep(rep: np.ndarray, ready: np.ndarray, service: np.ndarray, segment: np.ndarray,
              servers: int, n_reps: int, start: np.ndarray | None = None,
              pin: Pin | None = None) -> np.ndarray:
    """The Kiefer-Wolfowitz recursion advanced for every replication's queue at once."""
    n = rep.size
    starts = np.searchsorted(rep, np.arange(n_reps + 1))
    lengths = np.diff(starts)
    width = int(lengths.max()) if n else 0
    position = np.arange(n) - starts[rep]
    # Queue positions are rows, replications columns, so each step reads contiguous memory.
    grid_ready = np.full((width, n_reps), np.inf)
    grid_service = np.zeros((width, n_reps))
    grid_ready[position, rep] = ready
    grid_service[position, rep] = service
    if pin is not None:
        grid_at = np.full((width, n_reps), np.nan)
        grid_end = np.empty((width, n_reps))
        grid_at[position, rep], grid_end[position, rep] = pin
    grid_segment = np.full((width, n_reps), np.nan)
    grid_segment[position, rep] = segment
    valid = np.zeros((width, n_reps), dtype=bool)
    valid[position, rep] = True
    reset = np.ones((width, n_reps), dtype=bool)
    reset[1:] = grid_segment[1:] != grid_segment[:-1]
    reset &= valid                     # padding after a replication's last entry resets nothing
    reset_any = reset.any(axis=1)
    # free[0] is the server that frees first: the columns are kept sorted.
    free = np.full((servers, n_reps), -np.inf)
    done = np.empty((width, n_reps))
    began = None if start is None else np.empty((width, n_reps))
    for j in range(width):
        if reset_any[j]:
            free[:, reset[j]] = -np.inf
        finish = done[j]
        np.maximum(grid_ready[j], free[0], out=finish)
        if began is not None:
            began[j] = finish
        if pin is None:
            finish += grid_service[j]
        else:
            finish[...] = np.where(finish == grid_at[j], grid_end[j], finish + grid_service[j])
        _take_first_server(free, finish)
    if start is not None:
        start[:] = began[position, rep]
    return done[position, rep]


def _take_first_server(free: np.ndarray, finish: np.ndarray) -> None:
    """The server that frees first (``free[0]``; columns sorted) takes a request finishing
    at ``finish``: drop ``free[0]`` and insert ``finish`` among the others, in place."""
    servers = free.shape[0]
    if servers == 1:
        free[0] = finish
        return
    if servers == 2:   # written in place: no temporaries
        np.minimum(free[1], finish, out=free[0])
        np.maximum(free[1], finish, out=free[1])
        return
    carry = finish
    for k in range(1, servers):
        low = np.minimum(free[k], carry)
        carry = np.maximum(free[k], carry)
        free[k - 1] = low
    free[servers - 1] = carry
