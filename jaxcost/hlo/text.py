"""Parse optimized HLO text into computations and instructions.

One parser serves live programs (``Compiled.as_text()``) and stored fixtures alike, so tests on
the CPU can read HLO captured on a GPU. It reads one instruction line at a time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
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
        return size if self.tiles or self.dims else max(size, sizes.untiled_scalar_bytes)

    @property
    def padding_bytes(self) -> int:
        """Bytes the layout's tiles add to the array's own (0 without tiles)."""
        if self.elements_of is not None or not self.tiles:
            return 0
        return self.bytes - Shape(self.dtype, self.dims, self.minor_to_major, element_bits=self.element_bits,
                                  split=self.split).bytes

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


_ATTRIBUTE_START = re.compile(r", (?=[a-z_][a-z_0-9.]*=)")


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
    dims_text = text[bracket + 1:close].replace("<=", "")
    dims = tuple(int(d) for d in dims_text.split(",") if d.strip())
    layout, element_bits, tiles, memory_space, split = None, None, (), 0, None
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
                 memory_space=memory_space, split=split, sizes=sizes)


def _read_shape(text: str, sizes: Sizes) -> tuple[Shape, str]:
    """Parse the shape at the start of ``text``; return it and the rest."""
    if text.startswith("("):
        end = _matching(text, 0)
    else:
        end = text.index("]") + 1
        if end < len(text) and text[end] == "{":
            end = _matching(text, end)
    return parse_shape(text[:end], sizes), text[end:].lstrip()


def parse_instruction(line: str, sizes: Sizes | int = POINTER_BYTES) -> Instruction:
    """Parse one instruction line, e.g. ``%add.0 = f32[8]{0} add(%a, %b), metadata={...}``."""
    line = _COMMENT.sub("", line).strip()
    is_root = line.startswith("ROOT ")
    if is_root:
        line = line[5:]
    name, _, rest = line.partition(" = ")
    shape, rest = _read_shape(rest, as_sizes(sizes))
    paren = rest.index("(")
    opcode = rest[:paren].strip()
    close = _matching(rest, paren)
    operand_text = rest[paren + 1:close - 1]
    attributes: dict[str, str] = {}
    for part in _attribute_parts(rest[close:].lstrip(", ")):
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
    return Instruction(name=name.strip().lstrip("%"), shape=shape, opcode=opcode, operands=operands,
                       attributes=attributes, is_root=is_root)


def parse_module(text: str, sizes: Sizes | int = POINTER_BYTES) -> Module:
    """Parse a whole HLO module's text into computations; instructions know their users. Shapes are sized as
    the compiler that made the program sizes them (``sizes``; an int: the pointer bytes of a tuple's table)."""
    sizes = as_sizes(sizes)
    computations: dict[str, Computation] = {}
    current: Computation | None = None
    for raw in text.splitlines():
        if current is None:
            stripped = raw.strip()
            if stripped.endswith("{") and not raw.startswith(" ") and not stripped.startswith("HloModule"):
                is_entry = stripped.startswith("ENTRY ")
                header = stripped[6:] if is_entry else stripped
                name = header.split()[0].split("(")[0].lstrip("%")
                current = Computation(name=name, instructions=[], is_entry=is_entry)
            continue
        if raw.startswith("}"):
            _link_users(current)
            computations[current.name] = current
            current = None
        elif raw.strip():
            current.instructions.append(parse_instruction(raw, sizes))
    return Module(computations)


def _link_users(computation: Computation) -> None:
    by_name = computation.by_name()
    for instruction in computation.instructions:
        for operand in dict.fromkeys(instruction.operands):
            if operand in by_name:
                by_name[operand].users.append(instruction)
