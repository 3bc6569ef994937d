"""Time both engines side by side on the standard scenarios.

Usage::

    python -m benchmarks                  # table
    python -m benchmarks --json           # JSON records
    python -m benchmarks --repeat 5 --scenarios chain fleet

For each scenario both engines run in this process on the same model and
seed, alternately, ``--repeat`` times, after one untimed warm-up run of each
(the vector engine's at full size, so the memory allocator has grown the heap
its arrays reuse; the reference engine's at a tenth of the horizon, enough for
its one-time costs, which do not grow with the run). The first, cold run of
the vector engine is reported too (``vector_first_s``, and ``ratio_first``:
the reference median over it). The table reports medians, the
vector/reference speed ratio (median of the per-repeat ratios, each measured
side by side), events per second, whether the per-promise results agree
exactly, and the peak memory (RSS, MiB) of a fresh process running the vector
engine once keeping only per-promise metrics (``record_requests=False,
record_changes=False``), at the scenario's horizon and at ten times it
(``baseline_mib``: the same process without the run). An event is a change of an
agent's state, or a request's arrival or answer (two per request record).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

import pandas as pd

from promisesim.experiment import get_engine
from promisesim.random import Streams
from promisesim.results import Result

from .scenarios import SCENARIOS


def _events(trace) -> int:  # type: ignore[no-untyped-def]
    return int(trace.agent_changes["time"].size + 2 * trace.requests["arrival"].size)


def _run(spec, engine: str, horizon: float, replications: int, seed: int):  # type: ignore[no-untyped-def]
    chosen = get_engine(engine, spec)
    start = time.perf_counter()
    trace = chosen.run(spec, horizon=horizon, streams=Streams(seed), replications=range(replications))
    elapsed = time.perf_counter() - start
    return trace, elapsed


def _peak_mib(name: str, factor: float) -> float:
    """Peak resident memory (MiB) of a fresh process that runs the scenario once with the
    vector engine, keeping only per-promise metrics; ``factor`` multiplies the horizon (0:
    build only)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", name, str(factor)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def bench(name: str, repeat: int, seed: int, scale: float, memory: bool = True) -> dict:
    model, horizon, replications = SCENARIOS[name]()
    replications = max(1, round(replications * scale))
    spec = model.spec()
    vector_times, reference_times, ratios = [], [], []
    _, vector_first = _run(spec, "vector", horizon, replications, seed)    # warm-up runs
    _run(spec, "reference", horizon / 10, replications, seed)
    for _ in range(repeat):
        vector_trace, tv = _run(spec, "vector", horizon, replications, seed)
        reference_trace, tr = _run(spec, "reference", horizon, replications, seed)
        vector_times.append(tv)
        reference_times.append(tr)
        ratios.append(tr / tv)
    events = _events(vector_trace)
    tables = [Result(spec, t, horizon=horizon, replications=replications, engine=e, entropy=seed).promises
              for t, e in ((reference_trace, "reference"), (vector_trace, "vector"))]
    try:
        pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True, check_flags=False)
        agree = events == _events(reference_trace)
    except AssertionError:
        agree = False
    # (a batch whose passes diverge is handed to the reference engine: the ratio then is not
    # the vector engine's)
    computed_by = vector_trace.computed_by or "vector"
    base = _peak_mib(name, 0.0) if memory else math.nan
    peak = _peak_mib(name, 1.0) if memory else math.nan
    peak_long = _peak_mib(name, 10.0) if memory else math.nan
    return {
        "scenario": name,
        "replications": replications,
        "events": events,
        "reference_s": statistics.median(reference_times),
        "vector_s": statistics.median(vector_times),
        "ratio": statistics.median(ratios),
        "vector_first_s": vector_first,
        "ratio_first": statistics.median(reference_times) / vector_first,
        "reference_events_per_s": events / statistics.median(reference_times),
        "vector_events_per_s": events / statistics.median(vector_times),
        "baseline_mib": base,
        "peak_mib": peak,
        "peak_10x_horizon_mib": peak_long,
        "peak_10x_horizon_ratio": peak_long / peak if memory else None,
        "agree": bool(agree),
        "vector_computed_by": computed_by,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each engine (median reported)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the replications")
    parser.add_argument("--json", action="store_true", help="print JSON records")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    args = parser.parse_args(argv)
    rows = []
    for name in args.scenarios:
        rows.append(bench(name, args.repeat, args.seed, args.scale, memory=not args.no_memory))
        print(f"{name}: done", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        frame = pd.DataFrame(rows)
        with pd.option_context("display.width", 160, "display.float_format", "{:.3g}".format):
            print(frame.to_string(index=False))
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
