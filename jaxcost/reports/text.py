"""Human-readable output: SI units and plain-text tables. No JAX here."""

from __future__ import annotations

from collections.abc import Sequence

_PREFIXES = ((1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def format_si(value: float, unit: str, digits: int = 2) -> str:
    """A value with a decimal SI prefix: ``format_si(2.5e6, "MACs")`` is ``2.50 MMACs``."""
    magnitude = abs(value)
    for scale, prefix in _PREFIXES:
        if magnitude >= scale:
            return f"{value / scale:.{digits}f} {prefix}{unit}".rstrip()
    if float(value).is_integer():
        return f"{int(value)} {unit}".rstrip()
    return f"{value:.{digits}f} {unit}".rstrip()


def format_count(flops: float, digits: int = 2) -> str:
    """A count of floating-point operations: ``451.48 MFLOPs`` (a count, not a rate)."""
    return format_si(flops, "FLOPs", digits)


def format_rate(flops_per_second: float, digits: int = 2) -> str:
    """A rate: ``1.23 TFLOP/s``."""
    return format_si(flops_per_second, "FLOP/s", digits)


def format_bytes(bytes_count: float, digits: int = 2) -> str:
    """Bytes with decimal SI prefixes: ``2.70 MB``."""
    return format_si(bytes_count, "B", digits)


def format_seconds(seconds: float, digits: int = 3) -> str:
    """A duration in the unit that reads best: ``45.2 µs``, ``1.23 ms``, ``2.50 s``."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.{digits}g} {unit}"
    return f"{seconds / 1e-9:.{digits}g} ns"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A plain-text table. ``align`` has one letter per column, ``l`` or ``r``; by default the first
    column is left-aligned and the rest right-aligned."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [list(map(str, headers))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[col]) for row in cells) for col in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [cell.rjust(width) if side == "r" else cell.ljust(width)
                 for cell, width, side in zip(row, widths, align)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])
