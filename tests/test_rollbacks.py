"""Canaries that roll back: an analysis of the new version's requests gives the traffic back to
the stable version when they break too often (Rollback), in both engines."""

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim.errors import ScenarioError

START, WINDOW, INTERVAL = 600.0, 300.0, 60.0


def canary(errors=0.2, rollback=True, steps=((0.05, 600), (0.5, 600), (1.0, 0)), rate=10.0,
           max_broken=0.05, min_requests=10):
    m = ps.Model("canary")
    store = m.versions("store", {
        "v1": ps.AgentTemplate(service_time=ps.Exponential(0.02), servers=4),
        "v2": ps.AgentTemplate(service_time=ps.Exponential(0.02), servers=4, errors=errors)})
    app = m.agent("app")
    get = m.promise(store, to=app, body=ps.Latency(deadline=0.5), name="get")
    page = m.promise(app, to=m.agent("users"), body=ps.Latency(deadline=1.0), conditions=get,
                     name="page")
    m.workload(page, rate=rate)
    m.inject(ps.Canary(store, "v2", at=START, steps=list(steps), rollback=ps.Rollback(
        max_broken=max_broken, window=WINDOW, interval=INTERVAL, min_requests=min_requests)
        if rollback else None))
    return m


def test_a_bad_version_is_rolled_back_within_the_window_in_every_replication():
    """v2 answers 20% of requests with errors; the analysis allows 5%: at 5% of 10 requests
    a second, a window holds about 30 of v2's requests, so it fails at once. Every
    replication rolls back within the window; no request reaches v2 after; the page breaks
    far less than without the rollback (the same seed: the same arrivals and draws)."""
    result = ps.simulate(canary(), horizon=2_400.0, replications=20, seed=4)
    rb = result.rollbacks
    assert len(rb) == 20 and rb["rolled_back"].all()
    assert (rb["time"] > START).all() and (rb["time"] <= START + WINDOW).all()
    assert (rb["broken"] > 0).all() and (rb["broken"] <= rb["requests"]).all()
    q = result.requests
    to_v2 = q[q["promise"] == "get@store.v2"].merge(rb[["replication", "time"]])
    assert (to_v2["arrival"] < to_v2["time"]).all()
    counts = to_v2.groupby("replication").size().reindex(range(20), fill_value=0)
    np.testing.assert_array_equal(counts.to_numpy(), rb["requests"].to_numpy())
    without = ps.simulate(canary(rollback=False), horizon=2_400.0, replications=20, seed=4)
    broken = [(r.requests.query("promise == 'page'")["kept"] == False).sum()  # noqa: E712
              for r in (result, without)]
    assert broken[0] * 20 < broken[1], broken
    assert without.rollbacks.empty


def test_a_good_version_rolls_out_completely():
    result = ps.simulate(canary(errors=0.0), horizon=2_400.0, replications=6, seed=4)
    assert not result.rollbacks["rolled_back"].any()
    assert result.rollbacks["time"].isna().all()
    q = result.requests
    late = q[(q["promise"].str.startswith("get@")) & (q["arrival"] >= START + 1_200)]
    assert (late["promise"] == "get@store.v2").all() and len(late) > 1_000


@pytest.mark.parametrize("errors", [0.2, 0.0])
def test_both_engines_agree_exactly(errors):
    ref = ps.simulate(canary(errors), horizon=1_500.0, replications=2, seed=8, engine="reference")
    vec = ps.simulate(canary(errors), horizon=1_500.0, replications=2, seed=8, engine="vector")
    for table in ("promises", "requests", "events", "rollbacks"):
        pd.testing.assert_frame_equal(getattr(ref, table), getattr(vec, table), check_exact=True)


def test_before_the_rollback_everything_that_came_due_is_as_without_it():
    """The run with the rollback is the model's run with the rollback applied: until the
    rollback instant it is the run without one, so every request due by then (arrival plus
    deadline) was kept, or not, alike in both."""
    with_rb = ps.simulate(canary(), horizon=1_500.0, replications=3, seed=6)
    without = ps.simulate(canary(rollback=False), horizon=1_500.0, replications=3, seed=6)
    key = ["replication", "promise", "workload", "index", "attempt"]
    both = with_rb.requests.merge(without.requests, on=key, suffixes=("", "_without"))
    both = both.merge(with_rb.rollbacks[["replication", "time"]])
    deadline = both["promise"].map({"page": 1.0}).fillna(0.5)
    due = both[both["arrival"] + deadline <= both["time"]]
    assert len(due) > 10_000
    assert (due["kept"] == due["kept_without"]).all()
    assert (due["arrival"] == due["arrival_without"]).all()
    after = both[both["arrival"] >= both["time"] + 1.0]
    assert (after["promise"] != "get@store.v2").all()


def test_a_rollback_in_the_last_step_gives_everything_back():
    """Errors that show only at full traffic (an analysis that needs 1,000 requests in a
    window: about 30 at 1%, 3,000 at 100%): the rollback comes in the last step, held for 10
    minutes of analysis, and v1 takes all of the traffic back."""
    m = canary(errors=0.03, steps=((0.01, 300), (1.0, 600)), max_broken=0.02,
               min_requests=1_000)
    result = ps.simulate(m, horizon=1_800.0, replications=2, seed=3)
    rb = result.rollbacks
    assert rb["rolled_back"].all() and (rb["time"] > START + 300).all(), rb
    q = result.requests
    q = q[q["promise"].str.startswith("get@")].merge(rb[["replication", "time"]])
    assert (q.loc[q["arrival"] >= q["time"], "promise"] == "get@store.v1").all()


def test_counts_without_request_records_are_those_of_the_recorded_run():
    recorded = ps.simulate(canary(), horizon=1_200.0, replications=2, seed=1)
    counted = ps.simulate(canary(), horizon=1_200.0, replications=2, seed=1,
                          record_requests=False)
    pd.testing.assert_frame_equal(recorded.promises, counted.promises)
    with pytest.raises(ValueError, match="record_requests=True"):
        counted.rollbacks


def test_rollbacks_round_trip_and_are_checked(schema_valid):
    m = canary()
    data = schema_valid(m.to_dict())
    assert data["injections"][0]["canary"]["rollback"] == {
        "max_broken": 0.05, "window": 300.0, "interval": 60.0, "min_requests": 10}
    assert ps.Model.from_dict(data).spec() == m.spec()
    assert "rollback" not in canary(rollback=False).to_dict()["injections"][0]["canary"]

    def bad(rollback, traffic=None):
        m = ps.Model("bad")
        s = m.versions("s", {"v1": ps.AgentTemplate(), "v2": ps.AgentTemplate(),
                             "v3": ps.AgentTemplate()}, traffic=traffic)
        m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="p")
        m.inject(ps.Canary(s, "v2", at=10.0, steps=[(0.5, 10.0)], rollback=rollback))
        return m

    for rollback, message in [
        (ps.Rollback(max_broken=1.0), "rollback max_broken=1.0 must be a share in"),
        (ps.Rollback(max_broken=0.1, window=0), "rollback window=0 must be a positive"),
        (ps.Rollback(max_broken=0.1, interval=-1.0), "rollback interval=-1.0 must be"),
        (ps.Rollback(max_broken=0.1, min_requests=0), "rollback min_requests=0 must be a whole"),
        ({"max_broken": 0.1}, "rollback=.* must be a Rollback"),
    ]:
        with pytest.raises(ScenarioError, match=f"canary of 's': {message}"):
            bad(rollback).spec()
    with pytest.raises(ScenarioError, match="one version other than 'v2' must carry all of it "
                                            r"when the canary starts \(at 10.0: v1, v3\)"):
        bad(ps.Rollback(0.1), traffic={"v1": 0.5, "v3": 0.5}).spec()
    m = ps.Model("availability only")
    s = m.versions("s", {"v1": ps.AgentTemplate(), "v2": ps.AgentTemplate()})
    m.promise(s, to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.Canary(s, "v2", at=1.0, steps=[(1.0, 0)], rollback=ps.Rollback(0.1)))
    with pytest.raises(ScenarioError, match="'s' makes no latency promise"):
        m.spec()


def test_a_saved_run_finds_the_same_rollbacks(tmp_path):
    pytest.importorskip("pyarrow")
    result = ps.simulate(canary(), horizon=1_200.0, replications=2, seed=3)
    again = ps.load_result(result.save(tmp_path / "saved"))
    pd.testing.assert_frame_equal(result.rollbacks, again.rollbacks, check_exact=True)
    assert again.rollbacks["rolled_back"].all()


def test_the_command_line_says_when_rollouts_rolled_back_and_writes_the_table(tmp_path, capsys):
    from promisesim.cli import main

    path = tmp_path / "canary.yaml"
    ps.dump_scenario(canary(), path)
    assert main(["run", str(path), "--horizon", "1200", "--replications", "2", "--seed", "4",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "rollout of store v2: rolled back in 2 of 2 replications, at 660 s (median)" in out
    table = pd.read_csv(tmp_path / "out" / "rollbacks.csv")
    assert table["rolled_back"].all() and list(table["time"]) == [660.0, 660.0]
