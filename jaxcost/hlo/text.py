"""Parse optimized HLO text into computations and instructions.

One parser serves live programs (``Compiled.as_text()``) and stored fixtures alike, so tests on
the CPU can read HLO captured on a GPU. It reads the text as XLA's parser does, by tokens: an instruction
may span lines or share one, a module may be indented, a called computation may be written inline
(``to_apply={...}``) and a result shape left out where XLA infers it; the common case, one instruction a
line, is read a line at a time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property

#: Bytes per element of each HLO primitive type (XLA's ByteSizeOfPrimitiveType).
PRIMITIVE_BYTES: dict[str, int] = {
    "pred": 1, "s2": 1, "u2": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "s32": 4, "u32": 4,
    "s64": 8, "u64": 8, "f16": 2, "bf16": 2, "f32": 4, "f64": 8, "c64": 8, "c128": 16,
    "f8e5m2": 1, "f8e4m3fn": 1, "f8e4m3b11fnuz": 1, "f8e5m2fnuz": 1, "f8e4m3fnuz": 1, "f8e4m3": 1,
    "f8e3m4": 1, "f8e8m0fnu": 1, "f4e2m1fn": 1, "token": 0, "opaque": 0,
}
#: XLA sizes a tuple as a table of one pointer per element; most backends count 8 bytes a pointer (the CPU
#: backend of jaxlib 0.11 counts 4: ``compiler.tuple_pointer_bytes`` reads it off the compiler in use).
POINTER_BYTES = 8
_ELEMENT_BITS = re.compile(r"E\((\d+)\)")  # a layout's element size in bits: s4[64]{0:E(4)} packs two a byte
TILES = re.compile(r"T((?:\(\d+(?:,\d+)*\))+)")  # a layout's tiles: bf16[64,3]{0,1:T(4,128)(2,1)} (TPU)
_MEMORY_SPACE = re.compile(r"(?<![A-Z])S\((\d+)\)")  # a layout's memory space: S(1) on a TPU is its on-chip memory
_SPLIT = re.compile(r"SC\((\d+):(\d+)\)")  # a layout's split: f32[1280]{0:T(1024)S(1)SC(0:1024)} (TPU)
#: Bytes XLA:CPU and XLA:GPU add to an array of dynamic shape for each of its dimensions (its size, an s32).
DYNAMIC_SIZE_BYTES = 4
_COMMENT = re.compile(r"/\*.*?\*/")  # XLA marks every fifth operand or tuple element: /*index=5*/


@dataclass(frozen=True)
class Sizes:
    """What the compiler that made a program counts where the layout does not say: a tuple's table,
    ``pointer_bytes`` an element rounded up to a multiple of ``table_align``; and ``untiled_scalar_bytes`` for a
    scalar without tiles (XLA:TPU: 4 KiB for a scalar in scalar memory, a sync flag or a scalar constant; an
    untiled array of more elements is its own size; 0: the scalar's own size). ``targets.sizes`` gives a TPU
    generation's."""

    pointer_bytes: int = POINTER_BYTES
    table_align: int = 1
    untiled_scalar_bytes: int = 0


def as_sizes(sizes: Sizes | int) -> Sizes:
    """``sizes``, or the pointer size of a CPU or GPU compiler's tuple tables as Sizes."""
    return sizes if isinstance(sizes, Sizes) else Sizes(pointer_bytes=sizes)


@dataclass(frozen=True)
class Shape:
    """An HLO array shape (``dtype``, ``dims``, ``minor_to_major``) or a tuple of shapes."""

    dtype: str = ""
    dims: tuple[int, ...] = ()
    minor_to_major: tuple[int, ...] | None = None
    elements_of: tuple[Shape, ...] | None = None
    element_bits: int | None = None
    #: The layout's tiles, outermost first (``T(8,128)(2,1)``): the first pads the minor dimensions.
    tiles: tuple[tuple[int, ...], ...] = ()
    memory_space: int = 0
    #: The layout's split (``SC(0:1024)``: dimension 0 split at 1024), as (dimension, index); XLA:TPU sizes
    #: such an array as its first piece.
    split: tuple[int, int] | None = None
    sizes: Sizes = Sizes()
    #: Whether a dimension is dynamic (``f32[<=10]``: at most 10): XLA stores the array's sizes beside it.
    dynamic: bool = False

    @property
    def is_tuple(self) -> bool:
        return self.elements_of is not None

    @property
    def elements(self) -> int:
        """Number of elements of an array (0 for a tuple)."""
        return 0 if self.is_tuple else math.prod(self.dims)

    @cached_property
    def stored_dims(self) -> tuple[int, ...]:
        """Each dimension as stored: with a tiled layout (TPU), the minor dimensions padded up to the first tile,
        in the layout's order (the tile's last entry pads the most minor dimension); of a split array, its first
        piece."""
        dims = list(self.dims)
        if self.split is not None:  # the first piece of a split array
            axis, index = self.split
            dims[axis] = min(dims[axis], index)
        order = self.minor_to_major if self.minor_to_major is not None else tuple(reversed(range(len(dims))))
        for offset, size in enumerate(reversed(self.tiles[0] if self.tiles else ())):
            if offset < len(order):
                axis = order[offset]
                dims[axis] = -(-dims[axis] // size) * size
        return tuple(dims)

    @cached_property
    def stored_elements(self) -> int:
        """Elements as stored (``stored_dims``); a tile of higher rank than the array also pads the dimensions
        the array lacks (of size 1)."""
        if self.is_tuple:
            return 0
        missing = self.tiles[0][:max(0, len(self.tiles[0]) - len(self.dims))] if self.tiles else ()
        return math.prod(self.stored_dims) * math.prod(missing)

    @cached_property
    def bytes(self) -> int:
        """XLA's ByteSizeOf: element bytes for arrays (packed when the layout gives the element size in bits,
        ``E(4)``; padded to whole tiles when it gives tiles, ``T(8,128)``), a pointer table for tuples; what
        ``sizes`` says where the layout does not."""
        sizes = self.sizes
        if self.elements_of is not None:
            return -(-sizes.pointer_bytes * len(self.elements_of) // sizes.table_align) * sizes.table_align
        if self.element_bits:  # packed sub-byte elements, as the layout says
            size = -(-self.stored_elements * self.element_bits // 8)
        else:
            size = self.stored_elements * PRIMITIVE_BYTES.get(self.dtype, 0)
        if self.dynamic:  # the CPU and GPU compilers' shape size: an s32 per dimension holds its runtime size
            size += DYNAMIC_SIZE_BYTES * len(self.dims)
        return size if self.tiles or self.dims else max(size, sizes.untiled_scalar_bytes)

    @property
    def padding_bytes(self) -> int:
        """Bytes the layout's tiles add to the array's own (0 without tiles)."""
        if self.elements_of is not None or not self.tiles:
            return 0
        return self.bytes - Shape(self.dtype, self.dims, self.minor_to_major, element_bits=self.element_bits,
                                  split=self.split, dynamic=self.dynamic).bytes

    def element(self, index: int) -> Shape:
        """Element ``index`` of a tuple shape; raises ValueError for an array."""
        if self.elements_of is None:
            raise ValueError(f"{self} is not a tuple: it has no element {index}")
        return self.elements_of[index]

    def leaves(self) -> list[Shape]:
        if self.elements_of is None:
            return [self]
        return [leaf for element in self.elements_of for leaf in element.leaves()]

    def __str__(self) -> str:
        if self.elements_of is not None:
            return "(" + ", ".join(map(str, self.elements_of)) + ")"
        return f"{self.dtype}[{','.join(map(str, self.dims))}]"


@dataclass
class Instruction:
    """One HLO instruction: name, result shape, opcode, operand names and raw attributes."""

    name: str
    shape: Shape
    opcode: str
    operands: list[str]
    attributes: dict[str, str]
    is_root: bool = False
    users: list[Instruction] = field(default_factory=list, repr=False)

    def attribute(self, key: str, default: str = "") -> str:
        return self.attributes.get(key, default)

    @cached_property
    def op_name(self) -> str:
        """The ``op_name`` metadata (e.g. ``jit(f)/Conv_0/conv_general_dilated``), or ''."""
        metadata = self.attributes.get("metadata", "")
        start = metadata.find('op_name="')
        if start < 0:
            return ""
        start += len('op_name="')
        end = start
        while end < len(metadata) and metadata[end] != '"':
            end += 2 if metadata[end] == "\\" else 1
        return metadata[start:end]

    def ints(self, key: str) -> list[int]:
        """The integers of a list attribute (``dimensions={0,2}``; [] when absent)."""
        return [int(item) for item in self.attributes.get(key, "").strip("{}").split(",") if item.strip()]

    def called(self, key: str) -> list[str]:
        """Computation names an attribute calls (``calls``, ``to_apply``, ``body``, ``branch_computations``)."""
        value = self.attributes.get(key, "")
        value = value.strip("{}")
        return [part.strip().lstrip("%") for part in value.split(",") if part.strip()]


class AboutInstruction:
    """For records about one instruction: its ``name``, ``opcode`` and ``shape``."""

    instruction: Instruction

    @property
    def name(self) -> str:
        return self.instruction.name

    @property
    def opcode(self) -> str:
        return self.instruction.opcode

    @property
    def shape(self) -> Shape:
        return self.instruction.shape


@dataclass
class Computation:
    name: str
    instructions: list[Instruction]
    is_entry: bool = False
    _index: dict[str, Instruction] = field(default_factory=dict, repr=False)

    @property
    def root(self) -> Instruction:
        for instruction in self.instructions:
            if instruction.is_root:
                return instruction
        return self.instructions[-1]

    def by_name(self) -> dict[str, Instruction]:
        """Instructions by name (built once; computations are not edited after parsing)."""
        if len(self._index) != len(self.instructions):
            self._index = {instruction.name: instruction for instruction in self.instructions}
        return self._index

    def outputs(self) -> list[Instruction]:
        """What the computation returns: the root, or the elements of a root tuple."""
        root = self.root
        if root.opcode != "tuple":
            return [root]
        by_name = self.by_name()
        return [by_name[name] for name in root.operands]

    def parameters(self) -> list[Instruction]:
        """Parameter instructions in parameter-number order."""
        params = [i for i in self.instructions if i.opcode == "parameter"]
        return sorted(params, key=lambda i: int(i.attributes.get("_number", "0")))


#: HLO's element types by the names numpy and JAX give them.
NUMPY_NAMES = {"pred": "bool", "s8": "int8", "s16": "int16", "s32": "int32", "s64": "int64", "u8": "uint8",
               "u16": "uint16", "u32": "uint32", "u64": "uint64", "f16": "float16", "bf16": "bfloat16",
               "f32": "float32", "f64": "float64", "f8e4m3fn": "float8_e4m3fn", "f8e5m2": "float8_e5m2"}


#: The attributes by which an instruction calls computations (fusions, reductions, loops, branches, async calls).
CALLING_ATTRIBUTES = ("calls", "to_apply", "body", "condition", "branch_computations", "true_computation",
                      "false_computation")


@dataclass
class Module:
    computations: dict[str, Computation]

    @property
    def entry(self) -> Computation:
        for computation in self.computations.values():
            if computation.is_entry:
                return computation
        return list(self.computations.values())[-1]

    def dominant_dtype(self) -> str:
        """The numpy name of the element type of the entry's largest parameter (what the program mostly computes
        in); float32 without parameters."""
        arrays = [leaf for parameter in self.entry.parameters() for leaf in parameter.shape.leaves()]
        largest = max(arrays, key=lambda shape: shape.elements, default=None)
        return NUMPY_NAMES.get(largest.dtype, largest.dtype) if largest is not None else "float32"

    def owners(self) -> dict[str, str]:
        """Every instruction's name (in any computation: a loop's body, a branch, a fusion) mapped to the
        top-level instruction it runs under; a top-level instruction maps to itself. Names are unique in a
        module, as XLA makes them."""
        owners: dict[str, str] = {}
        for top in self.entry.instructions:
            owners[top.name] = top.name
            pending = [top]
            while pending:
                instruction = pending.pop()
                for key in CALLING_ATTRIBUTES:
                    for name in instruction.called(key):
                        for inner in self.computations[name].instructions if name in self.computations else ():
                            if inner.name not in owners:
                                owners[inner.name] = top.name
                                pending.append(inner)
        return owners


#: What the bracket scanners look at: a quoted string (skipped whole), a bracket, or a comma.
_SPECIAL = re.compile(r'"(?:[^"\\]|\\.)*"|[()\[\]{},]')
_CLOSING = {"(": ")", "{": "}", "[": "]"}


def _matching(text: str, start: int) -> int:
    """Index just past the bracket group opening at ``text[start]``, skipping quoted strings."""
    stack = []
    for match in _SPECIAL.finditer(text, start):
        token = match.group()
        if token in _CLOSING:
            stack.append(_CLOSING[token])
        elif stack and token == stack[-1]:
            stack.pop()
            if not stack:
                return match.end()
    return len(text)


def split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and quotes."""
    parts, depth, start = [], 0, 0
    for match in _SPECIAL.finditer(text):
        token = match.group()
        if token in "([{":
            depth += 1
        elif token in ")]}":
            depth -= 1
        elif token == "," and depth == 0:
            parts.append(text[start:match.start()])
            start = match.end()
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


_ATTRIBUTE_START = re.compile(r",\s*(?=[a-z_][a-z_0-9.\-]*=)")


def _attribute_parts(text: str) -> list[str]:
    """An instruction's ``key=value`` attributes: split at each ``, key=`` where every piece's brackets and quotes
    balance (fast: TPU programs carry long JSON configs), else by the exact scanner."""
    parts = _ATTRIBUTE_START.split(text)
    if all(part.count("(") == part.count(")") and part.count("{") == part.count("}") and
           part.count("[") == part.count("]") and part.count('"') % 2 == 0 for part in parts):
        return [part.strip() for part in parts if part.strip()]
    return split_top_level(text)


def parse_shape(text: str, sizes: Sizes | int = POINTER_BYTES) -> Shape:
    """Parse ``f32[1,56,56,64]{3,2,1,0}``, ``f32[]`` or ``(bf16[8]{0}, u8[0]{0})``, sized as ``sizes`` says (an
    int: the pointer bytes of a tuple's table)."""
    sizes = as_sizes(sizes)
    text = text.strip()
    if text.startswith("("):
        elements = tuple(parse_shape(part, sizes) for part in split_top_level(text[1:-1]))
        return Shape(elements_of=elements, sizes=sizes)
    bracket = text.index("[")
    close = text.index("]", bracket)
    dims_text = text[bracket + 1:close]
    dynamic = "<=" in dims_text
    dims = tuple(int(d) for d in dims_text.replace("<=", "").split(",") if d.strip())
    layout, element_bits, memory_space, split = None, None, 0, None
    tiles: tuple[tuple[int, ...], ...] = ()
    rest = text[close + 1:]
    if rest.startswith("{"):
        layout_text, _, tiling = rest[1:_matching(rest, 0) - 1].partition(":")
        layout = tuple(int(d) for d in layout_text.split(",") if d.strip())
        packed = _ELEMENT_BITS.search(tiling)
        element_bits = int(packed.group(1)) if packed else None
        tiled = TILES.search(tiling)
        if tiled:
            tiles = tuple(tuple(int(size) for size in group.split(","))
                          for group in re.findall(r"\(([\d,]+)\)", tiled.group(1)))
        space = _MEMORY_SPACE.search(tiling)
        memory_space = int(space.group(1)) if space else 0
        split_at = _SPLIT.search(tiling)
        split = (int(split_at.group(1)), int(split_at.group(2))) if split_at else None
    return Shape(dtype=text[:bracket], dims=dims, minor_to_major=layout, element_bits=element_bits, tiles=tiles,
                 memory_space=memory_space, split=split, sizes=sizes, dynamic=dynamic)


def _read_shape(text: str, sizes: Sizes) -> tuple[Shape, str]:
    """Parse the shape at the start of ``text``; return it and the rest."""
    if text.startswith("("):
        end = _matching(text, 0)
    else:
        end = text.index("]") + 1
        if end < len(text) and text[end] == "{":
            end = _matching(text, end)
    return parse_shape(text[:end], sizes), text[end:].lstrip()


#: An instruction's start: ``ROOT``, its name and ``=``.
_HEAD = re.compile(r"\s*(ROOT\s+)?%?([^\s=]+)\s*=\s*")
#: Text that starts with an opcode and its operands: the result shape was left out (XLA infers it).
_OPCODE_FIRST = re.compile(r"[a-z][a-z0-9\-]*\(")
#: The shape of an instruction whose text leaves it out, until ``parse_module`` infers it (an empty shape alone).
OMITTED = Shape()


def parse_instruction(line: str, sizes: Sizes | int = POINTER_BYTES) -> Instruction:
    """Parse one instruction, e.g. ``%add.0 = f32[8]{0} add(%a, %b), metadata={...}`` (its text may span lines).
    A result shape left out is ``OMITTED`` here; ``parse_module`` infers it from the operands."""
    line = _COMMENT.sub("", line).strip()
    head = _HEAD.match(line)
    if head is None:
        raise ValueError(f"not an HLO instruction: {line[:120]!r}")
    name, rest = head.group(2), line[head.end():]
    if _OPCODE_FIRST.match(rest):
        shape = OMITTED
    else:
        shape, rest = _read_shape(rest, as_sizes(sizes))
    paren = rest.index("(")
    opcode = rest[:paren].strip()
    close = _matching(rest, paren)
    operand_text = rest[paren + 1:close - 1]
    attributes: dict[str, str] = {}
    for part in _attribute_parts(rest[close:].lstrip().lstrip(",")):
        key, _, value = part.partition("=")
        attributes[key.strip()] = value.strip()
    operands: list[str] = []
    if opcode == "parameter":
        attributes["_number"] = operand_text.strip()
    elif opcode == "constant":
        attributes["_literal"] = operand_text.strip()
    else:
        for item in split_top_level(operand_text):
            operands.append(item.split()[-1].lstrip("%"))
    return Instruction(name=name, shape=shape, opcode=opcode, operands=operands, attributes=attributes,
                       is_root=head.group(1) is not None)


# ---- result shapes XLA's parser infers where the text leaves them out (hlo_parser.cc: CanInferShape; then
# ShapeInference); the opcodes it cannot infer (convert, reshape, fusion, custom-call, ...) must be written

_SAME_AS_FIRST = frozenset({"copy", "reverse", "opt-barrier", "add-dependency", "domain", "while", "cholesky",
                            "batch-norm-inference", "select-and-scatter", "abs", "negate", "sign", "not", "popcnt",
                            "count-leading-zeros", "floor", "ceil", "round-nearest-afz", "round-nearest-even",
                            "exponential", "exponential-minus-one", "log", "log-plus-one", "logistic", "sqrt",
                            "rsqrt", "cbrt", "tanh", "sine", "cosine", "tan", "erf", "acos", "acosh", "asin",
                            "asinh", "atanh", "cosh", "sinh", "add", "subtract", "multiply", "divide", "remainder",
                            "maximum", "minimum", "power", "atan2", "and", "or", "xor", "shift-left",
                            "shift-right-arithmetic", "shift-right-logical"})
_COMPLEX_OF = {"f32": "c64", "f64": "c128"}
_REAL_OF = {"c64": "f32", "c128": "f64"}


def _windowed(size: int, window_size: int, geometry: dict[str, list[int]], axis: int) -> int:
    """Positions of a window of ``window_size`` along an input dimension of ``size``, dilated, padded and strided
    as ``geometry`` (``convolution.window``) says for ``axis``."""
    dilated = (size - 1) * geometry["lhs_dilate"][axis] + 1 if size else 0
    padded = dilated + geometry["pad_lo"][axis] + geometry["pad_hi"][axis]
    extent = (window_size - 1) * geometry["rhs_dilate"][axis] + 1
    return (padded - extent) // geometry["stride"][axis] + 1 if padded >= extent else 0


def inferred_shape(instruction: Instruction, operands: list[Shape], computations: dict[str, Computation],
                   sizes: Sizes) -> Shape:
    """The result shape XLA's parser gives an instruction whose text leaves it out, from its operands' shapes (and
    the computations it calls); raises for an opcode whose shape must be written."""
    from jaxcost.hlo.convolution import dim_labels, window  # it reads shapes from here

    opcode = instruction.opcode

    def array(dtype: str, dims: Iterable[int], layout: tuple[int, ...] | None = None) -> Shape:
        return Shape(dtype=dtype, dims=tuple(dims), minor_to_major=layout, sizes=sizes)

    def root(key: str) -> Shape:
        return computations[instruction.called(key)[0]].root.shape

    def values(shapes: list[Shape]) -> Shape:  # one array, or a tuple of several
        return shapes[0] if len(shapes) == 1 else Shape(elements_of=tuple(shapes), sizes=sizes)

    if opcode == "tuple":
        return Shape(elements_of=tuple(operands), sizes=sizes)
    if opcode == "after-all":
        return array("token", ())
    if opcode in ("replica-id", "partition-id"):
        return array("u32", ())
    if opcode == "get-dimension-size":
        return array("s32", ())
    if opcode == "call":
        return root("to_apply")
    if opcode == "conditional":
        branches = instruction.called("branch_computations") or instruction.called("true_computation")
        return computations[branches[0]].root.shape
    if not operands:  # every opcode below reads its shape off its operands
        raise ValueError(f"{instruction.name}: its shape is left out and {opcode} has no operands to infer it from")
    first = operands[0]
    if opcode == "get-tuple-element":
        return first.element(int(instruction.attribute("index")))
    if opcode in ("compare", "is-finite"):
        return replace(first, dtype="pred")
    if opcode == "complex":
        return replace(first, dtype=_COMPLEX_OF.get(first.dtype, first.dtype))
    if opcode in ("real", "imag") or (opcode == "abs" and first.dtype in _REAL_OF):
        return replace(first, dtype=_REAL_OF.get(first.dtype, first.dtype))
    if opcode in ("select", "clamp", "triangular-solve"):
        return operands[1]
    if opcode in _SAME_AS_FIRST:
        return first
    if opcode == "set-dimension-size":
        return replace(first, dynamic=True)
    if opcode == "transpose":  # XLA lays the result out so that the transpose moves nothing (a bitcast)
        permutation = instruction.ints("dimensions")
        layout = first.minor_to_major or tuple(reversed(range(len(first.dims))))
        return array(first.dtype, (first.dims[axis] for axis in permutation),
                     tuple(permutation.index(axis) for axis in layout))
    if opcode == "broadcast":  # XLA's InferBroadcastShape: ``dimensions`` are sizes put before the operand's
        return array(first.dtype, (*instruction.ints("dimensions"), *first.dims))
    if opcode == "concatenate":
        axis = instruction.ints("dimensions")[0]
        dims = list(first.dims)
        dims[axis] = sum(shape.dims[axis] for shape in operands)
        return array(first.dtype, dims)
    if opcode == "pad":
        dims = []
        for size, config in zip(first.dims, instruction.attribute("padding").split("x")):
            low, high, *interior = (int(part) for part in config.split("_"))
            dims.append(low + high + size + max(size - 1, 0) * (interior[0] if interior else 0))
        return array(first.dtype, dims)
    if opcode == "dot":
        lhs, rhs = operands[:2]
        kept = []
        for shape, side in ((lhs, "lhs"), (rhs, "rhs")):
            dropped = set(instruction.ints(f"{side}_batch_dims")) | set(instruction.ints(f"{side}_contracting_dims"))
            kept.append([size for axis, size in enumerate(shape.dims) if axis not in dropped])
        batch = [lhs.dims[axis] for axis in instruction.ints("lhs_batch_dims")]
        dtype = max((lhs.dtype, rhs.dtype), key=lambda name: PRIMITIVE_BYTES.get(name, 0))
        return array(dtype, batch + kept[0] + kept[1])
    if opcode in ("reduce", "reduce-window"):
        inits = operands[len(operands) // 2:]
        if opcode == "reduce":
            reduced = set(instruction.ints("dimensions"))
            dims = [size for axis, size in enumerate(first.dims) if axis not in reduced]
        else:
            geometry = window(instruction)
            dims = [_windowed(size, geometry["size"][axis], geometry, axis) for axis, size in enumerate(first.dims)]
        return values([array(init.dtype, dims) for init in inits])
    if opcode == "scatter":
        return values(operands[:len(operands) // 2])  # its targets
    if opcode == "sort":
        return values(operands)
    if opcode == "map":
        return array(root("to_apply").dtype, first.dims)
    if opcode == "convolution":
        lhs, rhs = operands[:2]
        lhs_labels, rhs_labels, out_labels = dim_labels(instruction)
        geometry = window(instruction)
        sizes_by_label = {"b": lhs.dims[lhs_labels.index("b")] // int(instruction.attribute("batch_group_count", "1")),
                          "f": rhs.dims[rhs_labels.index("o")]}
        for axis, label in enumerate(sorted(c for c in lhs_labels if c.isdigit())):
            sizes_by_label[label] = _windowed(lhs.dims[lhs_labels.index(label)], rhs.dims[rhs_labels.index(label)],
                                              geometry, axis)
        return array(lhs.dtype, (sizes_by_label[label] for label in out_labels))
    if opcode == "gather":
        indices = operands[1]
        vector_axis = int(instruction.attribute("index_vector_dim", str(len(indices.dims))))
        batch = [size for axis, size in enumerate(indices.dims) if axis != vector_axis]
        dropped = set(instruction.ints("collapsed_slice_dims")) | set(instruction.ints("operand_batching_dims"))
        offsets = iter(size for axis, size in enumerate(instruction.ints("slice_sizes")) if axis not in dropped)
        offset_dims = set(instruction.ints("offset_dims"))
        batches = iter(batch)
        rank = len(batch) + len(offset_dims)
        return array(first.dtype, (next(offsets) if axis in offset_dims else next(batches) for axis in range(rank)))
    if opcode == "fft":
        kind, lengths = instruction.attribute("fft_type"), instruction.ints("fft_length")
        dims = list(first.dims)
        if kind == "RFFT":
            dims[-1] = lengths[-1] // 2 + 1
            return array(_COMPLEX_OF.get(first.dtype, first.dtype), dims)
        if kind == "IRFFT":
            dims[-1] = lengths[-1]
            return array(_REAL_OF.get(first.dtype, first.dtype), dims)
        return first
    if opcode == "topk":
        top_dims = (*first.dims[:-1], int(instruction.attribute("k")))
        return Shape(elements_of=(array(first.dtype, top_dims), array("s32", top_dims)), sizes=sizes)
    if opcode in ("batch-norm-training", "batch-norm-grad"):
        feature = array(operands[1].dtype, (first.dims[int(instruction.attribute("feature_index"))],))
        return Shape(elements_of=(first, feature, feature), sizes=sizes)
    raise ValueError(f"{instruction.name}: the result shape of {opcode} must be written (XLA infers it only for "
                     "some opcodes)")


def parse_module(text: str, sizes: Sizes | int = POINTER_BYTES) -> Module:
    """Parse a whole HLO module's text into computations; instructions know their users. Shapes are sized as
    the compiler that made the program sizes them (``sizes``; an int: the pointer bytes of a tuple's table)."""
    sizes = as_sizes(sizes)
    text = _COMMENT.sub("", text)
    computations: dict[str, Computation] = {}
    position = _after_module_header(text)
    while (brace := _body_brace(text, position := _after_debug_info(text, position))) is not None:
        header = text[position:brace].split()
        is_entry = bool(header) and header[0] == "ENTRY"
        names = header[1:] if is_entry else header
        name = names[0].split("(")[0].lstrip("%") if names else "entry"
        end = _add_computation(computations, name, text, brace + 1, sizes, is_entry)
        position = _attributes_end(text, end)  # a computation's own (``}, execution_thread="sparsecore"``)
    return Module(computations)


#: A line of the tables of source locations a module may carry beside its computations: a table's name or a row.
_DEBUG_INFO_LINE = re.compile(r"\s*(?:(?:FileNames|FunctionNames|FileLocations|StackFrames)[ \t]*|\d+ [^\n]*)(?:\n|$)")


def _after_debug_info(text: str, position: int) -> int:
    """``position``, past any tables of source locations there."""
    while (line := _DEBUG_INFO_LINE.match(text, position)) is not None and line.end() > position:
        position = line.end()
    return position


def _after_module_header(text: str) -> int:
    """Where the module's computations start: after its ``HloModule`` line, if it has one."""
    start = len(text) - len(text.lstrip())
    if not text.startswith("HloModule", start):
        return 0
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _body_brace(text: str, position: int) -> int | None:
    """Index of the brace that opens the next computation's body (after its name and signature, whose shapes'
    layouts are braces too), or None when no computation follows."""
    depth = 0
    for match in _SPECIAL.finditer(text, position):
        token = match.group()
        if token in "([":
            depth += 1
        elif token in ")]":
            depth -= 1
        elif token == "{" and depth == 0 and text[match.start() - 1] != "]":  # not a shape's layout
            return match.start()
    return None


#: The attributes whose value is one computation, which XLA's parser also reads written inline (``calls={...}``).
_COMPUTATION_ATTRIBUTES = ("calls", "to_apply", "body", "condition", "select", "scatter", "true_computation",
                           "false_computation")


def _add_computation(computations: dict[str, Computation], name: str, text: str, start: int, sizes: Sizes,
                     is_entry: bool) -> int:
    """Parse the computation whose body starts at ``text[start]`` into ``computations`` (with the computations it
    writes inline, named after the instruction and attribute that hold them), inferring the result shapes it leaves
    out; return the index just past its closing brace."""
    instructions: list[Instruction] = []
    by_name: dict[str, Instruction] = {}
    texts, end = _instruction_texts(text, start)
    for instruction_text in texts:
        instruction = parse_instruction(instruction_text, sizes)
        for key in _COMPUTATION_ATTRIBUTES:
            value = instruction.attributes.get(key, "")
            if value.startswith("{") and "=" in value:  # a computation written inline, not a list of names
                inline = f"{instruction.name}.{key}"
                while inline in computations:
                    inline += "_"
                _add_computation(computations, inline, value, 1, sizes, False)
                instruction.attributes[key] = inline
        for operand in instruction.operands:
            _add_tuple_element(operand, by_name, instructions)
        if instruction.shape is OMITTED:
            missing = [operand for operand in instruction.operands if operand not in by_name]
            if missing:
                raise ValueError(f"{instruction.name}: its shape is left out and its operand {missing[0]} is not "
                                 "defined before it")
            instruction.shape = inferred_shape(instruction, [by_name[operand].shape for operand in
                                                             instruction.operands], computations, sizes)
        by_name[instruction.name] = instruction
        instructions.append(instruction)
    computation = Computation(name=name, instructions=instructions, is_entry=is_entry)
    _link_users(computation)
    computations[name] = computation
    return end


def _add_tuple_element(operand: str, by_name: dict[str, Instruction], instructions: list[Instruction]) -> None:
    """An operand written ``%name#1`` (element 1 of ``name``'s tuple, as XLA's dump files print it where the program
    holds a ``get-tuple-element``): that get-tuple-element, added before its reader, under the operand's name, with
    its tuple's metadata (the compiled program's text gives it that, but where XLA fused the operation that made the
    element into a library call: a bias add into a cuDNN convolution, whose op_name the dump has lost)."""
    base, hash_sign, index = operand.rpartition("#")
    if not hash_sign or operand in by_name or not index.isdigit():
        return
    _add_tuple_element(base, by_name, instructions)
    if base not in by_name or not by_name[base].shape.is_tuple:
        return
    elements = by_name[base].shape.elements_of or ()
    if int(index) >= len(elements):
        raise ValueError(f"{operand}: {base} has {len(elements)} tuple elements")
    metadata = by_name[base].attributes.get("metadata")
    element = Instruction(name=operand, shape=elements[int(index)], opcode="get-tuple-element", operands=[base],
                          attributes={"index": index, **({"metadata": metadata} if metadata is not None else {})})
    by_name[operand] = element
    instructions.append(element)


#: A line that holds a whole instruction as XLA prints one: its name, its shape (or none), its opcode and ``(``.
_INSTRUCTION_LINE = re.compile(r"\s*(?:ROOT\s+)?%?[^\s=]+\s*=\s*(?:\(.*?\)\s*|[a-z][a-z0-9]*\[[^\]]*\]"
                               r"(?:\{[^}]*\})?\s*)?[a-z][a-z0-9\-]*\(")
_NEXT_LINE_CONTINUES = re.compile(r"\s*,")
_SPACE = re.compile(r"\s*")
_PLAIN = re.compile(r'[^\s,()\[\]{}"]+')
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _match_end(pattern: re.Pattern[str], text: str, position: int) -> int:
    """End of ``pattern``'s match at ``position`` (the callers' patterns always match there; raises if not)."""
    match = pattern.match(text, position)
    if match is None:
        raise ValueError(f"expected {pattern.pattern!r} at {text[position:position + 120]!r}")
    return match.end()


def _instruction_texts(text: str, position: int) -> tuple[list[str], int]:
    """The text of each instruction of the computation body that starts at ``position``, and the index just past
    its closing brace: a line each where a line holds one whole instruction (as XLA prints them), else as XLA's
    parser reads tokens (an instruction over several lines, several on a line, a computation written inline)."""
    texts = []
    position = _match_end(_SPACE, text, position)
    while position < len(text) and text[position] != "}":
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        line = text[position:end].rstrip()
        if _is_whole_line(line) and not _NEXT_LINE_CONTINUES.match(text, end):
            texts.append(line)
        else:
            end = _instruction_end(text, position)
            texts.append(text[position:end])
        position = _match_end(_SPACE, text, end)
    return texts, min(position + 1, len(text))


def _is_whole_line(line: str) -> bool:
    return (not line.endswith((",", "=")) and line.count(" = ") == 1 and
            line.count("(") == line.count(")") and line.count("{") == line.count("}") and
            line.count("[") == line.count("]") and _INSTRUCTION_LINE.match(line) is not None)


def _instruction_end(text: str, position: int) -> int:
    """End of the instruction that starts at ``position``: its name, shape, opcode and operands, then every
    ``, key=value`` that follows, wherever the lines break."""
    head = _HEAD.match(text, position)
    if head is None:
        raise ValueError(f"not an HLO instruction: {text[position:position + 120]!r}")
    position = head.end()
    if not _OPCODE_FIRST.match(text, position):  # the result shape
        position = _match_end(_SPACE, text, _token_end(text, position))
    return _attributes_end(text, _token_end(text, position))  # the opcode and its operands, then its attributes


def _attributes_end(text: str, position: int) -> int:
    """End of the ``, key=value`` attributes that follow ``position`` (``position`` itself when none do)."""
    while True:
        after = _match_end(_SPACE, text, position)
        if not text.startswith(",", after):
            return position
        key_start = _match_end(_SPACE, text, after + 1)
        equals = text.find("=", key_start)
        if equals < 0:
            return len(text)
        position = _token_end(text, _match_end(_SPACE, text, equals + 1))


def _token_end(text: str, position: int) -> int:
    """End of the token at ``position``: plain characters, bracket groups and quoted strings up to a space or a
    comma outside them (``f32[4]{0}``, ``add(a, b)``, ``b01f_01io->b01f``, ``{...}``, ``[2,2]<=[4]``)."""
    while position < len(text):
        char = text[position]
        if char in "([{":
            position = _matching(text, position)
        elif char == '"':
            quoted = _QUOTED.match(text, position)
            position = quoted.end() if quoted else len(text)
        elif char.isspace() or char in ",)]}":
            return position
        else:
            position = _match_end(_PLAIN, text, position)
    return position


def _link_users(computation: Computation) -> None:
    by_name = computation.by_name()
    for instruction in computation.instructions:
        for operand in dict.fromkeys(instruction.operands):
            if operand in by_name:
                by_name[operand].users.append(instruction)
