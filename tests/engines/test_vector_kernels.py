"""The vectorised engine's array kernels against plain loops: exact equality."""

import numpy as np
import pytest

from promisesim.engines import vectorised as v


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 8])
def test_kth_smallest_is_the_partition(n):
    rng = np.random.default_rng(n)
    rows = rng.random((n, 500))
    rows[rng.random(rows.shape) < 0.2] = np.inf
    rows[:, :50] = 0.5   # ties
    for k in range(n):
        assert np.array_equal(v._kth_smallest(rows, k), np.partition(rows, k, axis=0)[k])


def test_sort_within_replications_is_a_stable_lexsort():
    rng = np.random.default_rng(1)
    rep = np.sort(rng.integers(0, 20, 3000))
    ready = np.round(rng.random(3000) * 50, 1)   # many ties
    assert np.array_equal(v._sort_within_replications(rep, ready, None), np.lexsort((ready, rep)))
    order = rng.permutation(3000)
    got = v._sort_within_replications(rep, ready[order], order)
    assert np.array_equal(got, order[np.lexsort((ready[order], rep))])


@pytest.mark.parametrize("long_segment", [4, 2048])
def test_segmented_accumulate_is_a_running_total_per_segment(long_segment, monkeypatch):
    monkeypatch.setattr(v, "_LONG_SEGMENT", long_segment)
    rng = np.random.default_rng(2)
    values = rng.exponential(1.0, 5000)
    starts = rng.random(5000) < 0.1
    starts[0] = True
    starts[1000:1100] = False   # one long segment
    for ufunc, fill in ((np.add, 0.0), (np.maximum, -np.inf)):
        expected = np.empty_like(values)
        for i, x in enumerate(values):
            expected[i] = x if starts[i] else ufunc(expected[i - 1], x)
        assert np.array_equal(v._segmented_accumulate(ufunc, values, starts, fill), expected)


def test_growing_columns_keep_every_row_when_the_first_guess_is_short():
    from promisesim.engines.base import REQUEST_COLUMNS
    cols = v._GrowingColumns(REQUEST_COLUMNS)
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
    """One queue at a time, one event at a time: departures, then arrivals, then requests
    whose calls resolve; a request that made no calls (ready == arrival) joins as it arrives."""
    import heapq
    departure, rejected = arrival.copy(), np.zeros(arrival.size, dtype=bool)
    for s in np.unique(segment):
        members = np.flatnonzero(segment == s)
        events = [(arrival[i], 1, i) for i in members]
        events += [(ready[i], 2, i) for i in members if arrival[i] < ready[i] < np.inf]
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
            elif kind == 1:
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
    from promisesim.engines._events import event_queue
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
    ready[rng.random(n) < 0.05] = np.inf              # lost: their crash ends the segment
    enters = (rng.random(n) < 0.85) & (ready < np.inf)
    got = event_queue(segment, arrival, service, enters, servers, limit, slowdown, ready=ready)
    want = plain_event_queue(segment, arrival, service, enters, servers, limit, slowdown, ready)
    assert np.array_equal(got[1], want[1])
    assert np.array_equal(got[0], want[0])
    assert want[1].sum() > 50 or limit is None
