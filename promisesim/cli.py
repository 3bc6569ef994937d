"""The command line: ``promisesim run FILE``.

Exit status 0 on success, 2 on bad input (one clear line on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        self.exit(2, f"promisesim: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="promisesim", description="Simulate promises between agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario file and print its summary")
    run.add_argument("file", help="scenario file (YAML)")
    run.add_argument("--replications", "-r", type=int, help="replications (overrides the file)")
    run.add_argument("--horizon", type=float, help="simulated time per replication (overrides the file)")
    run.add_argument("--seed", type=int, help="root seed (overrides the file)")
    run.add_argument("--engine", help="reference or auto (overrides the file)")
    run.add_argument("--out", type=Path, help="folder for the tables (CSV) and plots (PNG)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON records")
    return parser


def _records(summary) -> list[dict]:  # type: ignore[no-untyped-def]
    out = []
    for row in summary.itertuples(index=False):
        record = {}
        for key in ("promise", "metric", "mean", "stderr", "ci_low", "ci_high", "n"):
            value = getattr(row, key)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            record[key] = value if not hasattr(value, "item") else value.item()
        record["promise"] = str(record["promise"])
        out.append(record)
    return out


_TEXT_METRICS = (
    ("kept_fraction", "time kept"),
    ("request_kept_fraction", "requests kept"),
    ("requests", "requests"),
    ("breaks", "breaks"),
    ("longest_break", "longest break"),
    ("mean_time_to_restore", "time to restore"),
)


def _number(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _text_table(summary) -> str:  # type: ignore[no-untyped-def]
    """One row per promise: the main metrics as ``mean ± half-width of the CI``."""
    promises = list(dict.fromkeys(str(p) for p in summary["promise"]))
    cells = {(str(r.promise), r.metric): r for r in summary.itertuples(index=False)}
    header = ["promise"] + [label for _, label in _TEXT_METRICS]
    rows = [header]
    for promise in promises:
        row = [promise]
        for metric, _ in _TEXT_METRICS:
            r = cells.get((promise, metric))
            if r is None:
                row.append("-")
                continue
            half = (r.ci_high - r.ci_low) / 2
            text = f"{r.mean:.6g}" if "fraction" in metric else _number(r.mean)
            if math.isfinite(half) and half > 0:
                text += f" ± {half:.2g}" if "fraction" in metric else f" ± {_number(half)}"
            row.append(text)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    return "\n".join(lines) + "\n(mean ± half-width of the 95% confidence interval; --json for all metrics)"


def _write(result, out: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from .plotting import plot_kept, plot_timeline

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("summary", result.summary()), ("promises", result.promises),
                        ("intervals", result.intervals), ("events", result.events)):
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    n_rows = len(result.spec.agents) + len(result.spec.promises)
    fig = Figure(figsize=(10, 1.5 + 0.45 * (len(result.spec.promises) + n_rows)), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[len(result.spec.promises) + 1, n_rows + 1])
    plot_kept(result, ax=top)
    plot_timeline(result, replication=0, ax=bottom)
    path = out / "kept.png"
    fig.savefig(path, dpi=110)
    written.append(path)
    return written


def _run(args: argparse.Namespace) -> int:
    from .errors import EngineError, ScenarioError
    from .experiment import simulate
    from .scenario import load_scenario

    try:
        scenario = load_scenario(args.file)
        horizon = args.horizon if args.horizon is not None else scenario.horizon
        if horizon is None:
            raise ScenarioError(f"{args.file}: no horizon: give run.horizon in the file or --horizon")
        result = simulate(
            scenario.model,
            horizon=horizon,
            replications=args.replications if args.replications is not None else scenario.replications,
            seed=args.seed if args.seed is not None else scenario.seed,
            engine=args.engine if args.engine is not None else scenario.engine,
        )
    except (ScenarioError, EngineError) as exc:
        print(f"promisesim: error: {exc}", file=sys.stderr)
        return 2
    summary = result.summary()
    if args.json:
        print(json.dumps(_records(summary), indent=1))
    else:
        print(f"{result.spec.name}: {result.replications} replications of {result.horizon:g} "
              f"{result.spec.time_unit}, engine {result.engine}, seed entropy {result.entropy}")
        if result.spec.impositions:
            print("impositions (offered, not accepted: never delivered): "
                  + ", ".join(result.spec.impositions))
        print(_text_table(summary))
    if args.out is not None:
        written = _write(result, args.out)
        print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``promisesim`` command."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
