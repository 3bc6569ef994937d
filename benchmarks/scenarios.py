"""The standard benchmark scenarios: functions returning (model, horizon, replications)."""

from __future__ import annotations

import promisesim as ps
from promisesim.dists import Exponential, LogNormal


def fleet(agents: int = 1_000, replications: int = 100) -> tuple[ps.Model, float, int]:
    """A fleet of agents with random failures and three levels of conditional promises.

    A tenth of the agents are core services, three tenths mid-tier, the rest edge
    services. Each core agent promises availability to three mid agents; each mid agent
    promises availability to two edge agents if its core promise is kept; each edge agent
    promises availability to users if its mid promise is kept. MTTF 1,000 h, MTTR 2 h,
    one simulated year.
    """
    m = ps.Model("fleet", time_unit="h")
    users = m.agent("users")
    failures = ps.Failures(time_to_failure=Exponential(mean=1_000.0),
                           time_to_repair=Exponential(mean=2.0))
    n_core, n_mid = agents // 10, 3 * agents // 10
    n_edge = agents - n_core - n_mid
    core = [m.agent(f"core{i}", failures=failures) for i in range(n_core)]
    mid = [m.agent(f"mid{i}", failures=failures) for i in range(n_mid)]
    edge = [m.agent(f"edge{i}", failures=failures) for i in range(n_edge)]
    to_mid = [m.promise(core[(j // 3) % n_core], to=agent, body=ps.Availability(),
                        name=f"core->mid{j}") for j, agent in enumerate(mid)]
    to_edge = [m.promise(agent := mid[(k // 2) % n_mid], to=e, body=ps.Availability(),
                         conditions=to_mid[(k // 2) % n_mid], name=f"mid->edge{k}")
               for k, e in enumerate(edge)]
    for k, e in enumerate(edge):
        m.promise(e, to=users, body=ps.Availability(), conditions=to_edge[k], name=f"edge{k}-up")
    del agent
    return m, 8_760.0, replications


def chain(rate: float = 100.0, replications: int = 2) -> tuple[ps.Model, float, int]:
    """A latency promise at ``rate`` requests per second through a chain of three queues.

    users -> api -> auth -> db, each a single server with exponential service
    (utilisations 0.6, 0.4 and 0.8 at 100 requests per second) and each call a latency
    promise; one simulated hour. A tandem of M/M/1 queues.
    """
    m = ps.Model("chain of queues", time_unit="s")
    users = m.agent("users")
    api = m.agent("api", service_time=Exponential(mean=0.006))
    auth = m.agent("auth", service_time=Exponential(mean=0.004))
    db = m.agent("db", service_time=Exponential(mean=0.008))
    q = m.promise(db, to=auth, body=ps.Latency(deadline=0.1), name="query")
    a = m.promise(auth, to=api, body=ps.Latency(deadline=0.15), conditions=q, name="auth")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=0.2), conditions=a, name="serve")
    m.workload(serve, rate=rate)
    return m, 3_600.0, replications


def quorum(replications: int = 20) -> tuple[ps.Model, float, int]:
    """A quorum read: the api waits for the 2 fastest of 3 replicas, which fail at random.

    Multi-server queues (2 servers each) at 50 requests per second, ten simulated minutes.
    """
    m = ps.Model("quorum", time_unit="s")
    users = m.agent("users")
    api = m.agent("api", service_time=Exponential(mean=0.002), servers=2)
    replicas = []
    for i in range(3):
        node = m.agent(f"replica{i}", service_time=Exponential(mean=0.01), servers=2,
                       failures=ps.Failures(time_to_failure=Exponential(mean=600.0),
                                            time_to_repair=Exponential(mean=30.0)))
        replicas.append(m.promise(node, to=api, body=ps.Latency(deadline=0.05), name=f"read{i}"))
    serve = m.promise(api, to=users, body=ps.Latency(deadline=0.05),
                      conditions=ps.k_of(2, *replicas), name="serve")
    m.workload(serve, rate=50.0)
    return m, 600.0, replications


def scaling(replications: int = 20) -> tuple[ps.Model, float, int]:
    """Scaling with cold starts under load: a web tier of 2 members (each call goes to every
    member and the fastest kept answer counts: ``rule="k"``, k=1) takes 40 req/s; at 20
    minutes it scales to 6 members with a 30 s cold start, at 40 minutes back to 2. Members
    fail at random (MTTF 30 min, MTTR 1 min); one hop of 1 ms each way; one simulated hour.
    """
    m = ps.Model("scaling with cold starts", time_unit="s")
    users = m.agent("users")
    web = m.super_agent("web", size=2, rule="k", k=1, startup=30.0, hop=0.001,
                        member=ps.AgentTemplate(service_time=Exponential(mean=0.02), servers=2,
                                                failures=ps.Failures(Exponential(mean=1_800.0),
                                                                     Exponential(mean=60.0))))
    serve = m.promise(web, to=users, body=ps.Latency(deadline=0.25), name="serve")
    m.workload(serve, rate=40.0)
    m.inject(ps.ScaleTo(web, size=6, at=1_200.0))
    m.inject(ps.ScaleTo(web, size=2, at=2_400.0))
    return m, 3_600.0, replications


def flaky(replications: int = 4) -> tuple[ps.Model, float, int]:
    """Request-level failures: a shop whose third parties fail request by request.

    users -> api (4 servers) -> payments (2% errors, bursts of 50% errors every ~30 min
    lasting ~2 min) and, by choice, inventory or its replica; api -> db (2 servers). At 20
    minutes payments browns out for 10 minutes (5x slower, 10% more errors); at 40 minutes
    a partition cuts api off from db for 3 minutes. 40 requests per second, one hour.
    """
    m = ps.Model("flaky third parties", time_unit="s")
    users = m.agent("users")
    api = m.agent("api", service_time=Exponential(mean=0.004), servers=4)
    pay = m.agent("payments", service_time=Exponential(mean=0.02), servers=2,
                  errors=ps.Bursts(rate=1 / 1_800, mean_duration=120.0, errors=0.5,
                                   baseline=0.02))
    inv = m.agent("inventory", service_time=Exponential(mean=0.01),
                  failures=ps.Failures(Exponential(mean=900.0), Exponential(mean=60.0)))
    replica = m.agent("inventory-replica", service_time=Exponential(mean=0.012), errors=0.01)
    db = m.agent("db", service_time=Exponential(mean=0.01), servers=2)
    charge = m.promise(pay, to=api, body=ps.Latency(deadline=0.2), name="charge")
    stock = [m.promise(a, to=api, body=ps.Latency(deadline=0.1), name=f"stock@{a.name}")
             for a in (inv, replica)]
    orders = m.promise(db, to=api, body=ps.Latency(deadline=0.1), name="orders")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=0.3), name="checkout",
                      conditions=ps.all_of(charge, ps.any_of(*stock), orders))
    m.workload(serve, rate=40.0)
    m.inject(ps.Degrade(pay, at=1_200.0, duration=600.0, slower=5.0, errors=0.1))
    m.inject(ps.Partition(api, db, at=2_400.0, duration=180.0))
    return m, 3_600.0, replications


def retries(replications: int = 4) -> tuple[ps.Model, float, int]:
    """Retries with backoff: a checkout whose calls are retried on errors and timeouts.

    users -> api (4 servers) -> payments (4 servers, 3% errors) and stock (2 servers,
    log-normal service with a long tail); api gives up on a call after 150 ms and retries
    it up to twice, after an exponential backoff with full jitter (50 ms, then 100 ms).
    At 20 minutes payments slows 1.5x for 10 minutes: more calls time out and are retried,
    adding to its load. 40 requests per second, one hour. Even if every call were tried
    three times, each provider could serve them (no metastable storm: see the
    ``retry_storm`` example for one).
    """
    m = ps.Model("retried checkout", time_unit="s")
    users = m.agent("users")
    api = m.agent("api", service_time=Exponential(mean=0.004), servers=4)
    pay = m.agent("payments", service_time=Exponential(mean=0.02), servers=4, errors=0.03)
    stock = m.agent("stock", service_time=LogNormal(mean=0.012, sigma=1.0), servers=2)
    charge = m.promise(pay, to=api, body=ps.Latency(deadline=0.2), name="charge")
    level = m.promise(stock, to=api, body=ps.Latency(deadline=0.1), name="stock")
    serve = m.promise(api, to=users, body=ps.Latency(deadline=0.5), name="checkout",
                      conditions=ps.all_of(charge, level), timeout=0.15, retries=2,
                      backoff=ps.Backoff(0.05, multiplier=2.0, jitter="full"))
    m.workload(serve, rate=40.0)
    m.inject(ps.Degrade(pay, at=1_200.0, duration=600.0, slower=1.5))
    return m, 3_600.0, replications


def capped(replications: int = 4) -> tuple[ps.Model, float, int]:
    """A function with a concurrency cap: a front with a limit that calls others.

    users -> fn (a super-agent of 4 members of 2 servers each, random balance, at most 6
    requests inside as a whole) -> store. 5 requests per second for 10 minutes. Its front has a
    limit and calls others, which the vector engine computes in passes, each guessing which
    requests the cap turns away (members at load 0.375: they settle in a few).
    """
    m = ps.Model("capped function", time_unit="s")
    users = m.agent("users")
    store = m.agent("store", service_time=Exponential(mean=0.05), servers=4)
    fn = m.super_agent("fn", size=4, balance="random", limit=6,
                       member=ps.AgentTemplate(service_time=Exponential(mean=0.6), servers=2))
    put = m.promise(store, to=fn, body=ps.Latency(deadline=0.5), name="put")
    serve = m.promise(fn, to=users, body=ps.Latency(deadline=2.0), name="render",
                      conditions=put)
    m.workload(serve, rate=5.0)
    return m, 600.0, replications


def coldstart(replications: int = 8) -> tuple[ps.Model, float, int]:
    """A function that scales from zero: cold starts under a spike.

    users -> gateway -> fn (at most 200 instances started on demand, keep-alive 5 minutes,
    cold start log-normal around 0.8 s, service exponential 0.2 s) -> table. 2 requests per
    second for an hour, and 40 per second for 5 minutes at half past: the spike meets cold
    starts. The function's instances are an event loop in lockstep over replications.
    """
    m = ps.Model("cold starts", time_unit="s")
    users = m.agent("users")
    gateway = m.agent("gateway", service_time=0.002, servers=64)
    table = m.agent("table", service_time=Exponential(mean=0.01), servers=16)
    fn = m.agent("fn", servers=200, service_time=Exponential(mean=0.2), keep_alive=300.0,
                 cold_start=LogNormal(mean=0.8, sigma=0.3))
    get = m.promise(table, to=fn, body=ps.Latency(deadline=0.1), name="get")
    run = m.promise(fn, to=gateway, body=ps.Latency(deadline=1.0), name="run", conditions=get)
    serve = m.promise(gateway, to=users, body=ps.Latency(deadline=1.5), name="serve",
                      conditions=run)
    m.workload(serve, rate=2.0)
    m.workload(serve, rate=40.0, start=1_800.0, end=2_100.0, name="spike")
    return m, 3_600.0, replications


def mm1k(replications: int = 4) -> tuple[ps.Model, float, int]:
    """M/M/1/K: one server, at most 5 requests inside, load 0.9, 6 hours, 4 replications.

    A limited queue is served in lanes cut where it is empty, so few replications still
    give it many lanes, a step per request each.
    """
    m = ps.Model("M/M/1/K", time_unit="s")
    s = m.agent("s", service_time=Exponential(mean=1.0), limit=5)
    m.workload(m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=5.0), name="p"),
               rate=0.9)
    return m, 21_600.0, replications


def tandem(replications: int = 4) -> tuple[ps.Model, float, int]:
    """A limited tandem: a front with a limit of 3 that calls a limited back end first.

    users -> front (1 server, limit 3) -> back (2 servers, limit 6), 1.5 requests per second
    for 2 hours, 4 replications. The front's requests count against its limit while they
    wait for their calls, so which it turns away depends on the back end's answers: the
    vector engine settles that in passes, its event loops in lanes cut where a queue is empty.
    """
    m = ps.Model("limited tandem", time_unit="s")
    back = m.agent("back", service_time=Exponential(mean=0.5), servers=2, limit=6)
    front = m.agent("front", service_time=Exponential(mean=0.3), limit=3)
    call = m.promise(back, to=front, body=ps.Latency(deadline=2.0), name="call")
    m.workload(m.promise(front, to=m.agent("users"), body=ps.Latency(deadline=5.0),
                         name="page", conditions=call), rate=1.5)
    return m, 7_200.0, replications


def serverless(replications: int = 1) -> tuple[ps.Model, float, int]:
    """The serverless image example (an autoscaled function with cold and warm starts and a
    limit per instance) at 1 replication of its hour: an autoscaler's decisions are a fixed
    point of whole vector runs, so this is where the vector engine gains least."""
    from pathlib import Path
    scenario = ps.load_scenario(Path(ps.__file__).parent / "examples" /
                                "serverless_image.yaml")
    return scenario.model, float(scenario.horizon), replications


SCENARIOS = {"fleet": fleet, "chain": chain, "quorum": quorum, "scaling": scaling, "flaky": flaky,
             "retries": retries, "capped": capped, "coldstart": coldstart, "mm1k": mm1k,
             "tandem": tandem, "serverless": serverless}
