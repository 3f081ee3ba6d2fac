"""Device time from real profiler traces (an NVIDIA H200, jax 0.11.2: kernels on ``Stream #N(...)`` lines, no
``XLA Modules`` line), and the regimes a measurement is put in: compute, memory or overhead."""

import json
from pathlib import Path

import jax.numpy as jnp
import pytest
from jax.profiler import ProfileData

import jaxcost as jc
from jaxcost.measure.timing import OVERHEAD_SHARE
from jaxcost.reports.performance import notes

FIXTURES = Path(__file__).parent / "fixtures"
TRACED = {entry["name"]: entry for entry in json.loads((FIXTURES / "gpu_traces.json").read_text())["traces"]}


@pytest.mark.parametrize(("name", "kernels", "busy_milliseconds"), [
    ("matmul_bf16", 40, 29.23), ("conv_bf16", 60, 6.04), ("depthwise_bf16", 60, 5.91)])
def test_a_real_trace_gives_its_kernels_and_busy_time(name, kernels, busy_milliseconds):
    trace = jc.read_trace(FIXTURES / f"{name}.xplane.pb", calls=TRACED[name]["calls"])
    assert trace.kernels == kernels and trace.device == "/device:GPU:0"
    assert round(trace.busy_seconds * 1e3, 2) == busy_milliseconds
    assert trace.busy_seconds_per_call == pytest.approx(trace.busy_seconds / 20)


@pytest.mark.parametrize("name", sorted(TRACED))
def test_the_span_per_call_is_what_the_file_holds(name):
    """First start to last end over every event of the device plane, read here without jaxcost."""
    profile = ProfileData.from_file(str(FIXTURES / f"{name}.xplane.pb"))
    events = [event for plane in profile.planes if plane.name.startswith("/device:") for line in plane.lines
              for event in line.events]
    span_ns = max(e.start_ns + e.duration_ns for e in events) - min(e.start_ns for e in events)
    trace = jc.read_trace(profile, calls=TRACED[name]["calls"])
    assert trace.span_seconds_per_call == pytest.approx(span_ns / 1e9 / 20, rel=0.01)
    assert 0 < trace.idle_seconds < trace.span_seconds
    # the same calls, timed as a loop just before the trace: the span per call is within 7 % of it (a short
    # burst of 20 calls runs at a higher clock than a sustained loop)
    assert trace.span_seconds_per_call == pytest.approx(TRACED[name]["loop_seconds_per_call"], rel=0.07)


def test_the_conv_trace_names_its_kernels():
    trace = jc.read_trace(FIXTURES / "conv_bf16.xplane.pb", calls=20)
    by_kernel = trace.busy_seconds_by_kernel()
    assert max(by_kernel, key=by_kernel.get).startswith("sm90_xmma_fprop_implicit_gemm")
    assert "sm90_xmma_fprop" in str(trace) and "60 kernels, 20 calls" in repr(trace)


class _Event:
    def __init__(self, name, start_ns, duration_ns):
        self.name, self.start_ns, self.duration_ns, self.stats = name, start_ns, duration_ns, []


class _Line:
    def __init__(self, name, events):
        self.name, self.events = name, [_Event(*event) for event in events]


class _Plane:
    def __init__(self, name, lines):
        self.name, self.lines = name, lines


class _Profile:
    def __init__(self, planes):
        self.planes = planes


def test_the_most_detailed_lines_are_read_and_nothing_twice():
    tpu = _Profile([_Plane("/host:CPU", [_Line("XLA Ops", [("host", 0, 999)])]),
                    _Plane("/device:TPU:0", [_Line("XLA Modules", [("jit_f", 0, 100)]),
                                             _Line("XLA Ops", [("fusion", 10, 40), ("convolution", 50, 45)])])])
    trace = jc.read_trace(tpu)
    assert trace.kernels == 2 and trace.busy_seconds == pytest.approx(85e-9)
    assert trace.span_seconds == pytest.approx(85e-9) and trace.busy_seconds_per_call is None
    older_gpu = _Profile([_Plane("/device:GPU:0", [_Line("XLA Modules", [("jit_f", 0, 100)]),
                                                   _Line("Stream #7(Compute)", [("gemm", 5, 60)])])])
    assert [kernel.name for kernel in jc.read_trace(older_gpu).kernel_events] == ["gemm"]
    two_devices = _Profile([_Plane(f"/device:GPU:{i}", [_Line("Stream #1", [("k", i, 10)])]) for i in (0, 1)])
    assert jc.read_trace(two_devices).device == "2 devices"


def test_bad_trace_arguments(tmp_path):
    with pytest.raises(ValueError, match="^path_or_profile: no such trace file"):
        jc.read_trace(tmp_path / "missing.xplane.pb")
    with pytest.raises(ValueError, match="^path_or_profile: no .xplane.pb file under"):
        jc.read_trace(tmp_path)
    with pytest.raises(ValueError, match="^calls: must be a positive integer"):
        jc.read_trace(FIXTURES / "matmul_bf16.xplane.pb", calls=0)


@pytest.mark.cpu
def test_a_tiny_layer_is_overhead_bound_and_a_conv_is_not():
    # the floor is the least of its repeats (a busy machine only adds to it): the layer's quietest of three runs
    # is set against it, so that another process on the machine does not make a trivial layer look like work
    tiny = min((jc.benchmark(jc.dense((1, 8), 8), repeats=3, seconds_per_repeat=0.05) for _ in range(3)),
               key=lambda measurement: measurement.seconds_median / measurement.seconds_floor)
    assert tiny.bound == "overhead" and tiny.overhead_share >= OVERHEAD_SHARE
    assert any("overhead-bound" in line and "larger batch" in line for line in notes([tiny]))
    conv = jc.benchmark(jc.standard_conv((8, 56, 56, 64), 64, 3), repeats=3, seconds_per_repeat=0.05,
                        ceilings=(1e11, 1e10))
    assert conv.bound in ("compute", "memory") and conv.overhead_share < 0.05
    assert conv.roofline_seconds == pytest.approx(max(conv.flops / conv.peak_flops_per_second,
                                                      conv.bytes_accessed / 1e10))
    assert conv.speed_of_light == pytest.approx(conv.roofline_seconds / conv.seconds_median)


def test_a_share_above_100_percent_comes_with_its_reason():
    x = jnp.ones((256,), jnp.float32)
    measurement = jc.benchmark(lambda a: a * 2.0, x, repeats=3, seconds_per_repeat=0.02, ceilings=(1e3, 1e3))
    assert measurement.measured_utilization.memory_utilization > 1
    compute, bandwidth = [line for line in notes([measurement]) if "above 100 %" in line]
    assert "of measured" in compute and "matmul ceiling" in compute and "cache" not in compute
    assert "BW of measured" in bandwidth and "served from cache" in bandwidth
