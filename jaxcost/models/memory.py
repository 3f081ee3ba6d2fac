"""What fills device memory during one step: XLA's buffer assignment of the compiled step, its peak, and the
values live at the peak, each with the module row and the role (parameters, gradients, saved for backward,
...) it has. Compile only: nothing is allocated, inputs may be ``jax.ShapeDtypeStruct``. A step compiled elsewhere
(a GPU machine's dump) is read the same way: lowered here, its compiled program and buffer assignment taken from
XLA's files.
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax

from jaxcost import targets
from jaxcost.compiler import CompilerCost, check_arguments, compile_function, dumping_to
from jaxcost.formulas import Mode, check_mode
from jaxcost.hlo.allocations import BufferAssignment, Value, read_dump
from jaxcost.hlo.text import Instruction, Module
from jaxcost.models.analysis import (
    ModelReport,
    Recorder,
    abstract_variables,
    count_elements,
    is_nnx_module,
    random_keys,
    sharded_arguments,
    split_collections,
    training_step,
)
from jaxcost.models.dumps import dump_folder, kept_arguments, read_stored, write_step_file
from jaxcost.models.residuals import is_backward, jax_residuals
from jaxcost.models.rows import LAYOUT, LOOSE_PARAMS, Attribution, Row, build_rows, key_name, scope_calls
from jaxcost.models.values import LiveValue
from jaxcost.reports.memory import memory_text
from jaxcost.specs import describe_value

#: What a value in memory is for.
ROLES = ("parameters", "optimizer state", "model state", "inputs", "outputs", "gradients", "saved for backward",
         "temporary")
#: The pytree path of a training step's output gradient among its arguments.
OUTPUT_GRADIENT = "output gradient/"
#: Instructions that pass a buffer (or part of it) on without computing: a value read through them is read by
#: their users. A TPU moves data with asynchronous copies and slices.
_PASSING = frozenset(("bitcast", "get-tuple-element", "tuple", "copy", "opt-barrier", "reshape", "transpose", "slice",
                      "dynamic-slice", "copy-start", "copy-done", "slice-start", "slice-done", "async-start",
                      "async-update", "async-done"))
#: How a step's program is made from its function and arguments (``donate``: the argument numbers whose buffers the
#: outputs may reuse): ``compile_function``, or ``dumps.Stored.lower`` for a program compiled elsewhere.
Compile = Callable[..., CompilerCost]


@dataclass
class MemoryReport:
    """Device memory of one compiled step, per device.

    ``peak_bytes`` is what the step holds at once: arguments, outputs and temporaries, less the argument
    buffers an output reuses. The temporaries are the larger of XLA's ``memory_analysis()`` figure and the buffer
    assignment's: on the CPU they are the same; XLA:TPU's figure adds scratch it reserves beside the assignment
    (``temp_unassigned_bytes``) and leaves out small tables the assignment places. ``live`` are the values live
    at ``peak_step`` of the schedule, where their bytes (``live_peak_bytes``) are highest; they add up to it
    exactly, and so do ``bytes_by_row()`` and ``bytes_by_role()``.
    """

    name: str
    mode: Mode
    platform: str
    device_kind: str
    arguments_bytes: int
    outputs_bytes: int
    aliased_bytes: int
    temp_bytes: int
    constants_bytes: int
    generated_code_bytes: int
    live: list[LiveValue]
    live_peak_bytes: int
    peak_step: int
    peak_instruction: str
    saved: list[LiveValue]
    model: ModelReport
    assignment: BufferAssignment = field(repr=False)
    #: XLA's own ``memory_analysis()`` of the same executable (``*_in_bytes`` fields; empty where unavailable).
    xla: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    #: Bytes of the parameters at their dtypes, and of the optimizer's state, as the formulas give them.
    formulas: dict[str, int] = field(default_factory=dict)
    #: What JAX's autodiff saves for the backward pass before XLA's optimizations (``models.residuals``), of the
    #: whole step: under a mesh, its shapes are the global ones.
    residuals: list[LiveValue] = field(default_factory=list)

    @property
    def peak_bytes(self) -> int:
        """Arguments + outputs + temporaries − aliased: the device memory the step needs."""
        return self.arguments_bytes + self.outputs_bytes + self.temp_bytes - self.aliased_bytes

    @property
    def temp_unassigned_bytes(self) -> int:
        """Temporaries XLA's ``memory_analysis()`` counts beyond those its buffer assignment places (negative:
        fewer)."""
        return self.xla.get("temp_size_in_bytes", 0) - self.assignment.bytes_by_kind()["temporary"] if self.xla else 0

    @property
    def required_bytes(self) -> int:
        """What must fit in the device's memory: the peak and the program's code (a TPU keeps it there too)."""
        return self.peak_bytes + self.generated_code_bytes

    @property
    def held_not_live_bytes(self) -> int:
        """Bytes reserved at the peak but holding no live value then (outputs not yet written, temporary
        space another point of the schedule needs)."""
        return self.peak_bytes - self.live_peak_bytes

    def bytes_by_row(self) -> Counter:
        """Live bytes at the peak by module row."""
        return _sum_by(self.live, "row")

    def bytes_by_role(self) -> Counter:
        """Live bytes at the peak by role (``ROLES``)."""
        return _sum_by(self.live, "role")

    def residuals_by_row(self) -> Counter:
        """Bytes JAX's autodiff saves for the backward pass, by module row (a training step)."""
        return _sum_by(self.residuals, "row")

    @property
    def residuals_bytes(self) -> int:
        """Bytes JAX's autodiff saves for the backward pass, before XLA recomputes, widens or lays out any."""
        return sum(value.bytes for value in self.residuals)

    def saved_by_row(self) -> Counter:
        """Bytes the forward pass keeps for the backward pass, by module row (a training step), in any memory space."""
        return _sum_by(self.saved, "row")

    @property
    def saved_bytes(self) -> int:
        """Bytes the forward pass keeps for the backward pass, in the device's memory and (a TPU) on chip."""
        return sum(value.bytes for value in self.saved)

    @property
    def saved_on_chip_bytes(self) -> int:
        """Of ``saved_bytes``, those a TPU keeps in its on-chip memory rather than the device's."""
        return sum(value.bytes for value in self.saved if value.color != 0)

    def fits(self, capacity_bytes: int) -> bool:
        """Whether the step's ``required_bytes`` fit in ``capacity_bytes`` of device memory."""
        return self.required_bytes <= capacity_bytes

    def __repr__(self) -> str:
        return (f"MemoryReport({self.name!r}, mode={self.mode!r}, peak_bytes={self.peak_bytes:,}, "
                f"live_peak_bytes={self.live_peak_bytes:,})")

    def __str__(self) -> str:
        return memory_text(self)


def _sum_by(values: list[LiveValue], attribute_name: str) -> Counter:
    totals: Counter = Counter()
    for value in values:
        totals[getattr(value, attribute_name)] += value.bytes
    return totals


@dataclass(frozen=True)
class _Step:
    """A compiled step and what its arguments and results are."""

    compiler: CompilerCost
    argument_roles: list[tuple[str, str]]  # (role, pytree path) per flattened argument
    output_roles: list[tuple[str, str]]  # the same per flattened result
    model: ModelReport
    formulas: dict[str, int] = field(default_factory=dict)


def _leaves(tree: Any, role: str, prefix: str = "") -> list[tuple[str, str]]:
    return [(role, prefix + "/".join(key_name(step) for step in path))
            for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _linen_step(model: nn.Module, inputs: tuple, variables: Any, mode: Mode, keys: dict, kwargs: dict,
                optimizer: Any, name: str, compile_with: Compile) -> _Step:
    """Compile a linen model's forward pass, or its training step (with ``optimizer``, one that also updates the
    parameters and the optimizer's state, both donated as a training loop does)."""
    params, others = split_collections(variables)
    forward, step = training_step(model.apply, others, kwargs)
    recorder = Recorder()
    with nn.intercept_methods(recorder):  # the model's calls, recorded while its output's shape is found
        output = jax.eval_shape(forward, params, others, keys, *inputs)[0]
    inputs_roles = _leaves(keys, "inputs", "rngs/") + _leaves(inputs, "inputs", "inputs/")
    outputs = _leaves(output, "outputs", "outputs/") + _leaves(others, "model state")
    if mode == "forward":
        compiler = compile_with(lambda p, o, k, *xs: forward(p, o, k, *xs), params, others, keys, *inputs)
        argument_roles = _leaves(params, "parameters") + _leaves(others, "model state") + inputs_roles
        output_roles = outputs
    elif optimizer is None:
        compiler = compile_with(step, params, others, keys, output, *inputs)
        argument_roles = (_leaves(params, "parameters") + _leaves(others, "model state") + _leaves(keys, "inputs")
                          + _leaves(output, "inputs", OUTPUT_GRADIENT) + _leaves(inputs, "inputs", "inputs/"))
        output_roles = outputs + _leaves(params, "gradients") + _leaves(inputs, "gradients", "inputs/")
    else:
        state = jax.eval_shape(optimizer.init, params)
        compiler = compile_with(_optimizer_step(step, optimizer), params, state, others, keys, output, *inputs,
                                donate=(0, 1))
        argument_roles = (_leaves(params, "parameters") + _leaves(state, "optimizer state")
                          + _leaves(others, "model state") + _leaves(keys, "inputs")
                          + _leaves(output, "inputs", OUTPUT_GRADIENT) + _leaves(inputs, "inputs", "inputs/"))
        output_roles = outputs + _leaves(params, "parameters") + _leaves(state, "optimizer state")
    rows, placement = build_rows(recorder.calls, compiler, type(model).__name__, mode, params)
    report = ModelReport(name or type(model).__name__, mode, rows, compiler, count_elements(params),
                         collections={name: count_elements(values) for name, values in others.items()},
                         placement=placement)
    formulas = {"parameters": tree_bytes(params)}
    if optimizer is not None:
        formulas["optimizer state"] = tree_bytes(state)
    return _Step(compiler, argument_roles, output_roles, report, formulas)


def _optimizer_step(step: Callable, optimizer: Any) -> Callable:
    """``step`` followed by the optimizer's update of the parameters: returns the output, the updated
    collections, the new parameters and the optimizer's new state."""
    import optax

    def train_step(params: Any, state: Any, others: Any, keys: dict, output_gradient: Any, *inputs: Any) -> Any:
        y, updates, gradients = step(params, others, keys, output_gradient, *inputs)
        changes, state = optimizer.update(gradients[0], state, params)
        return y, updates, optax.apply_updates(params, changes), state

    return train_step


def _function_step(function: Callable, inputs: tuple, mode: Mode, compile_with: Compile) -> _Step:
    from jaxcost.models.analysis import _pullback_step, _step_arguments

    arguments = _step_arguments(function, inputs, mode)
    compiler = compile_with(_pullback_step(function) if mode == "train" else function, *arguments)
    roles = (_leaves(arguments[0], "inputs", OUTPUT_GRADIENT) + _leaves(arguments[1:], "inputs", "inputs/")
             if mode == "train" else _leaves(arguments, "inputs", "inputs/"))
    output_roles = _leaves(jax.eval_shape(function, *inputs), "outputs")
    if mode == "train":
        output_roles += _leaves(inputs, "gradients")
    rows, placement = build_rows(scope_calls(compiler), compiler, "", mode, {})
    report = ModelReport(getattr(function, "__name__", "function"), mode, rows, compiler, 0, placement=placement)
    return _Step(compiler, roles, output_roles, report)


def memory(model: Any, *inputs: Any, mode: str = "forward", optimizer: Any = None, variables: Any = None,
           rngs: Any = None, mesh: Any = None, target: str | None = None, name: str = "",
           dump_to: str | None = None, from_dump: str | None = None, **kwargs: Any) -> MemoryReport:
    """What fills device memory in one step of ``model`` (a ``flax.linen`` Module or a JAX function of
    ``inputs``), per device, from XLA's buffer assignment of the compiled step; nothing is allocated.

    ``mode="train"`` compiles a training step (forward, then the gradients); with ``optimizer`` (an optax
    ``GradientTransformation``) the step also updates the parameters and the optimizer's state, donated as a
    training loop donates them. ``mesh`` and ``target`` are as in ``jaxcost.analyze``. ``dump_to`` keeps XLA's
    files of the compile (optimized HLO, buffer assignment, live ranges) in that folder, which must hold no other
    program's, and writes ``jaxcost-step.json`` beside them (platform, device kind, jax version, XLA's
    ``memory_analysis()``, the size of a tuple's pointers); by default they go to a temporary folder.

    ``from_dump`` reads the step from such a folder written by the same call elsewhere (on a GPU machine), without
    compiling here: the step is traced and lowered here (the roles of its arguments and results, the arguments JAX
    keeps, the module calls and op_names that place values in rows), and the optimized program, buffer assignment
    and live ranges are the folder's. The platform, device kind and XLA's figures come from its
    ``jaxcost-step.json``; without one the platform is read from the files' names, the device kind and XLA's
    figures are left empty. It takes neither ``dump_to`` nor ``target``.
    """
    checked = check_mode(mode)
    if not inputs:
        raise ValueError("inputs: memory(model, *inputs) needs the model's inputs, as arrays or "
                         "jax.ShapeDtypeStruct(shape, dtype)")
    check_arguments(inputs, "inputs")
    if optimizer is not None and (mode != "train" or not hasattr(optimizer, "update")):
        raise ValueError("optimizer: an optax GradientTransformation (optax.adam(1e-3)), with mode='train'; got "
                         f"{describe_value(optimizer)} with mode={mode!r}")
    if from_dump is not None and (dump_to is not None or target is not None):
        given = "dump_to" if dump_to is not None else "target"
        raise ValueError(f"from_dump: reads a step compiled elsewhere, nothing is compiled here; it takes no {given} "
                         f"(got {given}={dump_to if dump_to is not None else target!r})")
    start = time.perf_counter()
    build = functools.partial(_compile_step, model, inputs, variables, checked, optimizer, rngs, mesh, name=name,
                              kwargs=kwargs)
    if from_dump is not None:
        stored = read_stored(from_dump)
        step, assignment = build(where=None, compile_with=stored.lower), stored.assignment
    else:
        step, assignment = _compiled_step(build, target, dump_to)
    seconds = {"compile": step.compiler.seconds_compile, "total": 0.0}
    report = _report(step, assignment, checked)
    _fill_rows(report)
    report.seconds = {**seconds, "total": time.perf_counter() - start}
    return report


def _compiled_step(build: Callable[..., _Step], target: str | None,
                   dump_to: str | None) -> tuple[_Step, BufferAssignment]:
    """The step compiled here (for ``target``) and XLA's buffer assignment of it; with ``dump_to``, XLA's files kept
    there and the step file written beside them."""
    with targets.compiling_for(target) as where, dump_folder(dump_to) as folder:
        with dumping_to(folder):
            step = build(where=where, compile_with=compile_function)
        if dump_to is not None:
            write_step_file(Path(folder), step.compiler, compiled_here=where is None)
        return step, read_dump(folder)


def _fill_rows(report: MemoryReport) -> None:
    """The model's rows with their memory: every row the live set or the saved values name, a row for each role
    outside the modules (inputs, gradients of inputs) added."""
    live, saved, residuals = report.bytes_by_row(), report.saved_by_row(), report.residuals_by_row()
    rows = {row.path: row for row in report.model.rows}
    for key in [*live, *saved, *residuals]:
        if key not in rows:
            rows[key] = Row(key, key)
            report.model.rows.append(rows[key])
    for key, row in rows.items():
        row.memory_bytes = live[key]
        row.saved_bytes = saved[key] if report.mode == "train" else None
        row.residual_bytes = residuals[key] if report.mode == "train" else None


def _compile_step(model: Any, inputs: tuple, variables: Any, mode: Mode, optimizer: Any, rngs: Any, mesh: Any,
                  where: Any, name: str, kwargs: dict, compile_with: Compile) -> _Step:
    if isinstance(model, nn.Module):
        keys = random_keys(rngs)
        if mesh is not None:
            inputs, variables = sharded_arguments(model, inputs, variables, kwargs, keys, mesh,
                                         list(where.devices) if where else None)
        if variables is None:
            variables = abstract_variables(model, inputs, kwargs, keys)
        return _linen_step(model, inputs, variables, mode, keys, kwargs, optimizer, name, compile_with)
    if is_nnx_module(model):
        raise ValueError("model: memory() takes a flax.linen Module or a JAX function; a flax.nnx Module is not read "
                         "yet (nnx.split it and pass a function of its state and inputs)")
    if isinstance(model, type) or not callable(model) or mesh is not None or optimizer is not None:
        raise ValueError(f"model: memory() takes a flax.linen Module (with mesh= or optimizer= too) or a JAX "
                         f"function, got {describe_value(model)}")
    function = (lambda *xs: model(*xs, **kwargs)) if kwargs else model
    return _function_step(function, inputs, mode, compile_with)


def _report(step: _Step, assignment: BufferAssignment, mode: Mode) -> MemoryReport:
    values = _Values(step.compiler.recount.module, assignment, step)
    kinds = assignment.bytes_by_kind()
    peak = assignment.peak_step()
    live = values.live_at(peak)
    sequence = assignment.live.sequence
    xla = step.compiler.memory
    return MemoryReport(
        name=step.model.name, mode=mode, platform=step.compiler.platform, device_kind=step.compiler.device_kind,
        arguments_bytes=kinds["parameter"], outputs_bytes=kinds["output"] + kinds["aliased"],
        aliased_bytes=kinds["aliased"], temp_bytes=max(xla.get("temp_size_in_bytes", 0), kinds["temporary"]),
        constants_bytes=kinds["constant"] + kinds["thread-local"],
        generated_code_bytes=xla.get("generated_code_size_in_bytes", 0), live=live,
        live_peak_bytes=sum(value.bytes for value in live), peak_step=peak,
        peak_instruction=sequence[peak] if 0 <= peak < len(sequence) else "",
        saved=values.saved() if mode == "train" else [], model=step.model, assignment=assignment,
        residuals=_residuals(step, values.attribution) if mode == "train" else [],
        xla=step.compiler.memory, formulas=step.formulas)


def _residuals(step: _Step, attribution: Attribution) -> list[LiveValue]:
    """JAX's residuals of the step's jaxpr, its arguments told apart as the compiler's values are."""
    kinds = ["output gradient" if path.startswith(OUTPUT_GRADIENT) else "input" if role == "inputs" else "other"
             for role, path in step.argument_roles]
    return jax_residuals(step.compiler.jaxpr, kinds, attribution)


class _Values:
    """The buffer assignment's values, each placed in a row and given a role."""

    def __init__(self, module: Module, assignment: BufferAssignment, step: _Step) -> None:
        self.assignment = assignment
        self.step = step
        self.instructions = {instruction.name: instruction for computation in module.computations.values()
                             for instruction in computation.instructions}
        self.owners = module.owners()
        self.entry = module.entry
        self.allocations = {allocation.index: allocation for allocation in assignment.allocations}
        self.backward = self._backward_instructions()
        self.output_roles = self._outputs()
        self.kept = kept_arguments(step.compiler, len(step.argument_roles))
        self.attribution: Attribution = step.model.placement.attribution if step.model.placement else Attribution(
            [], "")
        self.activations = self._from_inputs()
        position = {name: step for step, name in enumerate(assignment.live.sequence)}
        self.position = position
        self.readers: dict[str, set[str]] = {}
        #: Where the backward pass begins: the first instruction of a gradient that the output gradient reaches and
        #: that reads an activation the forward computed. Before it, the schedule may already hold gradients of the
        #: output gradient and parameters alone (a bias's gradient) and recomputations of the forward (remat).
        propagated = self._from_output_gradient()
        started = {reader for name in self.activations - self.backward
                   if self.instructions[name].opcode != "parameter"
                   for reader in self._readers_of(self.instructions[name])
                   if reader in self.backward and reader in propagated}
        self.boundary = min((position[name] for name in started if name in position), default=len(position))

    def _readers_of(self, instruction: Instruction) -> set[str]:
        if instruction.name not in self.readers:
            self.readers[instruction.name] = _readers(instruction)
        return self.readers[instruction.name]

    def _from_inputs(self) -> set[str]:
        """The entry's instructions whose results depend on the step's inputs (not on the parameters alone, nor on
        the output gradient alone)."""
        return self._reached([parameter for parameter in self.entry.parameters()
                              if self._argument(parameter)[0] == "inputs"
                              and not self._argument(parameter)[1].startswith(OUTPUT_GRADIENT)])

    def _from_output_gradient(self) -> set[str]:
        """The entry's instructions whose results depend on the output gradient a training step starts from."""
        return self._reached([parameter for parameter in self.entry.parameters()
                              if self._argument(parameter)[1].startswith(OUTPUT_GRADIENT)])

    @staticmethod
    def _reached(pending: list[Instruction]) -> set[str]:
        """``pending`` and every instruction that reads, directly or not, one of them."""
        reached: set[str] = set()
        while pending:
            instruction = pending.pop()
            if instruction.name not in reached:
                reached.add(instruction.name)
                pending.extend(instruction.users)
        return reached

    def _backward_instructions(self) -> set[str]:
        """Top-level instructions that compute part of a gradient (their own op_name, or a fused one's)."""
        backward = set()
        for name, owner in self.owners.items():
            if is_backward(self.instructions[name].op_name):
                backward.add(owner)
        return backward

    def _outputs(self) -> dict[str, tuple[str, str]]:
        """The role and pytree path of each instruction the entry returns, by its name (through bitcasts and tuple
        elements)."""
        roles: dict[str, tuple[str, str]] = {}
        outputs = self.entry.outputs()
        for position, instruction in enumerate(outputs):
            role = self.step.output_roles[position] if position < len(self.step.output_roles) else ("outputs", "")
            roles.setdefault(_through_passing(instruction, self.instructions).name, role)
        return roles

    def role(self, value: Value) -> str:
        instruction = self.instructions.get(value.instruction)
        if instruction is None:
            return "temporary"
        if instruction.opcode == "parameter" and self.owners.get(instruction.name) == instruction.name:
            return self._argument(instruction)[0]
        if instruction.name in self.output_roles:
            return self.output_roles[instruction.name][0]
        owner = self.owners.get(instruction.name, instruction.name)
        if owner == instruction.name and owner in self.backward and any(
                reader not in self.backward for reader in self._readers_of(instruction)):
            return "gradients"  # a gradient's result that the optimizer's update reads
        if self._saved(instruction, value.index):
            return "saved for backward"
        return "temporary"

    def _argument(self, parameter: Instruction) -> tuple[str, str]:
        number = int(parameter.attributes.get("_number", "0"))
        position = self.kept[number] if number < len(self.kept) else number
        roles = self.step.argument_roles
        return roles[position] if position < len(roles) else ("inputs", "")

    def _saved(self, instruction: Instruction, index: str = "{}") -> bool:
        """A forward activation (computed from the inputs before the backward pass begins) that a gradient's
        instruction reads: kept across from the forward pass into the backward. A forward operation the schedule
        puts after that point (a copy in another layout made where the gradient needs it) is a temporary. Of a
        tuple-shaped result only element ``index``'s readers count: a library call's workspace beside its result
        (a ``{1}`` that no instruction reads) is a temporary."""
        if instruction.name in self.backward or instruction.name not in self.activations:
            return False
        if self.position.get(instruction.name, self.boundary) >= self.boundary:
            return False
        if instruction.shape.is_tuple and index in ("{}", ""):  # a tuple's pointer table: its arrays are the values
            return False
        readers = self._readers_of(instruction) if index in ("{}", "") else element_readers(instruction, index)
        return any(user in self.backward for user in readers)

    def row(self, value: Value) -> str:
        instruction = self.instructions.get(value.instruction)
        if instruction is None:
            return LAYOUT
        if instruction.opcode == "parameter" and self.owners.get(instruction.name) == instruction.name:
            return self._row_of_path(*self._argument(instruction))
        if instruction.name in self.output_roles and self.output_roles[instruction.name][0] != "outputs":
            return self._row_of_path(*self.output_roles[instruction.name])
        placement = self.step.model.placement
        owner = self.owners.get(instruction.name, instruction.name)
        if placement is not None and owner in placement.op_rows:
            return placement.op_rows[owner]
        return self.attribution.row_key(instruction.op_name)

    def _row_of_path(self, role: str, path: str) -> str:
        """The row of a pytree leaf: the module its path names (the parameters' and their state's), else its role."""
        names = tuple(path.split("/")) if path else ()
        found = self.attribution.module_key(names) if role not in ("inputs", "outputs") else None
        return found or (LOOSE_PARAMS if role == "parameters" else role)

    def _live_value(self, value: Value, bytes_held: int) -> LiveValue:
        instruction = self.instructions.get(value.instruction)
        return LiveValue(value.instruction, value.index, value.shape, bytes_held, self.row(value), self.role(value),
                         instruction.op_name if instruction else "", self.allocations[value.allocation].kind,
                         value.color)

    def live_at(self, step: int) -> list[LiveValue]:
        """The values live at ``step``, a block of memory held by two values (a loop's state and the loop's
        result, an operation done in place) counted once."""
        return [self._live_value(value, held) for value, held in
                _held(self.assignment.live_at(step), self.assignment.live.ranges)]

    def saved(self) -> list[LiveValue]:
        """Every forward value the backward pass reads (live from its definition across into the backward)."""
        values = [value for value in self.assignment.values if self.role(value) == "saved for backward"]
        return [self._live_value(value, held) for value, held in _held(values, self.assignment.live.ranges)]


def _held(values: list[Value], ranges: dict[str, tuple[int, int]]) -> list[tuple[Value, int]]:
    """Each value with the bytes it holds that no value before it in ``values`` holds at the same time (same
    allocation, overlapping offsets, overlapping live ranges: one buffer that a loop's state and the loop's result,
    or an operation done in place, share); the first of them keeps the bytes."""
    taken: dict[int, list[tuple[int, int, tuple[int, int]]]] = {}
    held = []
    for value in sorted(values, key=lambda value: (value.phi, value.id)):
        spans = taken.setdefault(value.allocation, [])
        start, end = value.offset, value.offset + value.bytes
        alive = ranges.get(value.key, (-1, -1))
        overlap = sum(max(0, min(end, other_end) - max(start, other_start))
                      for other_start, other_end, other_alive in spans
                      if other_alive[0] <= alive[1] and alive[0] <= other_alive[1])
        spans.append((start, end, alive))
        if value.bytes - overlap > 0:
            held.append((value, value.bytes - overlap))
    return sorted(held, key=lambda item: (-item[1], item[0].id))


def _through_passing(instruction: Instruction, instructions: dict[str, Instruction]) -> Instruction:
    while instruction.opcode in ("bitcast", "get-tuple-element", "copy") and instruction.operands[0] in instructions:
        instruction = instructions[instruction.operands[0]]
    return instruction


def _readers(instruction: Instruction) -> set[str]:
    """The instructions that read ``instruction``'s result, through instructions that only pass it on."""
    readers: set[str] = set()
    pending = list(instruction.users)
    seen = set()
    while pending:
        user = pending.pop()
        if user.name in seen:
            continue
        seen.add(user.name)
        if user.opcode in _PASSING:
            pending.extend(user.users)
        readers.add(user.name)
    return readers


def element_readers(instruction: Instruction, index: str) -> set[str]:
    """The readers of element ``index`` (``{1}``) of a tuple-shaped result: its get-tuple-elements and their readers,
    and the instructions that take the whole tuple; all readers for a deeper index."""
    element = index.strip("{}")
    if not element.isdigit():
        return _readers(instruction)
    readers: set[str] = set()
    for user in instruction.users:
        if user.opcode != "get-tuple-element":
            readers.add(user.name)
        elif user.attribute("index") == element:
            readers |= _readers(user) | {user.name}
    return readers


def bytes_by_dtype(tree: Any) -> Counter:
    """Bytes of a pytree's arrays at their dtypes, by dtype name: elements × item size."""
    by_dtype: Counter = Counter()
    for leaf in jax.tree_util.tree_leaves(tree):
        by_dtype[str(leaf.dtype)] += math.prod(leaf.shape) * leaf.dtype.itemsize
    return by_dtype


def tree_bytes(tree: Any) -> int:
    """Bytes of a pytree's arrays (the parameters, an optimizer's state as it keeps it)."""
    return sum(bytes_by_dtype(tree).values())


__all__ = ["ROLES", "LiveValue", "MemoryReport", "bytes_by_dtype", "memory", "tree_bytes"]
