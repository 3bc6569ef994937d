"""The results layer against the simulation: each table's time over the run's own, side by side.

Usage::

    python -m benchmarks.tables                  # about 6 million request records, 3 repeats
    python -m benchmarks.tables --replications 4 --repeat 1 --json

The model is a web page (a latency promise) that calls a service with random failures, at
100 requests per second for an hour per replication, on the vector engine with every
request recorded: two records per arrival (the page's and its call's), 8 replications
by default, about 5.8 million records. Each repeat simulates once, then builds every table
from a fresh :class:`~promisesim.Result` of that trace (tables are cached per result), and
reports each table's time as a ratio to that repeat's simulation; medians over repeats.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time

import promisesim as ps
from promisesim.results import Result

#: The tables timed, as (name, how to build it from a result).
TABLES = (
    ("summary()", lambda r: r.summary()),
    ("promises", lambda r: r.promises),
    ("requests", lambda r: r.requests),
    ("events", lambda r: r.events),
    ("causes", lambda r: r.causes),
    ("request_cause_summary()", lambda r: r.request_cause_summary()),
    ("slices(60)", lambda r: r.slices(60.0)),
)


def model() -> ps.Model:
    m = ps.Model("page and service", time_unit="s")
    svc = m.agent("service", service_time=ps.Exponential(mean=0.004), servers=2,
                  failures=ps.Failures(time_to_failure=ps.Exponential(mean=600.0),
                                       time_to_repair=ps.Exponential(mean=20.0)))
    page_app = m.agent("web")
    call = m.promise(svc, to=page_app, body=ps.Latency(deadline=0.05), name="call")
    page = m.promise(page_app, to=m.agent("users"), body=ps.Latency(deadline=0.1),
                     conditions=call, name="page")
    m.workload(page, rate=100.0)
    return m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replications", type=int, default=8)
    parser.add_argument("--horizon", type=float, default=3_600.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    spec = model().spec()
    simulated, ratios = [], {name: [] for name, _ in TABLES}
    records = 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = ps.simulate(spec, horizon=args.horizon, replications=args.replications,
                             seed=args.seed, engine="vector", progress=False,
                             max_events=1e9)
        took = time.perf_counter() - start
        simulated.append(took)
        records = int(result.trace.requests["promise"].size)
        for name, build in TABLES:
            fresh = Result(spec, result.trace, horizon=result.horizon,
                           replications=result.replications, engine=result.engine,
                           entropy=result.entropy)
            gc.collect()   # (the tables of the one before are freed outside the timing)
            start = time.perf_counter()
            build(fresh)
            ratios[name].append((time.perf_counter() - start) / took)
    record = {"records": records, "replications": args.replications,
              "simulate_s": round(statistics.median(simulated), 3),
              "ratios": {k: round(statistics.median(v), 4) for k, v in ratios.items()}}
    if args.json:
        print(json.dumps(record))
    else:
        print(f"{records:,} request records; simulate (vector) median "
              f"{record['simulate_s']:.2f} s over {args.repeat} repeat(s)")
        for name, ratio in record["ratios"].items():
            print(f"  {name:<26} {ratio:8.4f} x the simulation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
