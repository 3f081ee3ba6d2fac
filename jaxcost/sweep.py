"""Sweeps over layer configurations that scale and survive: one record per configuration, appended
as it finishes, so an interrupted sweep resumes where it stopped and loses nothing.

A grid file (JSON or TOML) names the layer type, the base spec and the axes to vary::

    {"layer": "conv", "base": {"input_shape": [1, 56, 56, 64], "features": 128, "kernel_size": 3},
     "axes": {"features": [32, 64, 128], "groups": [1, 4], "dtype": ["float32", "bfloat16"]},
     "timing": false, "mode": "forward"}

``seconds_limit`` bounds each configuration (it is recorded as a timeout past it).
Axes are spec fields, or the shorthands ``batch``, ``size`` (every spatial dimension), ``channels``
(input channels), ``kernel``, ``stride``, ``groups`` and, for depthwise layers, ``multiplier``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jaxcost.specs import Conv, Dense, Spec, depthwise_conv

LAYERS = ("conv", "depthwise", "dense")
#: The measurement's figures a timed record keeps.
MEASURED_FIELDS = ("seconds_median", "spread", "flops_per_second", "bytes_per_second", "compute_utilization",
                   "memory_utilization", "bound", "overhead_share", "seconds_device", "speed_of_light", "precision")
SHORTHANDS = {"kernel": "kernel_size", "stride": "strides", "groups": "feature_group_count",
              "multiplier": "depth_multiplier"}


def load_grid(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a grid file (``.json`` or ``.toml``)."""
    path = Path(path)
    if path.suffix not in (".json", ".toml"):
        raise ValueError(f"grid: {str(path)!r} must be a .json or .toml file")
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"grid: cannot read {str(path)!r}: {error}") from None
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib
            grid = tomllib.loads(text)
        else:
            grid = json.loads(text)
    except ValueError as error:
        raise ValueError(f"grid: {str(path)!r} is not valid {path.suffix.lstrip('.')}: {error}") from None
    return check_grid(grid)


def check_grid(grid: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(grid, dict):
        raise ValueError(f"grid: must be a table with layer, base and axes, got a {type(grid).__name__}")
    if grid.get("layer", "conv") not in LAYERS:
        raise ValueError(f"grid: layer must be one of {', '.join(LAYERS)}, got {grid.get('layer')!r}")
    if not isinstance(grid.get("base", {}), dict):
        raise ValueError("grid: base must be a table of spec fields")
    axes = grid.get("axes")
    if not isinstance(axes, dict) or not axes:
        raise ValueError("grid: axes must name at least one field with a list of values")
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid: axis {name!r} needs a non-empty list of values")
    if grid.get("mode", "forward") not in ("forward", "train"):
        raise ValueError(f"grid: mode must be 'forward' or 'train', got {grid.get('mode')!r}")
    return grid


def configurations(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """Every point of the grid, in a fixed order: the base with one value per axis."""
    names = list(grid["axes"])
    return [{**grid.get("base", {}), **dict(zip(names, values))}
            for values in itertools.product(*(grid["axes"][name] for name in names))]


def key_of(config: dict[str, Any]) -> str:
    """A configuration's identity in the results file."""
    return json.dumps(config, sort_keys=True)


def spec_of(layer: str, config: dict[str, Any]) -> Spec:
    """The spec a configuration describes (ValueError naming the field when it is invalid)."""
    fields = {SHORTHANDS.get(name, name): value for name, value in config.items()}
    shape = list(fields.pop("input_shape", []))
    if not shape:
        raise ValueError("input_shape: the grid's base must give an input shape")
    if "batch" in fields:
        shape[0] = fields.pop("batch")
    if "channels" in fields:
        shape[-1] = fields.pop("channels")
    if "size" in fields:
        size = fields.pop("size")
        shape[1:-1] = [size] * (len(shape) - 2)
    for name in ("padding",):
        if isinstance(fields.get(name), list):
            fields[name] = tuple(tuple(p) if isinstance(p, list) else p for p in fields[name])
    if layer == "dense":
        return Dense(tuple(shape), **fields)
    if layer == "depthwise":
        return depthwise_conv(tuple(shape), **fields)
    return Conv(tuple(shape), **fields)


def evaluate(spec: Spec, mode: str, timing: bool) -> dict[str, Any]:
    """Analytic and compiler counts of one spec, and its measured time when asked."""
    from jaxcost.comparison import compare

    comparison = compare(spec, mode=mode)
    compiler = comparison.compiler
    record: dict[str, Any] = {
        "kind": spec.kind, "output_shape": list(spec.output_shape), "params": comparison.cost.params,
        "macs": comparison.cost.macs, "textbook_macs": comparison.cost.textbook_macs,
        "flops": comparison.analytic_flops, "bytes_accessed": comparison.analytic_bytes,
        "compiler_flops": compiler.flops, "compiler_bytes": compiler.bytes_accessed,
        "xla_flops": compiler.xla_flops, "xla_bytes": compiler.xla_bytes_accessed, "verdict": comparison.verdict}
    if timing:
        from jaxcost.measure.timing import benchmark

        measured = benchmark(spec, mode=mode, repeats=5, seconds_budget=5.0).as_dict()
        record.update({name: measured[name] for name in MEASURED_FIELDS})
    return record


class ResultsFile:
    """Append-only records, one JSON line (``.jsonl``) or CSV row (``.csv``) per configuration.

    Each record is written with a single ``os.write`` on an ``O_APPEND`` descriptor and synced, so
    a sweep killed at any moment leaves whole records only; a torn last line from a crash of the
    machine itself is dropped on resume.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.csv = self.path.suffix == ".csv"

    def done(self) -> set[str]:
        """Keys of the configurations already recorded (dropping an incomplete last line)."""
        if not self.path.exists():
            return set()
        text = self.path.read_text()
        if text and not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]
            self.path.write_text(text)
        return {record["key"] for record in self.records()}

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        if self.csv:
            import csv

            with self.path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    yield {name: json.loads(value) if value else None for name, value in row.items()}
            return
        for line in self.path.read_text().splitlines():
            if line.strip():
                yield json.loads(line)

    def append(self, record: dict[str, Any], columns: list[str]) -> None:
        if self.csv:
            import csv
            import io

            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
            if not self.path.exists() or self.path.stat().st_size == 0:
                writer.writeheader()
            writer.writerow({name: json.dumps(record.get(name)) for name in columns})
            line = buffer.getvalue()
        else:
            line = json.dumps(record) + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line.encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


CSV_COLUMNS = ["key", "config", "status", "reason", "kind", "output_shape", "params", "macs", "textbook_macs",
               "flops", "bytes_accessed", "compiler_flops", "compiler_bytes", "xla_flops", "xla_bytes", "verdict",
               *MEASURED_FIELDS, "seconds"]


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread after `seconds`; no limit when None or not on a Unix."""
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_sweep(grid: dict[str, Any], results: str | os.PathLike,
              progress: Callable[[int, int, str], None] | None = None) -> dict[str, int]:
    """Run every configuration not yet in ``results``; return counts of ``ok``, ``failed`` and ``skipped``."""
    grid = check_grid(grid)
    layer, mode, timing = grid.get("layer", "conv"), grid.get("mode", "forward"), bool(grid.get("timing", False))
    output = ResultsFile(results)
    done = output.done()
    todo = [config for config in configurations(grid) if key_of(config) not in done]
    counts = {"ok": 0, "failed": 0, "skipped": len(configurations(grid)) - len(todo)}
    for index, config in enumerate(todo, 1):
        start = time.perf_counter()
        record: dict[str, Any] = {"key": key_of(config), "config": config}
        try:
            with _time_limit(grid.get("seconds_limit")):
                spec = spec_of(layer, config)
                record.update(status="ok", **evaluate(spec, mode, timing))
        except TimeoutError:
            record.update(status="failed", reason=f"timeout: over {grid['seconds_limit']} s")
        except ValueError as error:
            record.update(status="failed", reason=f"invalid: {error}")
        except MemoryError:
            record.update(status="failed", reason="out of memory")
        except Exception as error:  # the compiler or the device refused it: record why and go on
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            record.update(status="failed", reason=reason, traceback=traceback.format_exc(limit=3))
        record["seconds"] = time.perf_counter() - start
        output.append(record, CSV_COLUMNS)
        counts[record["status"]] += 1
        if progress:
            progress(index, len(todo), record["status"])
    return counts


def progress_bar(index: int, total: int, status: str, width: int = 30) -> None:
    """A one-line progress bar on stderr."""
    filled = width * index // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {index}/{total} {status:<6}")
    if index == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def plot_axis(results: str | os.PathLike, axis: str, path: str | os.PathLike) -> list[Path]:
    """How cost (and time, where measured) grows along one axis: one line per setting of the other axes."""
    from jaxcost.reports.plots import pyplot, save

    plt = pyplot()
    records = [r for r in ResultsFile(results).records() if r.get("status") == "ok"]
    if not records or axis not in records[0]["config"]:
        raise ValueError(f"axis: {axis!r} is not an axis of the recorded configurations")
    series: dict[str, list[tuple[Any, dict]]] = {}
    for record in records:
        others = {k: v for k, v in record["config"].items() if k != axis and not isinstance(v, list)}
        series.setdefault(json.dumps(others, sort_keys=True), []).append((record["config"][axis], record))
    timed = "seconds_median" in records[0]
    figure, axes = plt.subplots(1, 2 if timed else 1, figsize=(12 if timed else 7, 5), squeeze=False)
    for label, points in list(series.items())[:12]:
        points.sort(key=lambda point: point[0])
        xs = [x for x, _ in points]
        axes[0][0].plot(xs, [r["compiler_flops"] for _, r in points], "o-", label=label, markersize=3)
        if timed:
            axes[0][1].plot(xs, [r["seconds_median"] for _, r in points], "o-", markersize=3)
    axes[0][0].set_ylabel("compiled FLOPs")
    axes[0][0].legend(fontsize=6)
    if timed:
        axes[0][1].set_ylabel("seconds (median)")
    for ax in axes[0]:
        ax.set_xlabel(axis)
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    return save(figure, path, dpi=120)
