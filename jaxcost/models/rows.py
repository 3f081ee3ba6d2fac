"""A model's rows: every module call recorded while tracing becomes a row, and every flop and byte of the
compiled program lands in the row of the module that issued it.

Flops go by the ``op_name`` of each instruction (fused ones included). A module is found in an op_name
wherever its path appears, so that transform scopes around it (``while/body/closed_call`` of a scan,
``checkpoint`` of a remat, ``transpose(jvp(...))`` of a gradient) do not hide it. Bytes go by top-level
instruction: a fusion whose flops come from several modules splits its bytes between them in proportion
to their flops (the rest, from rounding, to the largest shares); a fusion without flops gives its bytes
to the module its metadata names. Operations outside every module are gathered into rows by kind.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import jax

from jaxcost.formulas import Mode, analytic
from jaxcost.hlo.rules import OpRecord
from jaxcost.models.loops import Runs, module_runs
from jaxcost.operations import OpsCost
from jaxcost.reports.model import export_names
from jaxcost.specs import Conv, Dense, Spec

if TYPE_CHECKING:
    from jaxcost.compiler import CompilerCost

_WRAPPER = re.compile(r"^[\w.-]+\((.*)\)$")
#: A jitted function's scope in an op_name (``jit(main)`` in older JAX, ``jit(relu)``).
JIT_SCOPE = re.compile(r"^p?jit\(.*\)$")
_PRIMITIVE_KINDS = (
    (("reduce_window", "max_pool", "avg_pool", "cumsum", "cummax"), "pooling"),
    (("reduce_sum", "reduce_max", "reduce_min", "mean", "div"), "reduction"),
    (("max", "min", "clamp", "select_n", "gt", "lt", "ge", "le", "eq", "ne", "logistic", "tanh", "exp", "erf",
      "sign"), "activation"),
    (("add", "add_any", "sub"), "add"),
    (("convert_element_type",), "convert"),
    (("conv_general_dilated",), "convolution outside modules"),
    (("dot_general",), "dot outside modules"),
)
#: The scope JAX names the forward pass recomputed inside the backward of a ``jax.checkpoint``.
RECOMPUTATION = "/rematted_computation/"
#: The row of instructions that no module issued and that move data only.
LAYOUT = "layout and copies"
#: The row of parameters that no recorded module holds.
LOOSE_PARAMS = "parameters outside modules"


@dataclass
class Call:
    """One module call seen while tracing: where it is, what it is, and what it took and gave."""

    path: tuple[str, ...]
    module_type: str
    spec: Spec | None
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    input_dtype: str = ""
    output_dtype: str = ""
    #: Multiply-adds of a module with a formula but no layer spec (attention's two products), per call.
    macs: int = 0
    #: The operation formula of a norm or an embedding lookup: its forward pass, per call.
    ops: OpsCost | None = None
    #: Inside a lifted transform (a scan, a vmap, a remat): traced once or more, run as often as its loops say.
    lifted: bool = False
    #: The primitive one call issues and how many (``models.paper``): how its calls are counted in a program.
    signature: tuple[str, int] | None = None
    #: How often a training step performs the products of ``macs`` (``Paper.training_passes``).
    training_passes: int = 3
    #: Why the module's formula failed (``Paper.error``); empty when it gave figures or has none.
    formula_error: str = ""
    #: The operation formula's training step, per call (``Paper.training_ops``).
    training_ops: OpsCost | None = None
    #: Elements of the first signature operation's result in one call (``paper.signature_elements``), or None.
    signature_elements: int | None = None


@dataclass
class Row:
    """One row of a model report: a module (``module_type`` set; ``spec`` too for a Conv/Dense layer with
    analytic formulas), or the operations of one kind that no module issued."""

    path: str
    kind: str
    calls: int = 0
    spec: Spec | None = None
    module_type: str = ""
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    input_dtype: str = ""
    output_dtype: str = ""
    params: int = 0
    params_bytes: int = 0
    macs: int = 0
    flops: int = 0
    textbook_macs: int = 0
    #: Of textbook less exact multiply-adds, those a transposed conv's padding crops off (the rest fall on padding).
    cropped_macs: int = 0
    bytes_accessed: int = 0
    compiler_flops: int = 0
    compiler_bytes: int = 0
    #: Compiler flops that recompute the forward pass inside the backward (``nn.remat``, ``jax.checkpoint``).
    recompute_flops: int = 0
    share: float = 0.0
    #: Whether a formula gave the analytic figures (a layer's, a product's, an operation's for this mode): without
    #: one they are unknown, not zero.
    formula: bool = False
    #: Why the module's formula failed, where it raised (its figures are then the compiler's only).
    formula_error: str = ""
    #: Measured (``jaxcost.profile``), per call of the program: the row's share of the device's busy time, in
    #: seconds and as a fraction of the step; its instructions' true flops and bytes over that time; the least
    #: time the roofline allows them; that over the measured time; and ``compute``, ``memory`` or ``overhead``.
    #: None where nothing was measured.
    seconds: float | None = None
    time_share: float | None = None
    flops_per_second: float | None = None
    bytes_per_second: float | None = None
    roofline_seconds: float | None = None
    speed_of_light: float | None = None
    bound: str | None = None
    #: Device memory (``jaxcost.memory``), per device: the bytes the row holds among the values live at the step's
    #: peak, the bytes its forward pass keeps for the backward pass (a training step), and what JAX's
    #: autodiff saves for it before XLA's optimizations. None where not read.
    memory_bytes: int | None = None
    saved_bytes: int | None = None
    residual_bytes: int | None = None
    #: What the attribution could not settle: products without metadata that other rows were as likely to hold.
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"Row({self.path!r}, kind={self.kind!r}, params={self.params:,}, flops={self.flops:,}, "
                f"compiler_flops={self.compiler_flops:,}, compiler_bytes={self.compiler_bytes:,})")

    @property
    def is_layer(self) -> bool:
        """A Conv/Dense layer: analytic formulas beside the compiler's figures."""
        return self.spec is not None

    @property
    def is_module(self) -> bool:
        return bool(self.module_type)

    @property
    def depth(self) -> int:
        """How deep the module sits in the model: 1 for the model's own submodules; 0 for rows by kind."""
        return self.path.count("/") + 1 if self.is_module else 0

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes_accessed if self.bytes_accessed else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in export_names()}


def _kind_of_primitive(primitive: str) -> str:
    for names, kind in _PRIMITIVE_KINDS:
        if primitive in names:
            return kind
    return "other"


class Attribution:
    """Maps an op_name, or a parameter's path, to its row: the innermost module it names, or a kind."""

    def __init__(self, calls: list[Call], root: str) -> None:
        self.root = root
        self.modules = {call.path for call in calls if call.path}
        self.module_keys = {"/".join(path) for path in self.modules}
        self.names = {name for path in self.modules for name in path}
        self._cache: dict[str, str] = {}
        self._modules_of: dict[str, str | None] = {}

    def row_key(self, op_name: str) -> str:
        if not op_name or "/" not in op_name:
            return LAYOUT
        if op_name not in self._cache:
            path, primitive = self._split(op_name)
            self._cache[op_name] = self.module_key(path) or _kind_of_primitive(primitive)
        return self._cache[op_name]

    def module_of(self, op_name: str) -> str | None:
        """The innermost recorded module named in ``op_name``, or None."""
        if op_name not in self._modules_of:
            self._modules_of[op_name] = self.module_key(self._split(op_name)[0])
        return self._modules_of[op_name]

    def module_key(self, path: tuple[str, ...]) -> str | None:
        """The innermost recorded module whose path appears in ``path`` as a run of names, once the names of
        transform scopes (a scan's ``while/body/closed_call``, ``checkpoint``) are left out: they may stand
        before a module or between a module and its children (nested scans)."""
        path = tuple(name for name in path if name in self.names)
        for end in range(len(path), 0, -1):
            for start in range(end):
                if path[start:end] in self.modules:
                    return "/".join(path[start:end])
        return None

    def _split(self, op_name: str) -> tuple[tuple[str, ...], str]:
        """Module path and primitive of an op_name: nested ``jit(...)`` scopes (``jit(main)`` in older JAX,
        ``jit(relu)``) are dropped, transform wrappers (``transpose(jvp(Net))``) unwrapped, the root removed."""
        parts = op_name.split("/")
        primitive = parts[-1]
        inner = []
        for part in parts[:-1]:
            if JIT_SCOPE.match(part):
                continue
            match = _WRAPPER.match(part)
            while match:
                part = match.group(1)
                match = _WRAPPER.match(part)
            inner.append(part.partition(".")[0])  # "tokens.attend": a method of the module "tokens"
        if inner and inner[0] == self.root:
            inner = inner[1:]
        return tuple(p for p in inner if "(" not in p), primitive


def scope_calls(compiler: CompilerCost) -> list[Call]:
    """For a program without recorded module calls (a plain function): a call for every scope its instructions'
    op_names name (``jvp(Net)/Dense_0``: ``Net`` and ``Net/Dense_0``), outermost first, so that its rows are its
    scopes."""
    split = Attribution([], "")._split
    paths: dict[tuple[str, ...], None] = {}
    for op in compiler.recount.ops:
        for source in [op.instruction.op_name, *op.cost.flops_by_source]:
            path = split(source)[0] if "/" in source else ()
            paths.update(dict.fromkeys(path[:end] for end in range(1, len(path) + 1)))
    return [Call(path, "scope", None, None, None) for path in sorted(paths, key=len)]


def _fits_layer(row: Row, products: int, touched: set[int]) -> bool:
    """Whether a product could be one pass of the layer of ``row``: forward, grad-input and grad-weight passes each
    perform the layer's forward multiply-adds and touch both its input and its output (as operand or result)."""
    spec = row.spec
    return (spec is not None and 2 * analytic(spec).macs == products
            and {math.prod(spec.input_shape), math.prod(spec.output_shape)} <= touched)


@dataclass
class _Products:
    """The products (dots, convolutions) that lost their metadata, and the rows they may belong to: each row with
    a formula has room for its analytic products less those the metadata already gave it."""

    rows: dict[str, Row]
    room: Counter
    by_name: dict[str, Any]
    keys: dict[str, str]

    def row_of(self, op: OpRecord, products: int) -> tuple[str | None, list[str]]:
        """The row of one product without metadata, and the rows it could equally be (empty when it is clear).

        The rows that could hold it: layers it fits as a pass (``_fits_layer``) and rows of products without a
        layer spec (attention's, einsum's) that still have room for it. Of those, the dataflow decides: the
        nearest to it through what it reads and what reads it (``_distances``). Where none has room (the
        compiler computes more products than the formulas), the layers it fits, by the same dataflow."""
        operands = self.by_name[op.name].operands if op.name in self.by_name else []
        touched = {self.by_name[name].shape.elements for name in operands if name in self.by_name}
        touched.add(op.instruction.shape.elements)
        fitting = [key for key, row in self.rows.items()
                   if row.is_layer and _fits_layer(row, products, touched)
                   or not row.is_layer and row.macs and self.room[key] >= products]
        candidates = [key for key in fitting if self.room[key] >= products] or \
            [key for key in fitting if self.rows[key].is_layer]
        if not candidates:
            return None, []
        distances = _distances(op.name, candidates, self.keys, self.by_name)
        nearest = min(distances.values())
        closest = sorted((key for key in candidates if distances[key] == nearest), key=lambda key: -self.room[key])
        self.room[closest[0]] -= products
        return closest[0], closest[1:]


def _rings(start: str, by_name: dict[str, Any], steps: int) -> Iterator[list[str]]:
    """The instructions around ``start``, a ring a step: its operands and users, then theirs, up to ``steps``."""
    seen, frontier = {start}, [start]
    for _ in range(steps):
        ring = []
        for name in frontier:
            instruction = by_name.get(name)
            if instruction is None:
                continue
            for neighbour in [*instruction.operands, *(user.name for user in instruction.users)]:
                if neighbour not in seen:
                    seen.add(neighbour)
                    ring.append(neighbour)
        yield ring
        frontier = ring


def _distances(start: str, candidates: list[str], keys: dict[str, str], by_name: dict[str, Any],
               steps: int = 6) -> dict[str, float]:
    """How many steps through operands and users separate ``start`` from the nearest instruction of each
    candidate row (or of a module inside it), as far as the nearest candidate; infinite beyond."""
    distances = dict.fromkeys(candidates, math.inf)
    for step, ring in enumerate(_rings(start, by_name, steps), 1):
        for key in filter(None, map(keys.get, ring)):
            for candidate in candidates:
                if key == candidate or key.startswith(candidate + "/"):
                    distances[candidate] = min(distances[candidate], step)
        if min(distances.values()) < math.inf:
            break
    return distances


def _op_keys(compiler: CompilerCost, attribution: Attribution, rows: dict[str, Row]) -> tuple[dict[str, str],
                                                                                               dict[str, list[str]]]:
    """Each top-level instruction's row: from its metadata, or, where the compiler dropped the metadata, for a
    product the row the dataflow and the formulas give it (``_Products.row_of``), else the rows of the nearest
    instructions around it that have one (see ``_nearest_module``). And, for each product placed where other
    rows were as likely, those rows."""
    by_name = compiler.recount.module.entry.by_name()
    keys: dict[str, str] = {}
    claimed: Counter = Counter()
    pending = []
    for op in compiler.recount.ops:
        for source, products in op.cost.products_by_source.items():
            if source:
                claimed[attribution.row_key(source)] += products
        if op.instruction.op_name:
            keys[op.name] = attribution.row_key(op.instruction.op_name)
        else:
            pending.append(op)
    placing = _Products(rows, Counter({key: 2 * row.macs - claimed[key] for key, row in rows.items() if row.macs}),
                        by_name, keys)
    ambiguous: dict[str, list[str]] = {}
    rest = []
    for op in pending:
        products = op.cost.products_by_source.get("", 0)
        key, alternatives = placing.row_of(op, products) if products else (None, [])
        if key is None:
            rest.append(op)
            continue
        keys[op.name] = key
        if alternatives:
            ambiguous[op.name] = alternatives
    found = {op.name: _prefetched_module(op.instruction, by_name, attribution)
             or _nearest_module(op.name, keys, by_name, attribution.module_keys) for op in rest}
    keys.update({name: key or LAYOUT for name, key in found.items()})
    return keys, ambiguous


#: Instructions that only move or lay out a buffer: a TPU prefetching a parameter copies it with them.
_MOVING = frozenset(("copy", "copy-start", "copy-done", "slice-start", "slice-done", "bitcast", "get-tuple-element"))
#: One step of a pytree path as JAX writes an argument's name: ``params['block0']['Dense_0']['kernel']``.
PATH_STEP = re.compile(r"\[\\?'([^'\\]*)\\?'\]|\[(\d+)\]")  # XLA's text escapes the quotes: [\'kernel\']


def _prefetched_module(instruction: Any, by_name: dict[str, Any], attribution: Attribution) -> str | None:
    """The module whose parameter an instruction without metadata only moves (a TPU's prefetch of a weight into
    its on-chip memory: ``copy-start`` of the parameter, then ``copy-done``), found through its operands."""
    while instruction.opcode in _MOVING and instruction.operands and instruction.operands[0] in by_name:
        instruction = by_name[instruction.operands[0]]
    if instruction.opcode != "parameter":
        return None
    names = tuple(key or index for key, index in PATH_STEP.findall(instruction.op_name))
    return attribution.module_key(names) if names else None


def _nearest_module(start: str, keys: dict[str, str], by_name: dict[str, Any], module_keys: set[str],
                    steps: int = 4) -> str | None:
    """The module of an instruction without metadata, from its neighbourhood: the modules of the nearest
    instructions (operands and users, then theirs, up to ``steps`` away) that have one, and of those their
    innermost common module (a dot between a query and a key projection, feeding a softmax, is the
    attention's); the first found where they have none in common."""
    for ring in _rings(start, by_name, steps):
        found = [keys[name] for name in ring if keys.get(name) in module_keys]
        if found:
            common = _common_module(found)
            return common if common in module_keys else found[0]
    return None


def _common_module(paths: list[str]) -> str:
    parts = [path.split("/") for path in paths]
    common = []
    for names in zip(*parts):
        if len(set(names)) > 1:
            break
        common.append(names[0])
    return "/".join(common)


def key_name(key: Any) -> str:
    """One step of a pytree path as the name it has in a module path."""
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def _params_by_row(params: Any, attribution: Attribution) -> tuple[Counter, Counter]:
    """Parameters, and their bytes, counted into the rows of the modules that hold them."""
    counts: Counter = Counter()
    sizes: Counter = Counter()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        key = attribution.module_key(tuple(key_name(step) for step in path)) or LOOSE_PARAMS
        counts[key] += math.prod(leaf.shape)
        sizes[key] += math.prod(leaf.shape) * leaf.dtype.itemsize
    return counts, sizes


def apportion(total: int, weights: Counter) -> Counter:
    """``total`` split in proportion to ``weights``, in integers that add up to it exactly (largest remainders)."""
    weight = sum(weights.values())
    parts = Counter({key: total * share // weight for key, share in weights.items()})
    left = total - sum(parts.values())
    for key in sorted(weights, key=lambda key: (-(total * weights[key] % weight), key))[:left]:
        parts[key] += 1
    return parts


def _module_row(call: Call) -> Row:
    key = "/".join(call.path)
    if call.spec is None:
        return Row(key, call.module_type, module_type=call.module_type, input_shape=call.input_shape,
                   output_shape=call.output_shape, input_dtype=call.input_dtype, output_dtype=call.output_dtype)
    return Row(key, call.spec.kind, spec=call.spec, module_type=call.module_type, input_shape=call.input_shape,
               output_shape=call.output_shape, input_dtype=call.input_dtype, output_dtype=call.output_dtype)


@dataclass
class Placement:
    """Where a program's flops go: by the op_name of the operation that issued them, or, for an instruction
    without one, by the row its instruction was given."""

    attribution: Attribution
    op_rows: dict[str, str]

    def row(self, source: str, instruction: str = "") -> str:
        """The row of flops from ``source`` (an op_name) in the top-level instruction named ``instruction``."""
        return self.attribution.row_key(source) if source else self.op_rows.get(instruction, LAYOUT)

    def flops_by_row(self, op: OpRecord) -> Counter:
        """One top-level instruction's flops, by the row each goes to."""
        by_row: Counter = Counter()
        for source, amount in op.cost.flops_by_source.items():
            by_row[self.row(source, op.name)] += amount
        return by_row

    def shares(self, op: OpRecord) -> Counter:
        """How one top-level instruction's bytes (and time) divide between rows: by its flops where they come
        from several rows, else all to the row it was given."""
        by_row = +self.flops_by_row(op)
        return by_row if len(by_row) > 1 else Counter({self.op_rows[op.name]: 1})


def _runs(compiler: CompilerCost, attribution: Attribution, calls: list[Call]) -> Runs:
    """How often each module runs (``models.loops``); nothing known without a traced program (a stored one)."""
    if compiler.jaxpr is None:
        return Runs()
    signatures: dict[str, tuple[str, int] | None] = {}
    for call in calls:
        signatures.setdefault("/".join(call.path), call.signature)
    return module_runs(compiler.jaxpr, attribution.module_of, signatures.get)


def _lifted_calls(call: Call, key: str, runs: Runs) -> int | None:
    """How often a module inside a lifted transform is called: its signature operations in the forward pass
    over those of one call, times the examples of a vmap around a scan (the scan's body is traced on one example:
    the program's signature result holds the whole batch's, each example's an independent call); None without a
    signature or inside a while loop."""
    if call.signature is None or key in runs.unknown or not runs.calls[key]:
        return None
    calls, rest = divmod(runs.calls[key], call.signature[1])
    return None if rest else calls


def _examples(call: Call, key: str, runs: Runs) -> int:
    """The examples a call's traced shapes leave out, inside a vmap around a scan (whose body is traced on one
    example): the program's signature result over one call's (1 when they are the same, or unknown)."""
    whole, one = runs.signature_elements.get(key, 0), call.signature_elements
    if not whole or not one or whole % one:
        return 1
    return whole // one


def _batched(call: Call, examples: int) -> Call:
    """A call traced on one example, as the vmap runs it on ``examples``: a layer's spec over the whole batch (a
    Dense's input gains a batch axis, a Conv's batch grows), an operation formula ``examples`` times (its
    examples are independent; in training the sums of its parameters' gradients over them are not counted)."""
    if examples == 1:
        return call
    spec = call.spec
    if isinstance(spec, Conv):
        spec = replace(spec, input_shape=(examples * spec.input_shape[0], *spec.input_shape[1:]))
    elif isinstance(spec, Dense):
        spec = replace(spec, input_shape=(examples, *spec.input_shape))
    return replace(call, spec=spec, macs=call.macs * examples,
                   ops=call.ops * examples if call.ops is not None else None,
                   training_ops=call.training_ops * examples if call.training_ops is not None else None,
                   input_shape=(examples, *call.input_shape) if call.input_shape else call.input_shape,
                   output_shape=(examples, *call.output_shape) if call.output_shape else call.output_shape)


def _wrapper_calls(rows: dict[str, Row], key: str, runs: Runs) -> None:
    """A lifted module with no operation of its own (``nn.remat(Block)``, ``nn.jit``, a scan's wrapper) is called as
    often as its children are called beyond the loops around them: three calls of a rematted block make three calls
    of each of its layers, where a scan of three runs its layers three times in one call."""
    repeats = [rows[child].calls // max(1, _most_runs(tuple(child.split("/")), runs)) for child in rows
               if child.rpartition("/")[0] == key and rows[child].calls]
    if repeats:
        rows[key].calls = max(rows[key].calls, min(repeats) * _most_runs(tuple(key.split("/")), runs))


def _most_runs(path: tuple[str, ...], runs: Runs) -> int:
    """How often the module at ``path`` runs at most: as its own operations do, or, for a module with none of its
    own (the wrapper of an inner scan), as its closest ancestor's."""
    for end in range(len(path), 0, -1):
        key = "/".join(path[:end])
        if key in runs.most:
            return runs.most[key]
    return 1


def _add_paper(row: Row, call: Call, mode: Mode, times: int = 1) -> None:
    """One call's analytic figures, ``times`` over: its layer formulas, products (``call.training_passes`` times in
    training), or operation formula (its training step in training); or why its formula failed."""
    row.formula_error = row.formula_error or call.formula_error
    operation = call.ops if mode == "forward" else call.training_ops
    row.formula = row.formula or call.spec is not None or bool(call.macs) or operation is not None
    if call.spec is not None:
        cost = analytic(call.spec, mode)
        row.macs += times * cost.macs
        row.flops += times * cost.flops
        row.textbook_macs += times * cost.textbook_macs
        row.cropped_macs += times * cost.cropped_macs
        row.bytes_accessed += times * cost.bytes_accessed
        return
    passes = call.training_passes if mode == "train" else 1
    row.macs += times * passes * call.macs
    row.textbook_macs += times * passes * call.macs
    row.flops += times * 2 * passes * call.macs
    if operation is not None:
        row.flops += times * operation.flops
        row.bytes_accessed += times * operation.bytes_accessed


def build_rows(calls: list[Call], compiler: CompilerCost, root: str, mode: Mode,
               params: Any) -> tuple[list[Row], Placement]:
    """The rows of a model: its modules in the order they are called (parents before children), then the
    rows by kind; compiler flops and bytes add up to the program's exactly, params to the model's. And where
    each of the program's flops went."""
    attribution = Attribution(calls, root)
    rows: dict[str, Row] = {}
    params_held, params_bytes = _params_by_row(params, attribution)
    runs = _runs(compiler, attribution, calls)
    lifted: set[str] = set()
    wrappers: set[str] = set()  # lifted modules with no signature operation of their own
    for call in calls:
        if not call.path:
            continue
        key = "/".join(call.path)
        if call.lifted and key not in lifted:
            call = _batched(call, _examples(call, key, runs))
        row = rows.setdefault(key, _module_row(call))
        if not call.lifted:
            row.calls += 1
            if key not in runs.unknown:  # a direct module may yet run in a while loop
                _add_paper(row, call, mode)
        elif key not in lifted:  # traced once or more: counted as it runs, by its signature operations
            lifted.add(key)
            times = _lifted_calls(call, key, runs)
            row.calls = times or _most_runs(call.path, runs)
            if times:
                _add_paper(row, call, mode, times)
            else:
                wrappers.add(key)
    for key in sorted(wrappers, key=lambda key: -key.count("/")):  # the innermost first: they are children too
        _wrapper_calls(rows, key, runs)
    op_keys, ambiguous = _op_keys(compiler, attribution, rows)
    for op in compiler.recount.ops:
        if op.name in ambiguous:
            placed = f"{op.cost.products_by_source['']:,} product FLOPs of {op.name} (no metadata)"
            rows[op_keys[op.name]].notes.append(f"{placed} placed here; {', '.join(ambiguous[op.name])} as likely")
            for other in ambiguous[op.name]:
                rows[other].notes.append(f"{placed} placed in {op_keys[op.name]}; as likely this row's")
    placement = Placement(attribution, op_keys)
    flops: Counter = Counter()
    bytes_moved: Counter = Counter()
    recomputed: Counter = Counter()
    for op in compiler.recount.ops:
        flops.update(placement.flops_by_row(op))
        for op_name, amount in op.cost.flops_by_source.items():
            if RECOMPUTATION in op_name:
                recomputed[placement.row(op_name, op.name)] += amount
        bytes_moved.update(apportion(op.cost.bytes_accessed, placement.shares(op)))
    for key in list(flops) + list(bytes_moved) + list(params_held):
        if key not in rows:
            rows[key] = Row(key, key)
    total = compiler.flops or 1
    for key, row in rows.items():
        row.params = params_held[key]
        row.params_bytes = params_bytes[key]
        row.compiler_flops = flops[key]
        row.compiler_bytes = bytes_moved[key]
        row.recompute_flops = recomputed[key]
        row.share = row.compiler_flops / total
    modules = [row for row in rows.values() if row.is_module]
    others = sorted((row for row in rows.values() if not row.is_module), key=lambda row: -row.compiler_flops)
    return modules + others, placement
