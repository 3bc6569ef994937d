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
