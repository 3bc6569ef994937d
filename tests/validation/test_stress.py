"""Limits under stress and scaling, against closed forms (reference engine: the vector
engine does not run these features yet). Tolerances of 4 standard errors, as in
``test_analytic``."""

import math

import promisesim as ps
from promisesim import analytic
from promisesim.dists import Exponential

Z = 4.0


def assert_close(mean, stderr, expected, *, bias=0.0):
    assert stderr > 0
    assert abs(mean - expected) <= Z * stderr + bias, (mean, stderr, expected)


def test_capacity_limit_blocks_like_mmck():
    """A hidden limit of K requests on a single server: arrivals that find K inside are
    rejected, with the M/M/1/K blocking probability (PASTA)."""
    arrival, service, limit = 0.8, 1.0, 3
    m = ps.Model("M/M/1/K")
    s = m.agent("s", service_time=Exponential(mean=1 / service), limit=limit)
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=1e9), name="p")
    m.workload(p, rate=arrival)
    r = ps.simulate(m, horizon=3_000.0, replications=20, seed=22, engine="reference")
    rq = r.requests
    share = (rq["outcome"] == "rejected").groupby(rq["replication"]).mean()
    assert_close(share.mean(), share.std(ddof=1) / math.sqrt(len(share)),
                 analytic.mmck_blocking(arrival, service, 1, limit))
