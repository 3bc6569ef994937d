"""Autoscalers on the vector engine (a fixed point of whole runs) against the reference engine.

Continuous times throughout (see the vectorised engine's docstring on ties), so every
table must agree exactly: membership changes, start-ups, request outcomes and latencies.
"""

import pytest

import promisesim as ps
from promisesim.dists import Exponential, LogNormal
from promisesim.engines.vector import autoscale as _autoscale

from .test_equivalence import assert_same


def scaled(*, servers=1, limit=None, slowdown=0.0, balance="random", failures=None, reuse=0.5,
           startup=LogNormal(2.0, 0.5), hop=0.0, **policy):
    """A function behind a front, with a spike from 100 to 250: it grows, then shrinks."""
    m = ps.Model("scaled")
    u = m.agent("u")
    fn = m.super_agent("fn", size=2, balance=balance, startup=startup, warm_startup=0.3,
                       reuse=reuse, hop=hop,
                       member=ps.AgentTemplate(service_time=LogNormal(0.4, 0.5), servers=servers,
                                               limit=limit, slowdown=slowdown, failures=failures))
    db = m.agent("db", service_time=Exponential(0.05), servers=4)
    q = m.promise(db, to=fn, body=ps.Latency(deadline=1.0), name="q")
    p = m.promise(fn, to=u, body=ps.Latency(deadline=2.0), conditions=q, name="p")
    m.workload(p, rate=2.0)
    m.workload(p, rate=8.0 * servers, start=100.0, end=250.0, name="spike")
    m.inject(ps.Autoscaler(fn, **{"utilisation": 0.6, "interval": 10.0, "delay": 2.0,
                                  "min_size": 1, "max_size": 8, **policy}))
    return m


def resizes(result):
    """Changes of state of the members that ever started (ups and downs), all replications
    (members that never started are left out of the results)."""
    ev = result.events
    ev = ev[(ev["kind"] == "agent") & ev["entity"].astype(str).str.startswith("fn.")]
    return len(ev)


@pytest.mark.parametrize("case", [
    {},
    {"cooldown": 30.0},
    {"delay": 0.0},
    {"delay": 25.0},                                # decided while earlier ones are pending
    {"interval": 7.3, "delay": 1.1},                # observations that do not divide the horizon
    {"min_size": 2, "max_size": 3},                 # bounds hit both ways
    {"min_size": 2, "max_size": 2},                 # never resizes
    {"utilisation": 1.0},
    {"startup": Exponential(15.0), "cooldown": 0.0},   # removed while starting, added again
    {"reuse": 0.0, "startup": 0.0},                 # no start-up: serves at once
    {"servers": 3},
    {"limit": 2, "slowdown": 0.2},
    {"balance": "first"},
    {"hop": Exponential(0.02)},
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_autoscaled_models_agree_exactly(case):
    ref, _ = assert_same(scaled(**case), 400.0, 3, 11)
    if case.get("max_size") != 2:
        assert resizes(ref) >= 3   # the autoscaler did something
    assert max(_autoscale.last_rounds) >= 1


def test_autoscaled_members_that_crash_and_drain_agree():
    m = scaled(failures=ps.Failures(Exponential(60.0), Exponential(5.0)), servers=2)
    m.inject(ps.Outage("fn", at=150.0, duration=20.0))              # every member, a crash
    m.inject(ps.Outage("fn.1", at=300.0, duration=30.0, drain=True))
    m.inject(ps.Outage("fn.3", at=180.0, duration=7.0))             # a member maybe not there
    ref, _ = assert_same(m, 400.0, 4, 3)
    assert (ref.requests["outcome"] == "lost").sum() > 10


def test_two_autoscalers_and_counts_without_records_agree():
    m = scaled()
    cache = m.super_agent("cache", size=1, startup=Exponential(1.0),
                          member=ps.AgentTemplate(service_time=Exponential(0.2), servers=2))
    c = m.promise(cache, to="u", body=ps.Latency(deadline=0.5), name="c")
    m.workload(c, rate=6.0, start=50.0, end=200.0)
    m.inject(ps.Autoscaler(cache, utilisation=0.5, interval=15.0, delay=0.0, max_size=5))
    assert_same(m, 300.0, 3, 5)
    ref = ps.simulate(m, horizon=300.0, replications=3, seed=5, engine="reference",
                      record_requests=False)
    vec = ps.simulate(m, horizon=300.0, replications=3, seed=5, engine="vector",
                      record_requests=False)
    assert ref.promises.equals(vec.promises)
    with pytest.raises(ValueError, match="record_requests=True"):
        vec.requests


def test_an_idle_autoscaled_group_shrinks_to_its_minimum():
    m = ps.Model("idle")
    fn = m.super_agent("fn", size=3, member=ps.AgentTemplate(service_time=Exponential(0.1)))
    m.promise(fn, to=m.agent("u"), body=ps.Availability(), name="up")
    m.inject(ps.Autoscaler(fn, interval=10.0, delay=1.0, min_size=1, max_size=4))
    ref, vec = assert_same(m, 50.0, 2, 0)
    assert _autoscale.last_rounds == [2]      # a guess, then the decisions it reproduced
    down = vec.events[(vec.events["event"] == "down") & (vec.events["time"] == 11.0)]
    assert sorted(set(down["entity"].astype(str))) == ["fn.1", "fn.2"]


def test_replications_in_several_batches_agree(monkeypatch):
    monkeypatch.setattr(_autoscale, "_batch_size", lambda spec, horizon: 2)
    assert_same(scaled(), 300.0, 5, 8)
    assert len(_autoscale.last_rounds) == 3


@pytest.mark.parametrize("case", [{}, {"servers": 3}, {"limit": 2, "slowdown": 0.2},
                                  {"delay": 25.0, "failures": ps.Failures(Exponential(40.0),
                                                                          Exponential(3.0))}],
                         ids=["one-server", "three-servers", "limit", "crashes"])
def test_observed_busy_time_is_the_reference_engines_bit_for_bit(case, monkeypatch):
    """What each observation sees of each member, not just the decisions it leads to."""
    from promisesim.engines.reference import _Replication
    seen_ref, seen_vec = {}, {}
    busy_time = _Replication._busy_time

    def record(self, agent):
        value = busy_time(self, agent)
        seen_ref[(agent, self.env.now)] = value
        return value

    monkeypatch.setattr(_Replication, "_busy_time", record)
    member_busy = _autoscale._busy_time

    def record_vec(rep, ready, end, servers, n, times):
        value = member_busy(rep, ready, end, servers, n, times)
        seen_vec.setdefault("rounds", []).append(value[0])
        return value

    monkeypatch.setattr(_autoscale, "_busy_time", record_vec)
    m = scaled(**case)
    ps.simulate(m, horizon=400.0, seed=2, engine="reference")
    ps.simulate(m, horizon=400.0, seed=2, engine="vector")
    spec = m.spec()
    members = [spec.agent_index[f"fn.{i}"] for i in range(8)]
    times = sorted({t for _, t in seen_ref})
    reference = [[seen_ref[(a, t)] for t in times] for a in members]
    # the last round's values, member by member (members never served are not computed)
    served = [row for row in reference if any(row)]
    final = seen_vec["rounds"][-len(served):]
    assert [list(map(float, v)) for v in final] == served


def test_auto_runs_an_autoscaler_on_the_vector_engine_even_at_one_replication():
    """The vector engine finds an autoscaler's decisions in rounds of whole runs, and is
    still the faster at one replication (see experiment._slow_on_vector)."""
    from pathlib import Path

    from promisesim.experiment import choose_engine

    spec = ps.load_scenario(Path(ps.__file__).parent / "examples" /
                            "serverless_image.yaml").model.spec()
    engine, reason = choose_engine("auto", spec)
    assert engine.name == "vector" and reason == "auto: the vector engine runs every feature " \
        "of the model"
    assert choose_engine("reference", spec)[0].name == "reference"   # asked for: as asked
