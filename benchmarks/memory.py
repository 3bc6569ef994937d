"""Peak memory of one vector-engine run, measured in a fresh process.

``python -m benchmarks.memory SCENARIO [HORIZON_FACTOR]`` prints the peak
resident set size (MiB) of a process that imports promisesim, builds the
scenario and runs the vector engine once keeping only per-promise metrics (no request
records, no changes of state: ``record_requests=False, record_changes=False``; with a
factor of 0 it only builds the scenario: the baseline).
"""

from __future__ import annotations

import sys

from promisesim.experiment import get_engine
from promisesim.random import Streams

from .scenarios import SCENARIOS


def main() -> None:
    name = sys.argv[1]
    factor = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    model, horizon, replications = SCENARIOS[name]()
    spec = model.spec()
    if factor > 0:
        get_engine("vector", spec).run(spec, horizon=horizon * factor, streams=Streams(1),
                                       replications=range(replications), record_requests=False,
                                       record_changes=False)
    print(_high_water_mib())


def _high_water_mib() -> float:
    """Peak resident set size of this process (VmHWM). Unlike ``ru_maxrss``, which Linux
    carries over from the parent across ``exec``, it starts afresh in a new program."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    main()
