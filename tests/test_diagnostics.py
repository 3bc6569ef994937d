"""Promise-graph diagnostics and the knock-out experiment."""

from pathlib import Path

import pytest

import promisesim as ps
from promisesim import diagnostics as dg
from promisesim.dists import Deterministic, Exponential

DEMO = Path(ps.__file__).parent / "examples" / "web_api.yaml"


def test_single_leaves_of_the_demo_name_the_database():
    model = ps.load_scenario(DEMO).model
    leaves = dg.single_leaves(model)
    assert list(leaves.itertuples(index=False, name=None)) == [("answers", "db")]


def test_knockout_ranks_the_single_point_of_failure_first():
    scenario = ps.load_scenario(DEMO)
    ranking = dg.knockout(scenario.model, horizon=2 * 86_400.0, replications=4, seed=3)
    assert ranking["agent"].iloc[0] == "db"
    assert ranking.set_index("agent").loc["users", "damage"] == 0.0
    # db's knock-out breaks its own promise and the api's answers: about two whole promises
    assert ranking["damage"].iloc[0] == pytest.approx(2.0, abs=0.05)


def chain_model(k, n=3):
    m = ps.Model("graph")
    u, top = m.agent("u"), m.agent("top")
    offers = [m.promise(m.agent(f"r{i}"), to=top, body=ps.Availability(), name=f"r{i}")
              for i in range(n)]
    m.promise(top, to=u, body=ps.Availability(), conditions=ps.k_of(k, *offers), name="up")
    return m


@pytest.mark.parametrize("k, spof", [(1, []), (2, []), (3, ["r0", "r1", "r2"])])
def test_k_of_n_has_single_leaves_only_when_every_provider_is_needed(k, spof):
    leaves = dg.single_leaves(chain_model(k))
    assert sorted(leaves.loc[leaves["promise"] == "up", "agent"]) == spof


def test_single_leaves_are_found_through_chains_of_conditions():
    m = ps.Model("chain")
    u, a, b, c = (m.agent(n) for n in ("u", "a", "b", "c"))
    pc = m.promise(c, to=b, body=ps.Availability(), name="pc")
    pb = m.promise(b, to=a, body=ps.Availability(), conditions=pc, name="pb")
    m.promise(a, to=u, body=ps.Availability(), conditions=pb, name="pa")
    leaves = dg.single_leaves(m)
    assert sorted(leaves.loc[leaves["promise"] == "pa", "agent"]) == ["b", "c"]


def test_conflicts_within_one_agent():
    m = ps.Model("conflicts")
    u = m.agent("u")
    slow = m.agent("slow", service_time=Deterministic(0.5))
    busy = m.agent("busy", service_time=Exponential(mean=1.0), servers=2)
    m.promise(slow, to=u, body=ps.Latency(deadline=0.2), name="too-fast")
    p = m.promise(busy, to=u, body=ps.Latency(deadline=5.0), name="busy-p")
    m.workload(p, rate=2.5)
    found = dg.conflicts(m)
    assert set(zip(found["promise"], found["conflict"])) == {
        ("too-fast", "deadline below service time"), ("busy-p", "overcommitted capacity")}
    m.workloads[0] = ps.Workload("busy-p", rate=1.5)
    assert dg.conflicts(m)["promise"].tolist() == ["too-fast"]


def test_agent_cycles_and_valency():
    m = ps.Model("cycle")
    u, api, db = m.agent("u"), m.agent("api"), m.agent("db")
    auth = m.promise(api, to=db, body=ps.Latency(deadline=1.0), name="auth")
    query = m.promise(db, to=api, body=ps.Latency(deadline=1.0), conditions=auth, name="query")
    m.promise(api, to=u, body=ps.Latency(deadline=1.0), conditions=query, name="serve")
    m.promise(db, to=u, body=ps.Availability(), name="pushed", accepted=False)
    assert dg.agent_cycles(m) == [["api", "db", "api"]]
    v = dg.valency(m, limit=2).set_index("agent")
    assert v.loc["api", "bindings"] == 3 and bool(v.loc["api", "over_limit"])
    assert v.loc["db", "made"] == 1          # the imposition is not a binding
    b = dg.bindings(m).set_index("promise")
    assert b.loc["pushed", "kind"] == "imposition" and b.loc["serve", "kind"] == "binding"


def test_check_command_reports_the_demo_findings(capsys):
    import json

    from promisesim.cli import main

    assert main(["check", str(DEMO), "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert findings["single_leaves"] == [{"promise": "answers", "agent": "db"}]
    assert findings["impositions"] == [] and findings["agent_cycles"] == []
    assert main(["check", str(DEMO)]) == 0
    assert "single points of failure: answers fails with db" in capsys.readouterr().out


def test_check_command_bad_file_is_status_2(tmp_path, capsys):
    from promisesim.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text("agents: [{name: a}]\npromises: [{name: p, promiser: a, promisee: b, body: availability}]\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'b'" in err[0] and ":2:" in err[0]


def test_knockout_without_a_seed_still_uses_common_random_numbers():
    m = ps.Model("crn")
    u = m.agent("u")
    for name in ("a", "b"):
        m.promise(m.agent(name, failures=ps.Failures(Exponential(10.0), Exponential(1.0))), to=u,
                  body=ps.Availability(), name=f"{name}-up")
    ranking = dg.knockout(m, horizon=200.0, replications=3, seed=None).set_index("agent")
    assert ranking.loc["u", "damage"] == 0.0 and ranking.loc["u", "promises_hurt"] == 0


def test_directed_cycles_over_the_same_agents_are_both_reported():
    m = ps.Model("two loops")
    u = m.agent("u")
    a, b, c = m.agent("a"), m.agent("b"), m.agent("c")
    leaf = {}
    for x, y in (("b", "a"), ("c", "b"), ("a", "c"), ("c", "a"), ("b", "c"), ("a", "b")):
        leaf[x + y] = m.promise(x, to=y, body=ps.Availability(), name=x + y)
    # X depends on Y when a promise of X is conditioned on a promise Y made to X
    m.promise(a, to=u, body=ps.Availability(), conditions=[leaf["ba"], leaf["ca"]], name="au")
    m.promise(b, to=u, body=ps.Availability(), conditions=[leaf["cb"], leaf["ab"]], name="bu")
    m.promise(c, to=u, body=ps.Availability(), conditions=[leaf["ac"], leaf["bc"]], name="cu")
    cycles = {tuple(cycle) for cycle in dg.agent_cycles(m)}
    assert {("a", "b", "c", "a"), ("a", "c", "b", "a")} <= cycles
    assert {("a", "b", "a"), ("a", "c", "a"), ("b", "c", "b")} <= cycles


def test_offered_load_follows_random_balancing_and_version_splits():
    m = ps.Model("spread")
    grp = m.super_agent("grp", size=4, balance="random",
                        member=ps.AgentTemplate(service_time=ps.Exponential(1.0)))
    p = m.promise(grp, to=m.agent("u"), body=ps.Latency(deadline=5.0), name="p")
    m.workload(p, rate=2.0)
    assert dg.conflicts(m).empty                   # 0.5 per member, not 2
    m = ps.Model("split")
    store = m.versions("store", {"v1": ps.AgentTemplate(service_time=ps.Exponential(1.0)),
                                 "v2": ps.AgentTemplate(service_time=ps.Exponential(1.0))},
                       traffic={"v1": 0.6, "v2": 0.4})
    p = m.promise(store, to=m.agent("u"), body=ps.Latency(deadline=5.0), name="p")
    m.workload(p, rate=2.0)
    found = dg.conflicts(m)
    assert list(found["agent"]) == ["store.v1"]    # 2 x 0.6 = 1.2 servers' worth; v2 gets 0.8
