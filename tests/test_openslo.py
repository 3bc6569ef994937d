"""Objectives read from and written as OpenSLO (kind: SLO) documents."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import promisesim as ps
from promisesim.openslo import openslo_objectives, read_openslo, write_openslo

EXAMPLES = Path(ps.__file__).parent / "examples"

SLO = """\
apiVersion: openslo/v1
kind: SLI
metadata:
  name: answers
spec:
  ratioMetric: {counter: true}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: answers-28d
  annotations:
    team: web
spec:
  service: web-api
  indicatorRef: answers
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Timeslices
  objectives:
    - displayName: good minutes
      target: 0.999
      timeSliceTarget: 0.95
      timeSliceWindow: 1m
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: answers-weekly
spec:
  service: web-api
  indicator:
    metadata: {name: answers}
  timeWindow:
    - duration: 1w
      calendar: {startTime: "2026-01-05 00:00:00", timeZone: UTC}
  budgetingMethod: Occurrences
  objectives:
    - {displayName: fair, target: 0.99}
    - {displayName: good, target: 0.995}
"""


def test_slo_documents_become_objectives_in_the_models_time_unit():
    found = openslo_objectives(SLO, time_unit="s")
    assert found == [
        ps.Objective("answers", 0.999, 28 * 86_400.0, True, "timeslices", 60.0, 0.95, 60.0,
                     "answers-28d"),
        ps.Objective("answers", 0.99, 604_800.0, name="answers-weekly-fair"),
        ps.Objective("answers", 0.995, 604_800.0, name="answers-weekly-good"),
    ]
    in_hours = openslo_objectives(SLO, time_unit="h")
    assert in_hours[1].window == 168.0


def test_an_openslo_file_round_trips_through_a_model(tmp_path):
    """read -> model -> write -> read gives the same objectives."""
    scenario = ps.load_scenario(EXAMPLES / "web_api.yaml")
    m = scenario.model
    m.objectives[:] = openslo_objectives(SLO)
    m.alerts.clear()   # they are on the example's own objectives
    written = write_openslo(m.spec().objectives, time_unit=m.time_unit, service=m.name)
    path = tmp_path / "slo.yaml"
    path.write_text(written)
    assert read_openslo(path) == list(m.spec().objectives)
    assert "promisesim/step" not in written    # the step is the default: no annotation
    m.objectives[0] = ps.Objective("answers", 0.999, 86_400.0, rolling=True, step=3_600.0)
    path.write_text(write_openslo(m.objectives))
    assert read_openslo(path)[0] == ps.Objective("answers", 0.999, 86_400.0, rolling=True,
                                                 step=3_600.0, name="answers@0.999/86400")


@pytest.mark.parametrize("change,message", [
    (("apiVersion: openslo/v1\nkind: SLO", "apiVersion: openslo/v2\nkind: SLO"),
     "apiVersion 'openslo/v2' is not supported"),
    (("duration: 28d", "duration: 1M"), "'1M' is not an OpenSLO duration"),
    (("budgetingMethod: Timeslices", "budgetingMethod: RatioTimeslices"),
     "budgetingMethod: 'RatioTimeslices' is not supported"),
    (("  indicatorRef: answers\n", ""), "OpenSLO SLO 'answers-28d'.spec: missing 'indicator'"),
    (("      timeSliceWindow: 1m\n", ""), "objectives\\[0\\]: missing 'timeSliceWindow'"),
    (("timeWindow:\n    - duration: 28d", "timeWindow:\n    - length: 28d"),
     "timeWindow\\[0\\]: missing 'duration'"),
    (("kind: SLO\nmetadata:\n  name: answers-28d", "kind: SLO\nmetadata:\n  title: x"),
     "document 1.metadata: missing 'name'"),
    (("  name: answers\n", "  name: [answers\n"), "not valid YAML"),
])
def test_malformed_openslo_is_a_clear_error(change, message):
    with pytest.raises(ps.ScenarioError, match=message):
        openslo_objectives(SLO.replace(*change))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "promisesim", *map(str, args)],
                          capture_output=True, text=True)


def test_the_command_line_writes_and_reads_openslo(tmp_path):
    out = cli("slo", EXAMPLES / "web_api.yaml", "--out", tmp_path / "slo.yaml")
    assert out.returncode == 0, out.stderr
    assert [o.label for o in read_openslo(tmp_path / "slo.yaml")] == ["answers-daily",
                                                                      "answers-5min"]
    extra = tmp_path / "extra.yaml"
    extra.write_text(SLO.replace("28d", "1d").replace("1w", "1d"))
    ran = cli("run", EXAMPLES / "web_api.yaml", "--replications", "1", "--horizon", "172800",
              "--slo", extra, "--json")
    assert ran.returncode == 0, ran.stderr
    judged = [r["objective"] for r in json.loads(ran.stdout) if "probability_met" in r]
    assert judged == ["answers-daily", "answers-5min", "answers-1d", "answers-weekly-fair",
                      "answers-weekly-good"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(SLO.replace("duration: 28d", "duration: soon"))
    failed = cli("run", EXAMPLES / "web_api.yaml", "--slo", bad)
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1
    assert failed.stderr.startswith(f"promisesim: error: {bad}: OpenSLO SLO 'answers-28d'")
    nothing = cli("slo", EXAMPLES / "shop.yaml")
    assert nothing.returncode == 2 and "has no objectives" in nothing.stderr
