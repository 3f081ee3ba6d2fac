"""Plots: matplotlib, headless, one way to save a figure (PNG and SVG side by side), the roofline, and where a
profiled step's time goes (its rows on the roofline beside the step's time by row)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxcost.reports.model import IDLE
from jaxcost.reports.text import format_bytes, format_rate, format_seconds, shortened

if TYPE_CHECKING:
    from jaxcost.measure.profile import ModelProfile
    from jaxcost.measure.roofline import RoofFigure


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (ImportError with the fix when absent)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib (or jaxcost[plot])") from None
    return plt


def save(figure: Any, path: str | Path, dpi: int = 130) -> list[Path]:
    """Write ``path`` with .png and .svg suffixes, close the figure, return both paths."""
    base = Path(path)
    if base.suffix.lower() in (".png", ".svg"):
        base = base.with_suffix("")
    written = [Path(f"{base}.png"), Path(f"{base}.svg")]  # "results.size" keeps its ".size"
    for target in written:
        figure.savefig(target, dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)
    return written


@dataclass(frozen=True)
class RooflinePoint:
    """One program on the roofline: its intensity (FLOPs/byte) and achieved FLOP/s."""

    label: str
    intensity: float
    flops_per_second: float


@dataclass(frozen=True)
class Roof:
    """One roof: its legend text, the short tag written on the line, peak FLOP/s and bytes/s (None: flat)."""

    label: str
    tag: str
    flops_per_second: float
    bytes_per_second: float | None


#: Offsets (points) tried in turn for a point's number, so that no two numbers overlap.
_NUMBER_OFFSETS = [(4, 3), (4, -10), (-4, 3), (-4, -10), (4, 12), (4, -19), (-4, 12), (-4, -19), (12, -3), (-12, -3)]


def _roof_text(roof: Roof) -> str:
    bandwidth = f", {format_bytes(roof.bytes_per_second)}/s" if roof.bytes_per_second else ""
    return f"{roof.label}: {format_rate(roof.flops_per_second)}{bandwidth}"


def _place_numbers(axes: Any, points: Sequence[RooflinePoint]) -> None:
    """Write each point's number beside it at the first offset whose box meets no number placed before."""
    _place_texts(axes, [(point.intensity, point.flops_per_second) for point in points],
                 [str(number) for number in range(1, len(points) + 1)], [_NUMBER_OFFSETS] * len(points), fontsize=7)


def _place_texts(axes: Any, anchors: Sequence[tuple[float, float]], texts: Sequence[str],
                 offsets: Sequence[Sequence[tuple[float, float]]], fontsize: float = 7,
                 inside: bool = False, avoid: Sequence[Any] = ()) -> list[Any]:
    """Write each text beside its anchor (data coordinates) at the first of its offsets (points: the left, right
    or centre of the text by the sign of x, its baseline at y) whose drawn box meets no text placed before nor a
    box of ``avoid`` (display ``Bbox``es: markers) and, when ``inside``, lies within the axes; at its first offset
    where none does. Returns the annotations, kept out of the layout so that they cannot move the points they were
    placed by."""
    renderer = axes.figure.canvas.get_renderer()
    frame = axes.get_window_extent(renderer)
    placed: list[Any] = []
    avoided = list(avoid)
    annotations = []
    for anchor, text, candidates in zip(anchors, texts, offsets):
        annotation = axes.annotate(text, anchor, xytext=candidates[0], textcoords="offset points", fontsize=fontsize)
        annotation.set_in_layout(False)
        for dx, dy in [*candidates, candidates[0]]:  # none fits: back to the first
            annotation.xyann = (dx, dy)
            annotation.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")
            box = annotation.get_window_extent(renderer)
            fits = not inside or (frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and
                                  box.y1 <= frame.y1)
            if fits and not any(box.overlaps(other) for other in [*placed, *avoided]):
                break
        placed.append(box)
        annotations.append(annotation)
    return annotations


def _intensity_range(intensities: Sequence[float], ridges: Sequence[float]) -> tuple[float, float]:
    """The intensities (FLOPs/byte) a roofline shows: the points' with room around them, and the ridges'."""
    shown = [intensity for intensity in intensities if intensity > 0] or [1.0]
    return min(min(shown) / 4, 0.1), max(max(shown) * 4, max(ridges, default=10) * 10)


def _roofline_axes(axes: Any, low: float, high: float) -> None:
    """Log-log axes of intensity (``low`` to ``high`` FLOPs/byte) against achieved FLOP/s, gridded."""
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(low, high)
    axes.set_xlabel("arithmetic intensity (FLOPs / byte)")
    axes.set_ylabel("achieved FLOP/s")
    axes.grid(True, which="both", alpha=0.3)


def shared_words(labels: Sequence[str]) -> tuple[list[str], str]:
    """What a legend names and what its title says once: each label less the words every label has (with two
    labels or more), and those words in the order of the first label."""
    if len(labels) < 2:
        return list(labels), ""
    words = [label.split() for label in labels]
    shared = set(words[0]).intersection(*words[1:])
    return ([" ".join(word for word in label if word not in shared) for label in words],
            " ".join(word for word in dict.fromkeys(words[0]) if word in shared))


def roofline_figure(points: Sequence[RooflinePoint], roofs: Sequence[Roof], title: str = "") -> Any:
    """The figure ``plot_roofline`` writes (matplotlib's; the caller saves or closes it): the legend names each
    point by what sets it apart, the title once what every point shares."""
    plt = pyplot()
    ridges = [roof.flops_per_second / roof.bytes_per_second for roof in roofs if roof.bytes_per_second]
    low, high = _intensity_range([p.intensity for p in points], ridges)
    figure, axes = plt.subplots(figsize=(11, 6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    xs = [low * (high / low) ** (i / 200) for i in range(201)]
    for index, roof in enumerate(roofs):
        ys = [min(roof.flops_per_second, x * roof.bytes_per_second) if roof.bytes_per_second
              else roof.flops_per_second for x in xs]
        style = ("-", "--", ":", "-.")[index % 4]
        axes.plot(xs, ys, style, color="black" if index == 0 else colors[index % len(colors)], linewidth=1.3,
                  label=_roof_text(roof))
        ridge = roof.flops_per_second / roof.bytes_per_second if roof.bytes_per_second else low
        tag_x = min(max(ridge * 1.6, high / 2.4 ** (index + 1)), high / 1.3)
        axes.annotate(roof.tag, (tag_x, roof.flops_per_second), xytext=(0, 3), textcoords="offset points",
                      ha="center", fontsize=8, fontweight="bold")
    labels, shared = shared_words([point.label for point in points])
    for number, (point, label) in enumerate(zip(points, labels), 1):
        axes.plot(point.intensity, point.flops_per_second, "o", markersize=5, color=colors[(number - 1) % len(colors)],
                  label=f"{number}. {label}".strip())
    _roofline_axes(axes, low, high)
    axes.set_title((title or "roofline") + (f"\nevery point: {shared}" if shared else ""))
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    figure.tight_layout()
    figure.canvas.draw()
    _place_numbers(axes, points)
    return figure


def plot_roofline(points: Sequence[RooflinePoint], roofs: Sequence[Roof], path: str | Path,
                  title: str = "") -> list[Path]:
    """Log-log roofline: each roof drawn and tagged on its line, each point numbered, the key beside the plot (each
    point by what sets it apart; what every point shares once in the title).

    Writes ``path`` with .png and .svg suffixes and returns both paths (needs matplotlib).
    """
    return save(roofline_figure(points, roofs, title), path)


#: The colour of each regime a row's time is bound by (``Row.bound``; None reads ``unknown``), in both panels.
BOUND_COLORS = {"compute": "#1f77b4", "memory": "#ff7f0e", "overhead": "#d62728", "unknown": "#8c8c8c"}
#: The legend's words for each regime.
BOUND_LABELS = {"compute": "compute-bound", "memory": "memory-bound", "overhead": "overhead-bound",
                "unknown": "bound unknown"}
#: A marker's area in points² were its row the whole step: each marker's area is its share of the step's time of it.
STEP_MARKER_AREA = 6000.0
#: The shares of the step the legend shows marker areas for.
KEY_SHARES = (0.01, 0.1)
#: The bars' colours of the rows not shown one by one, and of the device idle (hatched).
OTHER_COLOR, IDLE_COLOR = "#d0d0d0", "#ffffff"
#: Characters of a path on the roofline and on a bar: longer ones are cut in the middle.
LABEL_WIDTH, BAR_LABEL_WIDTH = 24, 32


@dataclass(frozen=True)
class TimedRow:
    """A profile's row, or the rows under one path prefix summed: their time in seconds and as a share of the
    step, their instructions' true FLOPs and bytes, and the regime (``compute``, ``memory``, ``overhead`` or
    ``unknown``) that holds most of their time."""

    path: str
    seconds: float
    time_share: float
    compiler_flops: int
    compiler_bytes: int
    bound: str

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte; None without both FLOPs and bytes (no place on a log-log roofline)."""
        return self.compiler_flops / self.compiler_bytes if self.compiler_flops and self.compiler_bytes else None

    @property
    def flops_per_second(self) -> float:
        """Achieved: the true FLOPs over the time."""
        return self.compiler_flops / self.seconds


def timed_rows(profile: ModelProfile, depth: int | None = None) -> list[TimedRow]:
    """The profile's rows with time, heaviest first, none counted twice (each row holds only the instructions of
    its own, so the rows with time split the busy time; the device idle is left out). With ``depth``, the module
    rows under each prefix of that many path components are summed; rows by kind stay their own."""
    if depth is not None and depth < 1:
        raise ValueError(f"depth: must be a positive integer, got {depth}")
    groups: dict[str, list[Any]] = {}
    for row in profile.rows:
        if row.seconds and row.kind != IDLE:
            key = "/".join(row.path.split("/")[:depth]) if depth and row.is_module else row.path
            groups.setdefault(key, []).append(row)
    grouped = []
    for path, rows in groups.items():
        seconds_by_bound: Counter = Counter()
        for row in rows:
            seconds_by_bound[row.bound or "unknown"] += row.seconds
        grouped.append(TimedRow(path, sum(row.seconds for row in rows), sum(row.time_share or 0.0 for row in rows),
                                sum(row.compiler_flops for row in rows), sum(row.compiler_bytes for row in rows),
                                seconds_by_bound.most_common(1)[0][0]))
    return sorted(grouped, key=lambda row: -row.seconds)


def profile_title(profile: ModelProfile) -> str:
    """The model, mode and device, the step's time, and MFU and HFU where the compute roof is known."""
    title = (f"{profile.report.name} {profile.report.mode} on {profile.peaks.name}: "
             f"step {format_seconds(profile.seconds_step)}")
    if profile.hfu is not None:
        mfu = f"MFU {profile.mfu:.1%}, " if profile.model_flops else ""
        compute = profile.roofs[0]
        title += (f", {mfu}HFU {profile.hfu:.1%} of {format_rate(compute.per_second)} {profile.precision} "
                  f"({compute.source})")
    return title


def _label_offsets(area: float) -> list[tuple[float, float]]:
    """Where a label may sit (points from the centre, the text's baseline) beside a marker of ``area`` points²:
    right, left, above, below, the diagonals, then farther out."""
    radius = math.sqrt(area) / 2 + 2
    diagonal = 0.7 * radius
    return [(radius, -3), (-radius, -3), (0, radius), (0, -radius - 7), (diagonal, diagonal),
            (-diagonal, diagonal), (diagonal, -diagonal - 7), (-diagonal, -diagonal - 7),
            (radius + 10, 8), (-radius - 10, 8), (radius + 10, -14), (-radius - 10, -14)]


def _marker_boxes(axes: Any, rows: Sequence[TimedRow]) -> list[Any]:
    """The display boxes of the rows' markers on the roofline (squares around their circles)."""
    from matplotlib.transforms import Bbox

    boxes = []
    for row in rows:
        x, y = axes.transData.transform((row.intensity, row.flops_per_second))
        half = math.sqrt(row.time_share * STEP_MARKER_AREA) / 2 * axes.figure.dpi / 72
        boxes.append(Bbox.from_extents(x - half, y - half, x + half, y + half))
    return boxes


def _draw_roofs(axes: Any, compute: RoofFigure, memory: RoofFigure, low: float, high: float) -> list[Any]:
    """The compute roof (flat), the memory roof (diagonal), each solid where it binds and dotted past the ridge,
    and the ridge; their lines (``gid`` compute-roof, memory-roof, ridge), sources in the labels."""
    lines = []
    ridge = compute.per_second / memory.per_second if compute.per_second and memory.per_second else None
    if compute.per_second:
        lines += axes.plot([ridge or low, high], [compute.per_second] * 2, "-", color="black", linewidth=1.5,
                           gid="compute-roof", label=f"compute roof: {format_rate(compute.per_second)} "
                                                      f"({compute.source})")
    if memory.per_second:
        end = ridge or high
        lines += axes.plot([low, end], [low * memory.per_second, end * memory.per_second], "--", color="black",
                           linewidth=1.5, gid="memory-roof",
                           label=f"memory roof: {format_bytes(memory.per_second)}/s ({memory.source})")
    if ridge and memory.per_second:
        axes.plot([low, ridge], [compute.per_second] * 2, ":", color="black", linewidth=0.8, alpha=0.5)
        axes.plot([ridge, high], [ridge * memory.per_second, high * memory.per_second], ":", color="black",
                  linewidth=0.8, alpha=0.5)
        lines.append(axes.axvline(ridge, color="#555555", linestyle="-.", linewidth=0.8, gid="ridge",
                                  label=f"ridge: {ridge:.3g} FLOPs/byte"))
    return lines


def _draw_rows(axes: Any, rows: Sequence[TimedRow], profile: ModelProfile, depth: int | None) -> list[Any]:
    """The rows with FLOPs on the roofline (one scatter, ``gid`` rows, heaviest drawn first) and the roofs; rows
    without FLOPs named below the axis. Returns the legend's handles."""
    from matplotlib.lines import Line2D

    compute, memory = profile.roofs
    drawn = [row for row in rows if row.intensity]
    ridge = compute.per_second / memory.per_second if compute.per_second and memory.per_second else None
    low, high = _intensity_range([row.intensity for row in drawn if row.intensity], [ridge] if ridge else [])
    rates = [row.flops_per_second for row in drawn] or [1e9]
    top = max(max(rates) * 4, 2 * compute.per_second if compute.per_second else 0.0)
    handles = _draw_roofs(axes, compute, memory, low, high)
    axes.scatter([row.intensity for row in drawn], [row.flops_per_second for row in drawn],
                 s=[row.time_share * STEP_MARKER_AREA for row in drawn],
                 c=[BOUND_COLORS[row.bound] for row in drawn], alpha=0.7, edgecolors="black", linewidths=0.5,
                 zorder=3, gid="rows")
    _roofline_axes(axes, low, high)
    axes.set_ylim(min(rates) / 4, top)
    left_out = [row for row in rows if not row.intensity]
    if left_out:
        named = ", ".join(f"{shortened(row.path, LABEL_WIDTH)} {row.time_share:.1%}" for row in left_out[:4])
        more = f" and {len(left_out) - 4} more" if len(left_out) > 4 else ""
        axes.set_xlabel(f"{axes.get_xlabel()}\nnot on the roofline (no FLOPs): {named}{more}")
    grouping = f" (grouped to depth {depth})" if depth else ""
    rows_drawn = f"{len(drawn)} row{'s' if len(drawn) != 1 else ''}{grouping}"
    axes.set_title(f"{rows_drawn} on the roofline: a marker's area is its share of the step's time", fontsize=10)
    bounds = [bound for bound in BOUND_COLORS if any(row.bound == bound for row in drawn)]
    handles += [Line2D([], [], linestyle="", marker="o", markersize=8, markerfacecolor=BOUND_COLORS[bound],
                       markeredgecolor="black", markeredgewidth=0.5, alpha=0.7, label=BOUND_LABELS[bound])
                for bound in bounds]
    handles += [Line2D([], [], linestyle="", marker="o", markersize=math.sqrt(share * STEP_MARKER_AREA),
                       markerfacecolor="none", markeredgecolor="black", markeredgewidth=0.5,
                       label=f"{share:.0%} of the step") for share in KEY_SHARES]
    return handles


def _draw_time(axes: Any, rows: Sequence[TimedRow], profile: ModelProfile, shown: int) -> None:
    """The step's time as bars (``gid`` time) that add up to 100 %: the ``shown`` heaviest rows, the rest as
    other, and the device idle."""
    idle = next((row for row in profile.rows if row.kind == IDLE), None)
    rest = rows[shown:]
    bars = [(shortened(row.path, BAR_LABEL_WIDTH), row.time_share, row.seconds, BOUND_COLORS[row.bound])
            for row in rows[:shown]]
    if rest:
        bars.append((f"other ({len(rest)} rows)", sum(row.time_share for row in rest),
                     sum(row.seconds for row in rest), OTHER_COLOR))
    bars.append((f"({IDLE})", (idle.time_share or 0.0) if idle else 0.0, (idle.seconds or 0.0) if idle else 0.0,
                 IDLE_COLOR))
    percents = [100 * share for _, share, _, _ in bars]
    drawn = axes.barh(range(len(bars)), percents, color=[color for *_, color in bars], edgecolor="black",
                      linewidth=0.5, gid="time")
    drawn[-1].set_hatch("//")
    for index, (_, share, seconds, _) in enumerate(bars):
        axes.annotate(f"{share:.1%}  {format_seconds(seconds)}", (percents[index], index), xytext=(3, 0),
                      textcoords="offset points", va="center", fontsize=8)
    axes.set_yticks(range(len(bars)), [label for label, *_ in bars], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, max(percents) * 1.35 or 1.0)
    axes.set_xlabel("share of the step's time (%)")
    axes.grid(True, axis="x", alpha=0.3)
    axes.set_title(f"where the step's {format_seconds(profile.seconds_busy + profile.seconds_idle)} go: "
                   f"{format_seconds(profile.seconds_busy)} busy, {format_seconds(profile.seconds_idle)} idle",
                   fontsize=10)


def profile_figure(profile: ModelProfile, depth: int | None = None, labelled: int = 8) -> Any:
    """The figure ``plot_profile`` writes (matplotlib's; the caller saves or closes it)."""
    if labelled < 0:
        raise ValueError(f"labelled: must be 0 or more, got {labelled}")
    plt = pyplot()
    rows = timed_rows(profile, depth)
    figure, (roof_axes, time_axes) = plt.subplots(1, 2, figsize=(16, 7), width_ratios=(3, 2), layout="constrained")
    handles = _draw_rows(roof_axes, rows, profile, depth)
    _draw_time(time_axes, rows, profile, labelled)
    figure.suptitle(profile_title(profile), fontsize=12, fontweight="bold")
    figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=9, frameon=False)
    figure.canvas.draw()  # the layout settles before labels are placed by their drawn sizes
    drawn = [row for row in rows if row.intensity]
    heaviest = drawn[:labelled]
    _place_texts(roof_axes, [(row.intensity, row.flops_per_second) for row in heaviest if row.intensity],
                 [shortened(row.path, LABEL_WIDTH) for row in heaviest],
                 [_label_offsets(row.time_share * STEP_MARKER_AREA) for row in heaviest], fontsize=7, inside=True,
                 avoid=_marker_boxes(roof_axes, drawn))
    return figure


def plot_profile(profile: ModelProfile, path: str | Path, depth: int | None = None,
                 labelled: int = 8) -> list[Path]:
    """Where a profiled step's time goes (``jaxcost.profile``), one figure of two panels. Left, the rows with time
    (grouped to ``depth`` path components when given; see ``timed_rows``) on the roofline: arithmetic intensity
    (FLOPs/byte) against achieved FLOP/s, each marker's area its share of the step's time, its colour what bounds
    it, the ``labelled`` heaviest named; the compute roof, the memory roof and their ridge where known, their
    sources in the legend. Rows without FLOPs have no place there and are named below it. Right, the step's time:
    the ``labelled`` heaviest rows, the other rows and the device idle, adding up to 100 %. The title names the
    model, mode, device, step time, and MFU and HFU where the compute roof is known.

    Writes ``path`` with .png and .svg suffixes and returns both paths (needs matplotlib).
    """
    return save(profile_figure(profile, depth, labelled), path)
