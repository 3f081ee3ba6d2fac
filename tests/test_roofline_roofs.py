"""The roofline time needs a compute roof and a memory roof (the datasheet's, else the measured ceiling's), and
every share above 100 % is explained by its own reason; measurements built by hand, nothing timed."""

import re

import pytest

from jaxcost.measure.hardware import DevicePeaks
from jaxcost.measure.roofline import RoofFigure, Utilization
from jaxcost.measure.timing import Measurement
from jaxcost.reports.performance import measurements_table, notes

MEBIBYTE = 2**20
#: Powers of two throughout, so that every time and share below is exact.
GPU = DevicePeaks("test GPU", {"fp32": 2.0**40}, 2.0**36, "test datasheet", last_level_cache_bytes=MEBIBYTE)
CPU = DevicePeaks("test CPU", {"fp32": 2.0**40}, None, "test estimate", last_level_cache_bytes=MEBIBYTE,
                  estimate=True, platform="cpu")
UNKNOWN = DevicePeaks("test accelerator", {}, None, "not in the table")


def _measurement(peaks: DevicePeaks, ceilings: tuple[float, float] | None, flops: int = 2**32,
                 bytes_accessed: int = 2**30, seconds: float = 2.0**-4, working_set_bytes: int = MEBIBYTE // 2,
                 rotate: int = 1) -> Measurement:
    return Measurement(
        label="layer", seconds_median=seconds, seconds_min=seconds, seconds_max=seconds, seconds_compile=1.0,
        calls_per_repeat=10, repeats=3, flops=flops, bytes_accessed=bytes_accessed, macs=flops // 2, peaks=peaks,
        precision="fp32", precision_reason="float32 on the float32 units", working_set_bytes=working_set_bytes,
        rotate=rotate, measured_flops_per_second=ceilings[0] if ceilings else None,
        measured_bytes_per_second=ceilings[1] if ceilings else None)


def _cells(measurement: Measurement) -> dict[str, str]:
    """The table's one row, by column."""
    header, rule, row = measurements_table([measurement]).splitlines()
    spans = [match.span() for match in re.finditer("-+", rule)]
    return {header[start:end].strip(): row[start:end].strip() for start, end in spans}


def test_one_roof_alone_gives_no_roofline_time():
    assert Utilization(2**32, 2**30, 1.0, 2.0**40, None).roofline_seconds is None
    assert Utilization(2**32, 2**30, 1.0, None, 2.0**36).roofline_seconds is None
    assert Utilization(2**32, 2**30, 1.0, 2.0**40, 2.0**36).roofline_seconds == 2.0**-6  # bytes / bandwidth


@pytest.mark.parametrize(("peaks", "ceilings", "compute_roof", "memory_roof", "roofline_seconds", "cell", "bound"), [
    # the datasheet's roofs, though measured ceilings exist: 2^30 B / 2^36 B/s
    (GPU, (2.0**39, 2.0**35), RoofFigure(2.0**40, "datasheet"), RoofFigure(2.0**36, "datasheet"), 2.0**-6, "25.0%",
     "memory"),
    # no datasheet bandwidth (a CPU): the estimated peak and the measured bandwidth, 2^30 B / 2^35 B/s; memory-bound
    # at 4 FLOPs/B under their ridge of 32 (the two measured ceilings alone put their ridge at 2)
    (CPU, (2.0**36, 2.0**35), RoofFigure(2.0**40, "estimate"), RoofFigure(2.0**35, "measured"), 2.0**-5, "50.0%",
     "memory"),
    # no peaks at all: both measured ceilings; 2^32 flops / 2^37 FLOP/s beats 2^30 B / 2^36 B/s
    (UNKNOWN, (2.0**37, 2.0**36), RoofFigure(2.0**37, "measured"), RoofFigure(2.0**36, "measured"), 2.0**-5,
     "50.0%", "compute"),
    # no bandwidth anywhere: no roofline time, not flops / peak
    (CPU, None, RoofFigure(2.0**40, "estimate"), RoofFigure(None, None), None, "?", None),
], ids=["datasheet", "measured bandwidth", "measured ceilings only", "no bandwidth"])
def test_the_roofline_time_comes_from_both_roofs(peaks, ceilings, compute_roof, memory_roof, roofline_seconds, cell,
                                                 bound):
    measurement = _measurement(peaks, ceilings)
    assert measurement.compute_roof == compute_roof and measurement.memory_roof == memory_roof
    assert measurement.roofline_seconds == roofline_seconds
    assert measurement.speed_of_light == (None if roofline_seconds is None else roofline_seconds / 2.0**-4)
    assert measurement.bound == bound
    assert _cells(measurement)["of roofline"] == cell
    record = measurement.as_dict()
    assert (record["roofline_seconds"], record["speed_of_light"]) == (
        measurement.roofline_seconds, measurement.speed_of_light)
    assert (record["compute_roof_flops_per_second"], record["compute_roof_source"]) == compute_roof
    assert (record["memory_roof_bytes_per_second"], record["memory_roof_source"]) == memory_roof


@pytest.mark.parametrize(("peaks", "ceilings", "line"), [
    (GPU, (2.0**39, 2.0**35), "of roofline: compute roof the datasheet fp32 peak 1.10 TFLOP/s; "
                              "memory roof the datasheet bandwidth 68.72 GB/s"),
    (CPU, (2.0**36, 2.0**35), "of roofline: compute roof the estimated fp32 peak 1.10 TFLOP/s; "
                              "memory roof the measured bandwidth ceiling 34.36 GB/s (the datasheet has none)"),
    (UNKNOWN, (2.0**37, 2.0**36), "of roofline: compute roof the measured matmul ceiling 137.44 GFLOP/s "
                                  "(no fp32 peak); memory roof the measured bandwidth ceiling 68.72 GB/s "
                                  "(the datasheet has none)"),
    (CPU, None, "of roofline is ?, a roofline time needs both roofs: compute roof the estimated fp32 peak "
                "1.10 TFLOP/s; memory roof none (no datasheet bandwidth, no measured ceiling)"),
], ids=["datasheet", "measured bandwidth", "measured ceilings only", "no bandwidth"])
def test_the_notes_say_where_each_roof_comes_from(peaks, ceilings, line):
    assert notes([_measurement(peaks, ceilings)])[0] == line


def test_rows_on_different_roofs_are_named():
    lines = notes([_measurement(CPU, None), _measurement(GPU, None), _measurement(CPU, None)])
    assert lines[0].startswith("of roofline (rows 1, 3) is ?, a roofline time needs both roofs: ")
    assert lines[1].startswith("of roofline (rows 2): compute roof the datasheet fp32 peak")


@pytest.mark.parametrize(("peaks", "working_set_bytes", "rotate", "reason"), [
    (GPU, MEBIBYTE // 2, 1, "the working set (524.29 kB) fits in the last-level cache (1.05 MB): the bytes were "
                            "served from cache, not memory; benchmark with rotate=N input copies"),
    (GPU, MEBIBYTE // 2, 4, "the working set (2.10 MB in 4 input copies) exceeds the last-level cache (1.05 MB), yet "
                            "bytes moved faster than the roof: what one instruction writes and the next reads was "
                            "served from cache"),
    (DevicePeaks("test GPU", {"fp32": 2.0**40}, 2.0**36, "test datasheet"), MEBIBYTE // 2, 1,
     "the bytes were served from cache, not memory: the working set (524.29 kB) against a last-level cache of "
     "unknown size; benchmark with rotate=N input copies"),
], ids=["fits", "exceeds", "cache unknown"])
def test_a_bandwidth_share_above_100_percent_is_blamed_on_the_cache(peaks, working_set_bytes, rotate, reason):
    # 2^30 B in 2^-8 s: 2^38 B/s, 4x the datasheet's 2^36 and 2x the measured 2^37; 2^40 FLOP/s is the peak itself
    measurement = _measurement(peaks, (2.0**41, 2.0**37), seconds=2.0**-8, working_set_bytes=working_set_bytes,
                               rotate=rotate)
    cells = _cells(measurement)
    assert (cells["of peak"], cells["of measured"]) == ("100.0%", "50.0%")
    assert (cells["BW of peak"], cells["BW of measured"], cells["of roofline"]) == ("400.0%*", "200.0%*", "400.0%*")
    # the one line for all three cells, and the cache warning not said twice
    assert notes([measurement])[1:] == [
        f"1. layer: BW of peak 400.0%*, BW of measured 200.0%*, of roofline 400.0%* above 100 %: {reason}"]


def test_a_compute_share_above_the_measured_matmul_ceiling_is_not_blamed_on_the_cache():
    # 2^32 flops in 2^-8 s: 2^40 FLOP/s, twice the measured ceiling of 2^39, a quarter of the estimated 2^42;
    # its 524.29 kB working set fits in the cache, which is said on a line of its own
    peaks = DevicePeaks("test CPU", {"fp32": 2.0**42}, None, "test estimate", last_level_cache_bytes=MEBIBYTE,
                        estimate=True, platform="cpu")
    measurement = _measurement(peaks, (2.0**39, 2.0**40), bytes_accessed=2**26, seconds=2.0**-8)
    cells = _cells(measurement)
    assert (cells["of peak"], cells["of measured"], cells["of roofline"]) == ("25.0%", "200.0%*", "25.0%")
    assert notes([measurement])[1:] == [
        "1. layer: of measured 200.0%* above 100 %: the measured matmul ceiling (549.76 GFLOP/s) is below what this "
        "reached (1.10 TFLOP/s): the ceiling under-measures this device's compute, it is no hard limit",
        "1. layer: the working set (524.29 kB) fits in the last-level cache (1.05 MB): bandwidth may be inflated; "
        "benchmark with rotate=N input copies"]


def test_each_starred_share_has_its_own_reason():
    # 2^32 flops and 2^30 B in 2^-8 s against no peaks: the measured 2^39 FLOP/s and 2^37 B/s are both beaten, and
    # the roofline (on the same two ceilings) is beaten by both roofs
    measurement = _measurement(UNKNOWN, (2.0**39, 2.0**37), seconds=2.0**-8)
    assert _cells(measurement)["of roofline"] == "200.0%*"
    assert notes([measurement])[1:] == [
        "1. layer: of measured 200.0%*, of roofline 200.0%* above 100 %: the measured matmul ceiling "
        "(549.76 GFLOP/s) is below what this reached (1.10 TFLOP/s): the ceiling under-measures this device's "
        "compute, it is no hard limit",
        "1. layer: BW of measured 200.0%*, of roofline 200.0%* above 100 %: the bytes were served from cache, not "
        "memory: the working set (524.29 kB) against a last-level cache of unknown size; benchmark with rotate=N "
        "input copies"]


def test_a_share_above_an_estimated_peak_blames_the_estimate():
    measurement = _measurement(CPU, None, seconds=2.0**-10)  # 2^42 FLOP/s against the estimated 2^40
    (line,) = [line for line in notes([measurement]) if "above 100 %" in line]
    assert line == ("1. layer: of peak 400.0%* above 100 %: the estimated fp32 peak (1.10 TFLOP/s) is below what this "
                    "reached (4.40 TFLOP/s): the estimate is low (a clock or FLOPs per cycle under-read)")
