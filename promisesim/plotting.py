"""Plots of results (matplotlib). Each function draws on an Axes and returns it; no global state.

matplotlib is imported when a plot is drawn, so ``import promisesim`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from .results import Result

__all__ = ["plot_kept", "plot_timeline"]


def _axes(ax: "Axes | None", **figure: Any) -> "Axes":
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(**figure).add_subplot()


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
    err = np.vstack([np.nan_to_num(means - low), np.nan_to_num(high - means)])
    colours = ["tab:blue" if per_promise[p].metric == "request_kept_fraction" else "tab:green"
               for p in promises]
    bars = ax.barh(y, means, xerr=err, color=colours, capsize=3)
    for bar, p in zip(bars, promises):
        if not accepted[p]:
            bar.set_hatch("//")
    labels = [f"{p} ({'requests' if per_promise[p].metric == 'request_kept_fraction' else 'time'})"
              for p in promises]
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    lo = float(np.nanmin(low)) if np.isfinite(low).any() else float(means.min())
    ax.set_xlim(max(0.0, min(lo, means.min()) - 0.02), 1.0)
    ax.set_xlabel(f"kept fraction (mean, {confidence:.0%} CI over {result.replications} replications)")
    ax.set_title(result.spec.name)
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
    entities = [("agent", a.name) for a in result.spec.agents] + \
               [("promise", p.name) for p in result.spec.promises]
    ax = _axes(ax, figsize=(9, 0.6 + 0.35 * len(entities)))
    colours = {"up": "tab:green", "kept": "tab:blue", "down": "tab:red", "broken": "tab:orange"}
    for row, (kind, name) in enumerate(entities):
        part = iv[(iv["kind"] == kind) & (iv["entity"] == name)]
        for state, colour in colours.items():
            sel = part[part["state"] == state]
            if len(sel):
                spans = list(zip(sel["start"], sel["end"] - sel["start"]))
                ax.broken_barh(spans, (row - 0.4, 0.8), facecolors=colour, label=state)
    ax.set_yticks(range(len(entities)), [f"{name} ({kind})" for kind, name in entities])
    ax.invert_yaxis()
    ax.set_xlim(0, result.horizon)
    ax.set_xlabel(f"time ({result.spec.time_unit})")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper right", ncols=4, fontsize="small")
    ax.set_title(f"{result.spec.name}: replication {replication}")
    return ax
