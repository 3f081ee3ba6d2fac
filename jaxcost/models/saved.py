"""What a transformer block keeps for its backward pass, beside the published formula: Korthikanti et al. 2022
("Reducing Activation Recomputation in Large Transformer Models", section 4.1), sbh(34 + 5as/h) bytes a layer with
16-bit activations and 1-byte dropout masks (s sequence, b batch, h hidden, a heads).

The formula is a list of tensors of three sizes (sbh, 4sbh, as²b) at 2 bytes, and of dropout masks at 1 byte.
The compiler's saved values of one block are sorted into the same sizes, so that the difference comes out item by
item: tensors the formula counts and the program does not keep (dropout masks of a model without dropout),
tensors the program keeps more of (copies in another layout, float32 copies of 16-bit tensors), wider elements,
and values of other sizes (a norm's statistics), each named.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from jaxcost.hlo.text import parse_shape
from jaxcost.models.memory import LiveValue, MemoryReport

#: The formula's bytes per element: 16-bit activations.
FORMULA_WIDTH = 2


@dataclass(frozen=True)
class Term:
    """One line of the published formula: ``count`` tensors of a size class, ``width`` bytes an element."""

    name: str
    size: str
    count: int
    width: int = FORMULA_WIDTH
    dropout: bool = False


#: Korthikanti et al. 2022, section 4.1, a layer: attention 11sbh + 5as²b, MLP 19sbh, the two LayerNorms 4sbh.
KORTHIKANTI = (
    Term("the QKV projections' input", "sbh", 1),
    Term("Q and K, for QK^T", "sbh", 2),
    Term("softmax output", "as2b", 1),
    Term("softmax dropout mask", "as2b", 1, width=1, dropout=True),
    Term("softmax dropout output, for the product with V", "as2b", 1, dropout=True),
    Term("V", "sbh", 1),
    Term("the output projection's input", "sbh", 1),
    Term("attention dropout mask", "sbh", 1, width=1, dropout=True),
    Term("the first MLP linear's input", "sbh", 1),
    Term("GeLU input", "4sbh", 1),
    Term("GeLU output, the second MLP linear's input", "4sbh", 1),
    Term("MLP dropout mask", "sbh", 1, width=1, dropout=True),
    Term("the two LayerNorms' inputs", "sbh", 2),
)
SIZES = ("sbh", "4sbh", "as2b")
#: Whose saved values a comparison sorts: the compiler's (after XLA's optimizations) or JAX's (before them).
LEVELS = ("XLA keeps", "JAX saves")


def formula_bytes(sequence: int, batch: int, hidden: int, heads: int, dropout: bool = True) -> int:
    """sbh(34 + 5as/h) with dropout; without it, the masks and the dropout's output dropped: sbh(32 + 2as/h)."""
    elements = _elements(sequence, batch, hidden, heads)
    return sum(term.count * term.width * elements[term.size] for term in KORTHIKANTI if dropout or not term.dropout)


def _elements(sequence: int, batch: int, hidden: int, heads: int) -> dict[str, int]:
    return {"sbh": sequence * batch * hidden, "4sbh": 4 * sequence * batch * hidden,
            "as2b": heads * sequence * sequence * batch}


@dataclass
class SizeLine:
    """One size class of a block: the tensors of that size the compiled program keeps."""

    size: str
    elements: int
    values: list[LiveValue] = field(default_factory=list)

    @property
    def saved_bytes(self) -> int:
        return sum(value.bytes for value in self.values)

    @property
    def widths(self) -> Counter:
        """How many of the program's tensors keep each element width (bytes)."""
        return Counter(value.bytes // self.elements for value in self.values)


@dataclass
class BlockComparison:
    """One block's saved bytes beside the published formula, the difference itemized so that it adds up exactly.

    ``dropout`` says whether the model drops out (the formula's masks and dropout outputs are then expected)."""

    block: str
    formula_bytes: int
    dropout: bool
    lines: list[SizeLine]
    others: list[LiveValue]
    #: Whose values: what XLA keeps (the buffer assignment's) or what JAX's autodiff saves (its residuals).
    level: str = "XLA keeps"

    @property
    def saved_bytes(self) -> int:
        return sum(line.saved_bytes for line in self.lines) + sum(value.bytes for value in self.others)

    def items(self) -> list[tuple[str, int]]:
        """The difference, compiler minus formula, item by item; the items add up to it exactly."""
        items = [(f"{term.name} ({term.size}), absent: the model has no dropout",
                  -term.count * term.width * self._elements(term.size))
                 for term in KORTHIKANTI if term.dropout and not self.dropout]
        for line in self.lines:
            expected = self.formula_widths(line.size)
            for width in sorted(set(expected) | set(line.widths)):
                kept, counted = line.widths[width], expected[width]
                if kept != counted:
                    made = _made_by([value for value in line.values if value.bytes == width * line.elements])
                    items.append((f"{line.size}: {kept} {8 * width}-bit tensor{'s' if kept != 1 else ''} where "
                                  f"the formula has {counted}{made}", (kept - counted) * width * line.elements))
        for value in self.others:
            element = value.index if value.index not in ("{}", "") else ""
            items.append((f"not in the formula: {value.row} {value.shape.split('{')[0]} ({value.instruction}{element})",
                          value.bytes))
        return items

    def formula_widths(self, size: str, published: bool = False) -> Counter:
        """How many tensors of ``size`` the formula counts at each element width (bytes): dropout's only where the
        model drops out, or always (``published``: the formula as the paper gives it)."""
        expected: Counter = Counter()
        for term in KORTHIKANTI:
            if term.size == size and (self.dropout or published or not term.dropout):
                expected[term.width] += term.count
        return expected

    def _elements(self, size: str) -> int:
        return next(line.elements for line in self.lines if line.size == size)


def compare_block(report: MemoryReport, block: str, sequence: int, batch: int, hidden: int, heads: int,
                  dropout: bool = False, level: str = "XLA keeps") -> BlockComparison:
    """The saved values whose rows are ``block`` or under it, sorted by size class, beside the formula: those XLA
    keeps (``report.saved``), or with ``level="JAX saves"`` those JAX's autodiff saves (``report.residuals``)."""
    if level not in LEVELS:
        raise ValueError(f"level: one of {', '.join(map(repr, LEVELS))}, got {level!r}")
    elements = _elements(sequence, batch, hidden, heads)
    lines = {size: SizeLine(size, elements[size]) for size in SIZES}
    others = []
    for value in report.saved if level == "XLA keeps" else report.residuals:
        if value.row != block and not value.row.startswith(block + "/"):
            continue
        size = _size_class(parse_shape(value.shape).dims, elements, sequence)
        if size is None:
            others.append(value)
        else:
            lines[size].values.append(value)
    return BlockComparison(block, formula_bytes(sequence, batch, hidden, heads), dropout,
                           list(lines.values()), others, level)


def _size_class(dims: tuple[int, ...], elements: dict[str, int], sequence: int) -> str | None:
    """The formula's size a tensor of ``dims`` is, by its elements; where two sizes have as many (a·s = h makes
    as²b the size of sbh, a·s = 4h that of 4sbh), a tensor with the sequence twice among its sizes is as²b."""
    matching = [size for size in SIZES if math.prod(dims) == elements[size]]
    if len(matching) > 1:
        return "as2b" if dims.count(sequence) >= 2 else next(size for size in matching if size != "as2b")
    return matching[0] if matching else None


def _made_by(values: list[LiveValue]) -> str:
    """What made the kept tensors: the JAX operation their op_name ends in (``convert_element_type`` for a 16-bit
    tensor widened to float32, ``transpose`` for one laid out again, ``dot_general`` for a library call's product),
    else the first operation their instruction is named after."""
    made = Counter(_operation(value) for value in values)
    return (" (made by " + ", ".join(f"{operation} x{count}" for operation, count in made.most_common()) + ")"
            if made else "")


def _operation(value: LiveValue) -> str:
    if value.op_name:
        return value.op_name.rpartition("/")[2]
    return value.instruction.partition(".")[0].split("_")[0]


def transformer_dimensions(model: object, inputs: tuple) -> dict[str, int] | None:
    """Sequence, batch, hidden and heads of the zoo's GPT-2 and ViT (their blocks are ``block0`` ...), else None."""
    from jaxcost.models.transformer import GPT2, ViT

    if isinstance(model, GPT2):
        batch, sequence = inputs[0].shape[:2]
    elif isinstance(model, ViT):
        batch, height, width = inputs[0].shape[:3]
        sequence = (height // model.patch) * (width // model.patch) + 1
    else:
        return None
    return {"sequence": sequence, "batch": batch, "hidden": model.width, "heads": model.heads, "depth": model.depth}
