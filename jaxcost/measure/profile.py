"""Where a model's time goes: the compiled program timed in the benchmark loop, then a traced burst whose
instruction executions become each instruction's device time, and each instruction's time its rows' (as its
flops divide between them, as its bytes do).

Instructions that run at once (XLA:CPU runs independent ones on several threads; a GPU on several streams) split
the time they share evenly, so the rows add up to the time the device was busy, never more. Kernels a GPU ran in a
command buffer are first matched to their instructions (``measure.trace.command_buffer_instructions``); the time of
those still named after no instruction of the program is a row of its own, and what the traced step holds beyond
the busy time is the device idle, another. The trace gives the shares; the benchmark loop the step's
time: a profiler costs time of its own (XLA:CPU runs 1.5-2x slower traced), so the traced times are scaled to the
loop's step, and the ratio is kept (``trace_ratio``).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jaxcost.hlo.unread import unread_bytes
from jaxcost.measure.hardware import DevicePeaks, device_peaks, precision_for
from jaxcost.measure.roofline import Utilization, pick_roof
from jaxcost.measure.timing import (
    calls_per_repeat,
    check_loop,
    executable_arguments,
    timed_repeats,
    traced,
)
from jaxcost.measure.trace import Kernel, command_buffer_instructions, instruction_events
from jaxcost.models.rows import LAYOUT, Row
from jaxcost.reports.model import IDLE
from jaxcost.reports.text import format_seconds

if TYPE_CHECKING:
    from jaxcost.formulas import Mode

#: The share of a row's time that makes it overhead-bound: at half, fixed cost weighs as much as the work.
OVERHEAD_SHARE = 0.5
#: Below this fraction of its roofline time a row is overhead-bound whatever its instructions' floor: neither
#: compute nor bandwidth limits it (a GPU's library kernel of a 1x4 matrix takes microseconds for nanoseconds of work,
#: several times the trace's cheapest kernel, a copy).
OVERHEAD_SPEED_OF_LIGHT = 0.01
#: Calls in the traced burst, at most (at least one): enough to average over, few enough to read quickly.
BURST_CALLS = 20
#: The row of a profiled step's time that ran instructions the program does not have (another program's, or
#: kernels of a command buffer that matched none of its instructions).
UNATTRIBUTED = "not in the program"

@dataclass(frozen=True)
class OverRoof:
    """A top-level instruction whose counted bytes, over its measured time per call, exceed the memory roof:
    ``bytes_unread`` of them are bytes XLA counts and its kernels do not read from memory (``why``); where the rest
    still exceeds the roof, those reads were served by the cache."""

    name: str
    bytes_accessed: int
    seconds: float
    bytes_unread: int
    why: str
    roof_bytes_per_second: float

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_accessed / self.seconds

    @property
    def from_cache(self) -> bool:
        """Whether the bytes it can have read still moved faster than the roof."""
        return (self.bytes_accessed - self.bytes_unread) / self.seconds > self.roof_bytes_per_second

    @property
    def reason(self) -> str:
        """Why it beat the roof, in words."""
        reasons = [self.why] if self.bytes_unread else []
        if self.from_cache:
            reasons.append("reads served by the cache, not memory")
        return "; ".join(reasons)


def exclusive_seconds(events: Sequence[Kernel]) -> Counter:
    """Each instruction's (``hlo_op``) time in seconds, where the time several events share is split evenly
    between them: the values add up to the union of the events' intervals."""
    edges = sorted([(event.start_ns, 1, index) for index, event in enumerate(events)] +
                   [(event.end_ns, -1, index) for index, event in enumerate(events)])
    seconds: Counter = Counter()
    running: set[int] = set()
    previous = edges[0][0] if edges else 0.0
    for time_ns, change, index in edges:
        if running and time_ns > previous:
            share = (time_ns - previous) / len(running) / 1e9
            for active in running:
                seconds[events[active].hlo_op] += share  # type: ignore[assignment]  # float counts (typeshed#3438)
        previous = time_ns
        if change > 0:
            running.add(index)
        else:
            running.discard(index)
    return seconds


def module_name(hlo_text: str) -> str:
    """The name a program's events carry as ``hlo_module`` (``jit_apply``)."""
    match = re.match(r"\s*HloModule\s+([^\s,]+)", hlo_text)
    return match.group(1) if match else ""


def program_events(events: Sequence[Kernel], hlo_text: str) -> list[Kernel]:
    """The events of the program ``hlo_text`` (those that name another program left out)."""
    name = module_name(hlo_text)
    return [event for event in events if not event.hlo_module or event.hlo_module == name]


@dataclass
class ModelProfile:
    """A model's (or a function's) rows with where its time went, per call of the program: ``seconds_step`` the
    benchmark loop's median; ``seconds_busy`` the traced instructions' share of it (overlaps counted once) and
    ``seconds_idle`` the rest; ``seconds_traced`` the traced step's own span, first instruction to last.
    ``report.rows`` carry each row's time (``Row.seconds``) and what follows from it; the last row is the device
    idle."""

    report: Any
    seconds_step: float
    seconds_busy: float
    seconds_idle: float
    seconds_traced: float
    calls_traced: int
    instruction_seconds: Counter
    row_seconds: Counter
    executions: Counter
    peaks: DevicePeaks
    precision: str
    unattributed: tuple[str, ...] = ()
    measured_flops_per_second: float | None = None
    measured_bytes_per_second: float | None = None
    #: The traced time, per call, of the instructions in ``unattributed``.
    seconds_unattributed: float = 0.0

    def __repr__(self) -> str:
        return (f"ModelProfile({self.report.name!r}, {self.report.mode}, step {format_seconds(self.seconds_step)}, "
                f"busy {format_seconds(self.seconds_busy)}, idle {format_seconds(self.seconds_idle)})")

    def __str__(self) -> str:
        from jaxcost.reports.profile import profile_text

        return profile_text(self)

    @property
    def rows(self) -> list[Row]:
        return self.report.rows

    @property
    def trace_ratio(self) -> float:
        """The traced step's span over the loop's step: above 1 where the profiler slowed the program down."""
        return self.seconds_traced / self.seconds_step

    @property
    def peak_flops_per_second(self) -> float | None:
        """The compute roof: the datasheet (or estimated) peak of the precision that ran, else the measured one."""
        return self.roofs[0].per_second

    @property
    def roofs(self) -> tuple[Any, Any]:
        """The roofline's compute and memory roofs (``measure.roofline.pick_roof``)."""
        return (pick_roof(self.peaks.peak(self.precision), "estimate" if self.peaks.estimate else "datasheet",
                          self.measured_flops_per_second),
                pick_roof(self.peaks.bytes_per_second, "datasheet", self.measured_bytes_per_second))

    def over_roof(self) -> list[OverRoof]:
        """The instructions whose counted bytes moved faster than the memory roof allows, fastest first, each with
        the bytes XLA counts that its kernels do not read."""
        bandwidth = self.roofs[1].per_second
        if not bandwidth:
            return []
        module = self.report.compiler.recount.module
        found = []
        for op in self.report.compiler.recount.ops:
            seconds = self.instruction_seconds.get(op.name, 0.0)
            if seconds and op.cost.bytes_accessed / seconds > bandwidth:
                unread, why = unread_bytes(op.instruction, op.cost.bytes_read, module)
                found.append(OverRoof(op.name, op.cost.bytes_accessed, seconds, unread, why, bandwidth))
        return sorted(found, key=lambda over: -over.bytes_per_second)

    def rows_over_roofline(self) -> dict[str, list[OverRoof]]:
        """The rows measured faster than the roofline allows (``Row.speed_of_light`` above 1), each with its
        instructions over the memory roof where its own bytes beat that roof (none where it beat the compute roof
        alone)."""
        over, bandwidth = self.over_roof(), self.roofs[1].per_second
        ops = {op.name: op for op in self.report.compiler.recount.ops}
        rows_of = {instruction.name: _shares(self.report, ops, instruction.name) for instruction in over}
        return {row.path: [instruction for instruction in over if row.path in rows_of[instruction.name]]
                if bandwidth and (row.bytes_per_second or 0.0) > bandwidth else []
                for row in self.rows if row.speed_of_light is not None and row.speed_of_light > 1}

    @property
    def model_flops(self) -> int:
        """What the model needs: the analytic flops of its rows (those with a formula)."""
        return self.report.flops

    @property
    def mfu(self) -> float | None:
        """Model FLOPs utilization: the model's analytic flops per step over the step time, against the peak."""
        peak = self.peak_flops_per_second
        return self.model_flops / (self.seconds_step * peak) if peak else None

    @property
    def hfu(self) -> float | None:
        """Hardware FLOPs utilization: the compiled program's true flops (recomputation included) per step over
        the step time, against the peak."""
        peak = self.peak_flops_per_second
        return self.report.compiler_flops / (self.seconds_step * peak) if peak else None


def attribute_time(report: Any, events: Sequence[Kernel], seconds_by_name: Counter,
                   calls: int) -> tuple[Counter, Counter, Counter, list[str]]:
    """Per call: each top-level instruction's time and executions, each row's time (from the events' exclusive
    ``seconds_by_name``); and the instructions named in the events that the program does not have."""
    owners = report.compiler.recount.module.owners()
    by_instruction: Counter = Counter()
    executions: Counter = Counter()
    missing = sorted({event.hlo_op for event in events if event.hlo_op not in owners})
    for name, seconds in seconds_by_name.items():
        if name in owners:
            by_instruction[owners[name]] += seconds / calls  # type: ignore[assignment]  # float counts (typeshed#3438)
    for event in events:
        if event.hlo_op in owners:
            executions[owners[event.hlo_op]] += 1 / calls  # type: ignore[assignment]  # float counts (typeshed#3438)
    return by_instruction, executions, _by_row(report, by_instruction, divided=True), missing


def _shares(report: Any, ops: dict[str, Any], name: str) -> Counter:
    """How the top-level instruction ``name`` (its record in ``ops``) divides between rows
    (``models.rows.Placement.shares``)."""
    return report.placement.shares(ops[name]) if name in ops and report.placement else Counter({LAYOUT: 1})


def _by_row(report: Any, by_instruction: Counter, divided: bool) -> Counter:
    """Per-instruction figures by row: ``divided`` between an instruction's rows as its flops are (time), or
    whole in each of them (executions)."""
    ops = {op.name: op for op in report.compiler.recount.ops}
    by_row: Counter = Counter()
    for name, amount in by_instruction.items():
        shares = _shares(report, ops, name)
        weight = sum(shares.values())
        for row, share in shares.items():
            in_row = amount * share / weight if divided else amount
            by_row[row] += in_row  # type: ignore[assignment]  # float counts (typeshed#3438)
    return by_row


def fill_rows(profile: ModelProfile, fixed_seconds: float) -> None:
    """Each row's measured figures, and the idle row. A row is ``overhead``-bound when its instruction executions,
    at ``fixed_seconds`` each (what the cheapest instruction of the trace took: all fixed cost), make at least half
    its time, or when it runs at under ``OVERHEAD_SPEED_OF_LIGHT`` of its roofline; else ``compute`` or ``memory``
    against the roofline's ridge."""
    report = profile.report
    executions = _by_row(report, profile.executions, divided=False)
    compute, memory = profile.roofs
    step = profile.seconds_busy + profile.seconds_idle
    for row in report.rows:
        seconds = profile.row_seconds.get(row.path, 0.0)
        row.seconds, row.time_share = seconds, seconds / step if step else None
        if not seconds:
            continue
        utilization = Utilization(row.compiler_flops, row.compiler_bytes, seconds, compute.per_second,
                                  memory.per_second)
        row.flops_per_second, row.bytes_per_second = utilization.flops_per_second, utilization.bytes_per_second
        row.roofline_seconds = utilization.roofline_seconds
        row.speed_of_light = row.roofline_seconds / seconds if row.roofline_seconds is not None else None
        overhead = (executions[row.path] * fixed_seconds >= OVERHEAD_SHARE * seconds or
                    (row.speed_of_light is not None and row.speed_of_light < OVERHEAD_SPEED_OF_LIGHT))
        row.bound = "overhead" if overhead else utilization.bound
    if profile.seconds_unattributed:
        report.rows.append(Row(f"({UNATTRIBUTED})", UNATTRIBUTED, seconds=profile.seconds_unattributed,
                               time_share=profile.seconds_unattributed / step if step else None))
    report.rows.append(Row(f"({IDLE})", IDLE, seconds=profile.seconds_idle,
                           time_share=profile.seconds_idle / step if step else None))


def profile(model_or_function: Any, *inputs: Any, mode: Mode = "forward", rngs: Any = None, target: Any = None,
            repeats: int = 9, seconds_per_repeat: float = 0.2, seconds_budget: float = 10.0,
            peaks: DevicePeaks | None = None, ceilings: tuple[float, float] | None = None,
            **kwargs: Any) -> ModelProfile:
    """Where the time of ``model_or_function(*inputs)`` (a flax model, linen or nnx, or a function; with
    ``mode="train"`` its training step) goes, row by row, on the default device: one compile serves the counts
    (``jaxcost.analyze``) and the runs; the benchmark loop times the step (``seconds_step``), then a traced burst
    of up to ``BURST_CALLS`` calls gives each instruction's device time, and each row its share. ``ceilings``
    (measured FLOP/s, bytes/s) stand in for the roofs a datasheet lacks (a CPU's bandwidth)."""
    from jaxcost.compiler import runnable
    from jaxcost.models.analysis import analyze

    if target is not None:
        raise ValueError(f"target: {target} is compiled here and nothing runs there, so there is no time to "
                         "profile; jaxcost.analyze(..., target=...) gives its counts")
    check_loop(repeats, 1, seconds_per_repeat, seconds_budget)
    with runnable():
        report = analyze(model_or_function, *inputs, mode=mode, rngs=rngs, **kwargs)
    executable = report.compiler.executable
    argument_sets = [executable_arguments(executable)]
    calls = calls_per_repeat(executable, argument_sets, seconds_per_repeat)
    seconds_step = statistics.median(timed_repeats(executable, argument_sets, calls, repeats, seconds_budget))
    burst = max(1, min(calls, BURST_CALLS))
    events = program_events(traced(executable, argument_sets, burst, instruction_events), report.compiler.hlo_text)
    return profile_of(report, events, burst, seconds_step, peaks, ceilings)


def profile_of(report: Any, events: Sequence[Kernel], calls: int, seconds_step: float | None = None,
               peaks: DevicePeaks | None = None, ceilings: tuple[float, float] | None = None) -> ModelProfile:
    """The profile of a program analyzed as ``report`` from the instruction ``events`` of ``calls`` calls (a traced
    burst, or a trace from elsewhere), with ``seconds_step`` the step's time (by default the traced step's own).
    The peak is that of the precision its largest argument's type runs at."""
    if not events:
        raise ValueError("trace: no instruction of the program ran in it")
    events = command_buffer_instructions(events, report.compiler.recount.module)
    span = (max(event.end_ns for event in events) - min(event.start_ns for event in events)) / 1e9 / calls
    seconds_step = seconds_step or span
    scale = seconds_step / span  # the trace's shares of the loop's step
    seconds_by_name = Counter({name: seconds * scale for name, seconds in exclusive_seconds(events).items()})
    by_instruction, executions, by_row, missing = attribute_time(report, events, seconds_by_name, calls)
    device_kind = report.compiler.device_kind or next((event.device_kind for event in events if event.device_kind), "")
    peaks = peaks or device_peaks(device_kind, report.compiler.platform)
    precision, _ = precision_for(peaks, report.compiler.recount.module.dominant_dtype())
    busy = sum(seconds_by_name.values()) / calls
    result = ModelProfile(report, seconds_step, busy, max(seconds_step - busy, 0.0), span, calls, by_instruction,
                          by_row, executions, peaks, precision, tuple(missing), *(ceilings or (None, None)))
    result.seconds_unattributed = sum(seconds_by_name[name] for name in missing) / calls
    fill_rows(result, min(event.duration_ns for event in events) * scale / 1e9)
    return result
