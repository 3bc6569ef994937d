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


def test_the_rare_event_benchmark_reaches_its_interval_both_ways():
    """On a miss that is not rare (k = 3: p = 0.063), both methods reach a 20% interval that
    covers the closed form."""
    from benchmarks import rare_event

    p = rare_event.exact(3)
    for tilt in (1.0, 3.0):
        seconds, replications, estimate = rare_event.to_twenty_percent(3, tilt, seed=1)
        assert seconds > 0 and replications >= 1_000
        assert abs(estimate - p) < 0.2 * estimate
