"""Sweeps and replications to a precision: :mod:`promisesim.sweep` and ``promisesim sweep``."""

from __future__ import annotations

import io
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim import analytic
from promisesim.cli import main
from promisesim.results import PROMISE_METRICS
from promisesim.sweep import (
    PrecisionWarning,
    SweepResult,
    load_sweep,
    replicate,
    set_parameter,
    sweep,
)

GRID = {"agents[db].servers": [1, 2, 3], "workloads[answers].rate": [0.5, 1.0, 1.5, 1.8]}


def latency_model() -> ps.Model:
    """A small queue that fails: 'answers' (latency, 1 s) by 'db', plus an unrelated 'ops'."""
    m = ps.Model("small queue", time_unit="s")
    users = m.agent("users")
    db = m.agent("db", service_time=ps.Exponential(mean=0.5), servers=2,
                 failures=ps.Failures(time_to_failure=ps.Exponential(mean=50.0),
                                      time_to_repair=ps.Exponential(mean=2.0)))
    answers = m.promise(db, to=users, body=ps.Latency(deadline=1.0), name="answers")
    m.workload(answers, rate=1.0)
    ops = m.agent("ops", failures=ps.Failures(time_to_failure=ps.Exponential(mean=20.0),
                                              time_to_repair=ps.Exponential(mean=1.0)))
    m.promise(ops, to=users, body=ps.Availability(), name="ops-up")
    return m


def web_model() -> ps.Model:
    """Every kind of element the parameter paths reach, and a name with a dot in it."""
    m = ps.Model("web", time_unit="s")
    users = m.agent("users")
    db = m.agent("db.eu-1", service_time=ps.Exponential(mean=0.01), servers=4,
                 failures=ps.Failures(time_to_failure=ps.Exponential(mean=1000.0),
                                      time_to_repair=ps.Exponential(mean=10.0)))
    api = m.agent("api", service_time=ps.Exponential(mean=0.05))
    answers = m.promise(db, to=api, body=ps.Latency(deadline=0.1), name="answers")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=0.3), name="serve", conditions=answers)
    m.workload(serve, rate=2.0)
    m.workload(serve, rate=0.5, name="batch")
    m.inject(ps.Outage("api", at=50.0, duration=10.0))
    return m


def assert_sweeps_equal(a: SweepResult, b: SweepResult) -> None:
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.promises, b.promises)
    pd.testing.assert_frame_equal(a.points, b.points)
    assert a.summary.attrs == b.summary.attrs
    assert (a.entropy, a.spawn_key) == (b.entropy, b.spawn_key)


# -- parameter paths -------------------------------------------------------------------------------

def test_paths_reach_every_kind_of_element():
    data = web_model().to_dict()
    for path, value in [
        ("agents[db.eu-1].servers", 8),
        ("agents[db.eu-1].failures.time_to_failure.exponential.mean", 500.0),
        ("agents[api].servers", 3),                      # left out at its default: may be set
        ("workloads[serve].rate", 4.0),                  # a workload by its promise
        ("workloads[batch].rate", 0.25),                 # a workload by its name
        ("promises[serve].body.latency.deadline", 0.5),
        ("injections[0].outage.duration", 20.0),
    ]:
        set_parameter(data, path, value)
    spec = ps.Model.from_dict(data).spec()
    db, api = spec.agents[spec.agent_index["db.eu-1"]], spec.agents[spec.agent_index["api"]]
    assert db.servers == 8 and db.failures.time_to_failure.mean == 500.0
    assert api.servers == 3
    assert [w.rate for w in spec.workloads] == [4.0, 0.25]
    assert spec.promises[spec.promise_index["serve"]].body.deadline == 0.5
    assert spec.outages[0].duration == 20.0


@pytest.mark.parametrize("path, named", [
    ("agents[nope].servers", ["agents[nope]", "db.eu-1", "api"]),
    ("agents[db.eu-1].failures.time_to_fail.exponential.mean", ["time_to_failure", "time_to_repair"]),
    ("agents[api].failures.time_to_failure", ["agents[api]", "service_time"]),
    ("agents[db.eu-1].servers.count", ["servers", "4 (a number)"]),
    ("agents.servers", ["agents", "a list"]),
    ("workloads[nope].rate", ["serve", "batch"]),
    ("injections[3].outage.duration", ["injections[3]", "positions 0 to 0"]),
    ("promises[serve].body.latency.dedline", ["dedline", "deadline"]),
    ("agents[db.eu-1", ["not closed"]),
    ("agents..servers", ["expected a key"]),
    ("agents[api].", ["ends with a dot"]),
    ("nme", ["nme", "agents"]),
])
def test_bad_parameter_paths_raise_naming_the_path(path, named):
    with pytest.raises(ps.ScenarioError) as info:
        sweep(web_model(), {path: [1.0]}, horizon=10.0, executor="serial")
    message = str(info.value)
    assert message.startswith(f"parameter {path!r}"), message
    for text in named:
        assert text in message, (text, message)


def test_two_entries_with_one_name_must_be_picked_by_position():
    data = {"workloads": [{"promise": "p", "rate": 1.0}, {"promise": "p", "rate": 2.0}]}
    with pytest.raises(ps.ScenarioError, match=r"2 entries of workloads are called 'p'.*workloads\[0\]"):
        set_parameter(data, "workloads[p].rate", 3.0)
    set_parameter(data, "workloads[1].rate", 3.0)
    assert data["workloads"][1]["rate"] == 3.0


def test_a_value_that_breaks_the_model_names_the_point():
    with pytest.raises(ps.ScenarioError, match=r"point 1 \(agents\[db\]\.servers=0\): agent 'db'"):
        sweep(latency_model(), {"agents[db].servers": [1, 0]}, horizon=10.0, executor="serial")


@pytest.mark.parametrize("parameters, message", [
    ({"agents[db].servers": 2}, "a list of values"),
    ({"agents[db].servers": []}, "no values"),
    ([], "empty"),
    ([{"agents[db].servers": 1}, {"workloads[answers].rate": 2.0}], "the same parameters"),
    ({"agents[db].servers": [object()]}, "not plain data"),
    ({"metric": [1]}, "clashes"),
    ("agents[db].servers=1", "a grid"),
])
def test_bad_parameters_raise(parameters, message):
    with pytest.raises(ps.ScenarioError, match=message):
        sweep(latency_model(), parameters, horizon=10.0, executor="serial")


@pytest.mark.parametrize("kwargs, message", [
    ({"horizon": -1.0}, "horizon"),
    ({"replications": 0}, "replications"),
    ({"executor": "threads"}, "executor='threads'"),
    ({"workers": 0}, "workers"),
    ({"resume": True}, "needs out="),
    ({"confidence": 1.5}, "confidence"),
])
def test_bad_arguments_raise(kwargs, message):
    settings = {"horizon": 10.0, "executor": "serial", **kwargs}
    with pytest.raises(ps.ScenarioError, match=message):
        sweep(latency_model(), {"agents[db].servers": [1]}, **settings)


# -- what a sweep computes ---------------------------------------------------------------------

def test_each_point_equals_simulate_with_the_same_seed():
    model = latency_model()
    result = sweep(model, [{"agents[db].servers": 3, "workloads[answers].rate": 1.5},
                           {"agents[db].servers": 1, "workloads[answers].rate": 0.5}],
                   horizon=50.0, replications=3, seed=7, executor="serial")
    for point, (servers, rate) in enumerate([(3, 1.5), (1, 0.5)]):
        data = model.to_dict()
        data["agents"][1]["servers"] = servers
        data["workloads"][0]["rate"] = rate
        expected = ps.simulate(ps.Model.from_dict(data), horizon=50.0, replications=3, seed=7)
        for table, reference in ((result.summary, expected.summary()),
                                 (result.promises, expected.promises)):
            rows = table[table["point"] == point]
            assert (rows["agents[db].servers"] == servers).all()
            assert (rows["workloads[answers].rate"] == rate).all()
            got = rows.drop(columns=["point", *result.parameters]).reset_index(drop=True)
            pd.testing.assert_frame_equal(got, reference, check_like=False)
        assert result.points.loc[point, "engine"] == expected.engine


def test_tidy_layout_and_provenance():
    result = sweep(latency_model(), GRID, horizon=20.0, replications=2, seed=1, executor="serial")
    assert list(result.summary.columns) == ["point", *GRID, "promise", "metric", "mean", "stderr",
                                            "ci_low", "ci_high", "n"]
    assert list(result.promises.columns[:3]) == ["point", *GRID]
    assert set(PROMISE_METRICS) <= set(result.promises.columns)
    # the grid's Cartesian product, the last parameter varying fastest
    assert list(result.points["agents[db].servers"]) == [1] * 4 + [2] * 4 + [3] * 4
    assert list(result.points["workloads[answers].rate"]) == [0.5, 1.0, 1.5, 1.8] * 3
    assert result.promises.groupby("point").size().tolist() == [2 * 2] * 12
    assert result.summary["agents[db].servers"].dtype == np.int64
    assert result.summary["workloads[answers].rate"].dtype == np.float64
    attrs = result.summary.attrs
    assert attrs["entropy"] == 1 and attrs["horizon"] == 20.0 and attrs["replications"] == 2
    assert attrs["parameters"] == tuple(GRID)


def test_points_share_random_numbers():
    """Common random numbers: 'ops' does not depend on the parameters, so its rows are equal;
    more servers never make a request slower under the same arrivals and service times."""
    result = sweep(latency_model(), {"agents[db].servers": [1, 2, 4]}, horizon=100.0,
                   replications=4, seed=3, executor="serial")
    ops = result.promises[result.promises["promise"] == "ops-up"]
    columns = ["replication", *PROMISE_METRICS]
    first = ops[ops["point"] == 0][columns].reset_index(drop=True)
    for point in (1, 2):
        pd.testing.assert_frame_equal(ops[ops["point"] == point][columns].reset_index(drop=True), first)
    kept = (result.promises[result.promises["promise"] == "answers"]
            .pivot(index="replication", columns="point", values="requests_kept"))
    assert (kept[1] >= kept[0]).all() and (kept[2] >= kept[1]).all() and (kept[2] > kept[0]).any()


def test_a_scenario_mapping_works_like_its_model():
    model = latency_model()
    data = {**model.to_dict(), "run": {"horizon": 5.0}}
    a = sweep(model, {"agents[db].servers": [1, 2]}, horizon=20.0, seed=2, executor="serial")
    b = sweep(data, {"agents[db].servers": [1, 2]}, horizon=20.0, seed=2, executor="serial")
    assert_sweeps_equal(a, b)


def test_seed_none_draws_entropy_once_for_all_points():
    result = sweep(latency_model(), {"agents[db].servers": [2, 2]}, horizon=20.0,
                   replications=2, executor="serial")
    by_point = [frame.drop(columns="point").reset_index(drop=True)
                for _, frame in result.promises.groupby("point")]
    pd.testing.assert_frame_equal(*by_point)
    assert result.summary.attrs["entropy"] == result.entropy


# -- executors -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_twelve_points_identical_on_every_executor(dask_client):
    settings = dict(horizon=60.0, replications=4, seed=11, progress=False)
    serial = sweep(latency_model(), GRID, executor="serial", **settings)
    assert len(serial.points) == 12
    local = sweep(latency_model(), GRID, executor="local", workers=2, **settings)
    assert_sweeps_equal(serial, local)
    client = sweep(latency_model(), GRID, executor=dask_client, **settings)
    assert_sweeps_equal(serial, client)
    assert dask_client.status == "running"  # a client we were given stays open
    own = sweep(latency_model(), GRID, executor="dask", workers=2, **settings)
    assert_sweeps_equal(serial, own)


def test_an_executor_object_is_used_and_left_open_and_gets_plain_data():
    from concurrent.futures import ThreadPoolExecutor

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(json.loads(json.dumps(args)))  # plain data: survives JSON as is
            assert json.loads(json.dumps(args)) == list(args)
            return super().submit(fn, *args, **kwargs)

    submitted: list = []
    serial = sweep(latency_model(), {"agents[db].servers": [1, 2, 3]}, horizon=20.0, seed=5,
                   executor="serial")
    with Recording(max_workers=2) as pool:
        threaded = sweep(latency_model(), {"agents[db].servers": [1, 2, 3]}, horizon=20.0, seed=5,
                         executor=pool)
        assert pool.submit(int, "3").result() == 3
    assert_sweeps_equal(serial, threaded)
    task = submitted[0][0]
    assert task["model"] == latency_model().to_dict() and task["entropy"] == 5
    assert [t[0]["values"] for t in submitted[:3]] == [{"agents[db].servers": v} for v in (1, 2, 3)]


def test_a_local_sweep_leaves_the_global_start_method_alone():
    import multiprocessing

    before = multiprocessing.get_start_method(allow_none=True)
    sweep(latency_model(), {"agents[db].servers": [1, 2]}, horizon=10.0, seed=1, executor="local",
          workers=2, progress=False)
    assert multiprocessing.get_start_method(allow_none=True) == before


# -- progress bar ----------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(capfd, monkeypatch):
    sweep(latency_model(), {"agents[db].servers": [1, 2]}, horizon=10.0, executor="serial")
    assert capfd.readouterr().err == ""  # stderr is not a terminal under pytest
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    sweep(latency_model(), {"agents[db].servers": [1, 2]}, horizon=10.0, executor="serial")
    assert "2/2" in terminal.getvalue()
    quiet = _Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    sweep(latency_model(), {"agents[db].servers": [1, 2]}, horizon=10.0, executor="serial",
          progress=False)
    assert quiet.getvalue() == ""


# -- the output folder -----------------------------------------------------------------------------

def test_out_folder_round_trip_and_resume_of_a_finished_sweep(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "sweep"
    settings = dict(horizon=30.0, replications=3, seed=4, executor="serial")
    plain = sweep(latency_model(), GRID, **settings)
    written = sweep(latency_model(), GRID, out=out, **settings)
    assert_sweeps_equal(plain, written)
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["horizon"] == 30.0 and manifest["replications"] == 3
    assert manifest["seed"] == {"entropy": 4, "spawn_key": []}
    assert manifest["points"][5] == {"agents[db].servers": 2, "workloads[answers].rate": 1.0}
    files = sorted(p.name for p in (out / "summary").iterdir())
    assert files == [f"point-{i:05d}.parquet" for i in range(12)]
    assert not list(out.rglob("*.tmp"))
    assert_sweeps_equal(plain, load_sweep(out))
    stats = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    again = sweep(latency_model(), GRID, out=out, resume=True, **settings)
    assert again.resumed == tuple(range(12))  # nothing recomputed, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == stats
    assert_sweeps_equal(plain, again)


def test_out_folder_is_never_overwritten(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "sweep"
    settings = dict(horizon=10.0, replications=2, seed=4, executor="serial")
    sweep(latency_model(), {"agents[db].servers": [1, 2]}, out=out, **settings)
    with pytest.raises(ps.ScenarioError, match="holds a sweep already.*resume"):
        sweep(latency_model(), {"agents[db].servers": [1, 2]}, out=out, **settings)
    with pytest.raises(ps.ScenarioError, match=r"different sweep \(the points differ\)"):
        sweep(latency_model(), {"agents[db].servers": [1, 3]}, out=out, resume=True, **settings)
    with pytest.raises(ps.ScenarioError, match=r"horizon \(10.0 there, 20.0 here\)"):
        sweep(latency_model(), {"agents[db].servers": [1, 2]}, out=out, resume=True,
              **{**settings, "horizon": 20.0})
    with pytest.raises(ps.ScenarioError, match="the model differ"):
        other = latency_model()
        other.name = "another"
        sweep(other, {"agents[db].servers": [1, 2]}, out=out, resume=True, **settings)
    with pytest.raises(ps.ScenarioError, match="seed"):
        sweep(latency_model(), {"agents[db].servers": [1, 2]}, out=out, resume=True,
              **{**settings, "seed": 5})
    # seed=None resumes with the folder's seed
    resumed = sweep(latency_model(), {"agents[db].servers": [1, 2]}, out=out, resume=True,
                    **{**settings, "seed": None})
    assert resumed.entropy == 4 and resumed.resumed == (0, 1)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for resume in (False, True):
        with pytest.raises(ps.ScenarioError, match="holds no sweep"):
            sweep(latency_model(), {"agents[db].servers": [1]}, out=foreign, resume=resume, **settings)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_a_point_missing_from_the_folder_is_recomputed(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "sweep"
    settings = dict(horizon=20.0, replications=2, seed=8, executor="serial")
    full = sweep(latency_model(), GRID, out=out, **settings)
    (out / "summary" / "point-00007.parquet").unlink()   # as if killed between its two files
    (out / "promises" / ".point-00008.parquet.99.tmp").write_bytes(b"half a file")
    partial = load_sweep(out)
    assert partial.missing == (7,) and 7 not in set(partial.summary["point"])
    resumed = sweep(latency_model(), GRID, out=out, resume=True, **settings)
    assert resumed.resumed == tuple(i for i in range(12) if i != 7)
    assert not list(out.rglob("*.tmp"))
    assert_sweeps_equal(full, resumed)


# -- replications to a precision -------------------------------------------------------------------

def canonical(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Trace columns with their rows sorted by every column."""
    order = np.lexsort([columns[name] for name in reversed(list(columns))])
    return {name: values[order] for name, values in columns.items()}


def half_widths(values: np.ndarray, confidence: float = 0.95) -> list[float]:
    """Half-width of the t interval of the first k values, for every k >= 2."""
    out = [math.nan, math.nan]
    for k in range(2, values.size + 1):
        head = values[:k]
        out.append(analytic.t_quantile(0.5 + confidence / 2, k - 1) * head.std(ddof=1) / math.sqrt(k))
    return out


@pytest.mark.parametrize("batch", [1, None, 7])
def test_replicate_stops_at_the_target_and_equals_simulate(batch):
    model = latency_model()
    target = 0.02
    result = replicate(model, horizon=50.0, promise="answers", metric="request_kept_fraction",
                       half_width=target, min_replications=5, batch=batch, seed=21)
    n = result.replications
    assert result.precision.met and result.precision.replications == n
    expected = ps.simulate(model, horizon=50.0, replications=n, seed=21, engine=result.engine)
    pd.testing.assert_frame_equal(result.promises, expected.promises)
    pd.testing.assert_frame_equal(result.summary(), expected.summary())
    for part in ("agent_changes", "requests"):  # the same rows (an engine may order them otherwise)
        ours, theirs = canonical(getattr(result.trace, part)), canonical(getattr(expected.trace, part))
        for column, values in theirs.items():
            np.testing.assert_array_equal(ours[column], values)
    assert (result.entropy, result.spawn_key) == (expected.entropy, expected.spawn_key)
    row = expected.summary(["request_kept_fraction"]).set_index("promise").loc["answers"]
    assert (row["ci_high"] - row["ci_low"]) / 2 == pytest.approx(result.precision.half_width, rel=1e-12)
    assert result.precision.half_width <= target
    values = expected.promises.query("promise == 'answers'")["request_kept_fraction"].to_numpy()
    widths = half_widths(values)
    if batch == 1:  # the smallest count that meets the target
        assert n == 5 or widths[n - 1] > target
    # and it did not stop at the end of an earlier batch that already met it
    assert result.promises.attrs["precision_met"] is True
    assert result.promises.attrs["replications"] == n


def test_replicate_warns_when_the_maximum_comes_first():
    with pytest.warns(PrecisionWarning, match="max_replications=12"):
        result = replicate(latency_model(), horizon=20.0, promise="answers", metric="kept_fraction",
                           half_width=1e-6, min_replications=4, max_replications=12, seed=1)
    assert result.replications == 12 and not result.precision.met
    assert result.summary().attrs["precision_met"] is False


def test_replicate_meets_a_loose_target_at_the_minimum():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = replicate(latency_model(), horizon=20.0, promise="ops-up", metric="kept_fraction",
                           half_width=0.5, seed=1)
    assert result.replications == 10 and result.precision.batches == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"promise": "nope"}, "promise 'nope' is not in the model.*'answers'"),
    ({"metric": "kept"}, "metric 'kept' is not a column.*kept_fraction"),
    ({"half_width": 0.0}, "half_width"),
    ({"min_replications": 1}, "min_replications"),
    ({"max_replications": 5}, "below min_replications"),
    ({"batch": 0}, "batch"),
])
def test_replicate_bad_arguments(kwargs, message):
    settings = {"horizon": 10.0, "promise": "answers", "metric": "kept_fraction", "half_width": 0.01,
                **kwargs}
    with pytest.raises(ps.ScenarioError, match=message):
        replicate(latency_model(), **settings)


# -- confidence intervals cover the truth at their nominal rate -------------------------------------

def test_confidence_intervals_cover_the_analytic_availability():
    """200 independent seeds x 10 replications of one exponential agent: the 95% intervals
    should cover the exact expected time average about 190 times (binomial sd 3.1)."""
    mttf, mttr, horizon = 5.0, 1.0, 100.0
    m = ps.Model("one agent", time_unit="h")
    m.promise(m.agent("server", failures=ps.Failures(time_to_failure=ps.Exponential(mean=mttf),
                                                     time_to_repair=ps.Exponential(mean=mttr))),
              to=m.agent("users"), body=ps.Availability(), name="up")
    a = analytic.availability(mttf, mttr)
    rate = 1 / mttf + 1 / mttr
    # starting up biases a finite horizon's time average up by (1 - A)(1 - e^{-rate H}) / (rate H)
    truth = a + (1 - a) * (1 - math.exp(-rate * horizon)) / (rate * horizon)
    seeds = np.random.SeedSequence(20240601).spawn(200)  # independent streams, never seed + i
    covered = 0
    for child in seeds:
        row = ps.simulate(m, horizon=horizon, replications=10, seed=child).summary(["kept_fraction"]).iloc[0]
        covered += bool(row["ci_low"] <= truth <= row["ci_high"])
    trials, p = len(seeds), 0.95
    tolerance = 4 * math.sqrt(trials * p * (1 - p))
    assert abs(covered - trials * p) <= tolerance, covered


# -- the command line --------------------------------------------------------------------------------

SCENARIO = """\
name: small queue
time_unit: s
agents:
  - name: users
  - name: db
    service_time: {exponential: {mean: 0.5}}
    failures:
      time_to_failure: {exponential: {mean: 50}}
      time_to_repair: {exponential: {mean: 2}}
promises:
  - name: answers
    promiser: db
    promisee: users
    body: {latency: {deadline: 1.0}}
workloads:
  - promise: answers
    rate: 1
run: {horizon: 40, replications: 3, seed: 9}
"""


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "queue.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_sweep_prints_the_table_and_json(capsys, scenario):
    status, out, err = run_cli(capsys, "sweep", scenario, "--param", "agents[db].servers=1,2",
                               "--param", "workloads[answers].rate=0.5,1e0", "--executor", "serial")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("small queue: 4 points x 3 replications of 40 s")
    assert lines[1].split()[:4] == ["point", "agents[db].servers", "workloads[answers].rate", "promise"]
    assert lines[2].split()[:4] == ["0", "1", "0.5", "answers"]
    status, out, err = run_cli(capsys, "sweep", scenario, "-p", "agents[db].servers=1,2",
                               "-p", "workloads[answers].rate=0.5,1e0", "--json", "--executor", "local",
                               "--workers", "2", "--no-progress")
    assert status == 0, err
    records = json.loads(out)
    expected = sweep(ps.load_scenario(scenario).model,
                     {"agents[db].servers": [1, 2], "workloads[answers].rate": [0.5, 1.0]},
                     horizon=40.0, replications=3, seed=9, executor="serial").summary
    assert len(records) == len(expected)
    first = records[0]
    assert first["agents[db].servers"] == 1 and isinstance(first["agents[db].servers"], int)
    assert first["workloads[answers].rate"] == 0.5
    for record, row in zip(records, expected.itertuples(index=False)):
        assert (record["point"], record["promise"], record["metric"], record["n"]) == \
               (row.point, row.promise, row.metric, row.n)
        assert record["mean"] == row.mean


def test_cli_values_are_yaml(capsys, scenario):
    status, out, err = run_cli(
        capsys, "sweep", scenario, "--json", "--executor", "serial", "--replications", "2",
        "--param", "agents[db].service_time={exponential: {mean: 0.25}},{exponential: {mean: 0.5}}")
    assert status == 0, err
    values = [r["agents[db].service_time"] for r in json.loads(out)]
    assert values[0] == {"exponential": {"mean": 0.25}} and values[-1] == {"exponential": {"mean": 0.5}}


@pytest.mark.parametrize("argv, message", [
    (["--param", "agents[nope].servers=1"], "parameter 'agents[nope].servers': agents has no entry 'nope'"),
    (["--param", "agents[db].servers"], "expected NAME=V1,V2"),
    (["--param", "agents[db].servers="], "no values"),
    (["--param", "agents[db].servers=1,["], "cannot read the values"),
    (["--param", "agents[db].servers=1", "--param", "agents[db].servers=2"], "given twice"),
    (["--param", "agents[db].servers=0"], "point 0"),
    (["--param", "agents[db].servers=1", "--executor", "threads"], "invalid choice"),
    (["--param", "agents[db].servers=1", "--resume"], "needs out="),
    (["--param", "agents[db].servers=1", "--workers", "0"], "--workers: 0 must be at least 1"),
    ([], "--param"),
])
def test_cli_sweep_bad_input_exits_2_with_one_line(capsys, scenario, argv, message):
    try:  # argparse's own errors exit; ours return the status
        status = main(["sweep", str(scenario), *argv])
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("promisesim: error: "), err
    assert message in lines[0]


def test_cli_run_still_works(capsys, scenario):
    status, out, err = run_cli(capsys, "run", scenario, "--json")
    assert status == 0, err
    assert {r["promise"] for r in json.loads(out)} == {"answers"}


def test_one_experiment_is_identical_on_every_executor(dask_client):
    """simulate() and replicate() split replications into blocks on any executor: the tables
    are those of the serial run, whatever the executor and its workers."""
    from concurrent.futures import ThreadPoolExecutor

    from promisesim.sweep import replicate

    model = latency_model()
    settings = dict(horizon=200.0, replications=5, seed=3, progress=False)
    serial = ps.simulate(model, executor="serial", **settings)
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = {"client": ps.simulate(model, executor=dask_client, **settings),
                "local": ps.simulate(model, workers=2, **settings),
                "pool": ps.simulate(model, executor=pool, **settings)}
    assert dask_client.status == "running"
    for name, other in runs.items():
        for table in ("promises", "requests", "events"):
            pd.testing.assert_frame_equal(getattr(serial, table), getattr(other, table),
                                          check_exact=True, obj=f"{name}: {table}")
    kwargs = dict(horizon=200.0, promise="answers", metric="kept_fraction",
                  half_width=1.0, min_replications=3, max_replications=3, seed=3)
    pd.testing.assert_frame_equal(replicate(model, **kwargs).promises,
                                  replicate(model, executor=dask_client, **kwargs).promises,
                                  check_exact=True)
    with pytest.raises(ps.ScenarioError, match="executor='cloud': expected one of"):
        ps.simulate(model, executor="cloud", **settings)
