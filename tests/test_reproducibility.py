"""Same seed, same results; streams keyed by name give common random numbers."""

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim.dists import Exponential, LogNormal


def web(extra_agent=False):
    m = ps.Model("web")
    u = m.agent("u")
    api = m.agent("api", service_time=LogNormal(mean=0.2, sigma=0.5), servers=2,
                  failures=ps.Failures(Exponential(50.0), Exponential(2.0)))
    if extra_agent:
        m.agent("cache", failures=ps.Failures(Exponential(5.0), Exponential(1.0)))
    db = m.agent("db", service_time=Exponential(0.1),
                 failures=ps.Failures(Exponential(30.0), Exponential(1.0)))
    answers = m.promise(db, to=api, body=ps.Latency(deadline=0.5), name="answers")
    serve = m.promise(api, to=u, body=ps.Latency(deadline=1.0), conditions=answers, name="serve")
    m.workload(serve, rate=1.0)
    return m


TABLES = ("promises", "intervals", "events", "requests")


def test_same_seed_gives_identical_frames():
    a = ps.simulate(web(), horizon=300.0, replications=3, seed=42)
    b = ps.simulate(web(), horizon=300.0, replications=3, seed=42)
    for table in TABLES:
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    pd.testing.assert_frame_equal(a.summary(), b.summary())
    assert a.promises.attrs["entropy"] == 42


def test_different_seeds_differ():
    a = ps.simulate(web(), horizon=300.0, replications=2, seed=1)
    b = ps.simulate(web(), horizon=300.0, replications=2, seed=2)
    assert not a.requests["arrival"].equals(b.requests["arrival"])


def test_unseeded_run_records_its_entropy_and_reproduces():
    a = ps.simulate(web(), horizon=200.0, replications=2)
    b = ps.simulate(web(), horizon=200.0, replications=2, seed=a.entropy)
    pd.testing.assert_frame_equal(a.requests, b.requests)


def test_replication_does_not_depend_on_how_many_are_run():
    few = ps.simulate(web(), horizon=200.0, replications=2, seed=5)
    many = ps.simulate(web(), horizon=200.0, replications=4, seed=5)
    head = many.requests[many.requests["replication"] < 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(few.requests, head, check_categorical=False)


def test_adding_an_agent_leaves_the_others_draws_alone():
    base = ps.simulate(web(), horizon=300.0, replications=2, seed=9)
    more = ps.simulate(web(extra_agent=True), horizon=300.0, replications=2, seed=9)
    keep = lambda f: f[f["entity"].isin(["api", "db", "serve", "answers"])].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(keep(base.intervals).astype({"entity": str}),
                                  keep(more.intervals).astype({"entity": str}))
    pd.testing.assert_frame_equal(base.requests, more.requests, check_categorical=False)


@pytest.mark.parametrize("seed", [None, 0, 2**80])
def test_seed_forms(seed):
    r = ps.simulate(web(), horizon=50.0, seed=seed)
    if seed is not None:
        assert r.entropy == seed


def test_spawned_seed_sequence_is_recorded_and_reproduces():
    child = np.random.SeedSequence(1234).spawn(3)[2]
    a = ps.simulate(web(), horizon=100.0, replications=2, seed=child)
    assert a.spawn_key == (2,) and a.promises.attrs["spawn_key"] == (2,)
    again = np.random.SeedSequence(a.entropy, spawn_key=a.spawn_key)
    b = ps.simulate(web(), horizon=100.0, replications=2, seed=again)
    pd.testing.assert_frame_equal(a.requests, b.requests)


def test_worker_processes_give_the_same_results():
    m = ps.Model("workers")
    s = m.agent("s", service_time=ps.Exponential(0.2),
                failures=ps.Failures(ps.Exponential(50.0), ps.Exponential(5.0)))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=0.5), name="p")
    m.workload(p, rate=2.0)
    one = ps.simulate(m, horizon=200.0, replications=5, seed=3)
    two = ps.simulate(m, horizon=200.0, replications=5, seed=3, workers=2)
    for table in ("promises", "intervals", "requests"):
        pd.testing.assert_frame_equal(getattr(one, table), getattr(two, table), check_exact=True)
    counts = ps.simulate(m, horizon=200.0, replications=5, seed=3, workers=3,
                         record_requests=False, engine="reference")
    pd.testing.assert_frame_equal(one.promises, counts.promises, check_exact=True,
                                  check_flags=False)
    with pytest.raises(ps.ScenarioError, match="workers=0"):
        ps.simulate(m, horizon=1.0, workers=0)


class _Bar:
    """Stands in for the progress bar: records its updates."""

    def __init__(self, total, name):
        self.total, self.name, self.updates = total, name, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        self.updates.append(n)


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_a_progress_bar_counts_replications_and_changes_no_result(engine, monkeypatch, capsys):
    """Shown, the bar runs the replications in blocks of the engine's batches (the reference
    engine: one at a time) and moves with each; the tables are the same."""
    from promisesim import experiment
    from promisesim.engines.vector import engine as vector_engine

    monkeypatch.setattr(vector_engine, "_BATCH_RECORDS", 1_500)   # batches of 2 replications
    quiet = ps.simulate(web(), horizon=300.0, replications=5, seed=8, engine=engine,
                        progress=False)
    assert capsys.readouterr().err == ""
    real = ps.simulate(web(), horizon=300.0, replications=5, seed=8, engine=engine,
                       progress=True)
    assert "replication" in capsys.readouterr().err   # tqdm's own bar, on stderr
    bars = []
    monkeypatch.setattr(experiment, "_progress_bar", lambda *a: bars.append(_Bar(*a)) or bars[-1])
    shown = ps.simulate(web(), horizon=300.0, replications=5, seed=8, engine=engine,
                        progress=True)
    assert bars[0].total == 5 and bars[0].name == "web"
    assert bars[0].updates == ([1] * 5 if engine == "reference" else [2, 2, 1])
    for table in TABLES:
        for other in (real, shown):
            pd.testing.assert_frame_equal(getattr(quiet, table), getattr(other, table),
                                          check_exact=True)
    on_workers = ps.simulate(web(), horizon=300.0, replications=5, seed=8, engine=engine,
                             progress=True, workers=2)
    assert sorted(bars[1].updates) == [2, 3]
    pd.testing.assert_frame_equal(quiet.requests, on_workers.requests, check_exact=True)
    with pytest.raises(ps.ScenarioError, match="progress='yes' must be True, False or None"):
        ps.simulate(web(), horizon=1.0, progress="yes")


def test_no_progress_bar_by_default_where_nobody_watches(capsys):
    ps.simulate(web(), horizon=100.0, replications=3, seed=1)   # stderr captured: not a terminal
    assert capsys.readouterr().err == ""
