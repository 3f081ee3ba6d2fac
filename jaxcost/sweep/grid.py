"""Grid files: read (JSON, TOML, YAML when PyYAML is installed), checked whole before any work, expanded
into configurations, each with an identity that covers everything that changes its result.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaxcost.formulas import MODES
from jaxcost.specs import Conv, Dense, Spec, depthwise_conv

LAYERS = ("conv", "depthwise", "dense")
PRECISIONS = ("default", "highest")
SHORTHANDS = {"kernel": "kernel_size", "stride": "strides", "groups": "feature_group_count",
              "multiplier": "depth_multiplier"}
#: What a grid may set besides its layer, base and axes.
SETTINGS = ("mode", "timing", "repeats", "precision", "seconds_limit", "target")
GRID_KEYS = ("layer", "base", "axes", *SETTINGS)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value: Any) -> str | None:
    return None if _is_int(value) else "an integer"


def _ints(value: Any) -> str | None:
    """An integer, or a list of integers (one per spatial dimension)."""
    ok = _is_int(value) or (isinstance(value, list) and value and all(_is_int(v) for v in value))
    return None if ok else "an integer or a list of integers"


def _shape(value: Any) -> str | None:
    ok = isinstance(value, list) and value and all(_is_int(v) for v in value)
    return None if ok else "a list of integers"


def _padding(value: Any) -> str | None:
    ok = isinstance(value, (str, list)) or _is_int(value)
    return None if ok else "a string ('SAME', 'VALID'), an integer or a list of (low, high) pairs"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "a string"


#: Each spec field and shorthand a grid may name, with the check of its values' type.
_COMMON: dict[str, Callable[[Any], str | None]] = {
    "input_shape": _shape, "batch": _int, "channels": _int, "use_bias": _bool, "dtype": _text}
_CONV = {**_COMMON, "size": _int, "kernel_size": _ints, "kernel": _ints, "strides": _ints, "stride": _ints,
         "padding": _padding, "input_dilation": _ints, "kernel_dilation": _ints}
FIELDS: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "conv": {**_CONV, "features": _int, "feature_group_count": _int, "groups": _int},
    "depthwise": {**_CONV, "depth_multiplier": _int, "multiplier": _int},
    "dense": {**_COMMON, "features": _int},
}
REQUIRED = {"conv": ("input_shape", "features"), "depthwise": ("input_shape",), "dense": ("input_shape", "features")}


@dataclass(frozen=True)
class Grid:
    """A checked grid: the layer, the base spec fields, the axes and the settings of every run."""

    layer: str
    base: dict[str, Any]
    axes: dict[str, list[Any]]
    mode: str = "forward"
    timing: bool = False
    repeats: int = 5
    precision: str = "default"
    seconds_limit: float | None = None
    #: A TPU slice to compile for (``tpu:v5e:2x2``, counts only), or None for the workers' own device.
    target: str | None = None

    @property
    def settings(self) -> dict[str, Any]:
        """What, beside the configuration, changes a record: part of every key."""
        settings: dict[str, Any] = {"layer": self.layer, "mode": self.mode, "timing": self.timing}
        if self.timing:
            settings.update(repeats=self.repeats, precision=self.precision)
        if self.target:
            settings.update(target=self.target)
        return settings

    def configurations(self) -> list[dict[str, Any]]:
        """Every point of the grid, in a fixed order: the base with one value per axis."""
        names = list(self.axes)
        return [{**self.base, **dict(zip(names, values))}
                for values in itertools.product(*(self.axes[name] for name in names))]

    def key(self, config: dict[str, Any], device_kind: str) -> str:
        """A configuration's identity in a results file: the configuration, the grid's settings, and the kind
        of device it runs on (the compiled program, and so its figures, depend on the backend)."""
        return json.dumps({**self.settings, "config": config, "device_kind": device_kind}, sort_keys=True,
                          separators=(",", ":"))


def load_grid(path: str | os.PathLike) -> Grid:
    """Read and check a grid file (``.json``, ``.toml``, or ``.yaml`` / ``.yml`` with PyYAML installed)."""
    path = Path(path)
    readers = {".json": _json, ".toml": _toml, ".yaml": _yaml, ".yml": _yaml}
    if path.suffix not in readers:
        raise ValueError(f"grid: {str(path)!r} must be a .json, .toml or .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"grid: cannot read {str(path)!r}: {error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"grid: {str(path)!r} is not UTF-8 text") from None
    try:
        grid = readers[path.suffix](text)
    except MissingReader:
        raise
    except ValueError as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"grid: {str(path)!r} is not valid {path.suffix.lstrip('.')}: {message}") from None
    return check_grid(grid)


def _json(text: str) -> Any:
    return json.loads(text)


def _toml(text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


class MissingReader(ValueError):
    """The library that reads a grid's format is not installed."""


def _yaml(text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise MissingReader("grid: reading a .yaml grid needs PyYAML (pip install pyyaml); "
                         "or write the grid as .json or .toml") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(str(error)) from None


def check_grid(grid: Any) -> Grid:
    """The grid, checked whole: a ValueError naming the first field that breaks a rule."""
    if isinstance(grid, Grid):
        return grid
    if not isinstance(grid, dict):
        kind = "nothing" if grid is None else f"a {type(grid).__name__}"
        raise ValueError(f"grid: must be a table with layer, base and axes, got {kind}")
    _check_plain("", grid)
    for name in grid:
        if name not in GRID_KEYS:
            raise ValueError(f"grid: unknown setting {name!r}; a grid has {', '.join(GRID_KEYS)}")
    layer = grid.get("layer", "conv")
    if layer not in LAYERS:
        raise ValueError(f"grid: layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    base, axes = grid.get("base", {}), grid.get("axes")
    if not isinstance(base, dict):
        raise ValueError("grid: base must be a table of spec fields")
    if not isinstance(axes, dict) or not axes:
        raise ValueError("grid: axes must name at least one field with a list of values")
    fields = FIELDS[layer]
    for place, names in (("base", base), ("axes", axes)):
        for name in names:
            if name not in fields:
                raise ValueError(f"grid: {place}.{name} is not a field of a {layer} layer; "
                                 f"its fields are {', '.join(fields)}")
    for place, names in (("base", base), ("axes", axes)):  # an axis may vary what the base gives, by either name
        for short, full in SHORTHANDS.items():
            if short in names and full in names:
                raise ValueError(f"grid: {place} gives {short} and {full}, the same field; give one of them")
    for name, value in base.items():
        _check_value(f"base.{name}", fields[name], value)
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid: axis {name!r} needs a non-empty list of values")
        seen: list[Any] = []
        for index, value in enumerate(values):
            _check_value(f"axes.{name}[{index}]", fields[name], value)
            if value in seen:
                raise ValueError(f"grid: axes.{name} lists {json.dumps(value)} twice")
            seen.append(value)
    for name in REQUIRED[layer]:
        if name not in base and name not in axes:
            raise ValueError(f"grid: a {layer} layer needs {name}, in base or axes")
    return Grid(layer, dict(base), {name: list(values) for name, values in axes.items()}, **_settings(grid))


def _check_value(where: str, check: Callable[[Any], str | None], value: Any) -> None:
    expected = check(value)
    if expected:
        raise ValueError(f"grid: {where} must be {expected}, got {json.dumps(value)}")


def _check_plain(where: str, value: Any) -> None:
    """Only what JSON holds (text, numbers, booleans, lists, tables): TOML dates and YAML bytes are refused."""
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                raise ValueError(f"grid: {where or 'the grid'} has a key {name!r} that is not text")
            _check_plain(f"{where}.{name}" if where else name, item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(f"{where}[{index}]", item)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"grid: {where} must be a finite number, got {value}")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"grid: {where} must be text, a number, true/false, a list or a table, got a "
                         f"{type(value).__name__} ({value!r})")


def _settings(grid: dict[str, Any]) -> dict[str, Any]:
    settings = {name: grid[name] for name in SETTINGS if name in grid}
    if settings.get("mode", "forward") not in MODES:
        raise ValueError(f"grid: mode must be 'forward' or 'train', got {settings['mode']!r}")
    if not isinstance(settings.get("timing", False), bool):
        raise ValueError(f"grid: timing must be true or false, got {json.dumps(settings['timing'])}")
    repeats = settings.get("repeats", 5)
    if not _is_int(repeats) or repeats < 1:
        raise ValueError(f"grid: repeats must be a positive integer, got {json.dumps(repeats)}")
    if settings.get("precision", "default") not in PRECISIONS:
        raise ValueError(f"grid: precision must be 'default' or 'highest', got {settings['precision']!r}")
    check_target(settings.get("target"), settings.get("timing", False))
    limit = settings.get("seconds_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0):
        raise ValueError(f"grid: seconds_limit must be a positive number of seconds, got {json.dumps(limit)}")
    return settings


def check_target(target: Any, timing: bool) -> None:
    """A grid's target: a TPU slice's name (``tpu:v5e:2x2``) in a grid without timing, or None."""
    if target is None:
        return
    if not isinstance(target, str):
        raise ValueError(f"grid: target must be a TPU slice like 'tpu:v5e:2x2', got {json.dumps(target)}")
    from jaxcost.targets import parse_target  # no device is started: the name is only read

    try:
        parse_target(target)
    except ValueError as error:
        raise ValueError(f"grid: {error}") from None
    if timing:
        raise ValueError(f"grid: timing must be false with a target: {target} is compiled here, nothing runs")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N), 1 ≤ K ≤ N."""
    match = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", text)
    if not match:
        raise ValueError(f"--shard: must be K/N (this machine's share K of N, 1 ≤ K ≤ N), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= index <= count:
        raise ValueError(f"--shard: K/N needs 1 ≤ K ≤ N, got {text!r}")
    return index, count


def shard_keys(keys: list[str], shard: tuple[int, int] | None) -> set[str]:
    """The keys of shard K of N: the keys ordered by a hash of each, then dealt out in turn. Shards are
    as even as they can be (sizes differ by one at most), mix large and small configurations, and do not
    depend on the order of the grid file; every key is in exactly one shard."""
    if shard is None:
        return set(keys)
    index, count = shard
    ordered = sorted(set(keys), key=lambda key: (hashlib.sha256(key.encode()).hexdigest(), key))
    return set(ordered[index - 1::count])


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
    if isinstance(fields.get("padding"), list):
        fields["padding"] = tuple(tuple(p) if isinstance(p, list) else p for p in fields["padding"])
    if layer == "dense":
        return Dense(tuple(shape), **fields)
    if layer == "depthwise":
        return depthwise_conv(tuple(shape), **fields)
    return Conv(tuple(shape), **fields)
