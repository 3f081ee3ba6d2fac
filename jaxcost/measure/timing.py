"""The benchmark loop: compile first, inputs on the device, warm up, K calls back to back then one block,
R repeats; median, min and spread; device-side kernel time from a profiler trace where there is one.

Timing each call with a block costs the dispatch and sync every call (on an H100 that under-reported
a bf16 conv by 30%); here the block comes once per K calls, with K chosen so one repeat lasts long
enough to dwarf dispatch.
"""

from __future__ import annotations

import contextlib
import functools
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcost.compiler import default_device, optimized_hlo, program_of, tuple_pointer_bytes
from jaxcost.hlo.program import recount
from jaxcost.measure.clocks import ClockSampler, ClockSamples
from jaxcost.measure.hardware import DevicePeaks, device_peaks, precision_for
from jaxcost.measure.roofline import RoofFigure, Utilization, mac_trap, pick_roof
from jaxcost.measure.trace import DeviceTrace, read_trace
from jaxcost.reports.performance import measurement_text
from jaxcost.reports.text import format_bytes, format_rate, format_seconds

if TYPE_CHECKING:
    from jaxcost.formulas import Mode

#: The share of a call's time that makes it overhead-bound: at half, the fixed cost of a call weighs as much
#: as the work.
OVERHEAD_SHARE = 0.5
#: What ``Measurement.as_dict`` holds beside the measured and clock-adjusted utilizations.
FIELDS = ("label", "seconds_median", "seconds_min", "seconds_max", "seconds_compile", "seconds_device",
          "calls_per_repeat", "repeats", "spread", "flops", "bytes_accessed", "flops_per_second", "bytes_per_second",
          "peak_flops_per_second", "peak_bytes_per_second", "compute_utilization", "memory_utilization", "bound",
          "precision", "precision_reason", "method", "cache_warning", "mac_trap", "seconds_device_span",
          "seconds_floor", "overhead_share", "roofline_seconds", "speed_of_light", "seconds_sustained",
          "clocks_reason")
METHOD = "back-to-back: {calls} calls dispatched, then one block, per repeat; median of {repeats} repeats"


@dataclass
class Measurement:
    """One benchmarked program: times in seconds, work from the recount, rates and utilizations."""

    label: str
    seconds_median: float
    seconds_min: float
    seconds_max: float
    seconds_compile: float
    calls_per_repeat: int
    repeats: int
    flops: int
    bytes_accessed: int
    macs: int
    peaks: DevicePeaks
    precision: str
    precision_reason: str
    working_set_bytes: int
    rotate: int
    measured_flops_per_second: float | None = None
    measured_bytes_per_second: float | None = None
    trace: DeviceTrace | None = field(default=None, repr=False)
    seconds_floor: float | None = None
    clocks: ClockSamples | None = field(default=None, repr=False)
    clocks_reason: str = ""

    def __repr__(self) -> str:
        return (f"Measurement({self.label!r}, {format_seconds(self.seconds_median)} median, "
                f"{format_rate(self.flops_per_second)}, {format_bytes(self.bytes_per_second)}/s)")

    def __str__(self) -> str:
        return measurement_text(self)

    @property
    def seconds_sustained(self) -> float:
        """How long the timed repeats ran back to back: the sustained figure (a trace is a short burst)."""
        return self.seconds_median * self.calls_per_repeat * self.repeats

    @property
    def clock_adjusted_utilization(self) -> Utilization | None:
        """Against the datasheet peaks scaled to the SM clock the GPU ran at (None where clocks were not sampled)."""
        if self.clocks is None:
            return None
        peak = self.peaks.peak(self.precision)
        return Utilization(self.flops, self.bytes_accessed, self.seconds_median,
                           self.clocks.clock_adjusted(peak) if peak else None, self.peaks.bytes_per_second)

    @property
    def seconds_device(self) -> float | None:
        """Kernel time per call on the device (summed kernel durations), from the profiler trace."""
        return self.trace.busy_seconds_per_call if self.trace else None

    @property
    def seconds_device_span(self) -> float | None:
        """First kernel start to last kernel end of the traced calls, per call."""
        return self.trace.span_seconds_per_call if self.trace else None

    @property
    def overhead_share(self) -> float | None:
        """The share of each call's time that is not the program's work: the device idle between kernels
        (from the trace), or else the time of a trivial program on the same device (``seconds_floor``)."""
        busy = self.trace.busy_seconds_per_call if self.trace is not None else None
        if busy is not None:
            return max(0.0, 1.0 - busy / self.seconds_median)
        if self.seconds_floor is not None:
            return min(1.0, self.seconds_floor / self.seconds_median)
        return None

    @property
    def method(self) -> str:
        return METHOD.format(calls=self.calls_per_repeat, repeats=self.repeats)

    @property
    def spread(self) -> float:
        """(max - min) / median of the repeats."""
        return (self.seconds_max - self.seconds_min) / self.seconds_median

    @property
    def utilization(self) -> Utilization:
        """Against the datasheet (or estimated) peaks."""
        return Utilization(self.flops, self.bytes_accessed, self.seconds_median, self.peaks.peak(self.precision),
                           self.peaks.bytes_per_second)

    @property
    def measured_utilization(self) -> Utilization:
        """Against the ceilings jaxcost measured on this device."""
        return Utilization(self.flops, self.bytes_accessed, self.seconds_median, self.measured_flops_per_second,
                           self.measured_bytes_per_second)

    @property
    def flops_per_second(self) -> float:
        return self.utilization.flops_per_second

    @property
    def bytes_per_second(self) -> float:
        return self.utilization.bytes_per_second

    @property
    def peak_flops_per_second(self) -> float | None:
        return self.utilization.peak_flops_per_second

    @property
    def peak_bytes_per_second(self) -> float | None:
        return self.utilization.peak_bytes_per_second

    @property
    def compute_utilization(self) -> float | None:
        return self.utilization.compute_utilization

    @property
    def memory_utilization(self) -> float | None:
        return self.utilization.memory_utilization

    @property
    def compute_roof(self) -> RoofFigure:
        """The roofline's FLOP/s: the datasheet (or estimated) peak of the precision, else the measured matmul
        ceiling."""
        return pick_roof(self.peaks.peak(self.precision), "estimate" if self.peaks.estimate else "datasheet",
                         self.measured_flops_per_second)

    @property
    def memory_roof(self) -> RoofFigure:
        """The roofline's bytes/s: the datasheet bandwidth, else the measured bandwidth ceiling (a CPU has no
        datasheet)."""
        return pick_roof(self.peaks.bytes_per_second, "datasheet", self.measured_bytes_per_second)

    @property
    def roofline(self) -> Utilization:
        """Against the roofline's roofs: ``compute_roof`` and ``memory_roof``."""
        return Utilization(self.flops, self.bytes_accessed, self.seconds_median, self.compute_roof.per_second,
                           self.memory_roof.per_second)

    @property
    def bound(self) -> str | None:
        """``overhead`` when at least half of each call is fixed per-call cost (halving the work would not
        halve the time: the layer's size does not set its speed); else ``compute`` or ``memory`` by its
        intensity against the ridge of the roofline."""
        if self.overhead_share is not None and self.overhead_share >= OVERHEAD_SHARE:
            return "overhead"
        return self.roofline.bound

    @property
    def roofline_seconds(self) -> float | None:
        """The time the roofline allows: the larger of flops / ``compute_roof`` and bytes / ``memory_roof``;
        None unless both roofs exist."""
        return self.roofline.roofline_seconds

    @property
    def speed_of_light(self) -> float | None:
        """Roofline time over measured time: 1.0 runs at the roof, 0.01 takes a hundred times longer."""
        roofline = self.roofline_seconds
        return roofline / self.seconds_median if roofline else None

    @property
    def fits_in_cache(self) -> bool | None:
        """Whether the working set, times the ``rotate`` input copies cycled through, fits in the last-level
        cache; None where the cache's size is unknown."""
        cache = self.peaks.last_level_cache_bytes
        return self.working_set_bytes * self.rotate <= cache if cache else None

    @property
    def cache_warning(self) -> str | None:
        cache = self.peaks.last_level_cache_bytes
        if self.rotate == 1 and cache is not None and self.fits_in_cache:
            return (f"the working set ({format_bytes(self.working_set_bytes)}) fits in the last-level cache "
                    f"({format_bytes(cache)}): bandwidth may be inflated; benchmark with rotate=N input copies")
        return None

    @property
    def mac_trap(self) -> str:
        return mac_trap(self.macs, self.seconds_median)

    def as_dict(self) -> dict[str, Any]:
        """Every figure of the measurement, JSON-ready."""
        result: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        result["measured_compute_utilization"] = self.measured_utilization.compute_utilization
        result["measured_memory_utilization"] = self.measured_utilization.memory_utilization
        result["compute_roof_flops_per_second"], result["compute_roof_source"] = self.compute_roof
        result["memory_roof_bytes_per_second"], result["memory_roof_source"] = self.memory_roof
        adjusted = self.clock_adjusted_utilization
        result["clocks"] = None if self.clocks is None or adjusted is None else {
            **self.clocks.as_dict(), "clock_adjusted_compute_utilization": adjusted.compute_utilization}
        return result


def concrete_arguments(argument: Any, seed: int) -> Any:
    """Device arrays for abstract arguments: random normals (small integers for integer dtypes), drawn on
    the host, so that no random-number program is compiled for each new shape."""
    generator = np.random.default_rng(seed)

    def make(leaf: Any) -> Any:
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            return jax.device_put(leaf)
        return jax.device_put(host_values(leaf.shape, leaf.dtype, generator))
    return jax.tree_util.tree_map(make, argument)


def executable_arguments(executable: Any, seed: int = 0) -> Any:
    """Device arrays for a compiled program's own arguments (``concrete_arguments`` of its ``args_info``)."""
    abstract = jax.tree_util.tree_map(lambda info: jax.ShapeDtypeStruct(info.shape, info.dtype),
                                      executable.args_info[0])
    return concrete_arguments(abstract, seed)


def host_values(shape: tuple[int, ...], dtype: Any, generator: np.random.Generator) -> np.ndarray:
    """Values for an argument, on the host: random normals, or small integers (-8 to 7) for an integer dtype."""
    if jnp.issubdtype(dtype, jnp.integer):
        return generator.integers(-8, 8, shape).astype(dtype)
    return generator.standard_normal(shape, np.float32).astype(dtype)


def run_calls(executable: Any, argument_sets: list[tuple], calls: int) -> float:
    """Seconds that ``calls`` back-to-back calls take, cycling through ``argument_sets``, until the last is done."""
    start = time.perf_counter()
    out = None
    for call in range(calls):
        out = executable(*argument_sets[call % len(argument_sets)])
    jax.block_until_ready(out)
    return time.perf_counter() - start


def traced(executable: Any, argument_sets: list[tuple], calls: int, reader: Callable[[str], Any]) -> Any:
    """What ``reader`` reads from the ``jax.profiler`` trace of ``calls`` back-to-back calls (its folder)."""
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            run_calls(executable, argument_sets, calls)
        return reader(folder)


def device_trace(executable: Any, argument_sets: list[tuple], calls: int) -> DeviceTrace | None:
    """The kernels of ``calls`` back-to-back calls, from a ``jax.profiler`` trace; None where the profiler
    cannot start or records no device kernels (the CPU)."""
    try:
        trace = traced(executable, argument_sets, calls, lambda folder: read_trace(folder, calls))
    except Exception:  # a profiler that cannot start on this backend, or wrote no trace
        return None
    return trace if trace.kernels else None


def calls_per_repeat(executable: Any, argument_sets: list[tuple], seconds_per_repeat: float) -> int:
    """How many back-to-back calls make one repeat last ``seconds_per_repeat``, from a calibration; then one
    untimed repeat, so that caches, clocks and thread pools settle."""
    for arguments in argument_sets:
        jax.block_until_ready(executable(*arguments))  # warm-up, and every copy resident on the device
    calibration_calls = 3
    one_call = run_calls(executable, argument_sets, calibration_calls) / calibration_calls
    calls = max(1, min(100_000, math.ceil(seconds_per_repeat / max(one_call, 1e-7))))
    run_calls(executable, argument_sets, calls)
    return calls


def timed_repeats(executable: Any, argument_sets: list[tuple], calls: int, repeats: int,
                  seconds_budget: float) -> list[float]:
    """Seconds per call of each repeat of ``calls`` back-to-back calls: ``repeats`` of them, at least 3 and as
    many as ``seconds_budget`` allows."""
    times: list[float] = []
    deadline = time.perf_counter() + seconds_budget
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() < deadline):
        times.append(run_calls(executable, argument_sets, calls) / calls)
    return times


def check_loop(repeats: int, rotate: int, seconds_per_repeat: float, seconds_budget: float) -> None:
    """The benchmark loop's settings, each a clear error when wrong."""
    for name, value in (("repeats", repeats), ("rotate", rotate)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    if not seconds_per_repeat > 0 or not seconds_budget > 0:
        raise ValueError("seconds_per_repeat, seconds_budget: must be positive")


def benchmark(spec_or_function: Any, *args: Any, mode: Mode = "forward", repeats: int = 9,
              seconds_per_repeat: float = 0.2, seconds_budget: float = 10.0, rotate: int = 1,
              peaks: DevicePeaks | None = None, precision: str = "default", dtype: str | None = None,
              ceilings: tuple[float, float] | None = None, label: str = "", target: str | None = None) -> Measurement:
    """Time a layer spec or ``function(*args)`` on the default device.

    ``rotate`` input copies are cycled through to keep the working set out of the cache;
    ``ceilings`` are measured (FLOP/s, bytes/s) to report utilization against as well. A ``target`` (a TPU
    slice compiled here) cannot be timed: the error says where its counts are.
    """
    from jaxcost.formulas import analytic, check_mode

    if target is not None:
        raise ValueError(f"target: {target} is compiled here and nothing runs there, so there is nothing to time; "
                         f"its counts are jaxcost.compiled(..., target={target!r}) and compare(..., target=...), "
                         "and a sweep with a target records them for a grid")
    check_mode(mode)
    check_loop(repeats, rotate, seconds_per_repeat, seconds_budget)
    function, abstract, spec = program_of(spec_or_function, args, mode)
    start = time.perf_counter()
    executable = jax.jit(function).lower(*abstract).compile()
    seconds_compile = time.perf_counter() - start
    program = recount(optimized_hlo(executable), tuple_pointer_bytes())
    argument_sets = [concrete_arguments(abstract, index) for index in range(rotate)]
    calls = calls_per_repeat(executable, argument_sets, seconds_per_repeat)
    device = default_device()
    with ClockSampler(device.id) if device.platform == "gpu" else contextlib.nullcontext() as sampler:
        times = timed_repeats(executable, argument_sets, calls, repeats, seconds_budget)
    peaks = peaks or device_peaks(device.device_kind, device.platform)
    dtype = dtype or (spec.dtype if spec is not None else dominant_dtype(abstract))
    key, reason = precision_for(peaks, dtype, precision)
    macs = analytic(spec, mode).macs if spec is not None else program.flops // 2
    return Measurement(
        label=label or (spec.describe() if spec is not None else getattr(function, "__name__", "function")),
        seconds_median=statistics.median(times), seconds_min=min(times), seconds_max=max(times),
        seconds_compile=seconds_compile,
        trace=device_trace(executable, argument_sets, calls) if device.platform != "cpu" else None,
        clocks=sampler.samples if sampler else None,
        clocks_reason=sampler.reason if sampler else f"not sampled on a {device.platform} (NVIDIA GPUs only)",
        seconds_floor=floor_seconds(),
        calls_per_repeat=calls, repeats=len(times), flops=program.flops, bytes_accessed=program.bytes_accessed,
        macs=macs, peaks=peaks, precision=key, precision_reason=reason,
        working_set_bytes=program.bytes_arguments_and_results, rotate=rotate,
        measured_flops_per_second=ceilings[0] if ceilings else None,
        measured_bytes_per_second=ceilings[1] if ceilings else None)


def floor_seconds(seconds_per_repeat: float = 0.005, repeats: int = 5) -> float:
    """The time of a call that does next to nothing (a scalar add) on the default device: the fixed cost of
    dispatching a compiled program, timed the way every benchmark is, beside it. The least of the repeats
    is taken: a busy machine only ever adds to it."""
    executable, argument_sets = _floor_program(str(default_device()))
    calls = max(1, math.ceil(seconds_per_repeat / max(run_calls(executable, argument_sets, 10) / 10, 1e-7)))
    return min(run_calls(executable, argument_sets, calls) / calls for _ in range(repeats))


@functools.cache
def _floor_program(device: str) -> tuple[Any, list[tuple]]:
    """The trivial program, compiled and warmed up once per device."""
    executable = jax.jit(lambda x: x + 1.0).lower(jax.ShapeDtypeStruct((), jnp.float32)).compile()
    argument_sets = [(jnp.zeros((), jnp.float32),)]
    jax.block_until_ready(executable(*argument_sets[0]))
    return executable, argument_sets


def dominant_dtype(abstract: tuple) -> str:
    leaves = jax.tree_util.tree_leaves(abstract)
    if not leaves:
        return "float32"
    largest = max(leaves, key=lambda leaf: math.prod(leaf.shape))
    return jnp.dtype(largest.dtype).name


def measure_ceilings(dtype: str = "float32", matmul_size: int | None = None, triad_elements: int | None = None,
                     seconds_budget: float = 5.0) -> tuple[Measurement, Measurement]:
    """This device's empirical roofs: a large square matmul (FLOP/s) and a STREAM-style triad a*x + y (bytes/s)."""
    platform = default_device().platform
    size = matmul_size or (2048 if platform == "cpu" else 8192)
    elements = triad_elements or (2**25 if platform == "cpu" else 2**28)
    matrix = jax.ShapeDtypeStruct((size, size), jnp.dtype(dtype))
    vector = jax.ShapeDtypeStruct((elements,), jnp.float32)
    matmul = benchmark(jnp.matmul, matrix, matrix, dtype=dtype, repeats=5, seconds_budget=seconds_budget,
                       label=f"matmul {size}^3 {dtype}")
    triad = benchmark(lambda x, y: 3.0 * x + y, vector, vector, repeats=5, seconds_budget=seconds_budget,
                      label=f"triad 3*x+y, {elements:,} float32")
    return matmul, triad
