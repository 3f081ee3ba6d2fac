"""Human-readable output: SI units and plain-text tables. No JAX here."""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TextIO

#: The width text is wrapped to where no terminal sets it: output sent to a file (or a test) stays the same.
WIDTH = 100
#: The fewest characters a wrapped line keeps for text; a deeper hanging indent is cut back to leave them.
MIN_TEXT_WIDTH = 30

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


def format_known(value: float | None, formatter: Callable[[float], str]) -> str:
    """``formatter(value)``, or ``?`` for a figure that is unknown (None)."""
    return "?" if value is None else formatter(value)


def terminal_width(stream: TextIO | None = None) -> int:
    """The width to wrap to: the terminal's columns when ``stream`` (stdout by default) is a terminal, else
    ``WIDTH``, so that what is written to a file does not depend on the terminal it was run from."""
    return terminal_columns(stream) or WIDTH


#: The spaces ``wrap`` does not break at: between a number and its unit (``802,816 B``, ``100 %``) and inside a
#: list of numbers (a shape: ``(1, 56, 56, 64)``).
_KEPT_SPACES = re.compile(r"(?<=\d) (?=[^\W\d]|%)|(?<=\d,) (?=\d)")
#: What stands for such a space while a text is wrapped: a character that is not whitespace and not in text.
_KEPT_SPACE = "\0"


def terminal_columns(stream: TextIO | None = None) -> int | None:
    """The terminal's columns when ``stream`` (stdout by default) is a terminal, else None: a table written to a
    file keeps every column."""
    stream = stream or sys.stdout
    on_terminal = getattr(stream, "isatty", None)
    return shutil.get_terminal_size((WIDTH, 24)).columns if on_terminal and on_terminal() else None


def wrap(text: str, width: int = WIDTH, indent: str = "") -> str:
    """``text`` broken at spaces into lines of at most ``width`` characters, those after the first starting with
    ``indent`` (a hanging indent). A word longer than a line stays whole: numbers and names are never cut, nor a
    number parted from its unit, nor a shape."""
    indent = indent[:max(width - MIN_TEXT_WIDTH, 0)]
    lines = textwrap.wrap(_KEPT_SPACES.sub(_KEPT_SPACE, text), width, subsequent_indent=indent,
                          break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines).replace(_KEPT_SPACE, " ") or text


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "", width: int | None = None) -> str:
    """A plain-text table. ``align`` has one letter per column, ``l`` or ``r``; by default the first
    column is left-aligned and the rest right-aligned. Given a ``width``, a left-aligned last column (what
    each row is, in words) is wrapped to fit it, its lines under one another; the other columns stay whole."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [list(map(str, headers))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[col]) for row in cells) for col in range(len(headers))]
    last_column = sum(widths[:-1]) + 2 * (len(widths) - 1)
    if width is not None and align[-1] == "l":
        widths[-1] = min(widths[-1], max(width - last_column, MIN_TEXT_WIDTH, len(cells[0][-1])))

    def line(row: list[str]) -> str:
        parts = [cell.rjust(column_width) if side == "r" else cell.ljust(column_width)
                 for cell, column_width, side in zip(row, widths, align)]
        return "  ".join(parts).rstrip()

    def lines(row: list[str]) -> list[str]:
        first, *more = wrap(row[-1], widths[-1]).split("\n") if len(row[-1]) > widths[-1] else [row[-1]]
        return [line([*row[:-1], first])] + [" " * last_column + piece for piece in more]

    rule = "  ".join("-" * column_width for column_width in widths)
    return "\n".join([line(cells[0]), rule] + [text for row in cells[1:] for text in lines(row)])


def shortened(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters in the middle, where a long path repeats itself least."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


#: Columns kept this long or longer stay however narrow the terminal (``narrowed``).
ALWAYS_KEPT = 7


def table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Characters a plain ``table`` of these cells takes (two spaces between columns)."""
    return sum(max(len(cell) for cell in [header, *cells]) for header, cells in
               zip(headers, zip(*rows))) + 2 * (len(headers) - 1)


def narrowed(headers: Sequence[str], rows: Sequence[Sequence[str]], keep: Sequence[int],
             width: int) -> list[int]:
    """The indexes of the columns a table of ``width`` characters shows: the columns of least ``keep`` left out
    first, one by one, until it fits or only those kept ``ALWAYS_KEPT`` and longer remain."""
    kept = list(range(len(headers)))
    for index in sorted(kept, key=lambda index: keep[index]):
        if keep[index] >= ALWAYS_KEPT or table_width([headers[i] for i in kept],
                                                      [[row[i] for i in kept] for row in rows]) <= width:
            break
        kept.remove(index)
    return kept


def fitted_table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str, keep: Sequence[int],
                 width: int | None) -> str:
    """``table``, narrowed to ``width`` (a terminal's) by ``narrowed`` and saying what it left out; whole when
    ``width`` is None (a file, a pipe)."""
    if width is None:
        return table(headers, rows, align=align)
    kept = narrowed(headers, rows, keep, width)
    text = table([headers[i] for i in kept], [[row[i] for i in kept] for row in rows],
                 align="".join(align[i] for i in kept))
    dropped = [header for index, header in enumerate(headers) if index not in kept]
    return text + (f"\n{left_out(dropped, width)}" if dropped else "")


def left_out(headers: Sequence[str], width: int) -> str:
    """The lines under a narrowed table naming the columns it left out, wrapped to ``width``."""
    return wrap(f"left out to fit {width} columns: {', '.join(headers)} (a wider terminal, or the output sent to a "
                "file or --json, shows them)", width)
