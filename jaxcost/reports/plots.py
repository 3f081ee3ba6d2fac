"""matplotlib, headless, and one way to save a figure: PNG and SVG side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (ImportError with the fix when absent)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib (or jaxcost[plot])") from None
    return plt


def save(figure: Any, path: str | Path, dpi: int = 130) -> list[Path]:
    """Write ``path`` with .png and .svg suffixes, close the figure, return both paths."""
    base = Path(path)
    written = [base.with_suffix(".png"), base.with_suffix(".svg")]
    for target in written:
        figure.savefig(target, dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)
    return written
