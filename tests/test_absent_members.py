"""Members of a resized super-agent that never started are not agents of the results."""

from pathlib import Path

import pandas as pd
import yaml

import promisesim as ps
from promisesim import plotting

EXAMPLE = Path(ps.__file__).parent / "examples" / "serverless_image.yaml"


def _image(max_size):
    data = yaml.safe_load(EXAMPLE.read_text())
    for entry in data["injections"]:
        if "autoscaler" in entry:
            entry["autoscaler"]["max_size"] = max_size
    return ps.Model.from_dict(data)


def test_members_that_never_started_leave_the_tables_and_the_user_promise_stays():
    model = _image(300)
    result = ps.simulate(model, horizon=2_100.0, replications=1, seed=1)
    absent = set(result.absent)
    assert len(absent) > 250                                   # 300 possible, a few needed
    started = {a.name for a in result.spec.agents if a.name.startswith("personalise-fn.")}
    started -= absent
    assert started and all(int(name.rsplit(".", 1)[1]) < 40 for name in started)
    summary = result.cause_summary()
    promises = set(summary["promise"].astype(str))
    assert "personalised" in promises                           # the user-facing promise
    assert not {p for p in promises if p.split("@")[-1] in absent}
    assert summary["promise"].astype(str).iloc[0] == "personalised"   # first, not buried
    for table in (result.promises, result.causes, result.slices(300.0)):
        assert not set(table["promise"].astype(str)) & {
            p.name for p in result.spec.promises if p.promiser in absent}
    for table in (result.intervals, result.events):
        agents = set(table.loc[table["kind"] == "agent", "entity"].astype(str))
        assert not agents & absent
    ax = plotting.plot_timeline(result)
    assert not {t.get_text().split(" (")[0] for t in ax.get_yticklabels()} & absent
    # the same whether the changes of state were kept or not
    light = ps.simulate(model, horizon=2_100.0, replications=1, seed=1, record_changes=False)
    assert light.absent == result.absent
    pd.testing.assert_frame_equal(light.promises, result.promises)


def test_a_member_that_started_in_one_replication_stays():
    """Absent means never started in any replication: tables keep one row per replication."""
    model = _image(12)
    result = ps.simulate(model, horizon=1_500.0, replications=2, seed=4)
    counts = result.promises.groupby("promise", observed=True).size()
    assert (counts == 2).all()
    assert set(result.absent) <= {f"personalise-fn.{i}" for i in range(12)}
