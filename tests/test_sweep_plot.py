"""A sweep's plot: every series drawn or named as left out, labels that say only what varies, no two lines
alike, the legend clear of the data, and panels when one would hold too many lines."""

import itertools
import json

import pytest

pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex  # noqa: E402

from jaxcost.reports.plots import pyplot  # noqa: E402
from jaxcost.sweep import ResultsFile, plot_axis  # noqa: E402
from jaxcost.sweep.plot import LINES_READABLE, PANELS_MOST, STYLES, arrange, figure_of  # noqa: E402

BASE = {"input_shape": [1, 8, 8, 16], "kernel_size": 3}


def records_of(axes: dict[str, list], timed: bool = False) -> list[dict]:
    """Successful records of a conv grid over ``axes`` (FLOPs made up, one second per 10 GFLOP when timed)."""
    records = []
    for values in itertools.product(*axes.values()):
        config = {**BASE, **dict(zip(axes, values))}
        flops = 1000.0 * (1 + sum(value for value in values if isinstance(value, int)))
        records.append({"key": json.dumps(config, sort_keys=True), "layer": "conv", "mode": "forward",
                        "timing": timed, "config": config, "status": "ok", "compiler_flops": flops,
                        **({"seconds_median": flops / 1e10} if timed else {})})
    return records


#: Along size: 5 groups x 6 features, 30 series.
GRID_5X6 = {"size": [8, 16, 32], "groups": [1, 2, 4, 8, 16], "features": [8, 16, 24, 32, 40, 48]}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    pyplot().close("all")


def drawn_lines(figure) -> list:
    return [line for ax in figure.axes if ax.get_visible() for line in ax.get_lines()]


def test_labels_name_only_the_settings_that_vary_and_the_title_the_rest():
    arrangement = arrange(records_of({"size": [8, 16], "features": [8, 16], "use_bias": [True, False]}), "size")
    labels = [label for lines in arrangement.panels.values() for label in lines]
    assert labels == ["features=8, use_bias=false", "features=8, use_bias=true",
                      "features=16, use_bias=false", "features=16, use_bias=true"]
    assert arrangement.constants == {"layer": "conv", "mode": "forward", **BASE}
    figure = figure_of(arrangement)
    assert "same in every line: layer=conv, mode=forward, input_shape=[1, 8, 8, 16], kernel_size=3" \
        in " ".join(figure.get_suptitle().split())  # wrapped to the figure
    assert [text.get_text() for text in figure.legends[0].get_texts()] == labels


def test_a_5x6_grid_is_drawn_in_5_panels_of_6_lines_every_series_once():
    arrangement = arrange(records_of(GRID_5X6), "size")
    assert list(arrangement.panels) == [f"groups={groups}" for groups in GRID_5X6["groups"]]
    assert all(list(lines) == [f"features={f}" for f in GRID_5X6["features"]] for lines in arrangement.panels.values())
    assert (arrangement.series_drawn, arrangement.series_total, arrangement.not_drawn) == (30, 30, [])
    figure = figure_of(arrangement)
    assert [ax.get_title() for ax in figure.axes if ax.get_visible()] == list(arrangement.panels)
    assert len(drawn_lines(figure)) == 30
    assert "30 series in 5 panels by groups, lines by features" in figure.get_suptitle()


def test_a_few_lines_stay_in_one_panel():
    arrangement = arrange(records_of({"size": [8, 16], "features": [8, 16], "groups": [1, 2]}), "size")
    assert list(arrangement.panels) == [""] and arrangement.lines_most == 4 <= LINES_READABLE


def test_forty_lines_in_one_panel_no_two_alike():
    figure = figure_of(arrange(records_of({"size": [8, 16], "features": list(range(1, 41))}), "size"))
    lines = drawn_lines(figure)
    assert len(lines) == 40 == len(STYLES)
    assert len({(to_hex(line.get_color()), line.get_linestyle(), line.get_marker()) for line in lines}) == 40


@pytest.mark.parametrize("axes, timed", [(GRID_5X6, False), (GRID_5X6, True),
                                         ({"size": [8, 16], "features": list(range(1, 41))}, False)])
def test_the_legend_covers_no_panel_nor_the_title(axes, timed):
    figure = figure_of(arrange(records_of(axes, timed), "size"))
    figure.canvas.draw()
    legend = figure.legends[0].get_window_extent()
    panels = [ax.get_window_extent() for ax in figure.axes if ax.get_visible()]
    assert panels and not any(legend.overlaps(panel) for panel in panels)
    assert not any(legend.overlaps(text.get_window_extent()) for text in figure.texts)  # the title
    assert legend.y0 >= 0 and legend.y1 <= figure.bbox.height  # the figure grew to hold it


def test_series_past_what_fits_are_named_not_dropped():
    axes = {"size": [8, 16], "features": list(range(1, 8)), "groups": list(range(1, 8)), "batch": list(range(1, 8))}
    arrangement = arrange(records_of(axes), "size")
    assert arrangement.series_total == 7 ** 3 and len(arrangement.panels) <= PANELS_MOST
    assert arrangement.series_drawn + len(arrangement.not_drawn) == 7 ** 3 and arrangement.not_drawn
    figure = figure_of(arrangement)
    assert len(drawn_lines(figure)) == arrangement.series_drawn
    assert f"{len(arrangement.not_drawn)} of 343 series not drawn: {arrangement.not_drawn[0]}; " \
        in " ".join(figure.get_suptitle().split())


def test_plot_axis_names_what_it_left_out(tmp_path):
    results = ResultsFile(tmp_path / "results.jsonl")
    for record in records_of({"size": [8, 16], "features": list(range(1, 42))}):  # one line past the styles
        results.append(record)
    plotted = plot_axis(results.path, "size", tmp_path / "by_size")
    assert plotted.not_drawn == ["features=41"]
    assert str(plotted) == f"{tmp_path / 'by_size.png'}, {tmp_path / 'by_size.svg'} " \
                           "(1 of 41 series not drawn: features=41)"


def test_plot_axis_returns_its_files_and_says_nothing_when_all_is_drawn(tmp_path):
    results = ResultsFile(tmp_path / "results.jsonl")
    for record in records_of(GRID_5X6):
        results.append(record)
    plotted = plot_axis(results.path, "size", tmp_path / "by_size")
    assert list(plotted) == plotted.paths == [tmp_path / "by_size.png", tmp_path / "by_size.svg"]
    assert str(plotted) == f"{tmp_path / 'by_size.png'}, {tmp_path / 'by_size.svg'}"
    assert (plotted.series_total, plotted.not_drawn) == (30, [])


def test_categories_along_the_axis_are_spaced_evenly_and_named():
    figure = figure_of(arrange(records_of({"kernel_size": [3, [1, 3], 1], "features": [8, 16]}), "kernel_size"))
    figure.canvas.draw()
    assert [text.get_text() for text in figure.axes[0].get_xticklabels()] == ["1", "3", "[1, 3]"]
    assert sorted({x for line in drawn_lines(figure) for x in line.get_xdata()}) == [0, 1, 2]
