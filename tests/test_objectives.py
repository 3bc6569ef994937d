"""Objectives (SLOs) on promises: windows computed by hand on scheduled outages, both engines,
scenario files, bad settings."""

import math

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim.dists import Deterministic as D


def outage_model(**objective):
    """One agent, down over [25, 35) by a scheduled outage; 'up' judged by its state, 'serve'
    (requests every 1 from 1 on, answered at once) by its requests."""
    m = ps.Model("objectives")
    users, api = m.agent("users"), m.agent("api")
    m.promise(api, to=users, body=ps.Availability(), name="up")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=1.0), name="serve")
    m.workload(serve, interarrival=D(1.0))
    m.inject(ps.Outage("api", at=25.0, duration=10.0))
    for promise in ("up", "serve"):
        m.objective(promise, **objective)
    return m


def windows(result, promise):
    table = result.objectives
    table = table[table["promise"] == promise]
    return [(s, e, round(a, 12), bool(met)) for s, e, a, met in
            zip(table["start"], table["end"], table["attained"], table["met"])]


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_calendar_windows_by_time_and_by_requests(engine):
    """Windows [0, 50) and [50, 100). By time: 40 of 50 up, then all. By requests: arrivals
    1..49, of which 25..34 are refused (10), then 50..99 all kept."""
    r = ps.simulate(outage_model(target=0.9, window=50.0), horizon=100.0, seed=0, engine=engine)
    assert windows(r, "up") == [(0.0, 50.0, 0.8, False), (50.0, 100.0, 1.0, True)]
    assert windows(r, "serve") == [(0.0, 50.0, round(39 / 49, 12), False),
                                   (50.0, 100.0, 1.0, True)]
    table = r.objectives.set_index(["promise", "start"])
    assert table.loc[("up", 0.0), "budget_used"] == pytest.approx(2.0)
    # broken over [25, 35): by time, and from the refused request at 25 to the kept one at 35
    assert table["longest_burn"].tolist() == [10.0, 0.0, 10.0, 0.0]
    assert table.loc[("serve", 0.0), ["good", "total"]].tolist() == [39, 49]


def test_timeslices_count_slices_that_reach_their_target():
    """Slices of 10: [20, 30) and [30, 40) hold down time, so 3 of 5 are good in the first
    window. Each is half up: with a slice target of 0.5 both are good."""
    r = ps.simulate(outage_model(target=0.7, window=50.0, budgeting="timeslices", timeslice=10.0),
                    horizon=100.0, seed=0)
    assert windows(r, "up") == [(0.0, 50.0, 0.6, False), (50.0, 100.0, 1.0, True)]
    assert windows(r, "serve") == [(0.0, 50.0, 0.6, False), (50.0, 100.0, 1.0, True)]
    half = ps.simulate(outage_model(target=0.7, window=50.0, budgeting="timeslices",
                                    timeslice=10.0, timeslice_target=0.5), horizon=100.0, seed=0)
    assert windows(half, "up")[0] == (0.0, 50.0, 1.0, True)


def test_rolling_windows_are_evaluated_every_step():
    r = ps.simulate(outage_model(target=0.9, window=50.0, rolling=True, step=10.0),
                    horizon=100.0, seed=0)
    assert windows(r, "up") == [
        (0.0, 50.0, 0.8, False), (10.0, 60.0, 0.8, False), (20.0, 70.0, 0.8, False),
        (30.0, 80.0, 0.9, True), (40.0, 90.0, 1.0, True), (50.0, 100.0, 1.0, True)]
    assert r.objectives["longest_burn"].tolist()[:6] == [10.0, 10.0, 10.0, 5.0, 0.0, 0.0]
    summary = r.objective_summary().set_index("promise")
    assert summary.loc["up", "probability_met"] == 0.5
    assert summary.loc["up", "worst_attained"] == pytest.approx(0.8)
    assert math.isnan(summary.loc["up", "ci_low"])   # one replication: no interval


def test_probability_met_with_a_wilson_interval_over_calendar_windows():
    r = ps.simulate(outage_model(target=0.9, window=10.0), horizon=100.0, replications=2, seed=0)
    s = r.objective_summary().set_index("promise").loc["up"]
    # windows [20, 30) and [30, 40) miss in each replication: 16 of 20 met
    assert (s["windows"], s["probability_met"]) == (20, 0.8)
    z = 1.959963984540054
    centre, n = (0.8 + z * z / 40) / (1 + z * z / 20), 20
    half = z * math.sqrt(0.8 * 0.2 / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert s["ci_low"] == pytest.approx(centre - half) and s["ci_high"] == pytest.approx(centre + half)


def test_objectives_in_scenario_files_and_their_errors(tmp_path):
    m = outage_model(target=0.99, window=50.0, rolling=True, budgeting="timeslices",
                     timeslice=5.0, step=10.0, timeslice_target=0.9)
    path = tmp_path / "m.yaml"
    ps.dump_scenario(m, path)
    assert ps.load_scenario(path).model.spec().objectives == m.spec().objectives
    text = path.read_text().replace("window: 50.0", "window: 52.0", 1)
    path.write_text(text)
    with pytest.raises(ps.ScenarioError, match=r"m.yaml:\d+: objective 'up@0.99/52' "
                                               r"\(objectives\[0\]\): window=52.0 must be a "
                                               r"whole number of timeslices"):
        ps.load_scenario(path)


@pytest.mark.parametrize("change,message", [
    (dict(target=1.5), "target=1.5 must be a share above 0 and at most 1"),
    (dict(target=0), "target=0 must be a share"),
    (dict(window=-1.0), "window=-1.0 must be a positive, finite time"),
    (dict(window=math.inf), "window=inf must be a positive, finite time"),
    (dict(budgeting="events"), "budgeting='events' must be 'occurrences' or 'timeslices'"),
    (dict(budgeting="timeslices"), "timeslices budgeting needs a timeslice"),
    (dict(rolling=True), "a rolling window is evaluated every step"),
    (dict(step=5.0), "step is how often a rolling window is evaluated"),
    (dict(rolling=True, step=15.0), "window=50.0 must be a whole number of steps"),
    (dict(rolling=True, step=10.0, timeslice=4.0), "window=50.0 must be a whole number of timeslices"),
    (dict(timeslice_target=2.0, budgeting="timeslices", timeslice=10.0), "timeslice_target=2.0"),
    (dict(rolling="yes", step=10.0), "rolling='yes' must be true or false"),
])
def test_bad_objectives_are_refused_naming_them(change, message):
    settings = dict(target=0.9, window=50.0)
    settings.update(change)
    with pytest.raises(ps.ScenarioError, match=r"objective .*: " + message):
        outage_model(**settings).spec()


def test_objectives_on_a_promise_that_is_not_there_or_twice():
    m = outage_model(target=0.9, window=50.0)
    m.objective("nowhere", target=0.9, window=10.0)
    with pytest.raises(ps.ScenarioError, match="promise 'nowhere' is not a promise of the model"):
        m.spec()
    twice = outage_model(target=0.9, window=50.0)
    twice.objective("up", target=0.9, window=50.0)
    with pytest.raises(ps.ScenarioError, match="'up@0.9/50' .*defined twice"):
        twice.spec()


def test_a_window_longer_than_the_run_and_runs_without_requests_are_clear_errors():
    m = outage_model(target=0.9, window=500.0)
    with pytest.raises(ValueError, match="longer than the run .*no window fits"):
        ps.simulate(m, horizon=100.0, seed=0).objectives
    quiet = ps.simulate(outage_model(target=0.9, window=50.0), horizon=100.0, seed=0,
                        record_requests=False)
    with pytest.raises(ValueError, match="record_requests=True"):
        quiet.objectives


def test_engines_agree_on_objectives():
    m = ps.Model("mm1")
    a = m.agent("a", service_time=ps.Exponential(mean=0.5),
                failures=ps.Failures(ps.Exponential(mean=200.0), ps.Exponential(mean=20.0)))
    p = m.promise(a, to=m.agent("u"), body=ps.Latency(deadline=2.0), name="p")
    m.workload(p, rate=1.0)
    m.objective(p, target=0.9, window=100.0)
    m.objective(p, target=0.95, window=100.0, budgeting="timeslices", timeslice=10.0,
                timeslice_target=0.8, rolling=True)
    ref = ps.simulate(m, horizon=2_000.0, replications=3, seed=2, engine="reference")
    vec = ps.simulate(m, horizon=2_000.0, replications=3, seed=2, engine="vector")
    pd.testing.assert_frame_equal(ref.objectives, vec.objectives, check_exact=True,
                                  check_flags=False)
    assert np.isfinite(ref.objectives["attained"]).all()


def test_the_command_line_prints_each_objectives_probability(tmp_path):
    import json
    import subprocess
    import sys

    path = tmp_path / "m.yaml"
    from promisesim.scenario import Scenario

    ps.dump_scenario(Scenario(outage_model(target=0.9, window=10.0), horizon=100.0,
                              replications=2, seed=0), path)

    def run(*extra):
        out = subprocess.run([sys.executable, "-m", "promisesim", "run", str(path), *extra],
                             capture_output=True, text=True, check=True)
        return out.stdout
    text = run()
    assert "objectives (probability a window meets it" in text
    assert "up@0.9/10" in text and "0.800  [0.584, 0.919]" in text
    records = [r for r in json.loads(run("--json")) if "probability_met" in r]
    assert [(r["objective"], r["windows"], r["probability_met"]) for r in records] == [
        ("up@0.9/10", 20, 0.8), ("serve@0.9/10", 20, 0.8)]
    assert "objectives not judged: objectives on 'serve' count its requests" in run("--no-requests")
