"""The command line: ``promisesim run FILE`` and ``promisesim sweep FILE --param NAME=V1,V2,...``.

Exit status 0 on success, 2 on bad input (one clear line on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .cost import DEFAULT_MAX_EVENTS

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        self.exit(2, f"promisesim: error: {message}\n")


def _whole(least: int):  # type: ignore[no-untyped-def]
    """An argparse type: a whole number of at least ``least`` (a clear one-line error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} must be at least {least}")
        return value
    return parse


def _positive(text: str) -> float:
    """An argparse type: a positive, finite number (``1e9`` allowed)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text} must be a positive, finite number")
    return value


def _folder(text: str) -> Path:
    """An argparse type: a folder to write into (it may not exist yet, but is not a file)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return path


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and write a file in it, or raise ScenarioError saying why not."""
    from .errors import ScenarioError

    probe = folder / f".promisesim-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ScenarioError(f"--out {folder}: cannot write there ({exc.strerror or exc})") from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="promisesim", description="Simulate promises between agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario file and print its summary")
    run.add_argument("file", help="scenario file (YAML)")
    run.add_argument("--replications", "-r", type=_whole(1), help="replications (overrides the file)")
    run.add_argument("--horizon", type=float, help="simulated time per replication (overrides the file)")
    run.add_argument("--seed", type=_whole(0), help="root seed (overrides the file)")
    run.add_argument("--engine", help="reference, vector or auto (overrides the file)")
    run.add_argument("--workers", type=_whole(1), default=1,
                     help="processes to share the replications among (same results)")
    run.add_argument("--no-requests", action="store_true",
                     help="keep request counts only, not one record per request (less memory)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar (shown on a terminal only, in any case)")
    run.add_argument("--max-events", type=_positive, default=DEFAULT_MAX_EVENTS,
                     help="refuse a run estimated to simulate more events than this "
                          f"(default {DEFAULT_MAX_EVENTS:.0e})")
    run.add_argument("--out", type=_folder,
                     help="folder for the tables (CSV; requests as Parquet), the plots (PNG) "
                          "and the whole result (result/, read by promisesim.load_result)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON records")
    run.add_argument("--interior", action="store_true",
                     help="list the interior promises of super-agents and versions in the table")
    run.add_argument("--slo", type=Path, action="append", metavar="OPENSLO",
                     help="judge the run by the objectives of an OpenSLO file (kind: SLO) too")
    slo = sub.add_parser("slo", help="write a scenario's objectives as OpenSLO YAML")
    slo.add_argument("file", help="scenario file (YAML)")
    slo.add_argument("--out", type=Path, help="file to write (default: standard output)")
    sweep = sub.add_parser("sweep", help="run a scenario file over a grid of parameter values")
    sweep.add_argument("file", help="scenario file (YAML)")
    sweep.add_argument("--param", "-p", action="append", required=True, metavar="NAME=V1,V2,...",
                       help="a parameter path and its values, e.g. agents[db].servers=2,4,8 "
                            "(values read as YAML; repeat for a grid)")
    sweep.add_argument("--replications", "-r", type=_whole(1), help="replications per point (overrides the file)")
    sweep.add_argument("--horizon", type=float, help="simulated time per replication (overrides the file)")
    sweep.add_argument("--seed", type=_whole(0), help="root seed, shared by every point (overrides the file)")
    sweep.add_argument("--engine", help="reference, vector or auto (overrides the file)")
    sweep.add_argument("--executor", choices=["local", "dask", "serial"], default="local",
                       help="where points run: local processes (default), a local Dask cluster, or serially")
    sweep.add_argument("--workers", type=_whole(1), help="processes for local or dask (default: the CPUs)")
    sweep.add_argument("--out", type=_folder, help="folder for one Parquet file per finished point")
    sweep.add_argument("--resume", action="store_true", help="finish the sweep in --out")
    sweep.add_argument("--max-events", type=_positive, default=DEFAULT_MAX_EVENTS,
                       help="refuse a point estimated to simulate more events than this "
                            f"(default {DEFAULT_MAX_EVENTS:.0e})")
    sweep.add_argument("--json", action="store_true", help="print the summary as JSON records")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    check = sub.add_parser("check", help="diagnose a scenario's promise graph without simulating")
    check.add_argument("file", help="scenario file (YAML)")
    check.add_argument("--valency-limit", type=int, default=None,
                       help="flag agents with more bindings than this")
    check.add_argument("--knockout", action="store_true",
                       help="also rank agents by the damage of knocking each out (simulates)")
    check.add_argument("--replications", "-r", type=_whole(1),
                       help="replications of each knock-out run (overrides the file)")
    check.add_argument("--horizon", type=float,
                       help="simulated time of each knock-out run (overrides the file)")
    check.add_argument("--seed", type=_whole(0), help="root seed (overrides the file)")
    check.add_argument("--engine", help="reference, vector or auto (overrides the file)")
    check.add_argument("--json", action="store_true", help="print the findings as JSON")
    sub.add_parser("schema", help="print the JSON Schema of scenario files (for editors and "
                                  "validators)")
    return parser


def _schema(args: argparse.Namespace) -> int:
    from .model.schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def _horizon(args: argparse.Namespace, scenario) -> float:  # type: ignore[no-untyped-def]
    """``--horizon`` if given, else the file's ``run.horizon``; a ScenarioError if neither."""
    from .errors import ScenarioError

    horizon = args.horizon if args.horizon is not None else scenario.horizon
    if horizon is None:
        raise ScenarioError(f"{args.file}: no horizon: give run.horizon in the file or --horizon")
    return float(horizon)


def _check(args: argparse.Namespace) -> int:
    from . import diagnostics as dg
    from .errors import EngineError, ScenarioError
    from .scenario import load_scenario

    try:
        scenario = load_scenario(args.file)
        model = scenario.model
        findings = {
            "impositions": list(model.spec().impositions),
            "single_leaves": dg.single_leaves(model).to_dict("records"),
            "conflicts": dg.conflicts(model).to_dict("records"),
            "agent_cycles": dg.agent_cycles(model),
            "valency": dg.valency(model, args.valency_limit).to_dict("records"),
        }
        if args.knockout:
            findings["knockout"] = dg.knockout(
                model, horizon=_horizon(args, scenario),
                replications=args.replications or scenario.replications,
                seed=scenario.seed if args.seed is None else args.seed,
                engine=args.engine or scenario.engine).to_dict("records")
    except (ScenarioError, EngineError) as exc:
        print(f"promisesim: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(findings, indent=1, default=_plain_json))
        return 0
    spec = model.spec()
    groups = len(model.super_agents) + len(model.versioned)
    expanded = (f" ({len(spec.agents)} agents and {len(spec.promises)} promises with the "
                "members of its super-agents and versions)" if groups else "")
    print(f"{model.name}: {len(model.agents)} agents, {len(model.promises)} promises{expanded}")
    print("impositions (offered, not accepted): " + (", ".join(findings["impositions"]) or "none"))
    leaves = findings["single_leaves"]
    print("single points of failure: " + ("none" if not leaves else
          "; ".join(f"{r['promise']} fails with {r['agent']}" for r in leaves)))
    print("conflicts: " + ("none" if not findings["conflicts"] else
          "; ".join(f"{r['promise']} ({r['agent']}): {r['conflict']}, {r['detail']}"
                    for r in findings["conflicts"])))
    print("agent cycles: " + ("none" if not findings["agent_cycles"] else
          "; ".join(" -> ".join(c) for c in findings["agent_cycles"])))
    busiest = sorted(findings["valency"], key=lambda r: -r["bindings"])[:5]
    print("most bindings: " + ", ".join(f"{r['agent']} {r['bindings']}"
                                        + (" (over the limit)" if r["over_limit"] else "")
                                        for r in busiest))
    if args.knockout:
        print("knock-out ranking (damage = fall of the kept fractions, summed over promises):")
        for r in findings["knockout"]:
            print(f"  {r['agent']:<20} {r['damage']:.3f}  ({r['promises_hurt']} promises hurt)")
    return 0


def _records(summary, subject: str = "promise") -> list[dict]:  # type: ignore[no-untyped-def]
    """Summary rows as JSON-ready records keyed by ``subject`` (promise or observer)."""
    out = []
    for row in summary.itertuples(index=False):
        record = {}
        for key in (subject, "metric", "mean", "stderr", "ci_low", "ci_high", "n"):
            value = getattr(row, key)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            record[key] = value if not hasattr(value, "item") else value.item()
        record[subject] = str(record[subject])
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


def _cell(metric: str, r) -> str:  # type: ignore[no-untyped-def]
    """``mean ± half-width of the CI`` of one summary row (``-`` if there is none)."""
    if r is None:
        return "-"
    half = (r.ci_high - r.ci_low) / 2
    text = f"{r.mean:.6g}" if "fraction" in metric else _number(r.mean)
    if math.isfinite(half) and half > 0:
        text += f" ± {half:.2g}" if "fraction" in metric else f" ± {_number(half)}"
    return text


def _align(rows: list[list[str]], left: int = 1) -> str:
    """Columns padded to their widest cell: the first ``left`` to the left, the rest to the right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < left else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))) for r in rows)


def _text_table(summary) -> str:  # type: ignore[no-untyped-def]
    """One row per promise: the main metrics as ``mean ± half-width of the CI``."""
    promises = list(dict.fromkeys(str(p) for p in summary["promise"]))
    cells = {(str(r.promise), r.metric): r for r in summary.itertuples(index=False)}
    rows = [["promise"] + [label for _, label in _TEXT_METRICS]]
    for promise in promises:
        rows.append([promise] + [_cell(metric, cells.get((promise, metric))) for metric, _ in _TEXT_METRICS])
    return _align(rows) + "\n(mean ± half-width of the 95% confidence interval; --json for all metrics)"


def _objective_records(table) -> list[dict]:  # type: ignore[no-untyped-def]
    """Objective summary rows as JSON-ready records (NaN as null)."""
    out = []
    for row in table.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                        v.item() if hasattr(v, "item") else v) for k, v in row.items()})
    return out


def _objective_table(table) -> str:  # type: ignore[no-untyped-def]
    rows = [["objective", "windows", "P(met)", "interval", "attained", "worst", "budget used"]]
    for r in table.itertuples(index=False):
        interval = "-" if not math.isfinite(r.ci_low) else f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"
        rows.append([str(r.objective), f"{r.windows:,}", f"{r.probability_met:.3f}", interval,
                     f"{r.mean_attained:.5g}", f"{r.worst_attained:.5g}",
                     f"{r.mean_budget_used:.0%}"])
    return _align(rows)


def _alert_table(table) -> str:  # type: ignore[no-untyped-def]
    rows = [["alert", "firings", "detected", "false alarms", "per 30 days", "lead"]]
    for r in table.itertuples(index=False):
        rows.append([str(r.alert), f"{r.firings:,}", f"{r.missed_detected}/{r.windows_missed}",
                     f"{r.false_alarms:,}", "-" if not math.isfinite(r.false_alarms_per_30d)
                     else f"{r.false_alarms_per_30d:.3g}",
                     "-" if not math.isfinite(r.mean_lead) else f"{r.mean_lead:.4g}"])
    return _align(rows)


def _observer_table(summary) -> str:  # type: ignore[no-untyped-def]
    rows = [["observer", "kept", "repaired", "not kept", "detection delay"]]
    cells = {(str(r.observer), r.metric): r for r in summary.itertuples(index=False)}
    for name in dict.fromkeys(str(o) for o in summary["observer"]):
        row = [name]
        for metric in ("kept_share", "repaired_share", "not_kept_share", "mean_detection_delay"):
            r = cells.get((name, metric))
            row.append("-" if r is None else _cell(metric.replace("_share", "_fraction"), r))
        rows.append(row)
    return _align(rows)


def _request_cause_lines(table, top: int = 4) -> list[str]:  # type: ignore[no-untyped-def]
    """``promise: agent cause share, ...`` per promise with broken requests, largest first."""
    lines = []
    for promise, rows in table.groupby("promise", observed=True, sort=False):
        parts = [f"{agent} {cause} {share:.0%}" if share >= 0.005 else f"{agent} {cause} <1%"
                 for agent, cause, share in
                 zip(rows["agent"], rows["cause"], rows["share"])]
        more = f", {len(parts) - top} more" if len(parts) > top else ""
        lines.append(f"  {promise}: " + ", ".join(parts[:top]) + more)
    return lines


def _tables(result) -> list[tuple[str, Any]]:  # type: ignore[no-untyped-def]
    """Every table of ``result`` that its model and run settings give, by file name."""
    tables = [("summary", result.summary()), ("promises", result.promises)]
    if result.trace.agent_changes is not None:
        tables += [("intervals", result.intervals), ("events", result.events),
                   ("causes", result.cause_summary())]
        if result.spec.observers:
            tables.append(("observations", result.observations))
    if result.trace.requests is not None:
        tables += [("requests", result.requests),
                   ("request_causes", result.request_cause_summary())]
    if result.spec.messages_per_call:
        tables.append(("messages", result.messages))
        if result.trace.agent_changes is not None:
            tables.append(("sizes", result.sizes))
    if result.trace.instances is not None:
        tables.append(("instances", result.instances))
    if result.spec.rollouts and result.trace.requests is not None:
        tables.append(("rollbacks", result.rollbacks))
    if any(p.breaker is not None for p in result.spec.promises):
        tables.append(("breakers", result.breakers))
    if result.spec.objectives:
        try:
            tables.append(("objectives", result.objectives))
            if result.spec.alerts:
                tables.append(("alerts", result.alerts))
        except ValueError:   # not judged (said when the summary was printed)
            pass
    return tables


def _write(result, out: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    """Write every table (CSV; the requests as Parquet when pyarrow is installed), the
    plots (PNG) and, with pyarrow, the whole result (``result/``, for ``load_result``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from .plotting import plot_breakers, plot_kept, plot_sizes, plot_timeline

    import importlib.util

    parquet = importlib.util.find_spec("pyarrow") is not None
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in _tables(result):
        if name == "requests" and parquet:   # millions of rows: columnar, typed, compressed
            path = out / f"{name}.parquet"
            frame.to_parquet(path, index=False)
        else:
            path = out / f"{name}.csv"
            frame.to_csv(path, index=False)
        written.append(path)
    if parquet:
        written.append(result.save(out / "result", overwrite=True))
    guarded = any(p.breaker is not None for p in result.spec.promises)
    absent = set(result.absent)   # members that never started are not drawn
    n_promises = sum(p.promiser not in absent for p in result.spec.promises)
    n_rows = sum(a.name not in absent for a in result.spec.agents) + n_promises
    fig = Figure(figsize=(10, 1.5 + 0.45 * (n_promises + n_rows)), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[n_promises + 1, n_rows + 1])
    plot_kept(result, ax=top)
    plot_timeline(result, replication=0, ax=bottom)
    path = out / "kept.png"
    fig.savefig(path, dpi=110)
    written.append(path)
    if guarded:
        ax = plot_breakers(result, replication=0)
        path = out / "breakers.png"
        ax.figure.savefig(path, dpi=110, bbox_inches="tight")
        written.append(path)
    if result.trace.instances is not None or (result.spec.messages_per_call and
                                              result.trace.agent_changes is not None):
        ax = plot_sizes(result)
        if ax.lines:   # something changes size
            path = out / "sizes.png"
            ax.figure.savefig(path, dpi=110, bbox_inches="tight")
            written.append(path)
    return written


def _run(args: argparse.Namespace) -> int:
    from .errors import EngineError, ScenarioError
    from .experiment import simulate
    from .scenario import load_scenario

    try:
        scenario = load_scenario(args.file)
        horizon = _horizon(args, scenario)
        if args.out is not None:
            _check_writable(args.out)   # before the simulation, not after it
        if args.slo:
            from .openslo import read_openslo

            for path in args.slo:
                scenario.model.objectives.extend(
                    read_openslo(path, time_unit=scenario.model.time_unit))
        spec = scenario.model.spec()   # once: bad objectives from --slo are refused here
        replications = args.replications if args.replications is not None \
            else scenario.replications
        record = not args.no_requests
        if record:
            from .cost import estimate, records_fit

            cost = estimate(spec, horizon, replications)
            if cost.events <= args.max_events and not records_fit(cost):
                # counts only, said, rather than run out of memory
                record = False
                print(f"promisesim: note: {cost.requests:.3g} request records would not fit in "
                      "memory; keeping counts only (as with --no-requests)", file=sys.stderr)
        result = simulate(
            spec,
            horizon=horizon,
            replications=replications,
            seed=args.seed if args.seed is not None else scenario.seed,
            engine=args.engine if args.engine is not None else scenario.engine,
            record_requests=record,
            workers=args.workers,
            progress=False if args.no_progress else None,
            max_events=args.max_events,
        )
    except (ScenarioError, EngineError) as exc:
        print(f"promisesim: error: {exc}", file=sys.stderr)
        return 2
    summary = result.summary()
    objectives, alerts, unjudged = None, None, None
    if result.spec.objectives:
        try:
            objectives = result.objective_summary()
            alerts = result.alert_summary() if result.spec.alerts else None
        except ValueError as exc:   # a window longer than the run, or requests not recorded
            unjudged = str(exc)
    if args.json:
        records = _records(summary)
        if result.spec.observers:   # observer records carry "observer" instead of "promise"
            records += _records(result.observation_summary(), "observer")
        if objectives is not None:  # objective records carry "objective", alerts "alert"
            records += _objective_records(objectives)
        if alerts is not None:
            records += _objective_records(alerts)
        print(json.dumps(records, indent=1))
        if unjudged:
            print(f"promisesim: objectives not judged: {unjudged}", file=sys.stderr)
    else:
        print(f"{result.spec.name}: {result.replications} "
              f"replication{'s' * (result.replications != 1)} of {result.horizon:g} "
              f"{result.spec.time_unit}, engine {result.engine}, seed entropy {result.entropy}")
        if result.spec.impositions:
            print("impositions (offered, not accepted: never delivered): "
                  + ", ".join(result.spec.impositions))
        hidden = set(result.spec.interior) if not args.interior else set()
        print(_text_table(summary[~summary["promise"].isin(hidden)] if hidden else summary))
        if hidden:
            print(f"({len(hidden)} interior promises of super-agents and versions not listed; "
                  "--interior lists them)")
        messages = result.messages
        if len(messages):
            per_group = messages.groupby("super_agent", sort=False)["messages"].mean()
            print("internal messages per replication: " + ", ".join(
                f"{group} {value:,.0f}" for group, value in per_group.items()))
        if result.trace.instances is not None:
            pools = result.instances.groupby("agent", observed=True)
            print("instances started on demand, per replication: " + ", ".join(
                f"{agent} {rows['started'].sum() / result.replications:,.1f} cold starts "
                f"(at most {rows['running'].max()} running)" for agent, rows in pools))
        if result.spec.rollouts and result.trace.requests is not None:
            for (target, version), rows in result.rollbacks.groupby(["target", "version"],
                                                                     sort=False):
                back = rows[rows["rolled_back"]]
                print(f"rollout of {target} {version}: rolled back in {len(back)} of "
                      f"{len(rows)} replications" + (
                          f", at {back['time'].median():g} {result.spec.time_unit} (median), "
                          f"after {back['broken'].mean():.1f} broken requests on average"
                          if len(back) else ""))
        if result.spec.observers:
            print("observers (share of checks; mean detection delay in "
                  f"{result.spec.time_unit}):")
            print(_observer_table(result.observation_summary()))
        if objectives is not None:
            print(f"objectives (probability a window meets it, {objectives.attrs['confidence']:.0%} "
                  "interval; mean and worst attained share; mean error budget used):")
            print(_objective_table(objectives))
            if alerts is not None:
                print("alerts (firings; missed windows detected; false alarms, per 30 days; "
                      f"mean lead before the budget was spent, {result.spec.time_unit}):")
                print(_alert_table(alerts))
        elif unjudged:
            print(f"objectives not judged: {unjudged}")
        if result.trace.requests is not None and len(result.trace.requests["outcome"]):
            lines = _request_cause_lines(result.request_cause_summary())
            if lines:
                print("why requests broke (share of each promise's broken requests):")
                print("\n".join(lines))
    if args.out is not None:
        try:
            written = _write(result, args.out)
        except OSError as exc:   # e.g. a full disk: said in one line, results already printed
            print(f"promisesim: error: cannot write to {args.out}: {exc}", file=sys.stderr)
            return 2
        print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def _parameter(text: str) -> tuple[str, list]:
    """``"agents[db].servers=2,4"`` -> ``("agents[db].servers", [2, 4])``: values read as YAML."""
    import yaml

    from .errors import ScenarioError
    from .scenario import _Loader

    depth, split = 0, -1
    for i, char in enumerate(text):  # the first '=' outside brackets (names may hold '=')
        depth += char == "["
        depth -= char == "]"
        if char == "=" and depth <= 0:
            split = i
            break
    name, values = text[:split].strip(), text[split + 1:]
    if split < 0 or not name:
        raise ScenarioError(f"--param {text!r}: expected NAME=V1,V2,... "
                            "for example agents[db].servers=2,4,8")
    try:
        parsed = yaml.load(f"[{values}]", Loader=_Loader)  # the safe loader: values are data
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"--param {name}: cannot read the values {values!r} as YAML ({problem})") from None
    if not parsed:
        raise ScenarioError(f"--param {name}: no values after '='")
    return name, parsed


def _value_text(value: object) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if value is None:
        return "null"
    return str(value)


def _plain_json(value: object) -> object:
    if hasattr(value, "item") and not isinstance(value, (dict, list, str)):
        value = value.item()  # type: ignore[union-attr]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _sweep_records(summary, parameters: Sequence[str]) -> list[dict]:  # type: ignore[no-untyped-def]
    keys = ["point", *parameters, "promise", "metric", "mean", "stderr", "ci_low", "ci_high", "n"]
    out = []
    for row in zip(*(summary[k].tolist() for k in keys)):
        record = {k: _plain_json(v) for k, v in zip(keys, row)}
        record["promise"] = str(record["promise"])
        out.append(record)
    return out


def _sweep_table(summary, parameters: Sequence[str]) -> str:  # type: ignore[no-untyped-def]
    """One row per point and promise: the parameter values, then the main metrics."""
    cells = {(int(r.point), str(r.promise), r.metric): r
             for r in summary[["point", "promise", "metric", "mean", "ci_low", "ci_high"]]
             .itertuples(index=False)}
    keys = list(dict.fromkeys(zip(summary["point"].tolist(), (str(p) for p in summary["promise"]))))
    values = summary.drop_duplicates("point").set_index("point")
    rows = [["point", *parameters, "promise"] + [label for _, label in _TEXT_METRICS]]
    for point, promise in keys:
        rows.append([str(point), *(_value_text(values.at[point, p]) for p in parameters), promise]
                    + [_cell(metric, cells.get((point, promise, metric))) for metric, _ in _TEXT_METRICS])
    return (_align(rows, left=len(parameters) + 2)
            + "\n(mean ± half-width of the 95% confidence interval; --json for all metrics)")


def _sweep(args: argparse.Namespace) -> int:
    from .errors import EngineError, ScenarioError
    from .scenario import load_scenario
    from .sweep import sweep

    try:
        grid: dict[str, list] = {}
        for text in args.param:
            name, values = _parameter(text)
            if name in grid:
                raise ScenarioError(f"--param {name} is given twice; list all its values in one --param")
            grid[name] = values
        scenario = load_scenario(args.file)
        horizon = _horizon(args, scenario)
        result = sweep(
            scenario.model,
            grid,
            horizon=horizon,
            replications=args.replications if args.replications is not None else scenario.replications,
            seed=args.seed if args.seed is not None else scenario.seed,
            engine=args.engine if args.engine is not None else scenario.engine,
            executor=args.executor,
            workers=args.workers,
            progress=not args.no_progress,
            out=args.out,
            resume=args.resume,
            max_events=args.max_events,
        )
    except (ScenarioError, EngineError, ImportError) as exc:
        print(f"promisesim: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:   # a full disk, a folder gone: the finished points stay whole
        print(f"promisesim: error: cannot write to {args.out}: {exc}; the finished points are "
              "there: --resume finishes the sweep (in a copy of the folder elsewhere, if this "
              "disk is full)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = f"; the finished points are in {args.out}: --resume finishes the sweep" if args.out else ""
        print(f"promisesim: interrupted{where}", file=sys.stderr)
        return 130
    parameters = list(result.parameters)
    if args.json:
        print(json.dumps(_sweep_records(result.summary, parameters), indent=1))
    else:
        engines = ", ".join(dict.fromkeys(str(e) for e in result.points["engine"]))
        print(f"{result.summary.attrs['model']}: {len(result.points)} points x {result.replications} "
              f"replications of {result.horizon:g} {result.summary.attrs['time_unit']}, engine {engines}, "
              f"seed entropy {result.entropy}")
        print(_sweep_table(result.summary, parameters))
    if args.out is not None:
        print(f"wrote {args.out}: {len(result.points) - len(result.resumed)} points computed, "
              f"{len(result.resumed)} read back", file=sys.stderr)
    return 0


def _slo(args: argparse.Namespace) -> int:
    from .errors import ScenarioError
    from .openslo import write_openslo
    from .scenario import load_scenario

    try:
        model = load_scenario(args.file).model
        text = write_openslo(model.spec().objectives, time_unit=model.time_unit,
                             service=model.name)
    except ScenarioError as exc:
        print(f"promisesim: error: {exc}", file=sys.stderr)
        return 2
    if not model.objectives:
        print(f"promisesim: error: {args.file}: the scenario has no objectives", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"promisesim: error: {args.out}: cannot write it ({exc.strerror or exc})",
              file=sys.stderr)
        return 2
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``promisesim`` command."""
    args = _parser().parse_args(argv)
    commands = {"run": _run, "sweep": _sweep, "check": _check, "slo": _slo, "schema": _schema}
    try:
        return commands[args.command](args)
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly, as command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
