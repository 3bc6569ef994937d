"""Plots draw what they claim and return their Axes."""

from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

import promisesim as ps  # noqa: E402
from promisesim import plotting  # noqa: E402

DEMO = Path(ps.__file__).parent / "examples" / "web_api.yaml"


@pytest.fixture(scope="module")
def demo():
    scenario = ps.load_scenario(DEMO)
    return scenario.model, ps.simulate(scenario.model, horizon=86_400.0, replications=2, seed=1)


def test_kept_bars_match_the_summary(demo):
    _, result = demo
    ax = plotting.plot_kept(result)
    heights = [bar.get_width() for bar in ax.patches]
    summary = result.summary(["request_kept_fraction"]).set_index("promise")["mean"]
    assert np.allclose(heights, summary.loc[[p.name for p in result.spec.promises]].to_numpy())


def test_timeline_draws_every_entity(demo):
    _, result = demo
    ax = plotting.plot_timeline(result, replication=1)
    assert len(ax.get_yticklabels()) == len(result.spec.agents) + len(result.spec.promises)
    with pytest.raises(ValueError, match="replication=5"):
        plotting.plot_timeline(result, replication=5)


def test_latency_histogram_is_a_distribution_with_the_deadline(demo):
    _, result = demo
    ax = Figure().add_subplot()
    assert plotting.plot_latency(result, "answers", ax=ax) is ax
    assert sum(p.get_height() for p in ax.patches) == pytest.approx(1.0)
    assert ax.lines[0].get_xdata()[0] == 0.3
    with pytest.raises(ValueError, match="not in the model"):
        plotting.plot_latency(result, "nope")


def test_sweep_plot_has_one_line_per_promise():
    m = ps.Model("sweep plot")
    s = m.agent("s", service_time=ps.Exponential(mean=0.5))
    p = m.promise(s, to=m.agent("u"), body=ps.Latency(deadline=1.0), name="p")
    m.workload(p, rate=1.0)
    swept = ps.sweep(m, {"workloads[p].rate": [0.5, 1.0, 1.5]}, horizon=500.0, replications=3,
                     seed=1, executor="serial", progress=False)
    ax = plotting.plot_sweep(swept, "workloads[p].rate", "request_kept_fraction")
    (container,) = ax.containers          # one error-bar series per promise
    line = container.lines[0]
    assert list(line.get_xdata()) == [0.5, 1.0, 1.5]
    assert np.all(np.diff(line.get_ydata()) < 0)   # more load, fewer kept


def test_confidence_bars_of_a_share_stay_within_0_and_1():
    import pandas as pd

    summary = pd.DataFrame({"x": [1.0, 2.0, 3.0], "promise": "p", "metric": "kept_fraction",
                            "mean": [0.99, 0.5, 0.01], "ci_low": [0.95, 0.4, -0.03],
                            "ci_high": [1.03, 0.6, 0.05]})
    ax = plotting.plot_sweep(summary, "x", "kept_fraction")
    (container,) = ax.containers
    ends = np.concatenate([seg[:, 1] for seg in container.lines[2][0].get_segments()])
    assert ends.min() == 0.0 and ends.max() == 1.0
    assert sorted(set(np.round(ends, 12))) == [0.0, 0.05, 0.4, 0.6, 0.95, 1.0]
    other = summary.assign(metric="requests", mean=[99.0, 50.0, 1.0], ci_low=[95.0, 40.0, -3.0],
                           ci_high=[103.0, 60.0, 5.0])
    (bars,) = plotting.plot_sweep(other, "x", "requests").containers   # not a share: as is
    ends = np.concatenate([seg[:, 1] for seg in bars.lines[2][0].get_segments()])
    assert ends.min() == -3.0 and ends.max() == 103.0


def test_graph_marks_single_points_of_failure(demo):
    model, _ = demo
    ax = plotting.plot_graph(model)
    colours = {text.get_text(): None for text in ax.texts}
    assert {"db", "api", "users", "db-answers", "answers"} <= set(colours)
    red = [c for c in ax.collections if tuple(np.round(c.get_facecolor()[0][:3], 2))
           == tuple(np.round(matplotlib.colors.to_rgb("tab:red"), 2))]
    assert len(red) == 1   # db


def test_graph_draws_super_agent_boundaries():
    m = ps.Model("grouped")
    grp = m.super_agent("store", size=3, rule="k", k=2, member=ps.AgentTemplate())
    m.promise(grp, to=m.agent("u"), body=ps.Availability(), name="up")
    ax = plotting.plot_graph(m)
    boxes = [p for p in ax.patches if p.get_label() == "super-agent store"]
    assert len(boxes) == 1
    box = boxes[0]
    # the box holds the front and its three members
    for text in ax.texts:
        if text.get_text() in ("store", "store.0", "store.1", "store.2"):
            x, y = text.get_position()
            assert box.get_x() < x < box.get_x() + box.get_width()
            assert box.get_y() < y < box.get_y() + box.get_height()


def test_objective_plots_draw_the_shares_the_tables_hold(demo):
    _, result = demo
    ax = plotting.plot_objective(result, "answers-5min", replication=1)
    share = ax.lines[0].get_ydata()
    assert len(share) == 86_400 // 300 and np.nanmax(share) <= 1.0
    assert ax.lines[1].get_ydata()[0] == 0.9            # the slice target
    ax = plotting.plot_attained(result, "answers-daily")
    table = result.objectives[result.objectives["objective"] == "answers-daily"]
    assert sum(p.get_height() for p in ax.patches) == len(table)     # every window counted
    assert f"of {len(table)} windows met it" in ax.get_title(loc="left")
    with pytest.raises(ValueError, match="objective 'nope' is not one of the model's"):
        plotting.plot_objective(result, "nope")


def test_time_axes_read_in_the_unit_that_suits_the_span(demo):
    _, result = demo                      # one day, in seconds
    fig_ax = plotting.plot_timeline(result)
    assert fig_ax.get_xlabel() == "time (h)"
    ticks = np.asarray(fig_ax.xaxis.get_major_locator()())
    inside = ticks[(ticks >= 0) & (ticks <= result.horizon)]
    # ticks at round numbers of hours, labelled in hours
    assert inside.size >= 3 and np.allclose(inside / 3_600.0, np.round(inside / 3_600.0))
    formatter = fig_ax.xaxis.get_major_formatter()
    assert formatter(7_200.0, 0) == "2"
    # response times of a fraction of a second read in milliseconds
    ax = plotting.plot_latency(result, "answers")
    assert ax.get_xlabel() == "response time (ms)"
    assert ax.xaxis.get_major_formatter()(0.3, 0) == "300"


@pytest.mark.parametrize("unit, horizon, label", [("s", 600_000.0, "time (d)"),
                                                  ("s", 100.0, "time (s)"),
                                                  ("h", 2.0, "time (min)"),
                                                  ("h", 500.0, "time (d)"),
                                                  ("requests", 1e6, "time (requests)")])
def test_time_axis_unit_by_span(unit, horizon, label):
    ax = Figure().add_subplot()
    ax.set_xlim(0, horizon)
    plotting._time_axis(ax, unit, horizon)
    assert ax.get_xlabel() == label


def test_names_that_look_like_math_text_draw_as_they_are(tmp_path):
    """matplotlib reads $...$ as math: a name such as '$\\frac{$' must not stop a plot."""
    m = ps.Model("$\\frac{$ model")
    s = m.agent("$\\frac{$", service_time=0.1,
                failures=ps.Failures(time_to_failure=50.0, time_to_repair=5.0))
    p = m.promise(s, to=m.agent("u$er$"), body=ps.Latency(deadline=1.0), name="$x^{$")
    m.workload(p, rate=1.0)
    result = ps.simulate(m, horizon=200.0, replications=2, seed=1)
    for draw in (plotting.plot_kept, plotting.plot_timeline):
        ax = draw(result)
        ax.figure.savefig(tmp_path / "plot.png")
    ax = plotting.plot_latency(result, "$x^{$")
    ax.figure.savefig(tmp_path / "latency.png")
    ax = plotting.plot_graph(m)
    ax.figure.savefig(tmp_path / "graph.png")
    assert "$x^{$ (requests)" in [t.get_text().replace("\\$", "$")
                                   for t in plotting.plot_kept(result).get_yticklabels()]
