"""Result.save and load_result: every table comes back equal; bad folders are refused."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import promisesim as ps

pytest.importorskip("pyarrow")

EXAMPLES = Path(ps.__file__).parent / "examples"


def _tables(result):
    """Every table the result can build (name -> DataFrame), or the error it gives."""
    out = {}
    for name in ("promises", "intervals", "events", "requests", "breakers", "messages", "causes",
                 "cause_summary", "absorbed", "request_causes", "request_cause_summary",
                 "request_absorbed", "objectives", "objective_summary", "alerts",
                 "alert_summary", "observations", "observation_summary", "summary", "slices",
                 "sizes", "rollbacks", "instances"):
        try:
            value = getattr(result, name)
            out[name] = value(result.horizon / 7) if name == "slices" else \
                value() if callable(value) else value
        except ValueError as exc:
            out[name] = str(exc)
    return out


def _assert_same(a, b):
    left, right = _tables(a), _tables(b)
    assert left.keys() == right.keys()
    built = 0
    for name in left:
        if isinstance(left[name], str):
            assert left[name] == right[name], name
        else:
            pd.testing.assert_frame_equal(left[name], right[name], check_exact=True, obj=name)
            assert left[name].attrs == right[name].attrs, name
            built += 1
    return built


@pytest.mark.parametrize("example, horizon, kwargs", [
    ("web_api.yaml", 86_400.0, {}),                           # objectives, alerts, requests
    ("retry_storm.yaml", 120.0, {}),                          # breakers, retries
    ("periodic_checks.yaml", 500.0, {}),                      # observers
    ("function_from_zero.yaml", 600.0, {}),                   # instances started on demand
    ("web_api.yaml", 20_000.0, {"record_requests": False}),   # request counts only
    ("web_api.yaml", 20_000.0, {"record_changes": False}),    # promise metrics only
])
def test_every_table_round_trips_exactly(tmp_path, example, horizon, kwargs):
    model = ps.load_scenario(EXAMPLES / example).model
    result = ps.simulate(model, horizon=horizon, replications=2, seed=7, **kwargs)
    folder = result.save(tmp_path / "saved")
    again = ps.load_result(folder)
    assert (again.horizon, again.replications, again.engine, again.entropy, again.spawn_key) == \
        (result.horizon, result.replications, result.engine, result.entropy, result.spawn_key)
    assert again.spec == result.spec
    assert _assert_same(result, again) >= 5


def test_a_spawned_seed_round_trips(tmp_path):
    """A result run from a spawned child seed keeps its whole seed (observers redraw from it)."""
    model = ps.load_scenario(EXAMPLES / "periodic_checks.yaml").model
    seed = np.random.SeedSequence(12345).spawn(3)[2]
    result = ps.simulate(model, horizon=400.0, replications=2, seed=seed)
    again = ps.load_result(result.save(tmp_path / "r"))
    assert again.spawn_key == result.spawn_key == (2,)
    pd.testing.assert_frame_equal(again.observations, result.observations)


def _saved(tmp_path):
    model = ps.load_scenario(EXAMPLES / "web_api.yaml").model
    result = ps.simulate(model, horizon=5_000.0, replications=2, seed=3)
    return result, result.save(tmp_path / "saved")


def test_an_existing_result_is_replaced_only_when_asked(tmp_path):
    result, folder = _saved(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        result.save(folder)
    fewer = ps.simulate(ps.load_scenario(EXAMPLES / "web_api.yaml").model, horizon=5_000.0,
                        replications=2, seed=3, record_requests=False)
    fewer.save(folder, overwrite=True)
    assert not (folder / "requests.parquet").exists()     # no stale part left behind
    pd.testing.assert_frame_equal(ps.load_result(folder).promises, fewer.promises)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds other files"):
        result.save(other, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_a_changed_spec_is_not_saved_as_its_model(tmp_path):
    from dataclasses import replace

    result, _ = _saved(tmp_path)
    result.spec = replace(result.spec, time_unit="h")
    with pytest.raises(ValueError, match="differs from its scenario form"):
        result.save(tmp_path / "changed")


@pytest.mark.parametrize("spoil, message", [
    (lambda f: (f / "result.json").unlink(), "no result.json"),
    (lambda f: (f / "result.json").write_text("{not json"), "not a readable result manifest"),
    (lambda f: (f / "result.json").write_text('{"format": "other"}'), "not a saved promisesim"),
    (lambda f: (f / "requests.parquet").unlink(), "missing"),
    (lambda f: (f / "requests.parquet").write_bytes(b"PAR1 nonsense"), "not a readable Parquet"),
])
def test_broken_folders_are_refused_by_name(tmp_path, spoil, message):
    _, folder = _saved(tmp_path)
    spoil(folder)
    with pytest.raises(ps.ScenarioError, match=message):
        ps.load_result(folder)


def _rewrite(folder, part, change):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(folder / f"{part}.parquet")
    data = table.to_pydict()
    schema = change(data) or table.schema
    pq.write_table(pa.table(data, schema=schema), folder / f"{part}.parquet")


def test_codes_outside_the_model_are_refused(tmp_path):
    _, folder = _saved(tmp_path)
    _rewrite(folder, "requests", lambda d: d["promise"].__setitem__(0, 99))
    n = len(ps.load_scenario(folder / "scenario.yaml").model.spec().promises)
    with pytest.raises(ps.ScenarioError, match=rf"column 'promise' holds codes outside 0\.\.{n - 1}"):
        ps.load_result(folder)


def test_columns_of_another_type_are_refused(tmp_path):
    import pyarrow as pa

    _, folder = _saved(tmp_path)
    _rewrite(folder, "requests", lambda d: pa.schema(
        [(k, pa.float64() if k == "outcome" else pa.from_numpy_dtype(
            ps.engines.base.REQUEST_COLUMNS[k])) for k in d]))
    with pytest.raises(ps.ScenarioError, match="column 'outcome' is float64, expected int8"):
        ps.load_result(folder)


def test_a_manifest_with_bad_values_is_refused(tmp_path):
    _, folder = _saved(tmp_path)
    manifest = json.loads((folder / "result.json").read_text())
    manifest["replications"] = -2
    (folder / "result.json").write_text(json.dumps(manifest))
    with pytest.raises(ps.ScenarioError, match="replications=-2"):
        ps.load_result(folder)
