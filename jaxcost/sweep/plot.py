"""A sweep's results along one axis: compiled FLOPs (and time, where measured), one line per setting of the
other axes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jaxcost.sweep.results import ResultsFile


def plot_axis(results: str | os.PathLike, axis: str, path: str | os.PathLike,
              keys: set[str] | None = None) -> list[Path]:
    """How cost (and time, where measured) grows along one axis: one line per setting of the other axes.

    ``keys`` keeps to one grid's records (a file may hold several grids'); all successful records by default.
    """
    from jaxcost.reports.plots import pyplot, save

    records = [r for key, r in ResultsFile(results).latest().items()
               if r.get("status") == "ok" and (keys is None or key in keys)]
    if not records:
        raise ValueError("no configuration succeeded: nothing to plot")
    records = [r for r in records if axis in r.get("config", {})]
    if not records:
        raise ValueError(f"axis: {axis!r} is not an axis of the recorded configurations")
    plt = pyplot()
    series: dict[str, list[tuple[Any, dict]]] = {}
    for record in records:
        others = {k: v for k, v in record["config"].items() if k != axis and not isinstance(v, list)}
        others.update({name: record[name] for name in ("layer", "mode") if record.get(name)})
        series.setdefault(json.dumps(others, sort_keys=True), []).append((record["config"][axis], record))
    timed = any(record.get("seconds_median") is not None for record in records)
    numeric = all(_order((record["config"][axis], record))[0] == 0 for record in records)  # else categories
    figure, axes = plt.subplots(1, 2 if timed else 1, figsize=(12 if timed else 7, 5), squeeze=False)
    for label, points in list(series.items())[:12]:
        points.sort(key=_order)
        xs = [x if numeric else json.dumps(x) for x, _ in points]
        axes[0][0].plot(xs, [r["compiler_flops"] for _, r in points], "o-", label=label, markersize=3)
        if timed:
            measured = [(x, r["seconds_median"]) for x, (_, r) in zip(xs, points)
                        if r.get("seconds_median") is not None]
            axes[0][1].plot([x for x, _ in measured], [seconds for _, seconds in measured], "o-", markersize=3)
    axes[0][0].set_ylabel("compiled FLOPs")
    axes[0][0].legend(fontsize=6)
    if timed:
        axes[0][1].set_ylabel("seconds (median)")
    for ax in axes[0]:
        ax.set_xlabel(axis)
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    return save(figure, path, dpi=120)


def _order(point: tuple[Any, dict]) -> tuple:
    """Numbers in order, then anything else (lists of sizes, text) in the order of its JSON text."""
    value = point[0]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, json.dumps(value))
