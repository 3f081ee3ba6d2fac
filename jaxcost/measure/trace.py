"""Device time from a ``jax.profiler`` trace: the kernels on every device plane, whatever their lines are called.

GPU traces put kernels on lines named after CUDA streams (``Stream #14(Memset,Compute)`` on jax 0.11),
older ones also on an ``XLA Modules`` line that spans them; TPU traces on ``XLA Ops``. Kernels are read
from the most detailed lines a plane has, so no time is counted twice. ``busy`` is the kernels' summed
duration; ``span`` runs from the first kernel's start to the last one's end; what the span holds beyond
the busy time is the device waiting (for the host to launch the next kernel, or for the next call). A kernel that
ran in a command buffer (a CUDA graph) names the buffer, not its instruction: ``command_buffer_instructions``
finds the instruction in the program's schedule.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jaxcost.hlo.text import Instruction, Module
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
    #: The command buffer (a CUDA graph) the kernel ran in, as the trace names it (``command_buffer_1``); the trace
    #: gives that name as the kernel's ``hlo_op`` too, until ``command_buffer_instructions`` finds its instruction.
    command_buffer: str = ""
    #: The device's model as its plane names it (a GPU's ``gpu_device_name``: ``NVIDIA H200``), or "".
    device_kind: str = ""

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
        device_kind = _device_kind(plane)
        for line in _kernel_lines(plane):
            for event in line.events:
                kernels.append(_kernel(event, plane.name, device_kind, line.name, dict(event.stats)))
    return DeviceTrace(tuple(sorted(kernels, key=lambda kernel: kernel.start_ns)), calls)


def _device_kind(plane: Any) -> str:
    """The device's model as its plane's stats name it (a GPU's ``gpu_device_name``), or ""."""
    return str(dict(getattr(plane, "stats", ())).get("gpu_device_name", ""))


def _kernel(event: Any, plane: str, device_kind: str, line: str, stats: dict) -> Kernel:
    """One event as a ``Kernel``, with the instruction (``hlo_op``) and program (``hlo_module``) it ran for; a TPU's
    ``XLA Ops`` line names each op after its instruction."""
    hlo_op = str(stats.get("hlo_op", "")) or (event.name if line == "XLA Ops" else "")
    return Kernel(event.name, plane, line, float(event.start_ns), float(event.duration_ns), hlo_op,
                  str(stats.get("hlo_module", "")), hlo_op if "cuda_graph_id" in stats else "", device_kind)


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
        device_kind = _device_kind(plane)
        for line in plane.lines:
            events.extend(_line_instructions(plane.name, device_kind, line))
    return tuple(sorted(on_device or on_host, key=lambda kernel: kernel.start_ns))


def _line_instructions(plane: str, device_kind: str, line: Any) -> list[Kernel]:
    """The events of one line that ran an instruction."""
    found = []
    other_names: set[str] = set()
    for event in line.events:
        name = event.name
        if name in other_names:
            continue
        kernel = _kernel(event, plane, device_kind, line.name, dict(event.stats))
        if kernel.hlo_op:
            found.append(kernel)
        else:
            other_names.add(name)
    return found


#: Opcodes that launch no kernel: they name, group or re-view buffers.
NO_KERNEL = frozenset({"parameter", "constant", "get-tuple-element", "tuple", "bitcast"})


def kernel_name(instruction: str) -> str:
    """The name of the kernel XLA:GPU emits for a fusion: the instruction's, ``.`` and ``-`` made ``_``
    (``loop_add_fusion.3`` runs as ``loop_add_fusion_3``)."""
    return re.sub(r"\W", "_", instruction)


def command_buffer_instructions(events: Sequence[Kernel], module: Module) -> tuple[Kernel, ...]:
    """``events`` with each kernel that ran in a command buffer given its instruction as ``hlo_op``.

    XLA:GPU runs stretches of a program's schedule as CUDA graphs, and the trace names the graph
    (``command_buffer_1``) where it names an instruction elsewhere. A graph's kernels run in the schedule's order,
    one device's at a time: each XLA kernel is the next fusion that runs it (a fusion's kernel carries its name,
    or that of an identical fusion whose compiled kernel it reuses); the library kernels between two fusions
    (cuBLAS, memsets, copies) are the calls the schedule holds between them, one call each of its memsets and then
    its kernel. Kernels that match nothing keep the graph's name."""
    resolved = list(events)
    for device in dict.fromkeys(event.device for event in events):
        _match_device([index for index, event in enumerate(events) if event.device == device], resolved, module)
    return tuple(resolved)


def _match_device(indices: list[int], resolved: list[Kernel], module: Module) -> None:
    """Match the command buffers' kernels of one device (``resolved[i]`` for ``i`` in ``indices``, in start order)
    to the instructions they ran, in place."""
    in_graphs = [index for index in indices if resolved[index].command_buffer]
    if not in_graphs:
        return
    launched_alone = {resolved[index].hlo_op for index in indices if not resolved[index].command_buffer}
    schedule = [instruction for instruction in module.entry.instructions
                if instruction.opcode not in NO_KERNEL and instruction.name not in launched_alone]
    fusions = [position for position, instruction in enumerate(schedule) if instruction.opcode == "fusion"]
    named = {kernel_name(instruction.name): instruction for instruction in module.entry.instructions
             if instruction.opcode == "fusion"}
    signatures: dict[str, tuple] = {}

    def signature(fusion: Instruction) -> tuple:
        if fusion.name not in signatures:
            signatures[fusion.name] = _fusion_signature(fusion, module)
        return signatures[fusion.name]

    library: list[int] = []
    previous, cursor = -1, 0  # the last matched fusion's place in the schedule; the next fusion to try
    for index in in_graphs:
        kernel = resolved[index]
        owner = named.get(kernel.name)
        if owner is None:
            library.append(index)
            continue
        found = next((step for step in range(cursor, cursor + len(fusions))
                      if _runs(schedule[fusions[step % len(fusions)]], owner, signature)), None)
        if found is None:
            continue
        position = fusions[found % len(fusions)]
        resolved[index] = replace(kernel, hlo_op=schedule[position].name)
        _match_library(library, resolved, _between(schedule, previous, position))
        library, previous, cursor = [], position, found + 1
    _match_library(library, resolved, _between(schedule, previous, len(schedule)))


def _runs(fusion: Instruction, owner: Instruction, signature: Callable[[Instruction], tuple]) -> bool:
    """Whether ``fusion`` runs the kernel named after ``owner``: its own, or one it reuses."""
    return fusion.name == owner.name or signature(fusion) == signature(owner)


def _fusion_signature(fusion: Instruction, module: Module) -> tuple:
    """What a fusion's kernel is made of, names aside: XLA:GPU compiles identical fusions once."""
    called = module.computations[fusion.called("calls")[0]]
    operands = module.entry.by_name()
    return (fusion.attribute("kind"), str(fusion.shape), tuple(str(operands[name].shape) for name in fusion.operands),
            tuple((inner.opcode, str(inner.shape)) for inner in called.instructions))


def _between(schedule: list[Instruction], previous: int, position: int) -> list[Instruction]:
    """The instructions other than fusions after ``previous`` and before ``position`` in the schedule, around its
    end when ``position`` comes first (the next call)."""
    start = previous + 1
    stretch = schedule[start:position] if position > previous else schedule[start:] + schedule[:position]
    return [instruction for instruction in stretch if instruction.opcode != "fusion"]


def _match_library(indices: list[int], resolved: list[Kernel], calls: list[Instruction]) -> None:
    """Give the library kernels at ``indices`` the library ``calls`` they ran: all to a lone call; else one call each
    of its memsets and then its kernel, when that makes as many as there are calls."""
    if not indices or not calls:
        return
    groups: list[list[int]] = [[]]
    for index in indices:
        groups[-1].append(index)
        if not resolved[index].name.startswith("Memset"):
            groups.append([])
    groups = [group for group in groups if group]
    if len(calls) == 1:
        groups = [indices]
    elif len(groups) != len(calls):
        return
    for group, call in zip(groups, calls, strict=True):
        for index in group:
            resolved[index] = replace(resolved[index], hlo_op=call.name)
