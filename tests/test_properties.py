"""Properties that hold for every model: hypothesis builds small random models."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import promisesim as ps
from promisesim.dists import Deterministic, Exponential, LogNormal, Uniform

durations = st.one_of(
    st.floats(0.5, 20.0).map(Exponential),
    st.floats(0.5, 20.0).map(Deterministic),
    st.tuples(st.floats(0.1, 5.0), st.floats(5.5, 20.0)).map(lambda t: Uniform(*t)),
    st.tuples(st.floats(0.5, 20.0), st.floats(0.1, 1.5)).map(lambda t: LogNormal(*t)),
)
services = st.one_of(st.floats(0.01, 0.5).map(Exponential), st.floats(0.0, 0.3).map(Deterministic))


@st.composite
def models(draw):
    m = ps.Model("random")
    users = m.agent("users")
    n = draw(st.integers(1, 4))
    agents = []
    for i in range(n):
        failures = None
        if draw(st.booleans()):
            failures = ps.Failures(time_to_failure=draw(durations), time_to_repair=draw(durations))
        agents.append(m.agent(f"a{i}", failures=failures, service_time=draw(services),
                              servers=draw(st.integers(1, 3))))
    top = m.agent("top", service_time=draw(services))
    offers = []
    for a in agents:
        latency = draw(st.booleans())
        body = ps.Latency(deadline=draw(st.floats(0.05, 2.0))) if latency else ps.Availability()
        offers.append(m.promise(a, to=top, body=body, name=f"{a.name}-offer"))
    rule = draw(st.sampled_from(["all", "any", "k"]))
    if rule == "all":
        cond = ps.all_of(*offers)
    elif rule == "any":
        cond = ps.any_of(*offers)
    else:
        cond = ps.k_of(draw(st.integers(1, len(offers))), *offers)
    serve = m.promise(top, to=users, body=ps.Latency(deadline=draw(st.floats(0.1, 3.0))),
                      conditions=cond, name="serve")
    m.promise(top, to=users, body=ps.Availability(), conditions=cond, name="status")
    m.workload(serve, rate=draw(st.floats(0.2, 3.0)))
    for _ in range(draw(st.integers(0, 2))):
        m.inject(ps.Outage(draw(st.sampled_from([a.name for a in agents] + ["top"])),
                           at=draw(st.floats(0.0, 60.0)), duration=draw(st.floats(0.1, 30.0))))
    return m


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models(), seed=st.integers(0, 2**32 - 1))
def test_invariants(model, seed):
    horizon = 50.0
    r = ps.simulate(model, horizon=horizon, replications=2, seed=seed)
    p = r.promises
    assert ((p["kept_fraction"] >= 0) & (p["kept_fraction"] <= 1)).all()
    assert np.allclose(p["kept_fraction"] * horizon + p["broken_time"], horizon)
    assert (p["longest_break"] <= p["broken_time"] + 1e-9).all()
    assert (p["requests_kept"] <= p["requests"]).all()
    frac = p["request_kept_fraction"].dropna()
    assert ((frac >= 0) & (frac <= 1)).all()

    # intervals tile [0, horizon) for every entity, alternating states
    for (rep, entity), g in r.intervals.groupby(["replication", "entity"], observed=True):
        assert g["start"].iloc[0] == 0.0 and g["end"].iloc[-1] == horizon
        assert (g["start"].to_numpy()[1:] == g["end"].to_numpy()[:-1]).all()
        assert (g["end"] > g["start"]).all()
        assert (g["state"].astype(str).to_numpy()[1:] != g["state"].astype(str).to_numpy()[:-1]).all()

    # events are in time order within a replication and inside the horizon
    for _, g in r.events.groupby("replication"):
        assert (np.diff(g["time"].to_numpy()) >= 0).all()
    assert ((r.events["time"] >= 0) & (r.events["time"] < horizon)).all()

    # requests: arrivals inside the horizon; latency known iff answered
    rq = r.requests
    assert ((rq["arrival"] > 0) & (rq["arrival"] < horizon)).all()
    answered = rq["outcome"].isin(["kept"]) | (rq["outcome"].eq("late") & rq["latency"].notna())
    assert rq.loc[answered, "latency"].notna().all()
    assert (rq.loc[rq["kept"], "latency"] >= 0).all()
    deadline = {p.name: getattr(p.body, "deadline", math.inf) for p in r.spec.promises}
    kept = rq[rq["kept"]]
    assert (kept["latency"].to_numpy() <= kept["promise"].astype(str).map(deadline).to_numpy()).all()

    # a request refused for a down promiser arrived while it was down
    down = rq[rq["outcome"] == "promiser_down"]
    iv = r.intervals[r.intervals["kind"] == "agent"]
    for row in down.itertuples():
        promiser = r.spec.promises[r.spec.promise_index[str(row.promise)]].promiser
        seg = iv[(iv["replication"] == row.replication) & (iv["entity"] == promiser)
                 & (iv["start"] <= row.arrival) & (iv["end"] > row.arrival)]
        assert list(seg["state"].astype(str)) == ["down"]


@pytest.mark.parametrize("seed", range(5))
def test_the_canonical_order_of_requests_is_lexsort_of_all_eight_keys(seed):
    """Packed integer keys, then the ties sorted by the rest: the order of numpy.lexsort over
    every key, ties, NaN latencies and keys too wide to pack included."""
    from promisesim.engines.base import request_order

    rng = np.random.default_rng(seed)
    n = 5_000
    req = {"replication": rng.integers(0, 4, n).astype(np.int32),
           "workload": rng.integers(0, 2, n).astype(np.int16),
           "index": rng.integers(0, 50 if seed < 4 else 2**60, n).astype(np.int64),
           "promise": rng.integers(0, 3, n).astype(np.int32),
           "attempt": rng.integers(0, 2, n).astype(np.int16),
           "arrival": rng.integers(0, 3, n).astype(float),
           "outcome": rng.integers(0, 3, n).astype(np.int8),
           "latency": np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 3, n) * 0.5)}
    expected = np.lexsort(tuple(req[k] for k in ("latency", "outcome", "arrival", "attempt",
                                                 "promise", "index", "workload", "replication")))
    np.testing.assert_array_equal(request_order(req), expected)
