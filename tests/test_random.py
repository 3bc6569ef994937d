"""Keyed streams: pure functions of their address, uniform, independent across keys."""

import numpy as np
import pytest

from promisesim.dists import Deterministic, Empirical, Exponential, LogNormal, Uniform
from promisesim.random import PURPOSES, Streams, StreamReader


def test_bulk_and_one_at_a_time_draws_are_bit_identical():
    s = Streams(3)
    for dist in (Exponential(2.0), LogNormal(1.0, 0.7), Uniform(1.0, 4.0), Empirical((1, 2, 5))):
        bulk = s.draws(dist, 7, "service", "api/db", 0, 1000)
        reader = StreamReader(s, dist, 7, "service", "api/db", block=64)
        assert [reader[i] for i in range(1000)] == bulk.tolist()
        # random access in any order gives the same values
        assert [reader[i] for i in (999, 0, 500, 63, 64)] == bulk[[999, 0, 500, 63, 64]].tolist()
        # and a slice from the middle equals the tail of the whole
        assert (s.draws(dist, 7, "service", "api/db", 500, 100) == bulk[500:600]).all()


def test_vectorised_keys_over_replications_match_scalar_keys():
    s = Streams(11)
    k0, k1 = s.keys(np.arange(5), "arrival", "w")
    idx = np.arange(10, dtype=np.uint64)
    many = Streams.draw_at(Exponential(1.0), k0[:, None], k1[:, None], idx[None, :])
    for r in range(5):
        assert (many[r] == s.draws(Exponential(1.0), r, "arrival", "w", 0, 10)).all()


def test_uniforms_are_in_the_half_open_unit_interval_and_uniform():
    u = Streams(1).uniforms(0, "arrival", "x", 0, 200_000)
    assert u.min() > 0 and u.max() <= 1
    counts = np.histogram(u, bins=100, range=(0, 1))[0]
    expected = u.size / 100
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 160  # 99 degrees of freedom: P(chi2 > 160) < 1e-4


@pytest.mark.parametrize("other", [(0, "arrival", "y"), (1, "arrival", "x"), (0, "service", "x")])
def test_streams_with_nearby_keys_are_uncorrelated(other):
    s = Streams(1)
    a = s.uniforms(0, "arrival", "x", 0, 100_000)
    b = s.uniforms(*other, 0, 100_000)
    corr = np.corrcoef(a, b)[0, 1]
    assert abs(corr) < 4 / np.sqrt(a.size)
    lag = np.corrcoef(a[:-1], a[1:])[0, 1]
    assert abs(lag) < 4 / np.sqrt(a.size)


@pytest.mark.parametrize("dist", [Exponential(2.0), LogNormal(0.5, 0.8), Uniform(1.0, 3.0),
                                  Empirical((0.1, 0.2, 0.7))])
def test_distributions_match_their_analytic_moments(dist):
    n = 400_000
    for x in (Streams(5).draws(dist, 0, "service", "a", 0, n),
              dist.sample(np.random.default_rng(5), n)):
        assert (x >= 0).all()
        se_mean = np.sqrt(dist.var / n)
        assert abs(x.mean() - dist.mean) < 5 * se_mean
        assert x.var() == pytest.approx(dist.var, rel=0.05)


def test_deterministic_is_constant():
    d = Deterministic(2.5)
    assert (Streams(1).draws(d, 0, "service", "a", 0, 5) == 2.5).all()
    assert d.mean == 2.5 and d.var == 0 and not d.is_random


def test_purposes_are_append_only_codes():
    assert list(PURPOSES.values()) == list(range(len(PURPOSES)))


def test_bad_seeds_are_refused():
    with pytest.raises(ValueError):
        Streams(-1)
    with pytest.raises(TypeError):
        Streams(1.5)  # type: ignore[arg-type]


def test_scalar_and_array_indices_agree():
    k0, k1 = Streams(2).key(0, "service", "a")
    assert Streams.words(k0, k1, 5) == Streams.words(k0, k1, np.array([5]))[0]
    assert Streams.draw_at(Exponential(1.0), k0, k1, 5) == \
        Streams.draw_at(Exponential(1.0), k0, k1, np.arange(6))[5]
    keys0, keys1 = Streams(2).keys(np.arange(4), "service", "a")
    assert Streams.words(keys0[:, None], keys1[:, None], np.arange(5)).shape == (4, 5)


def test_keys_for_many_entities_equal_keys_per_entity():
    s = Streams(2**70 + 5)
    reps = np.arange(7)
    names = ["a", "b/c", "ünïcode", ""]
    k0, k1 = s.keys_many(reps, "time_to_repair", names)
    for e, name in enumerate(names):
        one0, one1 = s.keys(reps, "time_to_repair", name)
        assert (k0[e * 7:(e + 1) * 7] == one0).all() and (k1[e * 7:(e + 1) * 7] == one1).all()


@pytest.mark.parametrize("n", [0, 1, 5, 20_000])
@pytest.mark.parametrize("dist", [Exponential(mean=0.3), Uniform(0.5, 2.0), Deterministic(0.0),
                                  Deterministic(1.5), LogNormal(mean=1.0, sigma=0.5)])
def test_flat_draws_equal_word_by_word_draws(dist, n):
    """draw_at's blocked path (flat keys and indices) against the words it is defined by."""
    s = Streams(4)
    k0, k1 = s.keys(np.arange(n) % 7, "service", "api")
    index = np.arange(n, dtype=np.uint64) * np.uint64(3)
    got = Streams.draw_at(dist, k0, k1, index)
    m = dist.n_uniforms
    lanes = np.arange(m, dtype=np.uint64)[:, None]
    u = Streams.uniforms_at(k0[None, :], k1[None, :], index[None, :] * np.uint64(m) + lanes)
    expected = dist.from_uniforms(u.reshape(m, -1))
    assert got.shape == (n,)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("dist", [Exponential(mean=0.3), Uniform(0.5, 2.0), Deterministic(1.5),
                                  LogNormal(mean=1.0, sigma=0.5)])
@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32])
def test_draws_by_rows_equal_draws_with_gathered_keys(dist, dtype):
    s = Streams(5)
    k0, k1 = s.keys(np.arange(6), "route", "a/b")
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 6, 20_000)
    index = rng.integers(0, 1 << 30, 20_000).astype(dtype)
    expected = Streams.draw_at(dist, k0[rows], k1[rows], index.astype(np.uint64))
    assert np.array_equal(Streams.draw_rows(dist, k0, k1, rows, index), expected)
    out = np.full(20_000, np.nan)
    assert Streams.draw_rows(dist, k0, k1, rows, index, out=out) is out
    assert np.array_equal(out, expected)
    assert Streams.draw_rows(dist, k0, k1, rows[:0], index[:0]).shape == (0,)
    # one replication's keys (a batch of one): the same draws without gathering
    one = Streams.draw_rows(dist, k0[3:4], k1[3:4], np.zeros(20_000, dtype=np.int64), index)
    assert np.array_equal(one, Streams.draw_at(dist, k0[3], k1[3], index.astype(np.uint64)))


def test_lognormal_by_the_mean_of_its_log_draws_that_log_normal():
    """``LogNormal(mu=, sigma=)`` is numpy's convention: log X ~ Normal(mu, sigma), so the
    mean of log X is mu and the mean of X is exp(mu + sigma^2 / 2) (within 3 standard
    errors on 200,000 draws); by mean, the same distribution draws the same values."""
    import math

    import promisesim as ps

    mu, sigma, n = -2.0, 0.6, 200_000
    by_mu = LogNormal(mu=mu, sigma=sigma)
    x = Streams(5).draws(by_mu, 0, "service", "a", 0, n)
    logs = np.log(x)
    assert abs(logs.mean() - mu) <= 3 * sigma / math.sqrt(n)
    assert abs(logs.std() - sigma) <= 0.01
    mean = math.exp(mu + sigma**2 / 2)
    assert by_mu.mean == mean and by_mu.mu == mu
    assert abs(x.mean() - mean) <= 3 * x.std() / math.sqrt(n)
    by_mean = LogNormal(mean, sigma)   # the mu it derives is within a rounding of mu
    assert abs(by_mean.mu - mu) < 1e-12
    assert repr(by_mu) == "LogNormal(mu=-2.0, sigma=0.6)"
    assert by_mu.to_dict() == {"lognormal": {"mu": -2.0, "sigma": 0.6}}
    assert ps.dists.distribution_from_dict(by_mu.to_dict()) == by_mu
    assert LogNormal(0.1, 0.5).to_dict() == {"lognormal": {"mean": 0.1, "sigma": 0.5}}


@pytest.mark.parametrize("kwargs,message", [
    (dict(mean=1.0, mu=0.0, sigma=1.0), "give mean .* or mu .*, not both"),
    (dict(sigma=1.0), "not neither"),
    (dict(mean=1.0), "sigma .* is required"),
    (dict(mu=float("nan"), sigma=1.0), "mu=nan must be a finite number"),
    (dict(mu=1000.0, sigma=1.0), "give a mean of inf"),
    (dict(mu="x", sigma=1.0), "mu='x' must be a finite number"),
])
def test_lognormal_takes_exactly_one_location(kwargs, message):
    import promisesim as ps

    with pytest.raises(ps.ScenarioError, match=message):
        LogNormal(**kwargs)
    with pytest.raises(ps.ScenarioError, match=message):
        ps.dists.distribution_from_dict({"lognormal": kwargs})
