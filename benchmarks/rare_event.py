"""Wall time to a 20% confidence interval on a rare miss: importance sampling against plain
replications, side by side in one run.

Usage::

    python -m benchmarks.rare_event              # k = 7: p = 5.1e-5, 3 repeats
    python -m benchmarks.rare_event --k 6 --repeat 5 --json

The model: one agent up for exponential times (mean 30 days), repaired in exactly an hour,
judged by time over 28 days with a budget of ``(k - 1)`` hours and a minute of downtime (the
closed form is in ``tests/validation/test_rare.py``). Each method doubles its replications,
from 1,000, until the 95% interval's half-width is at most 20% of its estimate, each step a
fresh run with its own seed; the time is the sum of every run it needed (plain replications
go through :func:`promisesim.simulate`, tilt 1). Medians over ``--repeat`` repeats, each
repeat timing both methods; the ratio is the median of the per-repeat ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import promisesim as ps
from promisesim.rare import probability_missed

DAY = 86_400.0
W, REPAIR, MEAN_UP, DELTA = 28 * DAY, 3_600.0, 30 * DAY, 60.0


def model(k: int) -> ps.Model:
    m = ps.Model("one agent", time_unit="s")
    a = m.agent("a", failures=ps.Failures(ps.Exponential(mean=MEAN_UP), ps.Deterministic(REPAIR)))
    up = m.promise(a, to=m.agent("u"), body=ps.Availability(), name="up")
    m.objective(up, target=1 - ((k - 1) * REPAIR + DELTA) / W, window=W, name="slo")
    return m


def exact(k: int) -> float:
    x = (W - DELTA - (k - 1) * REPAIR) / MEAN_UP
    return 1 - sum(math.exp(-x) * x ** j / math.factorial(j) for j in range(k))


def to_twenty_percent(k: int, tilt: float, seed: int) -> tuple[float, int, float]:
    """(seconds, replications of the last run, estimate) until the interval is within 20%."""
    m = model(k)
    replications, spent = 1_000, 0.0
    while True:
        start = time.perf_counter()
        est = probability_missed(m, "slo", horizon=W, tilt={"a": tilt},
                                 replications=replications, seed=seed)
        spent += time.perf_counter() - start
        if est.probability > 0 and est.relative_half_width <= 0.2:
            return spent, replications, est.probability
        replications *= 2
        seed += 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rare_event", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=7)
    parser.add_argument("--tilt", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for r in range(args.repeat):
        tilted = to_twenty_percent(args.k, args.tilt, seed=1_000 * r + 1)
        plain = to_twenty_percent(args.k, 1.0, seed=1_000 * r + 500)
        rows.append({"tilted_s": tilted[0], "tilted_replications": tilted[1],
                     "tilted_estimate": tilted[2], "plain_s": plain[0],
                     "plain_replications": plain[1], "plain_estimate": plain[2],
                     "ratio": plain[0] / tilted[0]})
    out = {"k": args.k, "exact": exact(args.k), "tilt": args.tilt, "repeats": rows,
           **{f"median_{key}": statistics.median(row[key] for row in rows)
              for key in ("tilted_s", "plain_s", "ratio")}}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"P(miss) exact {out['exact']:.3g}; to a 20% interval (medians of {args.repeat}): "
              f"importance sampling {out['median_tilted_s']:.3g} s, plain "
              f"{out['median_plain_s']:.3g} s, ratio {out['median_ratio']:.3g}")
        for row in rows:
            print(f"  tilted {row['tilted_replications']:,} reps -> {row['tilted_estimate']:.3g}"
                  f" in {row['tilted_s']:.3g} s; plain {row['plain_replications']:,} reps -> "
                  f"{row['plain_estimate']:.3g} in {row['plain_s']:.3g} s")


if __name__ == "__main__":
    main()
