"""Throughput of the vector engine on one large run: requests per second, all cores.

Usage::

    python -m benchmarks.throughput                      # 1,000 x 1 h x 100 req/s, 2 processes
    python -m benchmarks.throughput --replications 100 --workers 1 --json

The model is a latency promise (50 ms) of one single-server agent (8 ms mean
service) under 100 requests per second, simulated for one hour per replication
without request records (``record_requests=False``: counts only). Every
replication is simulated; nothing is extrapolated. The time includes building
the result tables.
"""

from __future__ import annotations

import argparse
import json
import time

import promisesim as ps


def model(rate: float = 100.0) -> ps.Model:
    m = ps.Model("one-hour latency promise at 100 req/s", time_unit="s")
    api = m.agent("api", service_time=ps.Exponential(mean=0.008))
    answers = m.promise(api, to=m.agent("users"), body=ps.Latency(deadline=0.05), name="answers")
    m.workload(answers, rate=rate)
    return m


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replications", type=int, default=1_000)
    parser.add_argument("--horizon", type=float, default=3_600.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    result = ps.simulate(model(), horizon=args.horizon, replications=args.replications,
                         seed=args.seed, engine="vector", record_requests=False,
                         workers=args.workers)
    kept = result.summary(["request_kept_fraction"]).iloc[0]
    elapsed = time.perf_counter() - start
    requests = int(result.promises["requests"].sum())
    record = {"replications": args.replications, "horizon": args.horizon,
              "workers": args.workers, "requests": requests, "seconds": round(elapsed, 2),
              "requests_per_second": round(requests / elapsed),
              "kept_mean": float(kept["mean"]), "kept_stderr": float(kept["stderr"])}
    if args.json:
        print(json.dumps(record))
    else:
        print(f"{requests:,} requests ({args.replications} replications of {args.horizon:g} s) "
              f"in {elapsed:.1f} s on {args.workers} process(es): "
              f"{requests / elapsed:,.0f} requests/s; kept {kept['mean']:.5f} "
              f"± {1.96 * kept['stderr']:.5f}")


if __name__ == "__main__":
    main()
