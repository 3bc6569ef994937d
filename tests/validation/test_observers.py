"""Observers and convergent maintenance: exact traces, the periodic-check closed form, errors."""

import math

import pandas as pd
import pytest

import promisesim as ps
from promisesim.dists import Deterministic as D
from promisesim.dists import Exponential, Uniform


def test_observer_outcomes_and_detection_delays_exact():
    m = ps.Model("observed")
    a = m.agent("a")
    p = m.promise(a, to=m.agent("u"), body=ps.Availability(), name="p")
    m.inject(ps.Outage("a", at=2.5, duration=0.2))     # broken [2.5, 2.7)
    m.inject(ps.Outage("a", at=4.2, duration=2.3))     # broken [4.2, 6.5)
    m.observe(p, interval=D(1.0), name="watch")
    for engine in ("reference", "vector"):
        row = ps.simulate(m, horizon=7.5, seed=0, engine=engine).observations.iloc[0]
        # checks 1..7: kept, kept, repaired, kept, not kept, not kept, repaired
        assert (row["checks"], row["kept"], row["repaired"], row["not_kept"]) == (7, 3, 2, 2)
        assert row["breaks_detected"] == 2
        assert row["mean_detection_delay"] == pytest.approx((0.5 + 0.8) / 2)


def test_maintenance_repairs_only_at_runs_exact():
    m = ps.Model("maintained")
    a = m.agent("a", failures=ps.Failures(time_to_failure=D(2.5),
                                          maintenance=ps.Maintenance(interval=D(1.0), success=1.0)))
    m.promise(a, to=m.agent("u"), body=ps.Availability(), name="p")
    for engine in ("reference", "vector"):
        ev = ps.simulate(m, horizon=10.0, seed=0, engine=engine).events
        ev = ev[ev["kind"] == "agent"]
        # fails 2.5, repaired by the run at 3, fails 5.5, repaired at 6, fails 8.5, repaired at 9
        assert list(zip(ev["time"], ev["event"].astype(str))) == [
            (2.5, "down"), (3.0, "up"), (5.5, "down"), (6.0, "up"), (8.5, "down"), (9.0, "up")]


@pytest.mark.slow
def test_periodic_checks_match_the_closed_form():
    """Drift at rate lambda, a check every T that repairs with probability s: with
    d = 1 - exp(-lambda T), P(broken after a check) = d(1-s) / (d(1-s) + s); a check finds
    the promise kept with probability (1 - pi)(1 - d), repairs it with (pi + (1-pi) d) s, and
    leaves it not kept with pi. lambda=0.1, T=1, s=0.9 gives 0.8954, 0.0942, 0.0105."""
    lam, interval, success = 0.1, 1.0, 0.9
    m = ps.Model("periodic checks")
    host = m.agent("host", failures=ps.Failures(
        time_to_failure=Exponential(mean=1 / lam),
        maintenance=ps.Maintenance(interval=D(interval), success=success)))
    p = m.promise(host, to=m.agent("u"), body=ps.Availability(), name="config")
    m.observe(p, name="cf-agent")
    r = ps.simulate(m, horizon=2_000.0, replications=30, seed=8)
    table = r.observation_summary().set_index("metric")
    d = 1 - math.exp(-lam * interval)
    pi = d * (1 - success) / (d * (1 - success) + success)
    expected = {"kept_share": (1 - pi) * (1 - d), "repaired_share": (pi + (1 - pi) * d) * success,
                "not_kept_share": pi}
    assert expected["kept_share"] == pytest.approx(0.8954, abs=5e-5)
    assert expected["repaired_share"] == pytest.approx(0.0942, abs=5e-5)
    assert expected["not_kept_share"] == pytest.approx(0.0105, abs=5e-5)
    for metric, value in expected.items():
        row = table.loc[metric]
        assert abs(row["mean"] - value) <= 3 * row["stderr"], (metric, row["mean"], value)
    # a break is found at the next run: mean delay E[T - X | X < T] for exponential drift
    delay = interval - (1 / lam - interval * math.exp(-lam * interval) / d)
    row = table.loc["mean_detection_delay"]
    assert abs(row["mean"] - delay) <= 3 * row["stderr"]


def test_maintained_agents_agree_across_engines():
    m = ps.Model("both")
    u = m.agent("u")
    a = m.agent("a", service_time=Exponential(0.2), failures=ps.Failures(
        Exponential(5.0), maintenance=ps.Maintenance(Uniform(0.5, 1.5), success=0.6)))
    b = m.agent("b", failures=ps.Failures(Exponential(8.0), Exponential(1.0)))
    pa = m.promise(a, to=b, body=ps.Latency(deadline=0.5), name="pa")
    pb = m.promise(b, to=u, body=ps.Latency(deadline=1.0), conditions=pa, name="pb")
    m.workload(pb, rate=2.0)
    m.inject(ps.Outage("a", at=20.0, duration=5.0))
    m.observe(pb, interval=Exponential(2.0), name="probe")
    ref = ps.simulate(m, horizon=300.0, replications=3, seed=5, engine="reference")
    vec = ps.simulate(m, horizon=300.0, replications=3, seed=5, engine="vector")
    for table in ("promises", "events", "requests", "observations"):
        pd.testing.assert_frame_equal(getattr(ref, table), getattr(vec, table), check_exact=True,
                                      check_flags=False)


def test_maintenance_and_observers_round_trip_through_yaml():
    m = ps.Model("yaml")
    a = m.agent("a", failures=ps.Failures(Exponential(5.0), maintenance=ps.Maintenance(D(1.0), 0.7)))
    p = m.promise(a, to=m.agent("u"), body=ps.Availability(), name="p")
    m.observe(p, name="at-runs")
    m.observe(p, interval=Uniform(1.0, 2.0), name="probe")
    text = ps.dump_scenario(m)
    from promisesim.scenario import scenario_from_text
    assert scenario_from_text(text).model.spec() == m.spec()


def bad(**failure):
    m = ps.Model("bad")
    a = m.agent("a", failures=ps.Failures(time_to_failure=Exponential(1.0), **failure))
    return m, m.promise(a, to=m.agent("u"), body=ps.Availability(), name="p")


@pytest.mark.parametrize("failure, message", [
    ({}, "either time_to_repair or maintenance, not neither"),
    ({"time_to_repair": Exponential(1.0), "maintenance": ps.Maintenance(D(1.0))}, "not both"),
    ({"maintenance": ps.Maintenance(D(1.0), success=0.0)}, "success=0.0"),
    ({"maintenance": ps.Maintenance(D(1.0), success=1.5)}, "success=1.5"),
])
def test_bad_maintenance_is_refused(failure, message):
    m, _ = bad(**failure)
    with pytest.raises(ps.ScenarioError, match=f"agent 'a'.*{message}"):
        m.spec()


def test_observer_at_runs_needs_maintenance():
    m = ps.Model("no runs")
    p = m.promise(m.agent("a"), to=m.agent("u"), body=ps.Availability(), name="p")
    m.observe(p, name="o")
    with pytest.raises(ps.ScenarioError, match="observer 'o'.*'a', which has no maintenance"):
        m.spec()
    m.observers.clear()
    m.observe("nope", interval=D(1.0), name="o2")
    with pytest.raises(ps.ScenarioError, match="observer 'o2': promise 'nope'"):
        m.spec()


def test_periodic_check_example_from_the_command_line(capsys):
    import json
    from pathlib import Path

    from promisesim.cli import main

    path = Path(ps.__file__).parent / "examples" / "periodic_checks.yaml"
    assert main(["run", str(path), "--json"]) == 0
    records = {r["metric"]: r for r in json.loads(capsys.readouterr().out) if "observer" in r}
    d = 1 - math.exp(-0.1)
    pi = d * 0.1 / (d * 0.1 + 0.9)
    for metric, value in (("kept_share", (1 - pi) * (1 - d)), ("not_kept_share", pi),
                          ("repaired_share", (pi + (1 - pi) * d) * 0.9)):
        assert abs(records[metric]["mean"] - value) <= 3 * records[metric]["stderr"]


def test_zero_length_draws_under_maintenance_agree_and_make_no_blips():
    from promisesim.dists import Empirical

    m = ps.Model("zero up time")
    a = m.agent("a", failures=ps.Failures(time_to_failure=Empirical((0.0, 3.0)),
                                          maintenance=ps.Maintenance(interval=D(1.0), success=1.0)))
    m.promise(a, to=m.agent("u"), body=ps.Availability(), name="p")
    m.inject(ps.Outage("a", at=3.0, duration=0.5))
    ref = ps.simulate(m, horizon=40.0, replications=3, seed=4, engine="reference").events
    vec = ps.simulate(m, horizon=40.0, replications=3, seed=4, engine="vector").events
    pd.testing.assert_frame_equal(ref, vec, check_exact=True, check_flags=False)
    agents = ref[ref["kind"] == "agent"]
    for _, g in agents.groupby("replication"):
        assert (g["time"].diff().dropna() > 0).all()


def test_observers_at_runs_follow_the_engine_seed_sequence():
    import numpy as np

    m = ps.Model("pool")
    a = m.agent("a", failures=ps.Failures(Exponential(5.0), maintenance=ps.Maintenance(Uniform(0.5, 1.5))))
    p = m.promise(a, to=m.agent("u"), body=ps.Availability(), name="p")
    m.observe(p, name="runs")
    r = ps.simulate(m, horizon=200.0, seed=np.random.SeedSequence(7, pool_size=8))
    row = r.observations.iloc[0]
    ups = r.events[(r.events["kind"] == "agent") & (r.events["event"] == "up")]
    assert row["repaired"] == len(ups)          # every repair happens at a run the observer sees


# -- probes: observers that check by sending requests --------------------------------------

def probed(errors=0.0, **observe):
    m = ps.Model("probed")
    pay = m.agent("payments", service_time=D(0.5), errors=errors)
    p = m.promise(pay, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="pay")
    m.inject(ps.Outage("payments", at=7.0, duration=4.0))     # down [7, 11)
    m.observe(p, **{"interval": D(5.0), "name": "synthetic", "probe": True, **observe})
    return m


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_probes_are_requests_at_the_observers_instants_exact(engine):
    """Probes at 5, 10, 15 (gaps of 5): answered at 5.5, refused while down at 10, answered
    at 15.5; a break of [7, 11) detected by the probe at 10, 3 after it began."""
    r = ps.simulate(probed(), horizon=20.0, seed=0, engine=engine)
    req = r.requests
    sent = req[req["workload"] == "synthetic"]
    assert list(zip(sent["arrival"], sent["outcome"].astype(str))) == [
        (5.0, "kept"), (10.0, "promiser_down"), (15.0, "kept")]
    row = r.observations.set_index("observer").loc["synthetic"]
    assert (row["checks"], row["kept"], row["repaired"], row["not_kept"]) == (3, 2, 0, 1)
    assert (row["breaks_detected"], row["mean_detection_delay"]) == (1, 3.0)


def test_probes_see_error_answers_that_a_state_check_cannot():
    """payments up a share A of the time, answering errors with probability p: probes fail
    1 - A (1 - p) of the time (PASTA), a state check 1 - A; both engines, identical."""
    mttf, mttr, p = 500.0, 20.0, 0.05
    m = ps.Model("errors and outages")
    pay = m.agent("payments", service_time=Exponential(0.02), errors=p,
                  failures=ps.Failures(time_to_failure=Exponential(mttf),
                                       time_to_repair=Exponential(mttr)))
    pay_p = m.promise(pay, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="pay")
    m.observe(pay_p, interval=Exponential(2.0), name="state")
    m.observe(pay_p, interval=Exponential(2.0), name="synthetic", probe=True)
    vec = ps.simulate(m, horizon=40_000.0, replications=12, seed=5, engine="vector")
    ref = ps.simulate(m, horizon=40_000.0, replications=1, seed=5, engine="reference")
    first = vec.observations[vec.observations["replication"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(ref.observations, first, check_exact=True)
    a = mttf / (mttf + mttr)
    summary = vec.observation_summary().set_index(["observer", "metric"])
    for observer, expected in (("synthetic", 1 - a * (1 - p)), ("state", 1 - a)):
        row = summary.loc[(observer, "not_kept_share")]
        assert abs(row["mean"] - expected) <= 3 * row["stderr"], (observer, row["mean"], expected)
        assert row["stderr"] < 0.004   # power: the two differ by 0.048


@pytest.mark.parametrize("change,message", [
    (dict(interval=None), "a probe sends requests every interval"),
    (dict(probe="yes"), "probe='yes' must be true or false"),
    (dict(name="pay"), "a workload already has that name"),
])
def test_bad_probes_are_refused(change, message):
    m = probed(**change)
    if "name" in change:
        m.workload("pay", rate=1.0)
    with pytest.raises(ps.ScenarioError, match=message):
        m.spec()


def test_probes_need_a_latency_promise_and_request_records(tmp_path):
    m = ps.Model("up")
    p = m.promise(m.agent("a"), to=m.agent("u"), body=ps.Availability(), name="up")
    m.observe(p, interval=D(1.0), probe=True, name="probe")
    with pytest.raises(ps.ScenarioError, match="observer 'probe': probes are requests"):
        m.spec()
    with pytest.raises(ps.ScenarioError, match="simulate with record_requests=True"):
        ps.simulate(probed(), horizon=20.0, record_requests=False)
    path = tmp_path / "probed.yaml"
    ps.dump_scenario(probed(), path)
    assert "probe: true" in path.read_text()
    again = ps.load_scenario(path).model
    assert again.observers == probed().observers
