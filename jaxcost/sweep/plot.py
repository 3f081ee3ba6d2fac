"""A sweep's results along one axis: compiled FLOPs (and time, where measured), one line per setting of the
other axes, split into panels (small multiples) by some of them when one panel would hold too many lines."""

from __future__ import annotations

import itertools
import json
import math
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaxcost.sweep.results import ResultsFile

#: Ten colours, each with four line styles paired with markers: forty lines, no two drawn alike.
COLOURS = tuple(f"C{index}" for index in range(10))
DASHES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))
STYLES = tuple((colour, line, marker) for line, marker in DASHES for colour in COLOURS)
#: Lines a panel holds and still reads one by one; more are split into panels by the settings of some axes.
LINES_READABLE = 10
#: Panels a figure holds at most; series in further panels (or past the styles) are named as not drawn.
PANELS_MOST = 30
#: Not-drawn series named in a message (all of them in ``SweepPlot.not_drawn``).
NAMED_MOST = 5


@dataclass(frozen=True)
class Arrangement:
    """A sweep's records laid out along ``axis``: panels by ``facet_keys``, lines by ``line_keys``.

    ``panels`` maps each panel's title ("" for the only panel) to its lines, each line's label to its records
    in the order of the axis. ``not_drawn`` names the series (panel and line) left out: none unless the records
    hold more than ``PANELS_MOST`` panels of ``len(STYLES)`` lines however they are split.
    """

    axis: str
    constants: dict[str, Any]
    facet_keys: tuple[str, ...]
    line_keys: tuple[str, ...]
    panels: dict[str, dict[str, list[dict[str, Any]]]]
    not_drawn: list[str]

    @property
    def series_drawn(self) -> int:
        """Series drawn: lines, counted once in each panel they are in."""
        return sum(len(lines) for lines in self.panels.values())

    @property
    def lines_most(self) -> int:
        """Lines in the fullest panel."""
        return max(len(lines) for lines in self.panels.values())

    @property
    def series_total(self) -> int:
        """Series in the records: drawn or not."""
        return self.series_drawn + len(self.not_drawn)


@dataclass(frozen=True)
class SweepPlot:
    """The files a sweep's plot was written to, and the series it left out (see ``Arrangement``)."""

    paths: list[Path]
    series_total: int
    not_drawn: list[str]

    @property
    def note(self) -> str:
        """What the figure says of the series left out ("" when every series is drawn)."""
        return _not_drawn_text(self.not_drawn, self.series_total)

    def __iter__(self) -> Iterator[Path]:
        """The files written, as the list of paths ``plot_axis`` used to return."""
        return iter(self.paths)

    def __repr__(self) -> str:
        return (f"SweepPlot({', '.join(map(str, self.paths))}: "
                f"{self.series_total - len(self.not_drawn)} of {self.series_total} series drawn)")

    def __str__(self) -> str:
        files = ", ".join(map(str, self.paths))
        return f"{files} ({self.note})" if self.note else files


def plot_axis(results: str | os.PathLike, axis: str, path: str | os.PathLike,
              keys: set[str] | None = None) -> SweepPlot:
    """How cost (and time, where measured) grows along one axis: one line per setting of the other axes.

    ``keys`` keeps to one grid's records (a file may hold several grids'); all successful records by default.
    Returns the files written (PNG and SVG) and any series left out, which the figure names too.
    """
    from jaxcost.reports.plots import save

    records = [r for key, r in ResultsFile(results).latest().items()
               if r.get("status") == "ok" and (keys is None or key in keys)]
    if not records:
        raise ValueError("no configuration succeeded: nothing to plot")
    records = [r for r in records if axis in r.get("config", {})]
    if not records:
        raise ValueError(f"axis: {axis!r} is not an axis of the recorded configurations")
    arrangement = arrange(records, axis)
    written = save(figure_of(arrangement), Path(path), dpi=120)
    return SweepPlot(written, arrangement.series_total, arrangement.not_drawn)


def arrange(records: list[dict[str, Any]], axis: str) -> Arrangement:
    """Lay records out along ``axis``: one panel when its lines stay readable (``LINES_READABLE``), else
    panels by the keys that give the fewest panels of readable lines (or, failing that, draw the most)."""
    settings = [_setting(record, axis) for record in records]
    names = list(dict.fromkeys(name for setting in settings for name in setting))
    varying = [name for name in names if len({_text(setting.get(name)) for setting in settings}) > 1]
    constants = {name: settings[0].get(name) for name in names if name not in varying}
    choices = []
    for size in range(max(len(varying), 1)):  # at least one key left to tell the lines apart
        for facets in itertools.combinations(varying, size):
            lines = tuple(name for name in varying if name not in facets)
            choices.append(Arrangement(axis, constants, facets, lines, *_split(records, settings, axis, facets, lines)))
    return min(choices, key=lambda choice: (len(choice.not_drawn), choice.lines_most > LINES_READABLE,
                                            len(choice.panels), len(choice.facet_keys)))


def figure_of(arrangement: Arrangement) -> Any:
    """The figure: a panel per setting of the facet keys (FLOPs, and seconds beside them where measured) on
    shared scales, one legend to the right of every panel, the settings common to all lines in the title."""
    from jaxcost.reports.plots import pyplot

    drawn = [record for lines in arrangement.panels.values() for line in lines.values() for record in line]
    timed = any(record.get("seconds_median") is not None for record in drawn)
    metrics = [("compiler_flops", "compiled FLOPs")] + ([("seconds_median", "seconds (median)")] if timed else [])
    labels = list(dict.fromkeys(label for lines in arrangement.panels.values() for label in lines))
    styles = dict(zip(labels, STYLES))
    values = sorted({_text(record["config"][arrangement.axis]): record["config"][arrangement.axis]
                     for record in drawn}.values(), key=_order)
    numeric = all(_order(value)[0] == 0 for value in values)
    position = {_text(value): index for index, value in enumerate(values)}  # categories: evenly spaced

    columns = min(math.ceil(math.sqrt(len(arrangement.panels))), 4 // len(metrics))
    rows = math.ceil(len(arrangement.panels) / columns)
    legend_inches = 0.8 + 0.07 * max(map(len, labels)) if any(labels) else 0.0
    width_inches = 4.2 * columns * len(metrics) + legend_inches
    height_inches = max(3.2 * rows, 0.22 * len(labels)) + 0.9
    figure, axes = pyplot().subplots(rows, columns * len(metrics), figsize=(width_inches, height_inches),
                                     squeeze=False, layout="constrained")
    cells = [axes[row][column * len(metrics):(column + 1) * len(metrics)]
             for row in range(rows) for column in range(columns)]
    for ax in axes.flat[1:]:  # panels compare at a glance: one axis, one scale per metric (tick labels kept)
        ax.sharex(axes.flat[0])
    for cell in cells[1:]:
        for ax, leader in zip(cell, cells[0]):
            ax.sharey(leader)
    for (title, lines), cell in zip(arrangement.panels.items(), cells):
        for (field, name), ax in zip(metrics, cell):
            for label, line in lines.items():
                measured = [r for r in line if r.get(field) is not None]
                xs = [x if numeric else position[_text(x)] for x in (r["config"][arrangement.axis] for r in measured)]
                colour, dashes, marker = styles[label]
                ax.plot(xs, [r[field] for r in measured], color=colour, linestyle=dashes, marker=marker,
                        markersize=4, label=label)
            ax.set_title(title, fontsize=9)
            ax.set_ylabel(name)
            ax.set_xlabel(arrangement.axis)
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
    for cell in cells[len(arrangement.panels):]:
        for ax in cell:
            ax.set_visible(False)
    if not numeric:
        axes[0][0].set_xticks(range(len(values)), [_text(value) for value in values])
    if any(labels):
        handles = {handle.get_label(): handle for ax in axes.flat for handle in ax.get_lines()}
        figure.legend([handles[label] for label in labels], labels, loc="outside right upper", fontsize=8)
    panels_inches = width_inches - legend_inches  # the title keeps above the panels, clear of the legend
    figure.suptitle(_title(arrangement, panels_inches), x=panels_inches / 2 / width_inches, fontsize=10)
    return figure


def _title(arrangement: Arrangement, width_inches: float) -> str:
    """What is drawn, the settings shared by every line, and what was left out, wrapped to the figure."""
    panels = (f" in {len(arrangement.panels)} panels by {', '.join(arrangement.facet_keys)}, lines by "
              f"{', '.join(arrangement.line_keys)}" if arrangement.facet_keys else "")
    lines = [f"cost along {arrangement.axis}: {arrangement.series_total} series{panels}"]
    if arrangement.constants:
        lines.append("same in every line: " + _label(arrangement.constants))
    if arrangement.not_drawn:
        lines.append(_not_drawn_text(arrangement.not_drawn, arrangement.series_total))
    return "\n".join(textwrap.fill(line, width=int(width_inches * 13)) for line in lines)


def _not_drawn_text(not_drawn: list[str], series_total: int) -> str:
    """'N of M series not drawn: a; b; ... and K more', or "" when every series is drawn."""
    if not not_drawn:
        return ""
    more = len(not_drawn) - NAMED_MOST
    return (f"{len(not_drawn)} of {series_total} series not drawn: {'; '.join(not_drawn[:NAMED_MOST])}"
            + (f" and {more} more" if more > 0 else ""))


def _setting(record: dict[str, Any], axis: str) -> dict[str, Any]:
    """What a record's series stands for: its configuration but the axis, its layer and mode."""
    setting = {name: record[name] for name in ("layer", "mode") if record.get(name)}
    setting.update({name: value for name, value in record["config"].items() if name != axis})
    return setting


def _split(records: list[dict[str, Any]], settings: list[dict[str, Any]], axis: str, facets: tuple[str, ...],
           lines: tuple[str, ...]) -> tuple[dict[str, dict[str, list[dict[str, Any]]]], list[str]]:
    """Panels by ``facets``, lines by ``lines``, each in the order of their values, points in the order of the
    axis; at most ``PANELS_MOST`` panels of ``len(STYLES)`` lines, and the series left out ("panel: line")."""
    def values_order(index: int, names: tuple[str, ...]) -> tuple:
        return tuple(_order(settings[index].get(name)) for name in names)

    def label(index: int, names: tuple[str, ...]) -> str:
        return _label({name: settings[index].get(name) for name in names})

    by_line = sorted(range(len(records)), key=lambda index: values_order(index, lines))
    kept = set(list(dict.fromkeys(label(index, lines) for index in by_line))[:len(STYLES)])
    panels: dict[str, dict[str, list[dict[str, Any]]]] = {}
    not_drawn: dict[str, None] = {}
    for index in sorted(range(len(records)), key=lambda index: (values_order(index, facets + lines),
                                                                _order(records[index]["config"][axis]))):
        title, line = label(index, facets), label(index, lines)
        if line in kept and (title in panels or len(panels) < PANELS_MOST):
            panels.setdefault(title, {}).setdefault(line, []).append(records[index])
        else:
            not_drawn[": ".join(filter(None, (title, line)))] = None
    return panels, list(not_drawn)


def _label(setting: dict[str, Any]) -> str:
    """``key=value, key=value``: text as it is, anything else as JSON (``true``, ``[1, 3]``)."""
    return ", ".join(f"{name}={_text(value)}" for name, value in setting.items())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _order(value: Any) -> tuple:
    """Numbers in order, then anything else (lists of sizes, text) in the order of its JSON text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, json.dumps(value))
