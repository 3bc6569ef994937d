"""Plots of results (matplotlib). Each function draws on an Axes and returns it; no global state.

matplotlib is imported when a plot is drawn, so ``import promisesim`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from .results import Result

__all__ = ["plot_kept", "plot_timeline", "plot_breakers", "plot_objective", "plot_attained",
           "plot_latency", "plot_sizes", "plot_sweep", "plot_graph"]


def _t(name: Any) -> str:
    """A user's name as plain text in a plot: matplotlib reads ``$...$`` as math, so a
    name such as ``$\\frac{`` would fail to draw; its dollars are escaped."""
    return str(name).replace("$", r"\$")


def _axes(ax: "Axes | None", **figure: Any) -> "Axes":
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(**figure).add_subplot()


#: Units a time axis may be shown in, with their length in seconds, shortest first.
_DISPLAY_UNITS = (("ms", 0.001), ("s", 1.0), ("min", 60.0), ("h", 3_600.0), ("d", 86_400.0))


def _time_axis(ax: "Axes", time_unit: str, span: float, what: str = "time") -> None:
    """Label the x axis as a time in the unit that reads best for ``span`` (model time
    units): the longest unit of which ``span`` holds at least 3 (600,000 s as 6.9 days,
    0.25 s as 250 ms), with ticks at round values of that unit. A time unit that is not a
    fixed length (``"requests"``) keeps the model's own numbers."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from .openslo import seconds_per_unit

    per = seconds_per_unit(time_unit)
    if per is None or not np.isfinite(span) or span <= 0:
        ax.set_xlabel(f"{what} ({time_unit})")
        return
    seconds = span * per
    name, length = next(((n, u) for n, u in reversed(_DISPLAY_UNITS) if seconds >= 3 * u),
                        _DISPLAY_UNITS[0])
    factor = length / per      # model units per display unit
    if np.isclose(factor, 1.0):
        ax.set_xlabel(f"{what} ({time_unit})")
        return

    class _Scaled(MaxNLocator):
        def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
            return super().tick_values(vmin / factor, vmax / factor) * factor

    ax.xaxis.set_major_locator(_Scaled(nbins="auto", steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x / factor:.6g}"))
    ax.set_xlabel(f"{what} ({name})")


def _error_bars(metric: str, mean: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Error bar lengths below and above ``mean``: a confidence interval (NaN: none), within
    [0, 1] for a share (a normal interval near 0 or 1 can reach past it)."""
    if metric.endswith("fraction"):
        low, high = np.clip(low, 0.0, 1.0), np.clip(high, 0.0, 1.0)
    return np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)]).clip(min=0.0)


def plot_kept(result: "Result", ax: "Axes | None" = None, confidence: float = 0.95) -> "Axes":
    """Horizontal bars: each promise's kept fraction with its confidence interval.

    Latency promises with traffic show the share of requests kept; other
    promises the share of time kept. Impositions are hatched.

    Returns
    -------
    matplotlib.axes.Axes
    """
    summary = result.summary(["kept_fraction", "request_kept_fraction"], confidence=confidence)
    per_promise = {}
    for row in summary.itertuples():
        if row.metric == "request_kept_fraction" or row.promise not in per_promise:
            per_promise[row.promise] = row
    promises = [p for p in (q.name for q in result.spec.promises) if p in per_promise]
    accepted = {p.name: p.accepted for p in result.spec.promises}
    ax = _axes(ax, figsize=(7, 0.5 + 0.45 * len(promises)))
    y = np.arange(len(promises))
    means = np.array([per_promise[p].mean for p in promises])
    low = np.array([per_promise[p].ci_low for p in promises])
    high = np.array([per_promise[p].ci_high for p in promises])
    err = _error_bars("fraction", means, low, high)
    colours = ["tab:blue" if per_promise[p].metric == "request_kept_fraction" else "tab:green"
               for p in promises]
    bars = ax.barh(y, means, xerr=err, color=colours, capsize=3)
    for bar, p in zip(bars, promises):
        if not accepted[p]:
            bar.set_hatch("//")
    labels = [f"{p} ({'requests' if per_promise[p].metric == 'request_kept_fraction' else 'time'})"
              for p in promises]
    ax.set_yticks(y, [_t(label) for label in labels])
    ax.invert_yaxis()
    lo = float(np.nanmin(low)) if np.isfinite(low).any() else float(means.min())
    ax.set_xlim(max(0.0, min(lo, means.min()) - 0.02), 1.0)
    ax.set_xlabel(f"kept fraction (mean, {confidence:.0%} CI over {result.replications} replications)")
    ax.set_title(_t(result.spec.name))
    return ax


def _lanes(ax: "Axes", result: "Result", rows: list[str], ncols: int, title: str) -> "Axes":
    """Finish a plot of one lane per row over the run's time: row labels top down, the time
    axis, one legend entry per state, the title."""
    ax.set_yticks(range(len(rows)), [_t(row) for row in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, result.horizon)
    _time_axis(ax, result.spec.time_unit, result.horizon)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="lower right", bbox_to_anchor=(1.0, 1.0),
              ncols=ncols, fontsize="small", frameon=False)
    ax.set_title(_t(title), loc="left")
    return ax


def plot_timeline(result: "Result", replication: int = 0, ax: "Axes | None" = None) -> "Axes":
    """Agents up/down and promises kept/broken over time in one replication.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not 0 <= replication < result.replications:
        raise ValueError(f"replication={replication} is not in 0..{result.replications - 1}")
    iv = result.intervals
    iv = iv[iv["replication"] == replication]
    absent = set(result.absent)   # members that never started are not drawn
    entities = [("agent", a.name) for a in result.spec.agents if a.name not in absent] + \
               [("promise", p.name) for p in result.spec.promises if p.promiser not in absent]
    ax = _axes(ax, figsize=(9, 0.6 + 0.35 * len(entities)))
    colours = {"up": "tab:green", "kept": "tab:blue", "down": "tab:red", "broken": "tab:orange"}
    for row, (kind, name) in enumerate(entities):
        part = iv[(iv["kind"] == kind) & (iv["entity"] == name)]
        for state, colour in colours.items():
            sel = part[part["state"] == state]
            if len(sel):
                spans = list(zip(sel["start"], sel["end"] - sel["start"]))
                ax.broken_barh(spans, (row - 0.4, 0.8), facecolors=colour, label=state)
    return _lanes(ax, result, [f"{name} ({kind})" for kind, name in entities], 4,
                  f"{result.spec.name}: replication {replication}")


def plot_breakers(result: "Result", replication: int = 0, ax: "Axes | None" = None) -> "Axes":
    """Each circuit breaker's state over time in one replication: one row per (caller's
    promise, provided promise), closed / half-open / open as coloured spans.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not 0 <= replication < result.replications:
        raise ValueError(f"replication={replication} is not in 0..{result.replications - 1}")
    guards = [(p.name, q) for p in result.spec.promises if p.breaker is not None
              for q in _called(result.spec, p)]
    if not guards:
        raise ValueError("the model has no circuit breakers (Promise(breaker=...))")
    log = result.breakers
    log = log[log["replication"] == replication]
    ax = _axes(ax, figsize=(9, 0.9 + 0.35 * len(guards)))
    colours = {"closed": "tab:green", "half_open": "gold", "open": "tab:red"}
    for row, (caller, provider) in enumerate(guards):
        mine = log[(log["promise"] == caller) & (log["provider"] == provider)]
        starts = np.concatenate([[0.0], mine["time"].to_numpy()])
        ends = np.concatenate([mine["time"].to_numpy(), [result.horizon]])
        states = ["closed"] + [str(s) for s in mine["state"]]
        for start, end, state in zip(starts, ends, states):
            if end > start:
                ax.broken_barh([(start, end - start)], (row - 0.4, 0.8),
                               facecolors=colours[state], label=state.replace("_", "-"))
    return _lanes(ax, result, [f"{c} \u2192 {q}" for c, q in guards], 3,
                  f"circuit breakers: replication {replication}")


def _called(spec: Any, promise: Any) -> list[str]:
    """The latency promises a promise calls (in the order its conditions name them)."""
    return [q for q in dict.fromkeys(promise.conditions.promises())
            if spec.promises[spec.promise_index[q]].body.kind == "latency"]


def _objective(result: "Result", objective: str) -> Any:
    found = [o for o in result.spec.objectives if o.label == objective]
    if not found:
        names = [o.label for o in result.spec.objectives]
        raise ValueError(f"objective {objective!r} is not one of the model's: {names}")
    return found[0]


def plot_objective(result: "Result", objective: str, replication: int = 0,
                   ax: "Axes | None" = None) -> "Axes":
    """One replication of an objective: the good share slice by slice (its timeslices, or
    slices of a twentieth of the objective's window) with the target as a line (a slice's
    target, for timeslice budgeting), and on a second axis the share of each calendar
    window's error budget left as time goes on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .slo import per_slice

    if not 0 <= replication < result.replications:
        raise ValueError(f"replication={replication} is not in 0..{result.replications - 1}")
    o = _objective(result, objective)
    width = float(o.timeslice) if o.timeslice is not None else o.window / 20
    good, total, _ = per_slice(result, result.spec.promise_index[o.promise], width)
    good, total = good[replication], total[replication]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, good / np.where(total > 0, total, 1.0), np.nan)
    start = np.arange(share.size) * width
    ax = _axes(ax, figsize=(9, 3.5))
    ax.step(start, share, where="post", color="tab:blue", label="good share per slice")
    by_slices = o.budgeting == "timeslices"
    line = o.timeslice_target if by_slices else o.target
    ax.axhline(line, color="tab:red", linestyle="--", linewidth=1,
               label=f"{'slice target' if by_slices else 'target'} {line:g}")
    low = min(float(np.nanmin(share)) if np.isfinite(share).any() else line, line)
    low = max(0.0, low - 0.15 * (1.0 - low))
    ax.set_ylim(low, 1.0 + 0.05 * (1.0 - low))

    ax.set_xlim(0, result.horizon)
    _time_axis(ax, result.spec.time_unit, result.horizon)
    ax.set_ylabel("good share")
    # budget left within each calendar window, as the bad counts accumulate
    budget = ax.twinx()
    per_window = max(1, int(round(o.window / width)))
    if by_slices:   # the budget counts bad slices
        bad = (np.nan_to_num(share, nan=1.0) < o.timeslice_target - 1e-9).astype(float)
        total = np.ones_like(bad)
    else:
        bad = np.nan_to_num(total - good)
    left = np.full(share.size, np.nan)
    for first in range(0, share.size - per_window + 1, per_window):
        part = slice(first, first + per_window)
        allowed = (1 - o.target) * total[part].sum()
        spent = np.cumsum(bad[part])
        left[part] = 1 - spent / allowed if allowed > 0 else np.where(spent > 0, -np.inf, 1.0)
    budget.step(start, np.clip(left, -1.0, 1.0), where="post", color="tab:green", alpha=0.7,
                label="budget left in its window")
    budget.set_ylim(-1.05, 1.05)
    budget.set_ylabel("error budget left")
    lines = ax.get_legend_handles_labels()
    more = budget.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left", fontsize="small")
    ax.set_title(_t(f"{o.label}: replication {replication}"), loc="left")
    return ax


def plot_attained(result: "Result", objective: str, ax: "Axes | None" = None,
                  bins: int = 40) -> "Axes":
    """The attained share of every window of an objective, over all replications, as a
    histogram against the target; the title gives the share of windows that met it.

    Returns
    -------
    matplotlib.axes.Axes
    """
    o = _objective(result, objective)
    table = result.objectives
    attained = table.loc[table["objective"] == o.label, "attained"].to_numpy(dtype=float)
    attained = attained[np.isfinite(attained)]
    ax = _axes(ax, figsize=(6, 3.5))
    if attained.size:
        ax.hist(attained, bins=bins, color="tab:blue", alpha=0.8)
    ax.axvline(o.target, color="tab:red", linestyle="--", label=f"target {o.target:g}")
    ax.set_xlabel("attained share per window")
    ax.set_ylabel("windows")
    met = float(np.mean(attained >= o.target)) if attained.size else float("nan")
    ax.set_title(_t(f"{o.label}: {met:.1%} of {attained.size} windows met it"), loc="left")
    ax.legend(fontsize="small")
    return ax


def plot_latency(result: "Result", promise: str, ax: "Axes | None" = None, bins: int = 60) -> "Axes":
    """Response times of one latency promise's answered requests against its deadline.

    A histogram (share of answered requests per bin, all replications) with the
    deadline as a vertical line; the title gives the share of requests kept.
    Requests that were refused, lost or failed have no response time and are
    counted in the title only.

    Returns
    -------
    matplotlib.axes.Axes
    """
    spec = result.spec
    if promise not in spec.promise_index:
        raise ValueError(f"promise {promise!r} is not in the model")
    body = spec.promises[spec.promise_index[promise]].body
    deadline = getattr(body, "deadline", None)
    if deadline is None:
        raise ValueError(f"promise {promise!r} promises availability: it has no response times")
    requests = result.requests
    mine = requests[requests["promise"] == promise]
    answered = mine["latency"].dropna().to_numpy()
    ax = _axes(ax, figsize=(7, 4))
    if answered.size:
        weights = np.full(answered.size, 1.0 / answered.size)
        ax.hist(answered, bins=bins, weights=weights, color="tab:blue", alpha=0.8,
                label="answered requests")
    ax.axvline(deadline, color="tab:red", linestyle="--", label=f"deadline {deadline:g}")
    counted = mine[mine["outcome"] != "unfinished"]
    kept = float(counted["kept"].mean()) if len(counted) else float("nan")
    _time_axis(ax, spec.time_unit, max(float(answered.max()) if answered.size else 0.0,
                                       float(deadline)), "response time")
    ax.set_ylabel("share of answered requests")
    ax.set_title(_t(f"{promise}: {kept:.2%} of {len(counted)} requests kept"))
    ax.legend(loc="upper right", fontsize="small")
    return ax


def plot_sizes(result: "Result", names: list[str] | None = None,
               ax: "Axes | None" = None) -> "Axes":
    """Super-agents' members serving (:attr:`Result.sizes <promisesim.Result.sizes>`) and
    instances running at agents with a ``keep_alive`` (:attr:`Result.instances
    <promisesim.Result.instances>`) over time: each replication's step function, faint, and
    their mean. ``names`` default: those whose size changes in some replication.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .sizes import mean_steps

    sizes = result.sizes.rename(columns={"super_agent": "name", "serving": "count"})
    pools = result.instances.rename(columns={"agent": "name", "running": "count"})
    table = pd.concat([sizes[["replication", "name", "time", "count"]].astype({"name": str}),
                       pools[["replication", "name", "time", "count"]].astype({"name": str})],
                      ignore_index=True)
    known = list(dict.fromkeys(table["name"]))
    if names is None:
        counts = table.groupby("name").size()
        names = [g for g in known if counts.get(g, 0) > result.replications]
    for g in names:
        if g not in known:
            raise ValueError(f"{g!r} is neither a super-agent nor an agent with a keep_alive"
                             + (f" (known: {', '.join(known)})" if known else ""))
    ax = _axes(ax, figsize=(8, 4))
    horizon = result.horizon
    times = np.linspace(0.0, horizon, 1_001)
    for i, g in enumerate(names):
        colour = f"C{i}"
        rows = table[table["name"] == g]
        for _, one in rows.groupby("replication"):
            ax.step(np.r_[one["time"].to_numpy(), horizon],
                    np.r_[one["count"].to_numpy(), one["count"].to_numpy()[-1]],
                    where="post", color=colour, alpha=0.15, lw=0.8)
        ax.step(times, mean_steps(rows, "count", times, result.replications), where="post",
                color=colour, lw=2,
                label=_t(f"{g} (mean of {result.replications})"))
    _time_axis(ax, result.spec.time_unit, horizon)
    ax.set_ylabel("members serving, instances running")
    ax.set_ylim(bottom=0)
    if names:
        ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_sweep(sweep_result: Any, parameter: str, metric: str = "kept_fraction",
               promises: list[str] | None = None, ax: "Axes | None" = None) -> "Axes":
    """A metric's mean with its confidence interval at each value of one swept parameter.

    Parameters
    ----------
    sweep_result : promisesim.sweep.SweepResult
    parameter : str
        The parameter path on the x axis (a column of ``sweep_result.summary``).
        Other swept parameters, if any, must be held by filtering first.
    metric : str
        A metric of the summary, for example ``"request_kept_fraction"``.
    promises : list of str, optional
        Promises to draw (default: all with that metric).

    Returns
    -------
    matplotlib.axes.Axes
    """
    summary = sweep_result.summary if hasattr(sweep_result, "summary") else sweep_result
    if parameter not in summary.columns:
        raise ValueError(f"{parameter!r} is not a swept parameter; columns: {list(summary.columns)}")
    rows = summary[summary["metric"] == metric]
    if rows.empty:
        raise ValueError(f"no metric {metric!r} in the sweep summary")
    ax = _axes(ax, figsize=(7, 4))
    names = promises if promises is not None else list(dict.fromkeys(rows["promise"].astype(str)))
    for name in names:
        part = rows[rows["promise"].astype(str) == name].sort_values(parameter)
        if part[parameter].duplicated().any():
            raise ValueError(f"several points share a value of {parameter!r}: filter the other "
                             "parameters first")
        x = part[parameter].to_numpy()
        mean = part["mean"].to_numpy()
        err = _error_bars(metric, mean, part["ci_low"].to_numpy(), part["ci_high"].to_numpy())
        ax.errorbar(x, mean, yerr=err, marker="o", capsize=3, label=_t(name))
    ax.set_xlabel(_t(parameter))
    ax.set_ylabel(f"{metric} (mean, 95% CI)")
    ax.legend(fontsize="small")
    return ax


def plot_graph(model: Any, ax: "Axes | None" = None) -> "Axes":
    """The promise graph: agents by dependency level, promises as arrows from promiser to promisee.

    Agents that are a single point of failure for some promise (see
    :func:`promisesim.diagnostics.single_leaves`) are red; impositions
    (unaccepted offers) are dashed; latency promises are blue, availability green.
    A dotted box marks the boundary of each super-agent (or versioned agent): its
    front and its members.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from .diagnostics import single_leaves

    spec = model.spec() if hasattr(model, "spec") else model
    # level of an agent: 0 for consumers; a promiser sits one level right of its promisee
    level = {a.name: 0 for a in spec.agents}
    for _ in range(len(spec.agents)):
        changed = False
        for p in spec.promises:
            if p.promiser != p.promisee and level[p.promiser] < level[p.promisee] + 1 <= len(spec.agents):
                level[p.promiser] = level[p.promisee] + 1
                changed = True
        if not changed:
            break
    columns: dict[int, list[str]] = {}
    for name, lv in level.items():
        columns.setdefault(lv, []).append(name)
    position = {}
    for lv, names in columns.items():
        for i, name in enumerate(names):
            position[name] = (lv, -(i - (len(names) - 1) / 2))
    spof = set(single_leaves(spec)["agent"])
    ax = _axes(ax, figsize=(2.5 + 2.2 * len(columns), 1.5 + 0.9 * max(len(v) for v in columns.values())))
    for p in spec.promises:
        (x0, y0), (x1, y1) = position[p.promiser], position[p.promisee]
        colour = "tab:blue" if getattr(p.body, "deadline", None) is not None else "tab:green"
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="->", color=colour, lw=1.4,
                                    linestyle="--" if not p.accepted else "-",
                                    shrinkA=14, shrinkB=14, connectionstyle="arc3,rad=0.08"))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.08, _t(p.name), fontsize="x-small", ha="center",
                color=colour)
    from matplotlib.patches import FancyBboxPatch

    for group in dict.fromkeys(spec.interior.values()):
        inside = {group} | {spec.promises[spec.promise_index[q]].promiser
                            for q, g in spec.interior.items() if g == group}
        xs = [position[a][0] for a in inside]
        ys = [position[a][1] for a in inside]
        box = FancyBboxPatch((min(xs) - 0.35, min(ys) - 0.4), max(xs) - min(xs) + 0.7,
                             max(ys) - min(ys) + 0.8, boxstyle="round,pad=0.02", fill=False,
                             linestyle=":", edgecolor="tab:purple", label=_t(f"super-agent {group}"))
        ax.add_patch(box)
        ax.text(min(xs) - 0.3, max(ys) + 0.32, _t(group), fontsize="x-small", color="tab:purple")
    for name, (x, y) in position.items():
        ax.scatter([x], [y], s=700, color="tab:red" if name in spof else "lightgrey",
                   edgecolors="black", zorder=3)
        ax.text(x, y, _t(name), ha="center", va="center", fontsize="small", zorder=4)
    ax.set_xlim(-0.6, max(columns) + 0.6)
    ax.set_ylim(min(y for _, y in position.values()) - 0.7, max(y for _, y in position.values()) + 0.7)
    ax.set_axis_off()
    ax.set_title("promise graph (promiser -> promisee); red: single point of failure",
                 fontsize="small")
    return ax
