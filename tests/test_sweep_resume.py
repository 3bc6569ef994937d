"""A sweep killed mid-way and resumed with the same command equals an uninterrupted sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import promisesim as ps
from promisesim.cli import main
from promisesim.sweep import load_sweep, sweep

pytest.importorskip("pyarrow")

# Slow enough on the reference engine (a few tenths of a second a point) that a kill lands
# between points, small enough that the whole test takes seconds.
SCENARIO = """\
name: slow queue
time_unit: s
agents:
  - name: users
  - name: db
    service_time: {exponential: {mean: 0.1}}
    failures:
      time_to_failure: {exponential: {mean: 50}}
      time_to_repair: {exponential: {mean: 2}}
promises:
  - name: answers
    promiser: db
    promisee: users
    body: {latency: {deadline: 0.5}}
workloads:
  - promise: answers
    rate: 5
run: {horizon: 200, replications: 20, seed: 17, engine: reference}
"""
PARAMS = ["--param", "agents[db].servers=1,2,3,4", "--param", "workloads[answers].rate=4,6"]
N_POINTS = 8


def finished(out: Path) -> list[Path]:
    folder = out / "summary"
    return sorted(folder.glob("point-*.parquet")) if folder.is_dir() else []


def test_killed_sweep_resumes_to_the_uninterrupted_table(tmp_path, capsys):
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "promisesim.cli", "sweep", str(scenario), *PARAMS,
               "--executor", "serial", "--out", str(out), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(Path(ps.__file__).parents[1])})
    deadline = time.monotonic() + 60
    try:
        while True:
            done = len(finished(out))
            if 0 < done < N_POINTS:
                process.send_signal(signal.SIGKILL)  # no chance to tidy up
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no kill mid-way: {done} of {N_POINTS} points, status {process.poll()}, "
                            f"stderr {process.stderr.read().decode()!r}")
            time.sleep(0.005)
    finally:
        process.kill()
        process.wait(timeout=30)
        process.stderr.close()

    before = {path: (path.stat().st_mtime_ns, path.stat().st_ino)
              for table in ("summary", "promises") for path in (out / table).glob("point-*.parquet")
              if (out / "summary" / path.name).exists()}  # the points that had finished
    n_before = len(finished(out))
    assert 0 < n_before < N_POINTS

    status = main(["sweep", str(scenario), *PARAMS, "--executor", "serial", "--out", str(out),
                   "--json", "--resume"])
    resumed = capsys.readouterr()
    assert status == 0, resumed.err
    assert f"{N_POINTS - n_before} points computed, {n_before} read back" in resumed.err
    for path, stat in before.items():  # finished points were neither recomputed nor rewritten
        assert (path.stat().st_mtime_ns, path.stat().st_ino) == stat, path
    assert len(finished(out)) == N_POINTS
    assert not list(out.rglob("*.tmp"))

    status = main(["sweep", str(scenario), *PARAMS, "--executor", "serial", "--json"])
    uninterrupted = capsys.readouterr()
    assert status == 0, uninterrupted.err
    assert json.loads(resumed.out) == json.loads(uninterrupted.out)

    expected = sweep(ps.load_scenario(scenario).model,
                     {"agents[db].servers": [1, 2, 3, 4], "workloads[answers].rate": [4, 6]},
                     horizon=200.0, replications=20, seed=17, engine="reference", executor="serial")
    reloaded = load_sweep(out)
    assert reloaded.missing == ()
    pd.testing.assert_frame_equal(reloaded.summary, expected.summary)
    pd.testing.assert_frame_equal(reloaded.promises, expected.promises)


def test_a_point_file_of_another_point_is_refused(tmp_path):
    import shutil

    model = ps.scenario.scenario_from_text(SCENARIO).model
    out = tmp_path / "sweep"
    sweep(model, {"agents[db].servers": [1, 2]}, horizon=50.0, replications=2, seed=1,
          executor="serial", progress=False, out=out, engine="vector")
    assert len(load_sweep(out).points) == 2
    first, second = finished(out)
    shutil.copyfile(first, second)          # point 0's valid file where point 1's belongs
    with pytest.raises(ps.ScenarioError, match=r"point-00001\.parquet: holds point 0 .* not "
                                               r"point 1"):
        load_sweep(out)
    with pytest.raises(ps.ScenarioError, match="delete it to recompute"):
        sweep(model, {"agents[db].servers": [1, 2]}, horizon=50.0, replications=2, seed=1,
              executor="serial", progress=False, out=out, resume=True, engine="vector")


def test_a_full_disk_is_one_line_and_resume_elsewhere_finishes(tmp_path, capsys, monkeypatch):
    """Writing a point fails as a full disk does (ENOSPC): the sweep stops with one line
    naming the folder, and resuming in a copy of the folder on another disk finishes it."""
    import errno
    import shutil

    from promisesim import _sweep_folder

    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("engine: reference", "engine: vector"))
    out = tmp_path / "full"
    real = _sweep_folder._write_atomic
    calls = {"n": 0}

    def filling(target, write):
        if target.suffix == ".parquet":
            calls["n"] += 1
            if calls["n"] > 4:             # two points fit, then the disk is full
                raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(target, write)

    monkeypatch.setattr(_sweep_folder, "_write_atomic", filling)
    args = ["sweep", str(path), "--param", "agents[db].servers=1,2,3", "--executor", "serial",
            "--horizon", "50", "-r", "2", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "No space left on device" in err, err
    assert len(finished(out)) == 2
    monkeypatch.setattr(_sweep_folder, "_write_atomic", real)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(out, elsewhere)
    assert main([*args, "--out", str(elsewhere), "--resume", "--json"]) == 0
    capsys.readouterr()
    assert len(finished(elsewhere)) == 3
    whole = sweep(ps.load_scenario(path).model, {"agents[db].servers": [1, 2, 3]},
                  horizon=50.0, replications=2, seed=17, executor="serial", progress=False)
    pd.testing.assert_frame_equal(load_sweep(elsewhere).summary, whole.summary,
                                  check_like=True)


def test_killing_the_sweep_leaves_no_process_behind(tmp_path):
    """A sweep's worker processes (and those that start them) end with the sweep, even when
    it is killed with no chance to tidy up."""
    psutil = pytest.importorskip("psutil")
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(SCENARIO.replace("horizon: 200", "horizon: 2000"), encoding="utf-8")
    command = [sys.executable, "-m", "promisesim.cli", "sweep", str(scenario), *PARAMS,
               "--executor", "local", "--workers", "2", "--no-progress", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(Path(ps.__file__).parents[1])})
    try:
        main_process = psutil.Process(process.pid)
        deadline = time.monotonic() + 60
        while True:   # until both workers run
            children = main_process.children(recursive=True)
            if len(children) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(children) >= 3, children   # a forkserver or resource tracker, two workers
        time.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]
    finally:
        for child in psutil.Process().children(recursive=True):
            child.kill()
