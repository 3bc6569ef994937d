"""Failure attribution: the first failing link, the root causes, what a choice absorbed."""

import pytest

import promisesim as ps


@pytest.fixture
def result():
    m = ps.Model("attribution")
    u, api, db = m.agent("u"), m.agent("api"), m.agent("db")
    primary, mirror = m.agent("primary"), m.agent("mirror")
    d = m.promise(db, to=api, body=ps.Availability(), name="d")
    x = m.promise(primary, to=api, body=ps.Availability(), name="x")
    y = m.promise(mirror, to=api, body=ps.Availability(), name="y")
    m.promise(api, to=u, body=ps.Availability(), conditions=ps.all_of(d, ps.any_of(x, y)),
              name="serve")
    m.inject(ps.Outage("db", at=1.0, duration=1.0))        # serve broken [1, 2) by db
    m.inject(ps.Outage("primary", at=3.0, duration=4.0))   # absorbed by the mirror ...
    m.inject(ps.Outage("mirror", at=5.0, duration=1.0))    # ... until both are down [5, 6)
    m.inject(ps.Outage("api", at=8.0, duration=0.5))       # the promiser itself
    return ps.simulate(m, horizon=10.0, seed=0)


def test_each_break_has_its_first_link_and_root_causes(result):
    serve = result.causes[result.causes["promise"] == "serve"]
    assert list(zip(serve["start"], serve["duration"], serve["first_link"], serve["root_causes"])) == [
        (1.0, 1.0, "d", "db"), (5.0, 1.0, "x, y", "primary, mirror"), (8.0, 0.5, "promiser", "api")]


def test_cause_summary_shares_the_broken_time(result):
    table = result.cause_summary()
    serve = table[table["promise"] == "serve"].set_index("root_causes")
    assert serve["broken_time"].to_dict() == {"db": 1.0, "primary, mirror": 1.0, "api": 0.5}
    assert serve["share_of_broken_time"].sum() == pytest.approx(1.0)


def test_a_choice_absorbs_upstream_breaks(result):
    absorbed = result.absorbed.set_index(["promise", "condition"])
    assert absorbed.loc[("serve", "x"), ["upstream_breaks", "absorbed"]].tolist() == [1, 1]
    assert absorbed.loc[("serve", "y"), ["upstream_breaks", "absorbed"]].tolist() == [1, 0]
    assert absorbed.loc[("serve", "d"), ["upstream_breaks", "absorbed"]].tolist() == [1, 0]


def test_a_covered_provider_is_not_blamed():
    m = ps.Model("covered")
    u, api, db, a, b = (m.agent(n) for n in ("u", "api", "db", "a", "b"))
    d = m.promise(db, to=api, body=ps.Availability(), name="d")
    x = m.promise(a, to=api, body=ps.Availability(), name="x")
    y = m.promise(b, to=api, body=ps.Availability(), name="y")
    m.promise(api, to=u, body=ps.Availability(), conditions=ps.all_of(d, ps.any_of(x, y)), name="up")
    m.inject(ps.Outage("a", at=0.0, duration=100.0))    # x broken throughout, covered by y
    m.inject(ps.Outage("db", at=50.0, duration=10.0))
    r = ps.simulate(m, horizon=100.0, seed=0)
    up = r.causes[r.causes["promise"] == "up"]
    assert list(zip(up["first_link"], up["root_causes"])) == [("d", "db")]
    broken = r.events[(r.events["entity"] == "up") & (r.events["event"] == "broken")]
    assert list(broken["cause"].astype(str)) == ["promise 'd' broken"]


def test_row_texts_join_the_names_of_each_rows_true_columns():
    import numpy as np
    from promisesim.attribution import _row_texts
    rng = np.random.default_rng(4)
    names = [f"a{i}" for i in range(13)]   # more than 8 columns: rows packed into 2 bytes
    matrix = rng.random((500, 13)) < 0.15
    expected = [", ".join(n for n, b in zip(names, row) if b) for row in matrix]
    got = _row_texts(matrix, names)
    assert got.dtype == object and list(got) == expected
    assert list(_row_texts(matrix[:, :0], [])) == [""] * 500
    assert _row_texts(matrix[:0], names).shape == (0,)


def test_distinct_rows_are_in_the_order_of_numpy_unique():
    import numpy as np
    from promisesim.attribution import _distinct_rows
    rng = np.random.default_rng(5)
    for width in (1, 3, 8, 9, 20):   # within a byte, a byte exactly, over several
        matrix = rng.random((300, width)) < 0.3
        rows, inverse = np.unique(matrix, axis=0, return_inverse=True)
        first, got = _distinct_rows(matrix)
        assert np.array_equal(matrix[first], rows), width
        assert np.array_equal(got, inverse.ravel()), width
        assert np.array_equal(matrix[first][got], matrix), width
