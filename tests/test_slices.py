"""Result.slices: each promise's standing slice by slice, by time and by requests."""

import math

import numpy as np
import pytest

import promisesim as ps
from promisesim.dists import Deterministic as D


def model():
    """users -> api -> db; db is down on [3, 5) and answers errors to requests joining in
    [9, 13); a request every 2 from 2."""
    m = ps.Model("slices")
    users = m.agent("users")
    db, api = m.agent("db", service_time=D(0.5)), m.agent("api")
    q = m.promise(db, to=api, body=ps.Latency(deadline=1.0), name="query")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=1.0), name="serve", conditions=q)
    m.workload(serve, interarrival=D(2.0))
    m.inject(ps.Outage(db, at=3.0, duration=2.0))
    m.inject(ps.Degrade(db, at=9.0, duration=4.0, errors=1.0))
    return m


@pytest.mark.parametrize("engine", ["reference", "vector"])
def test_slices_show_broken_time_and_broken_requests(engine):
    r = ps.simulate(model(), horizon=18.0, seed=0, engine=engine)
    s = r.slices(4.0)
    serve = s[s["promise"] == "serve"]
    assert serve["start"].tolist() == [0.0, 4.0, 8.0, 12.0, 16.0]
    # down on [3, 5): 1 of the first 4, 1 of the next; the last slice is 2 long
    assert serve["kept_fraction"].tolist() == [0.75, 0.75, 1.0, 1.0, 1.0]
    # arrivals 2 | 4, 6 | 8, 10 | 12, 14 | 16: 4 finds db down, 10 and 12 get errors
    assert serve["requests"].tolist() == [1, 2, 2, 2, 1]
    assert serve["requests_kept"].tolist() == [1, 1, 1, 1, 1]
    assert serve["request_kept_fraction"].tolist() == [1.0, 0.5, 0.5, 0.5, 1.0]
    # the slices add up to the whole-run figures
    row = r.promises.set_index("promise").loc["serve"]
    lengths = np.array([4.0, 4.0, 4.0, 4.0, 2.0])
    assert math.isclose((serve["kept_fraction"] * lengths).sum() / 18.0, row["kept_fraction"])
    assert serve["requests"].sum() == row["requests"]


def test_slices_without_requests_keep_the_time_columns_and_bad_widths_are_refused():
    r = ps.simulate(model(), horizon=18.0, seed=0, record_requests=False)
    s = r.slices(5.0)
    assert "requests" not in s.columns and len(s) == 2 * 4
    for width in (0, -1.0, math.nan, math.inf, "4", True):
        with pytest.raises(ValueError, match="width"):
            r.slices(width)
    with pytest.raises(ValueError, match="too many"):
        r.slices(1e-9)


def test_a_width_that_rounds_past_a_whole_number_of_slices_makes_no_empty_slice():
    """600 / (600 / 7) is 7.000000000000001 in floats: still 7 slices, none empty."""
    m = ps.Model("one")
    s = m.agent("s", failures=ps.Failures(ps.Exponential(50.0), ps.Exponential(5.0)))
    m.promise(s, to=m.agent("u"), body=ps.Availability(), name="up")
    table = ps.simulate(m, horizon=600.0, seed=1).slices(600.0 / 7)
    assert len(table) == 7 and table["kept_fraction"].notna().all()
    assert table["start"].max() < 600.0
