"""A profile's plot: one point per row with time and FLOPs (the rest named), each marker's area its share of the
step, the heaviest rows named, the roofs where known, bars that add up to 100 %, the legend clear of the data."""

from collections import Counter
from types import SimpleNamespace

import pytest

pytest.importorskip("matplotlib")

from jaxcost.measure.hardware import DevicePeaks  # noqa: E402
from jaxcost.measure.profile import IDLE, ModelProfile, profile_of, program_events  # noqa: E402
from jaxcost.measure.trace import instruction_events  # noqa: E402
from jaxcost.models.analysis import program_report  # noqa: E402
from jaxcost.models.rows import Row  # noqa: E402
from jaxcost.reports.plots import (  # noqa: E402
    STEP_MARKER_AREA,
    plot_profile,
    profile_figure,
    pyplot,
    timed_rows,
)
from tests.test_profile import FIXTURES, _conv_program  # noqa: E402

pytestmark = pytest.mark.cpu  # profiles on the CPU

#: (path, is a module, flops, bytes, seconds, bound): a 10 ms step, 9 ms of it busy.
ROWS = [
    ("a", True, 0, 0, 0.0, None),  # its children hold all its instructions
    ("a/conv", True, 8_000_000_000, 40_000_000, 4e-3, "compute"),
    ("a/norm", True, 10_000_000, 40_000_000, 1e-3, "memory"),
    ("b/dense", True, 2_000_000_000, 20_000_000, 2e-3, "compute"),
    ("b/act", True, 1_000, 4_000, 0.5e-3, "overhead"),
    ("c", True, 1_000_000, 1_000_000, 0.25e-3, None),
    ("d/e/f/g/a_long_module_name_indeed", True, 5_000_000, 1_000_000, 0.75e-3, "memory"),
    ("layout and copies", False, 0, 8_000_000, 0.5e-3, None),  # moves data only: no place on the roofline
]
STEP_SECONDS, IDLE_SECONDS = 10e-3, 1e-3


def synthetic_profile(peaks: DevicePeaks | None = None) -> ModelProfile:
    """A profile of made-up rows (no program behind it) against a 1 TFLOP/s, 100 GB/s device by default."""
    rows = [Row(path, path if not module else "module", module_type="Module" if module else "", compiler_flops=flops,
                compiler_bytes=moved, seconds=seconds, time_share=seconds / STEP_SECONDS,
                flops_per_second=flops / seconds if seconds else None, bound=bound)
            for path, module, flops, moved, seconds, bound in ROWS]
    rows.append(Row(f"({IDLE})", IDLE, seconds=IDLE_SECONDS, time_share=IDLE_SECONDS / STEP_SECONDS))
    report = SimpleNamespace(name="Toy", mode="forward", rows=rows, flops=9_000_000_000,
                             compiler_flops=sum(row.compiler_flops for row in rows))
    peaks = peaks or DevicePeaks("Test GPU", {"fp32": 1e12}, 1e11, "test")
    return ModelProfile(report, STEP_SECONDS, STEP_SECONDS - IDLE_SECONDS, IDLE_SECONDS, STEP_SECONDS, 1, Counter(),
                        Counter(), Counter(), peaks, "fp32")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    pyplot().close("all")


def panels(figure):
    roof_axes, time_axes = figure.axes
    return roof_axes, time_axes


def scatter(axes):
    (collection,) = [collection for collection in axes.collections if collection.get_gid() == "rows"]
    return collection


def roof_lines(axes) -> set[str]:
    return {line.get_gid() for line in axes.get_lines() if line.get_gid()}


def bar_percents(axes) -> list[float]:
    return [patch.get_width() for patch in axes.patches]


def test_one_point_per_row_with_flops_its_area_its_share_of_the_step():
    profile = synthetic_profile()
    roof_axes, _ = panels(profile_figure(profile))
    with_time = [row for row in profile.rows if row.seconds and row.kind != IDLE]
    with_flops = [row for row in with_time if row.compiler_flops]
    points = scatter(roof_axes)
    assert len(points.get_offsets()) == len(with_flops) == 6
    shares = sorted(row.time_share for row in with_flops)
    assert sorted(points.get_sizes()) == pytest.approx([share * STEP_MARKER_AREA for share in shares])
    # each at its intensity and achieved FLOP/s, heaviest first
    assert [tuple(offset) for offset in points.get_offsets()][0] == pytest.approx((200.0, 2e12))
    # the row with time and no FLOPs is named under the axis instead
    assert "not on the roofline (no FLOPs): layout and copies 5.0%" in roof_axes.get_xlabel()
    assert len(points.get_offsets()) + roof_axes.get_xlabel().count("layout and copies") == len(with_time)


def test_the_bars_add_up_to_the_step_heaviest_first_then_other_and_idle():
    profile = synthetic_profile()
    _, time_axes = panels(profile_figure(profile, labelled=3))
    percents = bar_percents(time_axes)
    assert sum(percents) == pytest.approx(100.0)
    names = [label.get_text() for label in time_axes.get_yticklabels()]
    assert names == ["a/conv", "b/dense", "a/norm", "other (4 rows)", f"({IDLE})"]
    assert percents == pytest.approx([40.0, 20.0, 10.0, 20.0, 10.0])


def test_the_labelled_points_are_the_heaviest():
    profile = synthetic_profile()
    roof_axes, _ = panels(profile_figure(profile, labelled=3))
    assert [text.get_text() for text in roof_axes.texts] == ["a/conv", "b/dense", "a/norm"]
    roof_axes, _ = panels(profile_figure(profile, labelled=0))
    assert len(roof_axes.texts) == 0
    labels = [text.get_text() for text in panels(profile_figure(profile, labelled=10))[0].texts]
    assert len(labels) == 6 and labels[3] == "d/e/f/g/a_l…_name_indeed"  # a long path cut in the middle
    with pytest.raises(ValueError, match="^labelled:"):
        profile_figure(profile, labelled=-1)


def test_labels_overlap_no_other_label_and_stay_in_the_panel():
    figure = profile_figure(synthetic_profile(), labelled=6)
    roof_axes, _ = panels(figure)
    renderer = figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in roof_axes.texts]
    frame = roof_axes.get_window_extent(renderer)
    assert len(boxes) == 6
    assert not any(box.overlaps(other) for index, box in enumerate(boxes) for other in boxes[index + 1:])
    assert all(frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
               for box in boxes)


def test_rows_grouped_to_a_depth_sum_their_time_flops_and_bytes():
    profile = synthetic_profile()
    grouped = {row.path: row for row in timed_rows(profile, depth=1)}
    assert list(grouped) == ["a", "b", "d", "layout and copies", "c"]  # heaviest first
    assert grouped["a"].seconds == pytest.approx(5e-3) and grouped["a"].time_share == pytest.approx(0.5)
    assert (grouped["a"].compiler_flops, grouped["a"].compiler_bytes) == (8_010_000_000, 80_000_000)
    assert grouped["a"].bound == "compute" and grouped["b"].bound == "compute"  # what holds most of their time
    roof_axes, time_axes = panels(profile_figure(profile, depth=1))
    assert len(scatter(roof_axes).get_offsets()) == 4
    assert "grouped to depth 1" in roof_axes.get_title()
    assert sum(bar_percents(time_axes)) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="^depth:"):
        timed_rows(profile, depth=0)


def test_roofs_drawn_with_their_sources_when_known():
    figure = profile_figure(synthetic_profile())
    roof_axes, _ = panels(figure)
    assert roof_lines(roof_axes) == {"compute-roof", "memory-roof", "ridge"}
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend[:3] == ["compute roof: 1.00 TFLOP/s (datasheet)", "memory roof: 100.00 GB/s (datasheet)",
                          "ridge: 10 FLOPs/byte"]
    assert {"compute-bound", "memory-bound", "overhead-bound", "bound unknown"} <= set(legend)
    title = figure.get_suptitle()
    assert title.startswith("Toy forward on Test GPU: step 10 ms") and "MFU 90.0%" in title


def test_no_roofs_where_the_profile_has_none():
    peaks = DevicePeaks("Mystery", {}, None, "none")
    figure = profile_figure(synthetic_profile(peaks))
    roof_axes, _ = panels(figure)
    assert roof_lines(roof_axes) == set()
    assert not any("roof" in text.get_text() for text in figure.legends[0].get_texts())
    assert "MFU" not in figure.get_suptitle()
    bandwidth_only = DevicePeaks("Half known", {}, 1e11, "none")
    assert roof_lines(panels(profile_figure(synthetic_profile(bandwidth_only)))[0]) == {"memory-roof"}


@pytest.mark.parametrize("depth", [None, 1])
def test_the_legend_covers_no_panel_label_nor_the_title(depth):
    figure = profile_figure(synthetic_profile(), depth=depth)
    renderer = figure.canvas.get_renderer()
    legend = figure.legends[0].get_window_extent(renderer)
    covered = [axes.get_tightbbox(renderer) for axes in figure.axes]  # each panel with its ticks and labels
    covered += [text.get_window_extent(renderer) for axes in figure.axes for text in axes.texts]
    covered.append(figure._suptitle.get_window_extent(renderer))
    assert not any(legend.overlaps(box) for box in covered)
    assert legend.y0 >= 0 and legend.y1 <= figure.bbox.height


def test_the_stored_h200_conv_profile_is_written(tmp_path):
    events = instruction_events(FIXTURES / "conv_bf16.xplane.pb")
    report = program_report(_conv_program(), "conv", "gpu", "NVIDIA H200")
    profile = profile_of(report, program_events(events, report.compiler.hlo_text), 20, 1e-3)
    written = plot_profile(profile, tmp_path / "conv")
    assert written == [tmp_path / "conv.png", tmp_path / "conv.svg"]
    assert all(path.stat().st_size > 10_000 for path in written)
    figure = profile_figure(profile)
    roof_axes, time_axes = panels(figure)
    with_flops = [row for row in profile.rows if row.seconds and row.compiler_flops]
    assert len(scatter(roof_axes).get_offsets()) == len(with_flops) >= 1
    assert roof_lines(roof_axes) == {"compute-roof", "memory-roof", "ridge"}  # the H200's datasheet
    assert roof_axes.texts[0].get_text() == "Conv"
    assert sum(bar_percents(time_axes)) == pytest.approx(100.0)
    assert "on NVIDIA H200: step 1 ms" in figure.get_suptitle()
