"""Objectives (SLOs) against closed forms, within 3 standard errors across replications."""

import math

import numpy as np
import pandas as pd
import pytest

import promisesim as ps

pytestmark = pytest.mark.slow

Z = 3.0


def probability_met_by_slices(fail, repair, tau, n, target, windows):
    """The probability that a calendar window of ``n`` slices of ``tau`` meets ``target`` when a
    slice is good iff the agent (exponential up times of rate ``fail``, repairs of rate
    ``repair``, up at 0) is up throughout it, averaged over the first ``windows`` windows.

    The agent's state at slice boundaries is a two-state Markov chain; a slice that starts up
    is good with probability e^{-fail tau} (and then ends up); otherwise it is bad and ends up
    or down with the chain's transition probabilities. A dynamic programme over the slices of a
    window carries (state at the boundary, bad slices so far); the window meets the target iff
    at most floor((1 - target) n) slices are bad."""
    s = fail + repair
    e = math.exp(-s * tau)
    p_uu, p_du = repair / s + fail / s * e, repair / s * (1 - e)
    good = math.exp(-fail * tau)
    allowed = math.floor((1 - target) * n + 1e-9)
    start = np.array([1.0, 0.0])          # P(up), P(down) at the window's start
    total = 0.0
    for _ in range(windows):
        f = np.zeros((2, n + 1))          # [state, bad slices]
        f[:, 0] = start
        for _ in range(n):
            g = np.zeros_like(f)
            g[0, :] += f[0, :] * good                            # up throughout: good
            g[0, 1:] += f[0, :-1] * (p_uu - good)                # a failure and repair inside
            g[1, 1:] += f[0, :-1] * (1 - p_uu)
            g[0, 1:] += f[1, :-1] * p_du
            g[1, 1:] += f[1, :-1] * (1 - p_du)
            f = g
        total += f[:, :allowed + 1].sum()
        start = f.sum(axis=1)
    return total / windows


def test_timeslice_budgeting_on_one_agent_matches_the_slice_chain():
    """Up 90 on average, repairs 10 (A = 0.9); slices of 10, windows of 10 slices, target 0.8:
    a window meets it with at most 2 bad slices."""
    m = ps.Model("one agent")
    a = m.agent("a", failures=ps.Failures(ps.Exponential(mean=90.0), ps.Exponential(mean=10.0)))
    up = m.promise(a, to=m.agent("u"), body=ps.Availability(), name="up")
    m.objective(up, target=0.8, window=100.0, budgeting="timeslices", timeslice=10.0)
    r = ps.simulate(m, horizon=10_000.0, replications=24, seed=3)
    share = r.objectives.groupby("replication")["met"].mean().to_numpy(dtype=float)
    mean, se = share.mean(), share.std(ddof=1) / math.sqrt(share.size)
    expected = probability_met_by_slices(1 / 90, 1 / 10, 10.0, 10, 0.8, 100)
    assert se < 0.015
    assert abs(mean - expected) <= Z * se, (mean, se, expected)
    s = r.objective_summary().iloc[0]
    assert s["ci_low"] <= expected <= s["ci_high"]


def test_occurrences_on_an_m_m_1_promise_attain_its_response_time_distribution():
    """M/M/1, lambda 1, mu 2, deadline 1: P(T <= d) = 1 - e^{-(mu - lambda) d}. Each window's
    attained share is kept / requests; their mean is that probability (a ratio of sums over
    windows of about 200 requests: its bias is far below the standard error)."""
    lam, mu, d = 1.0, 2.0, 1.0
    m = ps.Model("mm1")
    a = m.agent("a", service_time=ps.Exponential(mean=1 / mu))
    p = m.promise(a, to=m.agent("u"), body=ps.Latency(deadline=d), name="p")
    m.workload(p, rate=lam)
    m.objective(p, target=0.8, window=200.0)
    vec = ps.simulate(m, horizon=20_000.0, replications=16, seed=9, engine="vector")
    ref = ps.simulate(m, horizon=20_000.0, replications=2, seed=9, engine="reference")
    first = vec.objectives[vec.objectives["replication"] < 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(ref.objectives, first, check_exact=True, check_flags=False)
    per = vec.objectives.groupby("replication")["attained"].mean().to_numpy()
    mean, se = per.mean(), per.std(ddof=1) / math.sqrt(per.size)
    expected = 1 - math.exp(-(mu - lam) * d)                       # 0.632
    assert se < 0.005
    assert abs(mean - expected) <= Z * se, (mean, se, expected)
