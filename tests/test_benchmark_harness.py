"""The benchmark runner (``python -m benchmarks``) on a tiny scenario: it times both engines,
checks that they agree and reports every field. Benchmarks are not tests; this only keeps
the runner working."""

from __future__ import annotations

import importlib
from pathlib import Path

import promisesim as ps
from promisesim.dists import Exponential


def _tiny(replications: int = 2) -> tuple[ps.Model, float, int]:
    m = ps.Model("tiny", time_unit="s")
    api = m.agent("api", service_time=Exponential(mean=0.05),
                  failures=ps.Failures(Exponential(mean=40.0), Exponential(mean=5.0)))
    serve = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=0.1), name="serve")
    m.workload(serve, rate=5.0)
    return m, 100.0, replications


def test_benchmark_runner_times_both_engines_and_checks_they_agree(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    runner = importlib.import_module("benchmarks.__main__")
    monkeypatch.setitem(runner.SCENARIOS, "tiny", _tiny)
    row = runner.bench("tiny", repeat=2, seed=3, scale=1.5, memory=False)
    assert row["scenario"] == "tiny" and row["replications"] == 3
    assert row["agree"] is True
    assert row["events"] > 2 * 3 * 100 * 5 * 0.8   # two per request, and the failures
    for key in ("reference_s", "vector_s", "ratio", "vector_first_s", "ratio_first",
                "reference_events_per_s", "vector_events_per_s"):
        assert row[key] > 0, key
    assert row["peak_10x_horizon_ratio"] is None   # memory runs skipped
