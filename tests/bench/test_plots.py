"""Plots answer each suite's question: every compared variant on the same axes, error bars
from the raw samples, a grid of panels, and declared curves readable per regime."""

import matplotlib.image
import pandas as pd

from bench import plots
from bench.claims import Curve
from bench.workloads import case_key
from tests.bench.test_fits import frame

SCHEDULES = ("raster", "wavefront", "pipelined")


def mdrnn_rows():
    """Three schedules over H·W (three sizes) and over d (two sizes: a line all the same)."""
    rows = []
    for i, variant in enumerate(SCHEDULES):
        for side, depth in [(4, 2), (8, 2), (16, 2), (8, 4)]:
            rows.append(
                dict(suite="mdrnn", model="mdrnn", variant=variant, mode="forward", batch=1)
                | dict(depth=depth, height=side, width=side, hidden=2, regime="latency")
                | dict(n_devices=1, status="ok", span_ops=side * side * depth)
                | dict(time_median_s=1e-4 * side * depth / (i + 1), seq_steps_pred=side * depth)
            )
    return frame(rows)


def test_every_compared_variant_has_a_line_along_each_axis_with_two_points_or_more():
    lines = list(plots.sweep_lines(mdrnn_rows()))
    along = {(axis, variant) for _, axis, _, variant, _, _ in lines}
    assert along == {(a, v) for a in ("hw", "depth") for v in SCHEDULES}


def test_error_bars_are_the_quartiles_of_each_cases_raw_samples():
    row = mdrnn_rows().iloc[0].to_dict()
    samples = pd.DataFrame(
        [{**row, "repeat": i, "time_s": t} for i, t in enumerate([1, 2, 3, 4, 5])]
    )
    assert plots.quartiles(samples) == {case_key(row): (2.0, 4.0)}


def test_a_suite_is_one_figure_with_a_grid_of_panels(tmp_path):
    df = mdrnn_rows()
    path = plots.sweep_plot(df, "mdrnn", "time_median_s", "s", tmp_path / "t.png")
    height, width, _ = matplotlib.image.imread(path).shape
    assert width <= 3 * plots.PANEL[0] * 110 + 10  # at most three panels a row
    assert plots._columns(2) == 2 and plots._columns(7) == 3 and plots._columns(11) == 4


def test_a_curve_with_many_regimes_gets_a_panel_each_and_a_floor_on_its_log_axis(tmp_path):
    regimes = [f"bf{i}" for i in range(8)]
    rows = [
        dict(regime=r, seq_len=t, rho=10.0 ** (-(i * t) // 10))
        for i, r in enumerate(regimes)
        for t in (10, 100, 1000)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "flow.csv", index=False)
    curve = Curve("flow.csv", "seq_len", "rho", "regime", "T", "rho", "flow", logx=True)
    assert plots._natural("bf2") < plots._natural("bf12")
    assert plots._log_floor(pd.DataFrame(rows).rho.to_numpy(float)) == 1e-8
    path = plots.curve_plot(tmp_path, curve)
    height, width, _ = matplotlib.image.imread(path).shape
    assert height > width / 2  # a grid (8 panels: 3 rows), not a strip


def test_no_series_is_drawn_with_the_floor_marker_and_fixed_sizes_are_named():
    """▼ marks values drawn on a log axis's floor (curve_plot), so no series uses it; a
    panel's fixed sizes say batch and hidden in words (``C=3`` meant the hidden width)."""
    assert "v" not in plots.MARKERS
    fixed = {"batch": 1, "hidden": 3, "height": 8, "width": 8}
    assert plots._fixed_text(fixed) == "batch=1 hidden=3 H=W=8"


def test_time_plots_are_in_ms_as_the_report_is(smoke_run, tmp_path, monkeypatch):
    from bench import analysis

    df = analysis.load(smoke_run)
    seen = {}
    real = plots._save

    def keep(fig, path):
        seen[path.name] = [(ax.get_ylabel(), list(ax.lines[0].get_ydata())) for ax in fig.axes]
        return real(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    plots.render(tmp_path, df)
    ok = df[(df.status == "ok") & (df.suite == "lstm")]
    (label, ys), *_ = seen["time_lstm.png"]
    assert label == "median time per call (ms)"
    assert min(ys) >= ok.time_median_s.min() * 1e3 * 0.999 and max(ys) > 0.01


def test_a_title_wider_than_its_panels_is_saved_whole(tmp_path):
    import matplotlib.image

    from bench import plots

    fig, _ = plots._grid(1, panel=(2.0, 2.0))
    title = fig.suptitle("a title far wider than one small panel, " * 3, fontsize=10)
    path = plots._save(fig, tmp_path / "t.png")
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > 3 * 2.0 * 90 and title.get_text()  # the whole title, not 2 inches of it


def test_the_wall_time_figure_draws_a_fit_only_where_the_design_decided():
    from bench import plots
    from bench.claims import WallTimeFigure
    from tests.bench.synthetic import grid_design, grid_time, judged
    from tests.bench.test_judge import SPEC

    figure = WallTimeFigure("C0", ("toy",), "forward", "steps_executed", specs=(SPEC,))
    df, rounds = judged(grid_design(), grid_time())
    drawn = plots.decided_fit(figure, df, rounds)
    assert len(drawn) == len(df)  # every point of the design that decided
    few, few_rounds = judged(grid_design(), grid_time(), rounds=3)  # a smoke run's 3 rounds
    assert plots.decided_fit(figure, few, few_rounds) == {}
