"""The order of work inside an agent against closed forms.

``api`` calls ``db``, which serves nobody else. Calling while holding its server
(order ``"around"``), api is an M/G/1 queue whose service is its own time plus
db's response (db never queues: api sends it one call at a time), so its mean
response time is Pollaczek-Khinchine's and its utilisation is arrival rate x
(own service + db's response). Serving first, then calling (``"before"``), it is
a tandem of M/M/1 queues like calling first (Burke: the departures of an M/M/1
queue are Poisson). Estimates are per-replication values, checked within 3
standard errors across replications; the engines must give identical tables.
"""

import numpy as np
import pandas as pd
import pytest

import promisesim as ps
from promisesim import analytic
from promisesim.dists import Exponential

pytestmark = pytest.mark.slow

Z = 3.0
RATE, OWN, DB = 2.0, 0.2, 0.1          # arrivals per s; mean service times of api and db (s)


def api_db(order, slower=None):
    m = ps.Model(f"api {order} db")
    users = m.agent("users")
    api = m.agent("api", service_time=Exponential(OWN), order=order)
    db = m.agent("db", service_time=Exponential(DB))
    query = m.promise(db, to=api, body=ps.Latency(deadline=1e9), name="query")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=1e9), name="serve", conditions=query)
    m.workload(serve, rate=RATE)
    if slower is not None:
        m.inject(ps.Degrade("db", at=3000.0, duration=600.0, slower=slower))
    return m


def held(result):
    """Per request of ``serve``: when api took its server (its call to db went out then),
    when it answered, and when it arrived, with the call's response time."""
    r = result.requests
    key = ["replication", "workload", "index"]
    calls = r[r["promise"] == "query"].set_index(key)
    serve = r[r["promise"] == "serve"].set_index(key)
    out = pd.DataFrame({"arrival": serve["arrival"], "start": calls["arrival"],
                        "end": serve["arrival"] + serve["latency"],
                        "response": calls["latency"]}).dropna()
    return out.reset_index()


def per_replication(frame, value):
    """Mean and standard error across replications of a per-replication value."""
    x = frame.groupby("replication").apply(value, include_groups=False).to_numpy()
    return x.mean(), x.std(ddof=1) / np.sqrt(x.size)


def assert_close(mean, stderr, expected):
    assert stderr > 0
    assert abs(mean - expected) <= Z * stderr, (mean, stderr, expected)


def overlap(lo, hi, a, b):
    """Total length of the intervals [lo, hi) inside [a, b)."""
    return np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None).sum()


def test_calling_while_serving_is_an_m_g_1_queue():
    horizon, reps = 2_500.0, 16
    vec = ps.simulate(api_db("around"), horizon=horizon, replications=reps, seed=41,
                      engine="vector")
    ref = ps.simulate(api_db("around"), horizon=horizon, replications=1, seed=41,
                      engine="reference")
    assert vec.engine == "vector"
    first = vec.requests[vec.requests["replication"] == 0]
    pd.testing.assert_frame_equal(ref.requests, first, check_exact=True, check_flags=False)
    h = held(vec)
    h = h[h["arrival"] >= 100.0]   # past the start from empty (relaxation time ~ 2 s)
    x1, x2 = OWN + DB, 2 * OWN**2 + 2 * DB**2 + 2 * OWN * DB   # E[X], E[X^2] of own + db
    rho = RATE * x1
    # Pollaczek-Khinchine: mean response time of M/G/1
    mean, se = per_replication(h, lambda f: (f["end"] - f["arrival"]).mean())
    assert_close(mean, se, x1 + RATE * x2 / (2 * (1 - rho)))
    assert se < 0.02   # power: the response time is 0.65 s; "after" would give 0.47 s
    # PASTA: a request finds the server idle, and calls at once, with probability 1 - rho
    mean, se = per_replication(h, lambda f: (f["start"] == f["arrival"]).mean())
    assert_close(mean, se, 1 - rho)
    assert se < 0.01


def test_serving_then_calling_is_a_tandem_of_m_m_1_queues():
    arrival, mu_api, mu_db, deadline = 0.5, 1.0, 2.0, 3.0
    m = ps.Model("before")
    api = m.agent("api", service_time=Exponential(1 / mu_api), order="before")
    db = m.agent("db", service_time=Exponential(1 / mu_db))
    query = m.promise(db, to=api, body=ps.Latency(deadline=1e9), name="query")
    p = m.promise(api, to=m.agent("u"), body=ps.Latency(deadline=deadline), name="p",
                  conditions=query)
    m.workload(p, rate=arrival)
    vec = ps.simulate(m, horizon=10_000.0, replications=16, seed=43, engine="vector",
                      record_requests=False)
    ref = ps.simulate(m, horizon=10_000.0, replications=1, seed=43, engine="reference",
                      record_requests=False)
    assert vec.engine == "vector"
    first = vec.promises[vec.promises["replication"] == 0]
    pd.testing.assert_frame_equal(ref.promises, first, check_exact=True, check_flags=False)
    row = vec.summary(["request_kept_fraction"]).set_index("promise").loc["p"]
    expected = analytic.tandem_mm1_response_within(arrival, (mu_api, mu_db), deadline)
    assert_close(row["mean"], row["stderr"], expected)
    assert row["stderr"] < 0.006


def test_a_caller_holding_its_server_piles_up_behind_a_slowed_callee():
    """db 10x slower for ten minutes from t = 3000 s: api (one server, calling while serving)
    needs 0.2 + 1.0 s a request where 0.5 s arrive between requests, so its queue and its
    latency rise while it lasts; before it, its utilisation is arrival rate x (own service +
    db's response), Little's law for its server."""
    horizon, reps = 3_700.0, 10
    ref = ps.simulate(api_db("around", slower=10.0), horizon=horizon, replications=reps,
                      seed=47, engine="reference")
    vec = ps.simulate(api_db("around", slower=10.0), horizon=horizon, replications=1,
                      seed=47, engine="vector")
    first = ref.requests[ref.requests["replication"] == 0]
    pd.testing.assert_frame_equal(vec.requests, first, check_exact=True, check_flags=False)
    h = held(ref)
    before, during = (2_400.0, 3_000.0), (3_000.0, 3_600.0)

    def busy(window):
        return lambda f: overlap(f["start"], f["end"], *window) / (window[1] - window[0])

    def waiting(window):   # time-average number waiting for api's server
        return lambda f: overlap(f["arrival"], f["start"], *window) / (window[1] - window[0])

    def latency(window):
        return lambda f: (f["end"] - f["arrival"])[f["arrival"].between(*window)].mean()

    steady = (200.0, 3_000.0)
    u, u_se = per_replication(h, busy(steady))
    response = per_replication(h[h["start"].between(*steady)], lambda f: f["response"].mean())[0]
    assert_close(u, u_se, RATE * (OWN + response))     # Little's law, measured response
    assert_close(u, u_se, RATE * (OWN + DB))           # ... and db's own mean service
    assert u_se < 0.01
    assert per_replication(h, busy(during))[0] > 0.99  # saturated while db is slow
    q_before, q_during = per_replication(h, waiting(before))[0], per_replication(h, waiting(during))[0]
    assert q_before < 1.0 < 50.0 < q_during
    w_before, w_during = per_replication(h, latency(before))[0], per_replication(h, latency(during))[0]
    assert w_before < 1.0 < 30.0 < w_during
