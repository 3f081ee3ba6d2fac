"""A step-time model of a (sharded) program, per device: the time its flops take at the peak, its memory
traffic at the memory bandwidth, and its collectives' wire bytes at the interconnect's bandwidth per
direction. With perfect overlap the step takes the longest of the three (a lower bound); with none, their
sum (an upper bound). Model and hardware FLOPs utilization follow for a measured or an assumed step time.

Assumptions: every device runs the same program (SPMD); the three kinds of work use separate resources
and overlap as well as the program allows; collectives run as rings over the device's links at full
bandwidth (no latency term, no contention with other traffic); the peaks are datasheet figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jaxcost.reports.text import format_bytes, format_count, table

if TYPE_CHECKING:
    from jaxcost.compiler import CompilerCost
    from jaxcost.measure.hardware import DevicePeaks
    from jaxcost.measure.interconnect import Interconnect


@dataclass(frozen=True)
class StepTime:
    """Per device and per step: the work, the rates it is held against, and the resulting times."""

    flops: int
    bytes_accessed: int
    wire_bytes: int
    flops_per_second: float
    bytes_per_second: float
    link_bytes_per_second: float | None
    #: Flops the model needs, recomputation excluded (for MFU); the compiled flops when not given.
    model_flops: int
    precision: str = ""

    @property
    def compute_seconds(self) -> float:
        return self.flops / self.flops_per_second

    @property
    def memory_seconds(self) -> float:
        return self.bytes_accessed / self.bytes_per_second

    @property
    def communication_seconds(self) -> float | None:
        """Wire bytes over the link bandwidth; None when there is traffic and no known interconnect."""
        if not self.wire_bytes:
            return 0.0
        return self.wire_bytes / self.link_bytes_per_second if self.link_bytes_per_second else None

    def _times(self) -> dict[str, float]:
        times = {"compute": self.compute_seconds, "memory": self.memory_seconds}
        if self.communication_seconds is not None:
            times["communication"] = self.communication_seconds
        return times

    @property
    def lower_bound_seconds(self) -> float:
        """Perfect overlap: the longest of compute, memory and communication."""
        return max(self._times().values())

    @property
    def upper_bound_seconds(self) -> float | None:
        """No overlap: their sum (None when the communication time is unknown)."""
        if self.communication_seconds is None:
            return None
        return sum(self._times().values())

    @property
    def dominant(self) -> str:
        """What bounds the step: "compute", "memory" or "communication"."""
        times = self._times()
        return max(times, key=times.__getitem__)

    def mfu(self, step_seconds: float) -> float:
        """Model FLOPs utilization: the model's flops per second over the peak, for a step of ``step_seconds``."""
        return self.model_flops / (_positive_seconds(step_seconds) * self.flops_per_second)

    def hfu(self, step_seconds: float) -> float:
        """Hardware FLOPs utilization: every flop the device performs (recomputation included) over the peak."""
        return self.flops / (_positive_seconds(step_seconds) * self.flops_per_second)

    def __repr__(self) -> str:
        return (f"StepTime(lower_bound_seconds={self.lower_bound_seconds:.3e}, "
                f"upper_bound_seconds={self.upper_bound_seconds:.3e}, dominant={self.dominant!r})")

    def __str__(self) -> str:
        communication = self.communication_seconds
        link = format_bytes(self.link_bytes_per_second) + "/s" if self.link_bytes_per_second else "unknown"
        rows = [
            ["compute", format_count(self.flops), f"{format_count(self.flops_per_second)}/s {self.precision}".strip(),
             _seconds(self.compute_seconds)],
            ["memory", format_bytes(self.bytes_accessed), format_bytes(self.bytes_per_second) + "/s",
             _seconds(self.memory_seconds)],
            ["communication", format_bytes(self.wire_bytes), link,
             "unknown" if communication is None else _seconds(communication)],
        ]
        best, worst = self.lower_bound_seconds, self.upper_bound_seconds
        if worst is None:
            bounds = (f"step time: at least {_seconds(best)} ({self.dominant}-bound without the communication, "
                      "whose link is unknown: give an interconnect)")
        else:
            bounds = (f"step time: {_seconds(best)} with perfect overlap ({self.dominant}-bound) to "
                      f"{_seconds(worst)} with none")
        return "\n".join([table(["per device", "work", "rate", "time"], rows), bounds,
                          f"at the lower bound: MFU {self.mfu(best):.1%}, HFU {self.hfu(best):.1%}"])


def _positive_seconds(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"step_seconds: must be a positive number of seconds, got {value!r}")
    return float(value)


def _seconds(value: float) -> str:
    return f"{value * 1e3:.3f} ms" if value >= 1e-3 else f"{value * 1e6:.2f} µs"


def step_time(compiler: CompilerCost, peaks: DevicePeaks, link: Interconnect | None = None,
              precision: str = "bf16", model_flops: int | None = None) -> StepTime:
    """The step-time model of a compiled program, per device, against ``peaks`` at ``precision`` (a key of
    ``peaks.flops_per_second``) and the interconnect ``link``. ``model_flops`` (per device) excludes
    recomputation for MFU; the compiled flops stand in when it is not given."""
    rate = peaks.peak(precision)
    if not rate:
        raise ValueError(f"precision: {peaks.name} has no {precision!r} peak; it has "
                         f"{', '.join(sorted(peaks.flops_per_second)) or 'none (give overrides)'}")
    if not peaks.bytes_per_second:
        raise ValueError(f"peaks: {peaks.name} has no memory bandwidth; give one with overrides")
    records = compiler.collectives
    wire = [record.wire_bytes_total for record in records if record.wire_bytes_total is not None]
    if len(wire) < len(records):
        raise ValueError("program: a collective runs inside a loop of unknown trip count or a conditional's branch; "
                         "its wire bytes per step are unknown")
    return StepTime(compiler.flops, compiler.bytes_accessed, sum(wire), rate, peaks.bytes_per_second,
                    link.bytes_per_second if link else None,
                    compiler.flops if model_flops is None else model_flops, precision)
