"""Burn-rate alerts on objectives: firing periods computed by hand, how well they warn, a step
failure's detection delay, bad settings."""

import math

import pytest

import promisesim as ps
from promisesim.dists import Deterministic as D


def two_outages():
    """Requests every 1 from 1 on, answered at once; the promiser is down over [25, 35) (10
    requests refused) and [70, 72) (2). Objective: 90% of each 50."""
    m = ps.Model("alerts")
    users, api = m.agent("users"), m.agent("api")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=1.0), name="serve")
    m.workload(serve, interarrival=D(1.0))
    m.inject(ps.Outage("api", at=25.0, duration=10.0))
    m.inject(ps.Outage("api", at=70.0, duration=2.0))
    slo = m.objective(serve, target=0.9, window=50.0, name="slo")
    m.alert(slo, long=20.0, short=5.0, burn_rate=2.0, every=5.0, name="slow")
    m.alert("slo", long=5.0, short=5.0, burn_rate=2.0, every=5.0, name="fast")
    return m


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_firing_periods_by_hand(engine):
    """Evaluated every 5 over [t - w, t). 'slow' at 30: the last 5 all refused (burn 10), the
    last 20 a quarter (burn 2.5); at 35 the same; at 40 the last 5 are fine: [30, 40). At 75
    the last 20 hold 2 refused (burn 1): quiet. 'fast' fires at 30, 35 and at 75 (2 of 5)."""
    r = ps.simulate(two_outages(), horizon=100.0, seed=0, engine=engine)
    periods = [(str(a), s, e) for a, s, e in zip(r.alerts["alert"], r.alerts["start"],
                                                 r.alerts["end"])]
    assert periods == [("slow", 30.0, 40.0), ("fast", 30.0, 40.0), ("fast", 75.0, 80.0)]


def test_how_well_each_alert_warns():
    """Window [0, 50) misses (39 of 49); [50, 100) meets (48 of 50). Its budget, 4.9 refused
    requests, is spent by the end of the step [25, 30): both alerts fire then (lead 0). The
    fast one's firing at 75 lies in a window that met: a false alarm."""
    r = ps.simulate(two_outages(), horizon=100.0, seed=0)
    s = r.alert_summary().set_index("alert")
    assert s.loc["slow", ["firings", "windows", "windows_missed", "missed_detected",
                          "false_alarms"]].tolist() == [1, 2, 1, 1, 0]
    assert s.loc["fast", ["firings", "missed_detected", "false_alarms"]].tolist() == [2, 1, 1]
    assert s.loc["slow", "mean_lead"] == 0.0 and s.loc["slow", "detected_share"] == 1.0
    assert s.loc["fast", "false_alarms_per_30d"] == pytest.approx(1 / 100 * 30 * 86_400)


def test_a_step_failure_is_detected_when_the_long_window_burns_fast_enough():
    """200 requests per second; from t0 = 600 each answer is an error with probability e.
    Target 99.9%, alert 14.4x over 1 h and 5 min, evaluated every minute. The hour's window
    starts at 0 until t = 3600, so it burns e (t - t0) / t / 0.001: it reaches 14.4 at
    t* = t0 / (1 - 0.0144 / e); with e = 0.0464, t* = 870 (the short window has burned
    0.0464 / 0.001 = 46 since t0 + 86 s). The first evaluation at or after t* is 900: a
    delay of 300 s. (Binomial noise moves t* by about 1 s, far from the evaluations at 840
    and 900.)"""
    e, t0 = 0.0464, 600.0
    m = ps.Model("step", time_unit="s")
    api = m.agent("api")
    serve = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="serve")
    m.workload(serve, rate=200.0)
    m.inject(ps.Degrade("api", at=t0, errors=e))
    slo = m.objective(serve, target=0.999, window=86_400.0)
    m.alert(slo, long=3_600.0, short=300.0, burn_rate=14.4, every=60.0)
    t_star = t0 / (1 - 14.4 * 0.001 / e)
    assert 869.0 < t_star < 871.0
    expected = math.ceil(t_star / 60.0) * 60.0
    for seed in (1, 2):
        r = ps.simulate(m, horizon=1_800.0, seed=seed, engine="vector")
        firing = r.alerts
        assert firing["start"].tolist() == [expected] and firing["end"].tolist() == [1_800.0]


@pytest.mark.parametrize("change,message", [
    (dict(objective="nope"), "objective 'nope' is not an objective of the model"),
    (dict(short=30.0), "short=30.0 must not be longer than long=20.0"),
    (dict(burn_rate=0), "burn_rate=0 must be a positive, finite number"),
    (dict(every=3.0), "long=20.0 must be a whole number of evaluation steps"),
    (dict(long=20.0, short=10.0, every=20.0 / 3), "short=10.0 must be a whole number"),
    (dict(long=35.0, short=35.0, every=35.0), "its objective's window \\(50\\) must be a whole"),
])
def test_bad_alerts_are_refused_naming_them(change, message):
    m = two_outages()
    settings = dict(objective="slo", long=20.0, short=5.0, burn_rate=2.0, every=5.0,
                    name="bad")
    settings.update(change)
    m.alerts[:] = [ps.Alert(**settings)]
    with pytest.raises(ps.ScenarioError, match=r"alert 'bad' \(alerts\[0\]\): " + message):
        m.spec()


def test_alerts_in_scenario_files(tmp_path):
    m = two_outages()
    path = tmp_path / "m.yaml"
    ps.dump_scenario(m, path)
    loaded = ps.load_scenario(path).model.spec()
    assert loaded.alerts == m.spec().alerts and len(loaded.alerts) == 2


def test_the_command_line_prints_the_alerts_and_writes_their_tables(tmp_path):
    import subprocess
    import sys

    from promisesim.scenario import Scenario

    path = tmp_path / "m.yaml"
    ps.dump_scenario(Scenario(two_outages(), horizon=100.0, seed=0), path)
    out = subprocess.run([sys.executable, "-m", "promisesim", "run", str(path), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, check=True)
    assert "alerts (firings; missed windows detected;" in out.stdout
    assert "\nfast         2       1/1             1" in out.stdout
    lines = (tmp_path / "out" / "alerts.csv").read_text().splitlines()
    assert lines == ["replication,alert,objective,start,end", "0,slow,slo,30.0,40.0",
                     "0,fast,slo,30.0,40.0", "0,fast,slo,75.0,80.0"]
    assert (tmp_path / "out" / "objectives.csv").read_text().count("\n") == 3
