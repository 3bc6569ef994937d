"""Instances started on demand (an agent's keep_alive): scale from zero, cold starts that
delay the requests waiting for them, warm reuse that follows from keep-alive and traffic."""

import math

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim.errors import ScenarioError


def function(placement="recent", outage=False):
    """Two instances, a cold start of 0.5, service 0.25, keep-alive 2; traffic in bursts at
    binary-exact instants (start + gap), so the trace can be followed by hand."""
    m = ps.Model("fn")
    fn = m.agent("fn", servers=2, service_time=0.25, keep_alive=2.0, cold_start=0.5,
                 placement=placement)
    p = m.promise(fn, to=m.agent("u"), body=ps.Latency(deadline=0.5), name="p")
    m.workload(p, interarrival=1.0, end=3.5, name="a")                  # 1, 2, 3
    m.workload(p, interarrival=0.5, start=4.0, end=4.6, name="e")       # 4.5
    m.workload(p, interarrival=0.25, start=8.0, end=8.6, name="b")      # 8.25, 8.5
    m.workload(p, interarrival=1.0, start=9.0, end=12.5, name="c")      # 10, 11, 12
    m.workload(p, interarrival=0.125, start=12.875, end=13.2, name="d")  # 13, 13.125
    if outage:
        m.inject(ps.Outage("fn", at=3.5, duration=0.25))
    return m


@pytest.mark.parametrize("engine", ["reference", "vector"])
@pytest.mark.parametrize("placement, last", [("recent", 0.75), ("first", 0.75), ("spread", 0.25)])
def test_a_trace_followed_by_hand(engine, placement, last):
    """1: nothing runs, instance 0 starts (0.5 + 0.25); 2 and 3 find it idle since 1.75 and
    2.25 (warm). 4.5: it has been idle since 3.25, 1.25 < 2 (warm). 8.25: stopped at 5.25,
    instance 0 starts again; 8.5: instance 0 is busy, instance 1 starts. Both are idle by
    9.25. 10, 11, 12, one at a time: "recent" and "first" keep taking one instance and let
    the other stop; "spread" alternates and keeps both running. So at 13 and 13.125, two at
    once, the second meets a cold start except with "spread"."""
    result = ps.simulate(function(placement), horizon=20.0, seed=1, engine=engine)
    q = result.requests.sort_values("arrival")
    assert q["arrival"].tolist() == [1, 2, 3, 4.5, 8.25, 8.5, 10, 11, 12, 13, 13.125]
    assert q["latency"].tolist() == [0.75, 0.25, 0.25, 0.25, 0.75, 0.75, 0.25, 0.25, 0.25,
                                     0.25, last]
    assert q["outcome"].tolist() == ["late" if x > 0.5 else "kept" for x in q["latency"]]


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_a_crash_stops_every_instance(engine):
    """An outage from 3.5 to 3.75: the instance idle since 3.25 is gone, so 4.5 starts one."""
    q = ps.simulate(function(outage=True), horizon=20.0, seed=1,
                    engine=engine).requests.sort_values("arrival")
    assert q.loc[q["arrival"] == 4.5, "latency"].tolist() == [0.75]


def test_requests_wait_for_a_busy_function_or_are_throttled():
    """All instances busy: a request waits in FIFO order for the first one freed (which runs:
    no cold start), or, with limit=servers, is rejected."""
    for limit, expected in [(None, [0.75, 0.875]), (1, [0.75, math.nan])]:
        m = ps.Model("one")
        fn = m.agent("fn", servers=1, service_time=0.25, keep_alive=2.0, cold_start=0.5,
                     limit=limit)
        p = m.promise(fn, to=m.agent("u"), body=ps.Latency(deadline=5.0), name="p")
        m.workload(p, interarrival=0.125, start=0.125, end=0.4)   # 0.25, 0.375
        for engine in ("reference", "vector"):
            q = ps.simulate(m, horizon=5.0, seed=1, engine=engine).requests
            assert q["latency"].tolist() == pytest.approx(expected, nan_ok=True), (limit, engine)


def test_instances_round_trip_and_are_checked(schema_valid):
    m = function("spread")
    data = schema_valid(m.to_dict())
    assert {k: v for k, v in data["agents"][0].items() if k not in ("service_time",)} == {
        "name": "fn", "servers": 2, "keep_alive": 2.0,
        "cold_start": {"deterministic": {"value": 0.5}}, "placement": "spread"}
    assert ps.Model.from_dict(data).spec() == m.spec()
    for kwargs, message in [
        ({"keep_alive": 0.0}, "agent 'x': keep_alive=0.0 must be a positive, finite time"),
        ({"keep_alive": math.inf}, "keep_alive=inf must be a positive, finite time"),
        ({"keep_alive": "1m"}, "keep_alive='1m' must be a positive, finite time"),
        ({"cold_start": 1.0}, "agent 'x': cold_start is for instances started on demand: "
                              "give keep_alive too"),
        ({"placement": "spread"}, "placement is for instances started on demand"),
        ({"keep_alive": 1.0, "placement": "least"}, "placement='least' must be one of "
                                                    "'recent', 'first', 'spread'"),
        ({"keep_alive": 1.0, "cold_start": -1.0}, "cold_start must be a non-negative time"),
    ]:
        bad = ps.Model("bad")
        bad.agent("x", **kwargs)
        with pytest.raises(ScenarioError, match=message.replace("(", r"\(")):
            bad.spec()


def test_the_vector_engine_leaves_other_orders_to_the_reference_engine():
    m = ps.Model("around")
    db = m.agent("db", service_time=0.1)
    fn = m.agent("fn", servers=3, keep_alive=5.0, cold_start=1.0, order="around")
    q = m.promise(db, to=fn, body=ps.Latency(deadline=1.0), name="q")
    p = m.promise(fn, to=m.agent("u"), body=ps.Latency(deadline=2.0), name="p", conditions=q)
    m.workload(p, rate=1.0)
    result = ps.simulate(m, horizon=50.0, seed=2)
    assert result.engine == "reference"
    assert "order 'around' with instances started on demand (agent 'fn')" in \
        result.engine_reason
    q = result.requests.sort_values("arrival")
    # the first request starts an instance (1.0), then calls the database (0.1) holding it
    assert q.loc[q["promise"] == "p", "latency"].iloc[0] == pytest.approx(1.1)


def cold_share_closed_form(r, k, c):
    """The share of requests that meet a cold start, for Poisson arrivals at rate ``r``, an
    instant handler (service time 0), keep-alive ``k``, deterministic cold start ``c <= k``
    and instances enough for every request.

    With service 0 an instance is busy only while it starts; so a request at ``t`` finds one
    idle and running iff some instance was freed in ``(t - k, t)``: a request that found
    one frees it at once, one that started one frees it ``c`` later. Call a moment when no
    instance runs or starts *cold*. From there the first request ``T0`` starts one, and
    every request in ``(T0, T0 + c)`` too (nothing is freed before ``T0 + c``): ``1 + rc``
    cold starts on average. From ``T0 + c`` on every request finds an instance (the one
    freed at ``T0 + c`` runs until ``T0 + c + k >= T0 + 2c``) until the first request
    with no instance freed in the ``k`` before it, which starts the next such cycle: by
    then nothing is starting (``k >= c``), so the cycles are independent.

    The instants instances are freed in ``[T0 + c, T0 + 2c]``: ``T0 + c``, the cold
    requests' ``+ c`` (Poisson, rate ``r``) and the warm requests (rate ``r``): so the last
    one is ``A = min(c, Exp(2r))`` before ``T0 + 2c``, and ``E[exp(rA)] = 2 - exp(-rc)``.
    After ``T0 + 2c`` instances are freed only at requests. From a request the time to the
    first one that comes ``k`` or more after the one before is a sum of ``Exp(r)`` gaps
    stopped at the first ``>= k`` (probability ``exp(-rk)``): mean ``exp(rk) / r``
    (Wald). From ``T0 + 2c`` the first request ends the cycle if ``>= k - A`` away, so the
    rest has mean ``1/r + (1 - exp(-r(k - A))) exp(rk) / r``. The cycle's mean length is
    then ``2c + (exp(rk) - 1 + exp(-rc)) / r``, it holds ``r`` times that many requests
    (Wald again), and the share of cold starts is

        (1 + rc) / (2rc + exp(rk) - 1 + exp(-rc)),

    which tends to ``exp(-rk)`` as ``rc -> 0``.
    """
    return (1 + r * c) / (2 * r * c + math.exp(r * k) - 1 + math.exp(-r * c))


def cold_function(r, k, c, placement="recent"):
    m = ps.Model("from zero")
    fn = m.agent("fn", servers=200, keep_alive=k, cold_start=c, placement=placement)
    p = m.promise(fn, to=m.agent("u"), body=ps.Latency(deadline=c / 2), name="p")
    m.workload(p, rate=r)
    return m


def cold_shares(result, c):
    """Per replication, the share of requests that met a cold start (latency c, not 0), which
    is the share of requests that started an instance."""
    q = result.requests
    cold = (q["latency"] > c / 2).groupby(q["replication"]).sum()
    started = result.instances.groupby("replication")["started"].sum()
    inside = q["latency"].isna().groupby(q["replication"]).sum()   # still inside at the end
    assert ((started - cold >= 0) & (started - cold <= inside)).all()
    return (cold / q.groupby("replication").size()).to_numpy()


@pytest.mark.parametrize("r, k, c", [(1.0, 2.0, 0.5), (0.5, 3.0, 2.0)])
def test_the_share_of_cold_starts_matches_its_closed_form(r, k, c):
    """Within 3 standard errors over replications; at these rates the ``rc`` terms move the
    share well away from ``exp(-rk)`` (0.1876 against 0.1353, 0.3419 against 0.2231)."""
    shares = cold_shares(ps.simulate(cold_function(r, k, c), horizon=3_000.0 / r,
                                     replications=12, seed=11, engine="vector"), c)
    expected = cold_share_closed_form(r, k, c)
    se = shares.std(ddof=1) / math.sqrt(shares.size)
    assert se < 0.004
    assert abs(shares.mean() - expected) <= 3 * se, (shares.mean(), expected, se)
    assert abs(shares.mean() - math.exp(-r * k)) > 6 * se   # the closed form is needed


def test_with_an_instant_handler_the_placement_changes_no_cold_start():
    """Whether a request meets a cold start depends only on when instances were freed (see
    the closed form), not on which idle one it takes: the same shares, exactly."""
    shares = [cold_shares(ps.simulate(cold_function(1.0, 2.0, 0.5, placement), horizon=500.0,
                                      replications=3, seed=4), 0.5)
              for placement in ("recent", "first", "spread")]
    np.testing.assert_array_equal(shares[0], shares[1])
    np.testing.assert_array_equal(shares[0], shares[2])


def test_spreading_keeps_more_instances_warm_under_steady_load():
    """With a real service time, "spread" keeps more instances running than "recent", so
    fewer requests meet a cold start (checked on both engines, which agree exactly). Each
    request's service time is the same draw under either placement, and 20 instances never
    make a request wait, so the latencies differ only by the cold starts (1.0 each)."""
    def model(placement):
        m = ps.Model("steady")
        fn = m.agent("fn", servers=20, service_time=ps.Exponential(0.5), keep_alive=3.0,
                     cold_start=1.0, placement=placement)
        p = m.promise(fn, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="p")
        m.workload(p, rate=2.0)
        return m
    shares = {}
    for placement in ("recent", "spread"):
        ref = ps.simulate(model(placement), horizon=300.0, replications=2, seed=9,
                          engine="reference")
        vec = ps.simulate(model(placement), horizon=300.0, replications=2, seed=9,
                          engine="vector")
        pd.testing.assert_frame_equal(ref.requests, vec.requests, check_exact=True)
        shares[placement] = ref.requests["latency"]
    cold = (shares["recent"] - shares["spread"]).dropna().round(9)
    assert set(cold.unique()) <= {-1.0, 0.0, 1.0}   # a cold start more or less, or the same
    assert cold.sum() > 10   # "recent" meets more


def test_a_super_agent_of_size_zero_points_to_keep_alive():
    m = ps.Model("zero")
    m.super_agent("fn", size=0, member=ps.AgentTemplate(service_time=0.1))
    with pytest.raises(ScenarioError, match="keep_alive"):
        m.spec()


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_the_size_over_time_follows_scaling_and_failures(engine):
    """2 members; at 100 four, serving after a 10 s start-up; at 200 three (removed members
    drain: they serve no new requests at once); an outage of member 0 from 250 to 260."""
    m = ps.Model("sizes")
    grp = m.super_agent("grp", size=2, startup=10.0,
                        member=ps.AgentTemplate(service_time=0.1))
    m.promise(grp, to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.ScaleTo(grp, size=4, at=100.0))
    m.inject(ps.ScaleTo(grp, size=3, at=200.0))
    m.inject(ps.Outage("grp.0", at=250.0, duration=10.0))
    result = ps.simulate(m, horizon=300.0, replications=2, seed=1, engine=engine)
    sizes = result.sizes
    expected = [(0.0, 2), (110.0, 4), (200.0, 3), (250.0, 2), (260.0, 3)]
    for r in range(2):
        one = sizes[sizes["replication"] == r]
        assert list(zip(one["time"], one["serving"])) == expected
    assert list(sizes["super_agent"].cat.categories) == ["grp"]
    from promisesim.plotting import plot_sizes
    ax = plot_sizes(result)
    assert ax.get_ylabel().startswith("members serving") and len(ax.lines) == 3   # 2 + mean
    with pytest.raises(ValueError, match="'nope' is neither a super-agent nor an agent with a "
                                         r"keep_alive \(known: grp\)"):
        plot_sizes(result, ["nope"])


@pytest.mark.parametrize("engine", ["reference", "vector"])
@pytest.mark.parametrize("placement, outage, expected", [
    # (time, running, started), followed by hand (see test_a_trace_followed_by_hand): an
    # instance stops 2 after its last request left (4.5's left at 4.75: stopped at 6.75)
    ("recent", False, [(0, 0, 0), (1, 1, 1), (6.75, 0, 0), (8.25, 1, 1), (8.5, 2, 1),
                       (11, 1, 0), (13.125, 2, 1), (15.25, 1, 0), (15.875, 0, 0)]),
    # "spread" keeps both running through 10, 11, 12, so 13.125 starts none
    ("spread", False, [(0, 0, 0), (1, 1, 1), (6.75, 0, 0), (8.25, 1, 1), (8.5, 2, 1),
                       (15.25, 1, 0), (15.375, 0, 0)]),
    # the outage at 3.5 stops the instance idle since 3.25; 4.5 starts it again (0.5 + 0.25)
    ("recent", True, [(0, 0, 0), (1, 1, 1), (3.5, 0, 0), (4.5, 1, 1), (7.25, 0, 0),
                      (8.25, 1, 1), (8.5, 2, 1), (11, 1, 0), (13.125, 2, 1), (15.25, 1, 0),
                      (15.875, 0, 0)]),
])
def test_instances_running_over_time_by_hand(engine, placement, outage, expected):
    result = ps.simulate(function(placement, outage), horizon=20.0, seed=1, engine=engine)
    table = result.instances
    assert list(zip(table["time"], table["running"], table["started"])) == expected
    assert table["started"].sum() == (result.requests["latency"] > 0.5).sum()   # cold ones
    assert list(ps.simulate(function(placement, outage), horizon=14.0, seed=1,
                            engine=engine).instances["time"]) == [t for t, *_ in expected
                                                                  if t < 14.0]


def test_the_command_line_counts_cold_starts_and_draws_the_instances(tmp_path, capsys):
    from pathlib import Path

    from promisesim.cli import main

    example = Path(ps.__file__).parent / "examples" / "function_from_zero.yaml"
    assert main(["run", str(example), "--horizon", "600", "--replications", "2",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "instances started on demand, per replication: thumbnail-fn " in out
    table = pd.read_csv(tmp_path / "instances.csv")
    assert table["started"].sum() > 0 and (tmp_path / "sizes.png").stat().st_size > 1000
