"""Peak memory of one vector-engine run, measured in a fresh process.

``python -m benchmarks.memory SCENARIO [HORIZON_FACTOR]`` prints the peak
resident set size (MiB) of a process that imports promisesim, builds the
scenario and runs the vector engine once without request records (with a
factor of 0 it only builds the scenario: the baseline).
"""

from __future__ import annotations

import resource
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
                                       replications=range(replications), record_requests=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
