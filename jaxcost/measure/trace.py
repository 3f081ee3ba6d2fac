"""Device time from a ``jax.profiler`` trace: the kernels on every device plane, whatever their lines are called.

GPU traces put kernels on lines named after CUDA streams (``Stream #14(Memset,Compute)`` on jax 0.11),
older ones also on an ``XLA Modules`` line that spans them; TPU traces on ``XLA Ops``. Kernels are read
from the most detailed lines a plane has, so no time is counted twice. ``busy`` is the kernels' summed
duration; ``span`` runs from the first kernel's start to the last one's end; what the span holds beyond
the busy time is the device waiting (for the host to launch the next kernel, or for the next call).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaxcost.reports.text import format_seconds, table

#: Lines of a device plane, most detailed first: each is a list of name prefixes; the first that matches wins.
KERNEL_LINES = (("Stream",), ("XLA Ops",), ("XLA Modules",))


@dataclass(frozen=True)
class Kernel:
    """One kernel execution: its name, the device and line it ran on, start and duration in nanoseconds."""

    name: str
    device: str
    line: str
    start_ns: float
    duration_ns: float
    hlo_op: str = ""
    hlo_module: str = ""

    @property
    def end_ns(self) -> float:
        return self.start_ns + self.duration_ns


@dataclass(frozen=True)
class DeviceTrace:
    """The kernels of a trace; per-call figures when the number of ``calls`` traced is known."""

    kernel_events: tuple[Kernel, ...]
    calls: int | None = None

    @property
    def kernels(self) -> int:
        """How many kernels ran."""
        return len(self.kernel_events)

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(kernel.device for kernel in self.kernel_events))

    @property
    def device(self) -> str:
        """The device plane the kernels ran on (``/device:GPU:0``), or how many there were."""
        devices = self.devices
        return devices[0] if len(devices) == 1 else f"{len(devices)} devices"

    @property
    def busy_seconds(self) -> float:
        """Summed kernel durations."""
        return sum(kernel.duration_ns for kernel in self.kernel_events) / 1e9

    @property
    def span_seconds(self) -> float:
        """First kernel start to last kernel end."""
        if not self.kernel_events:
            return 0.0
        start = min(kernel.start_ns for kernel in self.kernel_events)
        return (max(kernel.end_ns for kernel in self.kernel_events) - start) / 1e9

    @property
    def idle_seconds(self) -> float:
        """Time inside the span with no kernel running: the device waiting for work."""
        return self.span_seconds - self.busy_seconds

    @property
    def busy_seconds_per_call(self) -> float | None:
        return self.busy_seconds / self.calls if self.calls else None

    @property
    def span_seconds_per_call(self) -> float | None:
        return self.span_seconds / self.calls if self.calls else None

    def busy_seconds_by_kernel(self) -> Counter:
        """Summed duration of each kernel name, in seconds."""
        totals: Counter = Counter()
        for kernel in self.kernel_events:
            totals[kernel.name] += kernel.duration_ns / 1e9  # type: ignore[assignment]  # float counts (typeshed#3438)
        return totals

    def __repr__(self) -> str:
        calls = f", {self.calls} calls" if self.calls else ""
        return (f"DeviceTrace({self.device!r}, {self.kernels} kernels{calls}, "
                f"busy {format_seconds(self.busy_seconds)}, span {format_seconds(self.span_seconds)})")

    def __str__(self) -> str:
        counts = Counter(kernel.name for kernel in self.kernel_events)
        busy = self.busy_seconds or 1.0
        rows = [[name[:60], counts[name], format_seconds(seconds), f"{seconds / busy:.1%}"]
                for name, seconds in self.busy_seconds_by_kernel().most_common(10)]
        return f"{self!r}\n" + table(["kernel", "count", "busy", "share"], rows)


def _kernel_lines(plane: Any) -> list[Any]:
    lines = list(plane.lines)
    for prefixes in KERNEL_LINES:
        chosen = [line for line in lines if line.name.startswith(prefixes)]
        if chosen:
            return chosen
    return lines


def _profile(path_or_profile: Any) -> Any:
    if not isinstance(path_or_profile, (str, Path)):
        return path_or_profile
    path = Path(path_or_profile)
    if path.is_dir():
        found = sorted(path.rglob("*.xplane.pb"))
        if not found:
            raise ValueError(f"path_or_profile: no .xplane.pb file under {str(path)!r}")
        path = found[-1]
    if not path.is_file():
        raise ValueError(f"path_or_profile: no such trace file {str(path)!r}")
    from jax.profiler import ProfileData

    return ProfileData.from_file(str(path))


def read_trace(path_or_profile: Any, calls: int | None = None) -> DeviceTrace:
    """The kernels of a ``jax.profiler`` trace: an ``.xplane.pb`` file, the folder a trace was written to, or
    a ``ProfileData``. ``calls`` is how many calls of the program the trace holds (for per-call figures)."""
    if calls is not None and (isinstance(calls, bool) or not isinstance(calls, int) or calls < 1):
        raise ValueError(f"calls: must be a positive integer, got {calls!r}")
    kernels = []
    for plane in _profile(path_or_profile).planes:
        if not plane.name.startswith("/device:"):
            continue
        for line in _kernel_lines(plane):
            for event in line.events:
                stats = dict(event.stats)
                kernels.append(_kernel(event, plane.name, line.name, stats))
    return DeviceTrace(tuple(sorted(kernels, key=lambda kernel: kernel.start_ns)), calls)


def _kernel(event: Any, plane: str, line: str, stats: dict) -> Kernel:
    """One event as a ``Kernel``, with the instruction (``hlo_op``) and program (``hlo_module``) it ran for; a TPU's
    ``XLA Ops`` line names each op after its instruction."""
    hlo_op = str(stats.get("hlo_op", "")) or (event.name if line == "XLA Ops" else "")
    return Kernel(event.name, plane, line, float(event.start_ns), float(event.duration_ns), hlo_op,
                  str(stats.get("hlo_module", "")))


def instruction_events(path_or_profile: Any) -> tuple[Kernel, ...]:
    """Every execution of a compiled program's instructions in a ``jax.profiler`` trace (an ``.xplane.pb``, its
    folder, or a ``ProfileData``), each with the instruction it ran (``hlo_op``): a GPU's kernels (a cuDNN
    convolution may run as a memset and a kernel), a TPU's ``XLA Ops``; where no device plane has any (XLA:CPU
    runs on the host), the host threads' events of the instructions, one per execution. In start order.

    A host line holds many other events (dispatch, Python): an event name seen without an ``hlo_op`` is not read
    again, so a trace of a million events reads in about a second."""
    on_device: list[Kernel] = []
    on_host: list[Kernel] = []
    for plane in _profile(path_or_profile).planes:
        events = on_device if plane.name.startswith("/device:") else on_host
        for line in plane.lines:
            events.extend(_line_instructions(plane.name, line))
    return tuple(sorted(on_device or on_host, key=lambda kernel: kernel.start_ns))


def _line_instructions(plane: str, line: Any) -> list[Kernel]:
    """The events of one line that ran an instruction."""
    found = []
    other_names: set[str] = set()
    for event in line.events:
        name = event.name
        if name in other_names:
            continue
        kernel = _kernel(event, plane, line.name, dict(event.stats))
        if kernel.hlo_op:
            found.append(kernel)
        else:
            other_names.add(name)
    return found
