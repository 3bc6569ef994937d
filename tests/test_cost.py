"""The cost estimate made before a run: close to what runs, and a clear refusal of what
cannot be meant (a rate of 1e30, an interval of 1e-9, a million replications)."""

import time
from pathlib import Path

import pytest

import promisesim as ps
from promisesim import cost

EXAMPLES = Path(ps.__file__).parent / "examples"


def small():
    m = ps.Model("small")
    db = m.agent("db", service_time=0.01, servers=2)
    api = m.agent("api", service_time=0.02)
    q = m.promise(db, to=api, body=ps.Latency(deadline=1.0), name="q")
    p = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="p",
                  conditions=ps.all_of(q), retries=1)
    m.workload(p, rate=2.0)
    return m


@pytest.mark.parametrize("example", ["web_api", "retry_storm", "serverless_meme"])
def test_the_estimate_is_close_to_the_requests_a_run_sends(example):
    scenario = ps.load_scenario(EXAMPLES / f"{example}.yaml")
    horizon = min(scenario.horizon, 20_000.0)
    estimate = cost.estimate(scenario.model.spec(), horizon, 2)
    result = ps.simulate(scenario.model, horizon=horizon, replications=2, seed=5)
    sent = len(result.requests)
    # an upper bound where retries may or may not happen; a mean for Poisson arrivals
    assert 0.9 * sent <= estimate.requests <= 3.0 * sent, (estimate.requests, sent)


@pytest.mark.parametrize("change, blamed", [
    (lambda m: m.workloads.__setitem__(0, ps.Workload("p", rate=1e30)), "workload 'p'"),
    (lambda m: m.agents.__setitem__(0, ps.Agent("db", failures=ps.Failures(
        time_to_failure=100.0, maintenance=ps.Maintenance(interval=1e-9)))), "agent 'db'"),
    (lambda m: m.observe("p", interval=1e-9, name="eager"), "observer 'eager'"),
])
def test_a_huge_run_is_refused_at_once_naming_its_cause(change, blamed):
    m = small()
    change(m)
    start = time.perf_counter()
    with pytest.raises(ps.ScenarioError, match=rf"would simulate about .* events \({blamed}:"):
        ps.simulate(m, horizon=100.0, replications=2, seed=1)
    assert time.perf_counter() - start < 5.0


def test_max_events_is_the_users_to_raise():
    m = small()
    with pytest.raises(ps.ScenarioError, match=r"max_events=1e\+03"):
        ps.simulate(m, horizon=1_000.0, replications=1, seed=1, max_events=1_000)
    result = ps.simulate(m, horizon=1_000.0, replications=1, seed=1, max_events=1e4)
    assert len(result.requests) > 1_000
    for bad in (0, -1, float("nan"), "many", True):
        with pytest.raises(ps.ScenarioError, match="max_events="):
            ps.simulate(m, horizon=10.0, max_events=bad)


def test_sizes_beyond_what_a_queue_or_a_group_can_hold_name_the_element():
    m = ps.Model("x")
    m.agent("a", servers=10**18)
    with pytest.raises(ps.ScenarioError, match=r"agent 'a': servers=10+ must be a whole number "
                                               r"from 1 to 100,000"):
        m.spec()
    m = ps.Model("x")
    m.super_agent("pool", size=10**6, member=ps.AgentTemplate())
    start = time.perf_counter()
    with pytest.raises(ps.ScenarioError, match=r"super-agent 'pool'.*size=1000000"):
        m.spec()
    assert time.perf_counter() - start < 1.0


def test_records_that_would_not_fit_are_refused_in_python_and_counted_on_the_command_line(
        monkeypatch, tmp_path, capsys):
    from promisesim.cli import main

    monkeypatch.setattr(cost, "memory", lambda: 3_000.0)   # room for about 25 records
    with pytest.raises(ps.ScenarioError, match="record_requests=False"):
        ps.simulate(small(), horizon=100.0, seed=1)
    path = tmp_path / "s.yaml"
    ps.dump_scenario(small(), path)
    assert main(["run", str(path), "--horizon", "100", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "keeping counts only (as with --no-requests)" in err


def test_the_command_line_refuses_in_one_line(tmp_path, capsys):
    from promisesim.cli import main

    path = tmp_path / "s.yaml"
    ps.dump_scenario(small(), path)
    assert main(["run", str(path), "--horizon", "100", "-r", "1000000", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("promisesim: error: this run would simulate about")
    assert len(err.splitlines()) == 1
    assert main(["run", str(path), "--horizon", "100", "-r", "3", "--max-events", "100",
                 "--no-progress"]) == 2
    assert "max_events=100" in capsys.readouterr().err
    assert main(["run", str(path), "--horizon", "100", "-r", "3", "--max-events", "1e4",
                 "--no-progress"]) == 0
    with pytest.raises(SystemExit):
        main(["run", str(path), "--max-events", "-5"])
    assert "--max-events: -5 must be a positive, finite number" in capsys.readouterr().err


def test_a_sweep_checks_every_point_before_running_any():
    m = small()
    with pytest.raises(ps.ScenarioError, match=r"point 1 \(workloads\[p\]\.rate=1e\+30\): this "
                                               r"run would simulate"):
        ps.sweep(m, {"workloads[p].rate": [1.0, 1e30]}, horizon=100.0, executor="serial",
                 progress=False)
    swept = ps.sweep(m, {"workloads[p].rate": [1.0, 2.0]}, horizon=100.0, executor="serial",
                     progress=False, max_events=1e4, seed=1)
    assert len(swept.points) == 2
    with pytest.raises(ps.ScenarioError, match="max_events="):
        ps.sweep(m, {"workloads[p].rate": [1.0]}, horizon=100.0, max_events="lots")


def test_offered_load_counts_each_agents_calls_by_hand():
    """Offered load (calls per second x mean service / servers), worked by hand: ``all_of``
    and ``k_of`` call every item, a random choice spreads evenly, a first choice and a
    fallback send all to their first item; two workloads add up."""
    m = ps.Model("loads")
    api = m.agent("api", service_time=ps.Exponential(0.1), servers=2)
    db = m.agent("db", service_time=0.05)
    reps = [m.agent(f"r{i}", service_time=0.2) for i in range(3)]
    caches = [m.agent(f"c{i}", service_time=0.4) for i in range(2)]
    q = m.promise(db, to=api, body=ps.Latency(deadline=1.0), name="q")
    r = [m.promise(a, to=api, body=ps.Latency(deadline=1.0), name=a.name) for a in reps]
    c = [m.promise(a, to=api, body=ps.Latency(deadline=1.0), name=a.name) for a in caches]
    p = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=1.0), name="p",
                  conditions=ps.all_of(q, ps.k_of(2, *r), ps.any_of(*c, choose="random")))
    f = m.promise(api, to=m.agent("ops"), body=ps.Latency(deadline=1.0), name="f",
                  conditions=ps.fallback(c[1], q))
    m.workload(p, rate=4.0)
    m.workload(f, interarrival=ps.Deterministic(0.5))      # 2 per second
    load = cost.offered_load(m.spec())
    assert load["api"] == pytest.approx(6.0 * 0.1 / 2)
    assert load["db"] == pytest.approx(4.0 * 0.05)           # not the fallback's second item
    assert [load[f"r{i}"] for i in range(3)] == pytest.approx([4.0 * 0.2] * 3)
    assert load["c0"] == pytest.approx(2.0 * 0.4)
    assert load["c1"] == pytest.approx((2.0 + 2.0) * 0.4)
    assert load["users"] == load["ops"] == 0.0
