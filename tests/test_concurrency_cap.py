"""A super-agent's concurrency cap (limit=): its requests inside, as a whole, are capped."""

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim import analytic


def capped(rate=3.0, servers=2, cap=4, deadline=1e6):
    m = ps.Model("capped")
    fn = m.super_agent("fn", size=1, limit=cap,
                       member=ps.AgentTemplate(service_time=ps.Exponential(1.0), servers=servers))
    p = m.promise(fn, to=m.agent("u"), body=ps.Latency(deadline=deadline), name="p")
    m.workload(p, rate=rate)
    return m


def test_the_cap_round_trips_and_both_engines_agree_exactly(schema_valid, monkeypatch):
    from promisesim.engines.vector import batch
    monkeypatch.setattr(batch, "_STALLED_MIN", float("inf"))   # the passes, to the end
    m = capped(deadline=3.0)
    data = schema_valid(m.to_dict())
    assert data["super_agents"][0]["limit"] == 4
    assert ps.Model.from_dict(data).spec() == m.spec()
    ref = ps.simulate(m, horizon=150.0, replications=2, seed=3, engine="reference")
    vec = ps.simulate(m, horizon=150.0, replications=2, seed=3, engine="vector")
    assert vec.trace.computed_by is None
    pd.testing.assert_frame_equal(ref.promises, vec.promises)
    pd.testing.assert_frame_equal(ref.requests, vec.requests)
    assert (ref.requests["outcome"] == "rejected").any()


def test_auto_runs_a_capped_front_on_the_reference_engine_and_says_why():
    result = ps.simulate(capped(), horizon=100.0, seed=1)
    assert result.engine == "reference"
    assert "agent 'fn' has a capacity limit and calls others" in result.engine_reason
    assert result.promises.attrs["engine_reason"] == result.engine_reason
    plain = ps.Model("plain")
    s = plain.agent("s", service_time=ps.Exponential(1.0), limit=3)
    plain.workload(plain.promise(s, to=plain.agent("u"), body=ps.Latency(deadline=5.0),
                                 name="p"), rate=0.5)
    result = ps.simulate(plain, horizon=100.0, seed=1)
    assert result.engine == "vector" and result.engine_reason.startswith("auto: the vector")
    assert ps.simulate(plain, horizon=100.0, seed=1, engine="reference").engine_reason == \
        "asked for"
    # the same cap where the member keeps up (load 0.75): the vector engine's passes settle
    result = ps.simulate(capped(rate=1.5), horizon=100.0, seed=1)
    assert result.engine == "vector" and result.trace.computed_by is None


def test_refusals_that_settle_a_few_per_pass_hand_the_run_to_the_reference_engine():
    """Overloaded behind its cap, the front's refusals settle a few per pass: the vector
    engine hands the run to the reference engine after 3 passes (same results) and says so;
    at a load it keeps up with, it runs the passes to the end."""
    from promisesim.engines.vector import batch

    passes = []
    original = batch._Batch._refusals_settled

    def counting(self, gated):
        passes.append(1)
        return original(self, gated)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batch._Batch, "_refusals_settled", counting)
        vec = ps.simulate(capped(), horizon=300.0, replications=2, seed=4, engine="vector")
        assert len(passes) == 3
    ref = ps.simulate(capped(), horizon=300.0, replications=2, seed=4, engine="reference")
    assert vec.trace.computed_by == "reference"
    assert "handed the run to reference" in vec.engine_reason
    pd.testing.assert_frame_equal(ref.requests, vec.requests)
    kept_up = ps.simulate(capped(rate=1.5), horizon=300.0, replications=2, seed=4,
                          engine="vector")
    assert kept_up.trace.computed_by is None
    assert (kept_up.requests["outcome"] == "rejected").sum() > 10


@pytest.mark.slow
def test_a_capped_function_blocks_as_m_m_c_k():
    """One member of c servers behind a cap of K: the requests inside are an M/M/c/K queue,
    so the share rejected is its blocking probability (within 3 standard errors over
    replications)."""
    rate, servers, cap = 3.0, 2, 4
    result = ps.simulate(capped(rate, servers, cap), horizon=2_000.0, replications=20, seed=5)
    q = result.requests
    q = q[q["promise"] == "p"]
    rejected = (q["outcome"] == "rejected").groupby(q["replication"]).mean().to_numpy()
    expected = analytic.mmck_blocking(rate, 1.0, servers, cap)
    se = rejected.std(ddof=1) / np.sqrt(rejected.size)
    assert abs(rejected.mean() - expected) <= 3 * se, (rejected.mean(), expected, se)
