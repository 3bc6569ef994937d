"""FIFO queues with a capacity limit and load-dependent slowdown, all replications in lockstep.

A request's fate at such a queue depends on the state the requests before it
left (how many are inside, how many wait), so there is no closed form. Each
iteration of the loop below handles the next event (an arrival, a request
whose calls resolved, or a departure) of *every* queue of a batch at once,
so the number of iterations is the number of events of the busiest queue,
not the total.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["event_queue", "Instances"]


class Instances(NamedTuple):
    """An agent's servers as instances started on demand (see :func:`event_queue`)."""

    keep_alive: float
    placement: str
    #: Each request's cold start (used where it starts an instance).
    cold: np.ndarray
    #: Receive, per request that takes a server, which one and whether it had to start it.
    server: np.ndarray
    started: np.ndarray
    #: Queues x servers: when each instance was last freed (set by :func:`event_queue`).
    freed: np.ndarray | None = None


def event_queue(segment: np.ndarray, arrival: np.ndarray, service: np.ndarray,
                enters: np.ndarray, servers: int, limit: int | None,
                slowdown: float, ready: np.ndarray | None = None,
                began: np.ndarray | None = None,
                pin: tuple[np.ndarray, np.ndarray] | None = None,
                instances: Instances | None = None,
                patience: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Departures and rejections of requests at FIFO queues that start empty.

    Parameters
    ----------
    segment : int array
        The queue of each request (a replication's stretch between crashes: the
        agent starts empty after each), requests sorted by (segment, arrival).
    arrival : float array
        When each request reaches the agent: it is admitted or rejected then.
    service : float array
        Its service time at an idle agent.
    enters : bool array
        Whether it joins the queue if admitted (False: it is admitted, but its
        conditions failed, so it leaves at ``ready``).
    servers, limit, slowdown
        The agent's servers, capacity limit (None: none) and slowdown: a service
        starting with ``n`` other requests queued or in service takes
        ``service * (1 + slowdown * n)``.
    ready : float array, optional
        When each request's calls resolve (default: its arrival). From its
        admission to ``ready`` a request counts against the limit but is not
        queued; at ``ready`` it joins the queue or leaves. ``inf``: never (it is
        lost at the crash that ends its segment).
    began : float array, optional
        Receives when each request that entered took a server (left alone for the
        others).
    pin : (float array, float array), optional
        ``(at, end)``: a request that takes a server exactly at ``at`` leaves at
        ``end`` rather than after its service (NaN ``at``: not pinned; see
        :data:`~promisesim.engines.vector.fifo.Pin`).
    instances : Instances, optional
        The servers are instances started on demand (an agent's ``keep_alive``):
        a request takes an idle running one by the placement, else starts the
        lowest-numbered stopped one and is served after its cold start.
    patience : float, optional
        A wait limit (an agent's ``max_wait``): a request that has waited that long in
        the queue without a server leaves then, rejected (all wait as long, so the first
        waiting is the first to leave).

    Returns
    -------
    departure : float array
        When each admitted request that entered leaves (its arrival otherwise).
    rejected : bool array
        Requests that found ``limit`` requests inside (their departure: the arrival), or
        that waited ``patience`` (their departure: when they left).

    Ties at one instant are resolved departures first, then requests whose calls
    resolve, then arrivals: the order of cause and effect where an arrival comes
    at the instant another request leaves (its caller, freed by that, calls on
    taking a server). A request whose calls resolve at its arrival instant (it
    made none) is admitted and joins or leaves in one step.
    """
    n = arrival.size
    departure = arrival.copy()
    rejected = np.zeros(n, dtype=bool)
    if n == 0:
        return departure, rejected
    first = np.r_[True, segment[1:] != segment[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], n]
    q = starts.size
    cap = np.iinfo(np.int64).max if limit is None else int(limit)
    # Requests admitted at arrival that join (or leave) later, by queue and ready instant.
    deferred = None if ready is None else ready > arrival
    if deferred is not None and not deferred.any():
        deferred = None                     # every request joins or leaves as it arrives
    later = np.empty(0, dtype=np.int64)
    if deferred is not None:
        assert ready is not None
        later = np.flatnonzero(deferred & (ready < np.inf))
        queue_of = np.cumsum(first) - 1
        later = later[np.lexsort((later, ready[later], queue_of[later]))]
        nxt_ready = np.searchsorted(queue_of[later], np.arange(q))     # next to resolve
        ready_ends = np.r_[nxt_ready[1:], later.size]
    nxt_arrival = starts.copy()             # next request to arrive, per queue
    busy_until = np.full((q, servers), np.inf)
    serving = np.full((q, servers), -1, dtype=np.int64)
    inside = np.zeros(q, dtype=np.int64)
    waiting = np.zeros(q, dtype=np.int64)
    head = np.full(q, -1, dtype=np.int64)   # first waiting request
    tail = np.full(q, -1, dtype=np.int64)   # last waiting request
    link = np.full(n, -1, dtype=np.int64)   # the next waiting request behind each
    if instances is not None:   # when each instance was last freed (-inf: never started)
        assert pin is None
        instances = instances._replace(freed=np.full((q, servers), -np.inf))
    joined = np.zeros(n) if patience is not None else None   # when each joined the queue
    state = (busy_until, serving, waiting, head, tail, link, service, slowdown, began, pin,
             instances, joined)
    rows = np.arange(q)
    active = rows
    zero = np.zeros(q, dtype=np.int64)
    while active.size:
        a = nxt_arrival[active]
        more = a < ends[active]
        t_arr = np.where(more, arrival[np.minimum(a, n - 1)], np.inf)
        if servers == 1:
            k = zero[:active.size]
            t_dep = busy_until[active, 0]
        else:
            k = np.argmin(busy_until[active], axis=1)
            t_dep = busy_until[active, k]
        if later.size:
            r = nxt_ready[active]
            resolving = r < ready_ends[active]
            more = more | resolving
            t_res = np.where(resolving, ready[later[np.minimum(r, later.size - 1)]], np.inf)
        done = ~more & ~np.isfinite(t_dep)
        if done.any():   # lanes with nothing left: dropped, the others go on this step
            keep = ~done
            active = active[keep]
            if not active.size:
                break
            a, t_arr, k, t_dep = a[keep], t_arr[keep], k[keep], t_dep[keep]
            if later.size:
                t_res = t_res[keep]
        if later.size:
            dep = (t_dep <= t_arr) & (t_dep <= t_res)
            res = ~dep & (t_res <= t_arr)
            arr = ~dep & ~res
        else:
            dep = t_dep <= t_arr
            arr = ~dep
        if joined is not None:   # the first waiting request leaves at its wait limit
            # (ties: departures first, then these, then the rest; a request is waiting
            # only while every server is busy, so a queue with one is never done)
            hd = head[active]
            t_ren = np.where(waiting[active] > 0, joined[np.maximum(hd, 0)] + patience, np.inf)
            ren = t_ren < np.where(dep, t_dep, np.minimum(t_arr, t_res) if later.size else t_arr)
            ren |= ~dep & (t_ren == (np.minimum(t_arr, t_res) if later.size else t_arr))
            dep &= ~ren
            arr &= ~ren
            if later.size:
                res &= ~ren
            if ren.any():
                g, t = active[ren], t_ren[ren]
                i = head[g]
                head[g] = link[i]
                waiting[g] -= 1
                tail[g] = np.where(waiting[g] == 0, -1, tail[g])
                inside[g] -= 1
                departure[i] = t
                rejected[i] = True
        # -- departures: free the server; the first waiting request starts now
        if dep.any():
            g, kk, t = active[dep], k[dep], t_dep[dep]
            departure[serving[g, kk]] = t
            if instances is not None:
                instances.freed[g, kk] = t
            inside[g] -= 1
            busy_until[g, kk] = np.inf
            serving[g, kk] = -1
            start = waiting[g] > 0
            if start.any():
                g, kk, t = g[start], kk[start], t[start]
                i = head[g]
                head[g] = link[i]
                waiting[g] -= 1
                tail[g] = np.where(waiting[g] == 0, -1, tail[g])
                _begin(i, g, kk, t, busy_until, serving, waiting, service, slowdown, began, pin,
                       instances)
        # -- arrivals: admitted unless the agent is full; enter service, the queue, or leave
        if arr.any():
            g, i, t = active[arr], a[arr], t_arr[arr]
            nxt_arrival[g] += 1
            full = inside[g] >= cap
            rejected[i[full]] = True
            if deferred is None:
                keep = ~full & enters[i]
                g, i, t = g[keep], i[keep], t[keep]
                inside[g] += 1
                _join(i, g, t, *state)
            else:
                keep = ~full & (enters[i] | deferred[i])
                g, i, t = g[keep], i[keep], t[keep]
                inside[g] += 1
                now = ~deferred[i]
                _join(i[now], g[now], t[now], *state)
        # -- calls resolved: an admitted request joins the queue, or leaves
        if later.size and res.any():
            g, t = active[res], t_res[res]
            i = later[nxt_ready[g]]
            nxt_ready[g] += 1
            admitted = ~rejected[i]
            g, i, t = g[admitted], i[admitted], t[admitted]
            leaves = ~enters[i]
            inside[g[leaves]] -= 1
            _join(i[~leaves], g[~leaves], t[~leaves], *state)
    return departure, rejected


def _join(i: np.ndarray, g: np.ndarray, t: np.ndarray, busy_until: np.ndarray,
          serving: np.ndarray, waiting: np.ndarray, head: np.ndarray, tail: np.ndarray,
          link: np.ndarray, service: np.ndarray, slowdown: float,
          start: np.ndarray | None, pin: tuple[np.ndarray, np.ndarray] | None,
          instances: Instances | None, joined: np.ndarray | None = None) -> None:
    """Requests ``i`` join queues ``g`` at ``t``: a free server starts them, else they wait."""
    if i.size == 0:
        return
    free = busy_until[g] == np.inf
    idle = free.any(axis=1)
    if idle.any():
        gi, ti = g[idle], t[idle]
        k = np.argmax(free[idle], axis=1)   # the lowest numbered
        if instances is not None:           # an idle running instance, if any, by placement
            freed = instances.freed[gi]
            warm = free[idle] & (ti[:, None] < freed + instances.keep_alive)
            running = warm.any(axis=1)
            if running.any():
                w, f = warm[running], freed[running]
                if instances.placement == "recent":
                    pick = np.argmax(np.where(w, f, -np.inf), axis=1)
                elif instances.placement == "spread":
                    pick = np.argmin(np.where(w, f, np.inf), axis=1)
                else:   # "first"
                    pick = np.argmax(w, axis=1)
                k[running] = pick
        _begin(i[idle], gi, k, ti, busy_until, serving, waiting, service, slowdown, start, pin,
               instances)
    queue = ~idle
    if queue.any():
        gq, iq = g[queue], i[queue]
        if joined is not None:
            joined[iq] = t[queue]
        has = tail[gq] >= 0
        link[tail[gq][has]] = iq[has]
        head[gq[~has]] = iq[~has]
        tail[gq] = iq
        waiting[gq] += 1


def _begin(i: np.ndarray, g: np.ndarray, k: np.ndarray, t: np.ndarray, busy_until: np.ndarray,
           serving: np.ndarray, waiting: np.ndarray, service: np.ndarray, slowdown: float,
           start: np.ndarray | None = None,
           pin: tuple[np.ndarray, np.ndarray] | None = None,
           instances: Instances | None = None) -> None:
    """Request ``i`` starts service on server ``k`` of queue ``g`` at ``t`` (an instance not
    running: after its cold start, ``(t + cold) + s`` as the reference engine's clock adds)."""
    if start is not None:
        start[i] = t
    s = service[i]
    if slowdown:
        others = (busy_until[g] != np.inf).sum(axis=1) + waiting[g]
        s = s * (1.0 + slowdown * others)
    if instances is not None:
        cold = ~(t < instances.freed[g, k] + instances.keep_alive)
        instances.server[i] = k
        instances.started[i] = cold
        if cold.any():
            t = np.where(cold, t + instances.cold[i], t)
    busy_until[g, k] = t + s if pin is None else np.where(t == pin[0][i], pin[1][i], t + s)
    serving[g, k] = i
