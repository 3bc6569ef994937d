"""The vectorised engine's array kernels against plain loops: exact equality."""

import numpy as np
import pytest

from promisesim.engines.vector import fifo, kernels
from promisesim.engines.vector.batch import _Batch
from promisesim.engines.vector.records import _GrowingColumns


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 8])
def test_kth_smallest_is_the_partition(n):
    rng = np.random.default_rng(n)
    rows = rng.random((n, 500))
    rows[rng.random(rows.shape) < 0.2] = np.inf
    rows[:, :50] = 0.5   # ties
    for k in range(n):
        expected = np.partition(rows, k, axis=0)[k]
        assert np.array_equal(kernels._kth_smallest(rows, k), expected)
        assert np.array_equal(kernels._kth_smallest(list(rows), k), expected)


def test_sort_within_replications_is_a_stable_lexsort():
    rng = np.random.default_rng(1)
    rep = np.sort(rng.integers(0, 20, 3000))
    ready = np.round(rng.random(3000) * 50, 1)   # many ties
    assert np.array_equal(kernels._sort_within_replications(rep, ready, None), np.lexsort((ready, rep)))
    order = rng.permutation(3000)
    got = kernels._sort_within_replications(rep, ready[order], order)
    assert np.array_equal(got, order[np.lexsort((ready[order], rep))])


@pytest.mark.parametrize("long_segment, stepped, density",
                         [(4, 64, 0.1), (2048, 64, 0.1), (2048, 3, 0.1), (4, 0, 0.5),
                          (2048, 64, 0.005), (2048, 64, 1.0)])
def test_segmented_accumulate_is_a_running_total_per_segment(long_segment, stepped, density,
                                                             monkeypatch):
    # stepped positions, then the rest of the longer segments padded; few long segments
    # (density 0.005) padded only; every position a segment (density 1)
    monkeypatch.setattr(kernels, "_LONG_SEGMENT", long_segment)
    monkeypatch.setattr(kernels, "_STEPPED_POSITIONS", stepped)
    rng = np.random.default_rng(2)
    values = rng.exponential(1.0, 5000)
    starts = rng.random(5000) < density
    starts[0] = True
    starts[1000:1100] = False   # one long segment
    starts[-1] = density > 0.2  # the last position alone, or the end of a segment
    for ufunc, fill in ((np.add, 0.0), (np.maximum, -np.inf)):
        expected = np.empty_like(values)
        for i, x in enumerate(values):
            expected[i] = x if starts[i] else ufunc(expected[i - 1], x)
        assert np.array_equal(kernels._segmented_accumulate(ufunc, values, starts, fill), expected)


def test_growing_columns_keep_every_row_when_the_first_guess_is_short():
    from promisesim.engines.base import REQUEST_COLUMNS
    cols = _GrowingColumns(REQUEST_COLUMNS)
    written = []
    for n in (3, 10, 1, 40, 0):
        views = cols.append(n, expected=5)
        values = np.arange(len(written), len(written) + n, dtype=float)
        for k in REQUEST_COLUMNS:
            views[k][:] = values
        written.extend(values)
    out = cols.finish()
    for k, dtype in REQUEST_COLUMNS.items():
        assert out[k].dtype == dtype
        assert np.array_equal(out[k], np.asarray(written).astype(dtype))


def plain_event_queue(segment, arrival, service, enters, servers, limit, slowdown, ready):
    """One queue at a time, one event at a time: departures, then requests whose calls
    resolve, then arrivals; a request that made no calls (ready == arrival) joins as it
    arrives."""
    import heapq
    departure, rejected = arrival.copy(), np.zeros(arrival.size, dtype=bool)
    for s in np.unique(segment):
        members = np.flatnonzero(segment == s)
        events = [(arrival[i], 2, i) for i in members]
        events += [(ready[i], 1, i) for i in members if arrival[i] < ready[i] < np.inf]
        heapq.heapify(events)
        inside, busy, waiting = 0, {}, []    # busy: server -> finish

        def begin(i, t):
            free = min(k for k in range(servers) if k not in busy)
            busy[free] = t + service[i] * (1.0 + slowdown * (len(busy) + len(waiting)))
            heapq.heappush(events, (busy[free], 0, i))

        def join(i, t):
            if len(busy) < servers:
                begin(i, t)
            else:
                waiting.append(i)

        while events:
            t, kind, i = heapq.heappop(events)
            if kind == 0:
                departure[i] = t
                inside -= 1
                del busy[next(k for k, f in busy.items() if f == t)]
                if waiting:
                    begin(waiting.pop(0), t)
            elif kind == 2:
                if limit is not None and inside >= limit:
                    rejected[i] = True
                elif ready[i] > arrival[i]:
                    inside += 1
                elif enters[i]:
                    inside += 1
                    join(i, t)
            elif not rejected[i]:
                if enters[i]:
                    join(i, t)
                else:
                    inside -= 1
    return departure, rejected


@pytest.mark.parametrize("servers,limit,slowdown", [(1, 3, 0.0), (2, 4, 0.3), (3, None, 0.5),
                                                    (1, 1, 0.2)])
def test_event_queue_with_calls_is_a_plain_event_loop(servers, limit, slowdown):
    from promisesim.engines.vector.events import event_queue
    rng = np.random.default_rng(servers * 10 + (limit or 0))
    n = 1500
    segment = np.sort(rng.integers(0, 12, n))
    arrival = np.empty(n)
    for s in np.unique(segment):
        at = segment == s
        arrival[at] = np.cumsum(rng.exponential(0.3, at.sum()))
    service = rng.exponential(0.4, n)
    calls = rng.random(n) < 0.7                       # the others made no calls
    ready = np.where(calls, arrival + rng.exponential(1.0, n), arrival)
    # calls that resolve at the instant a later request arrives (as where a caller freed by
    # a request that leaves calls at once): the one that leaves goes first
    tied = np.flatnonzero(calls[:-3] & (segment[:-3] == segment[3:]) & (rng.random(n - 3) < 0.1))
    ready[tied] = arrival[tied + 3]
    ready[rng.random(n) < 0.05] = np.inf              # lost: their crash ends the segment
    enters = (rng.random(n) < 0.85) & (ready < np.inf)
    got = event_queue(segment, arrival, service, enters, servers, limit, slowdown, ready=ready)
    want = plain_event_queue(segment, arrival, service, enters, servers, limit, slowdown, ready)
    assert np.array_equal(got[1], want[1])
    assert np.array_equal(got[0], want[0])
    assert want[1].sum() > 50 or limit is None


def _kiefer_wolfowitz(rep, ready, service, segment, servers):
    out = np.empty(rep.size)
    free, key = None, None
    for i in range(rep.size):
        if (rep[i], segment[i]) != key:   # each replication, and each crash, starts empty
            free, key = [-np.inf] * servers, (rep[i], segment[i])
        out[i] = max(ready[i], free[0]) + service[i]
        free = sorted(free[1:] + [out[i]])
    return out


@pytest.mark.parametrize("scalar", [0, 10**9])   # lanes walked in numpy steps, or one by one
@pytest.mark.parametrize("width, tile", [(None, None), (1, None), (2, 3), (3, 1), (7, 2), (5, None),
                                         ("lockstep", None)])
def test_fifo_is_the_kiefer_wolfowitz_recursion(width, tile, scalar, monkeypatch):
    monkeypatch.setattr(fifo, "_SCALAR_LANES", scalar)
    monkeypatch.setattr(fifo, "_WALK_BLOCK", 7)   # lanes cross blocks
    if width == "lockstep":   # every replication advanced one position per step
        monkeypatch.setattr(fifo, "_LOCKSTEP_MIN_REPLICATIONS", 1)
        width = None
    if width is not None:   # short chunks, few at a time: many corrections, many tiles
        monkeypatch.setattr(fifo, "_chunk_length", lambda n: width)
    if tile is not None:   # chunks per tile
        monkeypatch.setattr(fifo, "_TILE_ELEMENTS", tile * width)
    rng = np.random.default_rng(3)
    for trial in range(60):
        servers = 1 + trial % 4
        n = int(rng.integers(1, 1500 if width is None else 300))
        rep = np.sort(rng.integers(0, 1 + trial % 3, n))
        gaps = rng.exponential(1.0, n)
        if trial % 3 == 0:
            gaps = np.round(gaps, 1)     # ties of ready instants
        ready = np.empty(n)
        for r in np.unique(rep):
            ready[rep == r] = np.cumsum(gaps[rep == r])
        service = rng.exponential(servers * rng.choice([0.3, 0.9, 1.5, 4.0]), n)
        if trial % 4 == 0:
            service[rng.random(n) < 0.3] = 0.0
        crashes = np.sort(rng.random(3)) * ready.max()
        segment = np.append(crashes, np.inf)[np.searchsorted(crashes, ready, side="right")]
        expected = _kiefer_wolfowitz(rep, ready, service, segment, servers)
        start = np.empty(n)
        got = fifo._fifo(rep, ready, service, segment, servers, int(rep.max()) + 1, start)
        assert np.array_equal(got, expected), trial
        assert np.array_equal(got, start + service), trial   # each departure adds its service
        assert (start >= ready).all()


def test_values_at_ordered_queries_are_the_last_change_at_or_before():
    from promisesim._timeline import _last_at_or_before, _values_at_ordered
    rng = np.random.default_rng(5)
    for trial in range(200):
        n_rep = int(rng.integers(1, 8))
        n_ch = rng.integers(0, 6, n_rep)
        n_q = rng.integers(0, 50, n_rep)
        ch_rep = np.repeat(np.arange(n_rep), n_ch)
        ch_time = np.concatenate([np.sort(np.round(rng.random(k) * 10, 1)) for k in n_ch])
        ch_value = rng.random(ch_time.size) < 0.5    # not always alternating
        q_rep = np.repeat(np.arange(n_rep), n_q)
        q_time = np.concatenate([np.sort(np.round(rng.random(k) * 10, 1)) for k in n_q])  # ties
        got = _values_with_bounds(ch_time, ch_value, n_ch, q_rep, q_time, _values_at_ordered)
        last = _last_at_or_before(ch_rep, ch_time, q_rep, q_time)
        expected = np.ones(q_time.size, dtype=bool)
        expected[last >= 0] = ch_value[last[last >= 0]]
        assert np.array_equal(got, expected), trial
    # out of time order within a replication: not for this function
    assert _values_at_ordered(np.array([1.0]), np.array([False]), np.array([0, 1]),
                              np.zeros(3, dtype=np.int64), np.array([0.5, 2.0, 1.5])) is None


def _values_with_bounds(ch_time, ch_value, n_ch, q_rep, q_time, function):
    bounds = np.zeros(n_ch.size + 1, dtype=np.int64)
    np.cumsum(n_ch, out=bounds[1:])
    return function(ch_time, ch_value, bounds, q_rep, q_time)


def _changes_and_queries(seed: int, trials: int = 200):
    """Random changes sorted by (replication, time) and queries sorted by replication, in
    time order within a replication or not (ties either way); few replications (searched
    by runs) or many (by binary search)."""
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        n_rep = int(rng.integers(1, 10)) if trial % 4 else int(rng.integers(60, 120))
        n_ch = rng.integers(0, 6, n_rep)
        n_q = rng.integers(0, 40, n_rep)
        n_q[:int(rng.integers(0, 3))] = 0     # queries from a later replication on
        ch_rep = np.repeat(np.arange(n_rep), n_ch)
        ch_time = np.concatenate([np.sort(np.round(rng.random(k) * 10, 1)) for k in n_ch])
        q_rep = np.repeat(np.arange(n_rep), n_q)
        q_time = np.concatenate([np.round(rng.random(k) * 10, 1) if rng.random() < 0.3 else
                                 np.sort(np.round(rng.random(k) * 10, 1)) for k in n_q])
        yield trial, ch_rep, ch_time, q_rep, q_time, rng.permutation(q_time.size)


def test_last_at_or_before_is_a_search_per_query():
    from promisesim._timeline import _last_at_or_before
    for trial, ch_rep, ch_time, q_rep, q_time, shuffled in _changes_and_queries(6):
        expected = np.full(q_time.size, -1)
        for i in range(q_time.size):
            found = np.flatnonzero((ch_rep == q_rep[i]) & (ch_time <= q_time[i]))
            if found.size:
                expected[i] = found[-1]
        assert np.array_equal(_last_at_or_before(ch_rep, ch_time, q_rep, q_time), expected), trial
        # not sorted by replication: the binary search
        assert np.array_equal(_last_at_or_before(ch_rep, ch_time, q_rep[shuffled], q_time[shuffled]),
                              expected[shuffled]), trial


def test_next_change_time_is_a_search_per_query():
    from promisesim._timeline import _next_change_time
    for trial, ch_rep, ch_time, q_rep, q_time, shuffled in _changes_and_queries(7):
        expected = np.full(q_time.size, np.inf)
        for i in range(q_time.size):   # strictly after: a change at the query instant is not next
            found = np.flatnonzero((ch_rep == q_rep[i]) & (ch_time > q_time[i]))
            if found.size:
                expected[i] = ch_time[found[0]]
        assert np.array_equal(_next_change_time(ch_rep, ch_time, q_rep, q_time), expected), trial
        assert np.array_equal(_next_change_time(ch_rep, ch_time, q_rep[shuffled], q_time[shuffled]),
                              expected[shuffled]), trial


@pytest.mark.parametrize("rows, horizon", [(1, 3_000.0), (3, 400.0), (40, 150.0), (40, 20.0)])
def test_renewal_instants_are_a_running_sum_of_keyed_draws(rows, horizon, monkeypatch):
    from promisesim import _renewal
    from promisesim.dists import Exponential, Uniform
    from promisesim.random import Streams
    monkeypatch.setattr(_renewal, "_BLOCK_ELEMENTS", 256)   # many rounds of top-up draws
    streams = Streams(2)
    reps = np.arange(rows) * 3
    for dists, start in (([Exponential(1.0)], 0.0), ([Exponential(5.0), Uniform(0.5, 1.0)], 2.5)):
        keys = [streams.keys(reps, p, "a") for p in ("time_to_failure", "time_to_repair")][:len(dists)]
        counts, time, phase = _renewal.renewal_counts(keys, dists, horizon, start)
        purposes = ("time_to_failure", "time_to_repair")
        expected_t, expected_p, expected_c = [], [], []
        for r in reps:
            draws = [streams.draws(d, int(r), purposes[j], "a", 0, 10_000) for j, d in enumerate(dists)]
            t, i, c = start, 0, 0
            while True:
                j = i % len(dists)
                t += draws[j][i // len(dists)]
                if t >= horizon:
                    break
                expected_t.append(t)
                expected_p.append(j)
                c += 1
                i += 1
            expected_c.append(c)
        assert np.array_equal(counts, expected_c)
        assert np.array_equal(time, expected_t)
        assert np.array_equal(phase, expected_p) and phase.dtype == np.int8


@pytest.mark.parametrize("before", [True, False])
def test_vector_runs_leave_numpys_huge_page_setting_as_they_found_it(before, monkeypatch):
    try:
        from numpy._core.multiarray import _set_madvise_hugepage as setter
    except ImportError:   # numpy 1.x
        from numpy.core.multiarray import _set_madvise_hugepage as setter
    import promisesim as ps
    seen = []
    original = _Batch.run

    def spy(self):  # type: ignore[no-untyped-def]
        seen.append(setter(False))   # the setting while the batch runs
        return original(self)

    monkeypatch.setattr(_Batch, "run", spy)
    m = ps.Model("m")
    api = m.agent("api", service_time=ps.Exponential(mean=0.01))
    m.workload(m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=0.1)), rate=5.0)
    previous = setter(before)
    try:
        ps.simulate(m, horizon=10.0, replications=2, seed=1, engine="vector")
        assert seen and not any(seen)   # no huge pages inside the run
        assert setter(previous) is before
    finally:
        setter(previous)


@pytest.mark.parametrize("rounds", [0, 1, 2, None])
@pytest.mark.parametrize("seed", range(12))
def test_lanes_queue_is_the_event_loop_over_whole_segments(seed, rounds):
    """Lanes cut where the queue is guessed empty, proven, merged where not: the same
    departures, rejections and service starts as one lane per segment, whatever the
    rounds of guesses allowed (0: proven cuts only), with calls, wait limits, slowdown,
    requests lost at a crash, and ties at one instant."""
    from promisesim.engines.vector.events import event_queue
    from promisesim.engines.vector.lanes import MAX_ROUNDS, lanes_queue
    rng = np.random.default_rng(seed)
    n = int(rng.integers(200, 1500))
    servers = int(rng.integers(1, 4))
    limit = None if seed % 4 == 0 else servers + [1, 2, 5][seed % 4 - 1]
    slowdown = [0.0, 0.3][seed % 2]
    patience = [None, 0.7, 2.0][seed % 3]
    segment = np.sort(rng.integers(0, int(rng.integers(1, 5)), n))
    arrival = np.empty(n)
    for s in np.unique(segment):
        at = segment == s
        arrival[at] = np.cumsum(rng.exponential(rng.uniform(0.4, 1.2) / servers, at.sum()))
    if seed % 3 == 0:
        arrival = np.round(arrival, 1)             # ties at one instant
    service = rng.exponential(0.8, n) if seed % 5 else np.full(n, 0.5)
    calls = rng.random(n) < (0.6 if seed % 2 else 0.0)
    ready = np.where(calls, arrival + rng.exponential(1.0, n), arrival)
    ready[rng.random(n) < 0.01] = np.inf           # lost: their crash ends the segment
    enters = (rng.random(n) < 0.9) & (ready < np.inf)
    pin = None
    if seed % 4 == 1:   # held: one taking a server as it arrives leaves at a set instant
        pin = (np.where(rng.random(n) < 0.3, ready, np.nan), ready + 1.5)
    sure = np.zeros(n, dtype=bool)
    want_began, got_began = np.full(n, np.inf), np.full(n, np.inf)
    want = event_queue(segment, arrival, service, enters, servers, limit, slowdown,
                       ready=ready, began=want_began, pin=pin, patience=patience)
    got = lanes_queue(segment, arrival, service, enters, servers, limit, slowdown,
                      ready=ready, began=got_began, pin=pin, patience=patience, sure=sure,
                      rounds=MAX_ROUNDS if rounds is None else rounds)
    assert np.array_equal(got[0], want[0])
    assert np.array_equal(got[1], want[1])
    assert np.array_equal(got_began, want_began)
    # the first guess (every request finds the queue empty) was wrong: some waited
    took = np.isfinite(want_began)
    assert (want_began[took] > ready[took]).any()


@pytest.mark.parametrize("seed", range(16))
def test_requests_joining_on_arrival_take_a_step_each_with_the_event_loops_results(seed):
    """Without calls before queueing, slowdown or instances, a request's fate is known on
    arrival (the Kiefer-Wolfowitz recursion, a wait limit, the limit counting those not
    left): the same departures, rejections and service starts as the event loop, with ties
    at one instant, pinned services and many lanes; and through the lanes of
    :func:`lanes_queue`."""
    from promisesim.engines.vector.events import event_queue
    from promisesim.engines.vector.lanes import arrival_order_queue, lanes_queue
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(300, 1500))
    servers = 1 + seed % 3
    limit = None if seed % 4 == 0 else servers + [1, 2, 5][seed % 4 - 1]
    patience = [None, 0.5, 2.0][seed % 3]
    segment = np.sort(rng.integers(0, 1 + seed * 2, n))
    arrival = np.empty(n)
    for s in np.unique(segment):
        at = segment == s
        arrival[at] = np.cumsum(rng.exponential(rng.uniform(0.6, 1.2) / servers, at.sum()))
    if seed % 2:
        arrival = np.round(arrival, 1)              # ties at one instant
    service = rng.exponential(0.9, n) if seed % 5 else np.full(n, 0.5)
    enters = rng.random(n) < 0.9
    pin = (np.where(rng.random(n) < 0.3, arrival, np.nan), arrival + 1.5) if seed % 4 == 1 \
        else None
    want_began = np.full(n, np.inf)
    want = event_queue(segment, arrival, service, enters, servers, limit, 0.0,
                       began=want_began, pin=pin, patience=patience)
    for kernel in (arrival_order_queue, lanes_queue):
        got_began = np.full(n, np.inf)
        extra = {} if kernel is arrival_order_queue else {"slowdown": 0.0}
        got = kernel(segment, arrival, service, enters, servers, limit, began=got_began,
                     pin=pin, patience=patience, **extra)
        assert np.array_equal(got[0], want[0]), kernel.__name__
        assert np.array_equal(got[1], want[1]), kernel.__name__
        assert np.array_equal(got_began, want_began), kernel.__name__
    took = np.isfinite(want_began)
    assert (want_began[took] > arrival[took]).any()   # some waited
    assert limit is None and patience is None or want[1].any()   # some turned away or left
