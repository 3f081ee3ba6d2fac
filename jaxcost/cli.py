"""The ``jaxcost`` command: ``jaxcost layer ...`` for one layer, ``jaxcost report`` for the reference suite."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxcost.specs import Conv, Dense, depthwise_conv

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line and exits with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"jaxcost: error: {message}\n")


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _int_or_ints(text: str) -> int | tuple[int, ...]:
    values = _ints(text)
    return values[0] if len(values) == 1 else values


def _padding(text: str) -> Any:
    """'SAME', 'VALID', '1', '1,2' (one per dim) or '1:0,2:1' (lo:hi per dim)."""
    if not text.replace(",", "").replace(":", "").replace("-", "").isdigit():
        return text
    if ":" not in text:
        return _int_or_ints(text)
    try:
        return tuple(tuple(int(side) for side in pair.split(":")) for pair in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected lo:hi pairs like 1:0,2:1, got {text!r}") from None


def _add_layer_arguments(parser: argparse.ArgumentParser, conv: bool) -> None:
    parser.add_argument("--input", type=_ints, required=True, metavar="N,...,C",
                        help="input shape, channels last, e.g. 1,56,56,64")
    if conv:
        parser.add_argument("--kernel", type=_int_or_ints, default=3, help="kernel size: 3 or 3,3")
        parser.add_argument("--strides", type=_int_or_ints, default=1)
        parser.add_argument("--padding", type=_padding, default="SAME",
                            help="SAME, VALID, an int, or lo:hi pairs per dimension (1:0,2:1)")
        parser.add_argument("--input-dilation", type=_int_or_ints, default=1)
        parser.add_argument("--kernel-dilation", type=_int_or_ints, default=1)
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16, float16, int8 (float64 with x64)")
    parser.add_argument("--no-bias", action="store_true", help="no bias (default: with bias)")
    parser.add_argument("--train", action="store_true",
                        help="a training step: forward, then gradients w.r.t. input and parameters")
    parser.add_argument("--ops", type=int, default=8, metavar="N",
                        help="show the N costliest compiled instructions (0: none)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxcost", description="What a JAX/Flax layer costs: on paper, to XLA, and why they differ.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_layer_kinds(commands.add_parser("layer", help="one layer: analytic vs compiler, itemized"))
    bench = commands.add_parser("bench", help="measure one layer, or the reference suite, on the default device")
    bench_kinds = _add_layer_kinds(bench, timing=True)
    _add_timing_arguments(bench_kinds.add_parser("suite", help="the reference layer suite"))
    devices = commands.add_parser("devices", help="the devices found and the peaks that apply")
    devices.add_argument("--peaks", metavar="FILE", help="JSON overrides of the peaks")
    devices.add_argument("--measure", action="store_true", help="also measure the matmul and triad ceilings")
    model = commands.add_parser("model", help="a whole model, layer by layer, from one compile")
    model.add_argument("name", help="a zoo model (mobilenet_v1, mobilenet_v2, resnet50, resnet50_v1) or "
                                    "path.to.module:Factory returning a flax.linen Module")
    model.add_argument("--batch", type=int, default=1)
    model.add_argument("--resolution", type=int, default=224, help="input height and width")
    model.add_argument("--channels", type=int, default=3, help="input channels")
    model.add_argument("--alpha", type=float, default=1.0, help="width multiplier (MobileNets)")
    model.add_argument("--dtype", default="float32")
    model.add_argument("--train", action="store_true", help="a training step: forward, then all gradients")
    model.add_argument("--depth", type=int, default=None, help="group layers to this many path components")
    model.add_argument("--no-collapse", action="store_true", help="show repeated blocks one by one")
    output = model.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--csv", action="store_true", help="print CSV")
    sweep = commands.add_parser("sweep", help="a grid of layer configurations; resumable; one record each")
    sweep.add_argument("grid", help="grid file, .json or .toml")
    sweep.add_argument("--out", help="results, .jsonl or .csv (default: the grid's name with .jsonl)")
    sweep.add_argument("--plot", metavar="AXIS", help="plot cost (and time) along AXIS to OUT.AXIS.png/.svg")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    report = commands.add_parser("report", help="the reference layer suite on the default device")
    report.add_argument("--json", action="store_true", help="print JSON instead of tables")
    report.add_argument("--no-timing", action="store_true", help="counts only, no measurements")
    report.add_argument("--plot", default="jaxcost-roofline", metavar="PATH",
                        help="roofline plot, written as PATH.png and PATH.svg ('' for none)")
    report.add_argument("--peaks", metavar="FILE", help="JSON overrides of the peaks")
    return parser


def _add_layer_kinds(parser: argparse.ArgumentParser, timing: bool = False) -> Any:
    kinds = parser.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    conv = kinds.add_parser("conv", help="standard or grouped convolution")
    _add_layer_arguments(conv, conv=True)
    conv.add_argument("--features", type=int, required=True, help="output channels")
    conv.add_argument("--groups", type=int, default=1, help="feature_group_count")
    depthwise = kinds.add_parser("depthwise", help="depthwise convolution")
    _add_layer_arguments(depthwise, conv=True)
    depthwise.add_argument("--multiplier", type=int, default=1, help="depth multiplier")
    dense = kinds.add_parser("dense", help="dense layer")
    _add_layer_arguments(dense, conv=False)
    dense.add_argument("--features", type=int, required=True)
    if timing:
        for kind in (conv, depthwise, dense):
            _add_timing_arguments(kind)
    return kinds


def _add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats (median reported)")
    parser.add_argument("--rotate", type=int, default=1, help="input copies to cycle through (defeats caches)")
    parser.add_argument("--precision", choices=("default", "highest"), default="default",
                        help="the matmul precision the peak is chosen for")
    parser.add_argument("--peaks", metavar="FILE", help="JSON overrides of the peaks")
    parser.add_argument("--no-ceilings", action="store_true", help="skip measuring the matmul and triad ceilings")
    parser.add_argument("--plot", default="", metavar="PATH", help="write a roofline plot to PATH.png/.svg")
    if "--json" not in parser._option_string_actions:
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _peaks(args: argparse.Namespace) -> Any:
    import jax

    from jaxcost.measure.hardware import device_peaks, load_overrides, with_overrides

    device = jax.devices()[0]
    peaks = device_peaks(device.device_kind, device.platform)
    return with_overrides(peaks, load_overrides(args.peaks)) if getattr(args, "peaks", None) else peaks


def _measure(specs: list, args: argparse.Namespace, mode: str = "forward") -> tuple[list, Any]:
    """Benchmark specs (after measuring the ceilings, unless told not to); the measurements and ceilings."""
    from jaxcost.measure.timing import benchmark, measure_ceilings

    peaks = _peaks(args)
    ceilings_measured = None if getattr(args, "no_ceilings", False) else measure_ceilings()
    ceilings = (ceilings_measured[0].flops_per_second, ceilings_measured[1].bytes_per_second) \
        if ceilings_measured else None
    measurements = [benchmark(spec, mode=mode, repeats=getattr(args, "repeats", 9), rotate=getattr(args, "rotate", 1),
                              peaks=peaks, precision=getattr(args, "precision", "default"), ceilings=ceilings)
                    for spec in specs]
    return measurements, ceilings_measured


def _measurement_dict(measurement: Any) -> dict[str, Any]:
    names = ("label", "seconds_median", "seconds_min", "seconds_max", "seconds_compile", "seconds_device",
             "calls_per_repeat", "repeats", "spread", "flops", "bytes_accessed", "flops_per_second",
             "bytes_per_second", "peak_flops_per_second", "peak_bytes_per_second", "compute_utilization",
             "memory_utilization", "bound", "precision", "precision_reason", "method", "cache_warning", "mac_trap")
    result = {name: getattr(measurement, name) for name in names}
    result["measured_compute_utilization"] = measurement.measured_utilization.compute_utilization
    result["measured_memory_utilization"] = measurement.measured_utilization.memory_utilization
    return result


def _print_measurements(measurements: list, ceilings: Any, plot: str) -> None:
    """Peaks, ceilings, the measurement table and its notes; the roofline plot when ``plot`` names a path."""
    from jaxcost.reports.performance import ceilings_text, measurements_table, peaks_text, write_roofline

    print(peaks_text(measurements[0].peaks))
    if ceilings:
        print(ceilings_text(*ceilings))
    print()
    print(measurements_table(measurements))
    print("\nTimed back to back: K calls dispatched, one block per repeat; FLOP/s from the recounted flops "
          "(2 per multiply-add), never from MACs.")
    for measurement in measurements:
        if measurement.cache_warning:
            print(f"note: {measurement.label}: {measurement.cache_warning}")
    if plot:
        roofs = (ceilings[0].flops_per_second, ceilings[1].bytes_per_second) if ceilings else None
        try:
            print("roofline: " + ", ".join(map(str, write_roofline(measurements, plot, roofs))))
        except ImportError as error:
            print(f"roofline plot skipped: {error}")


def run_bench(args: argparse.Namespace) -> int:
    from jaxcost.reports.layer import reference_suite

    specs = reference_suite() if args.kind == "suite" else [spec_from_arguments(args)]
    mode = "train" if getattr(args, "train", False) else "forward"
    measurements, ceilings = _measure(specs, args, mode)
    if args.json:
        print(json.dumps([_measurement_dict(m) for m in measurements], indent=2))
    else:
        _print_measurements(measurements, ceilings, args.plot)
    return 0


EXIT_SOME_FAILED = 1


def run_sweep_command(args: argparse.Namespace) -> int:
    from jaxcost.sweep import load_grid, plot_axis, progress_bar, run_sweep

    grid = load_grid(args.grid)
    out = Path(args.out) if args.out else Path(args.grid).with_suffix(".jsonl")
    if out.suffix not in (".jsonl", ".csv"):
        raise ValueError(f"out: results go to a .jsonl or .csv file, got {str(out)!r}")
    start = time.perf_counter()
    counts = run_sweep(grid, out, progress=None if args.quiet else progress_bar)
    print(f"{out}: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} already there "
          f"({time.perf_counter() - start:.1f} s)")
    if args.plot:
        written = plot_axis(out, args.plot, out.with_suffix(f".{args.plot}"))
        print("plot: " + ", ".join(map(str, written)))
    return EXIT_SOME_FAILED if counts["failed"] else 0


def run_devices(args: argparse.Namespace) -> int:
    import jax

    from jaxcost.measure.timing import measure_ceilings
    from jaxcost.reports.performance import ceilings_text, peaks_text

    for device in jax.devices():
        print(f"{device.platform}:{device.id} {device.device_kind}")
    print(peaks_text(_peaks(args)))
    if args.measure:
        print(ceilings_text(*measure_ceilings()))
    return 0


def spec_from_arguments(args: argparse.Namespace) -> Conv | Dense:
    """The layer spec the ``layer`` arguments describe (raises ValueError naming a bad argument)."""
    common = dict(use_bias=not args.no_bias, dtype=args.dtype)
    if args.kind == "dense":
        return Dense(args.input, args.features, **common)
    conv = dict(kernel_size=args.kernel, strides=args.strides, padding=args.padding,
                input_dilation=args.input_dilation, kernel_dilation=args.kernel_dilation, **common)
    if args.kind == "depthwise":
        return depthwise_conv(args.input, depth_multiplier=args.multiplier, **conv)
    return Conv(args.input, args.features, feature_group_count=args.groups, **conv)


def _device_line() -> str:
    import jax

    device = jax.devices()[0]
    return f"device: {device.platform} ({device.device_kind}), jax {jax.__version__}"


def run_layer(args: argparse.Namespace) -> int:
    from jaxcost.comparison import compare
    from jaxcost.reports.layer import comparison_dict, conventions_table, explanation, ops_table, side_by_side

    spec = spec_from_arguments(args)
    comparison = compare(spec, mode="train" if args.train else "forward")
    if args.json:
        print(json.dumps(comparison_dict(comparison), indent=2))
        return 0
    print(f"{comparison.label}   input {spec.input_shape} -> output {spec.output_shape}, {spec.dtype}")
    print(_device_line())
    print()
    print(side_by_side(comparison))
    print()
    print("Why analytic and compiler differ:")
    print(explanation(comparison))
    if args.ops > 0:
        print()
        print("Compiled program, costliest instructions:")
        print(ops_table(comparison, top=args.ops))
    print()
    print("What other tools print for this layer's forward pass:")
    print(conventions_table(spec))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from jaxcost.comparison import compare
    from jaxcost.reports.layer import comparison_dict, explanation, reference_suite, suite_table

    start = time.perf_counter()
    comparisons = []
    for spec in reference_suite():
        comparisons.append(compare(spec))
    measurements, ceilings = ([], None) if args.no_timing else _measure([c.spec for c in comparisons], args)
    if args.json:
        rows = [comparison_dict(c) for c in comparisons]
        for row, measurement in zip(rows, measurements):
            row["measured"] = _measurement_dict(measurement)
        print(json.dumps(rows, indent=2))
        return 0
    print("jaxcost report: the classic layer types, analytic against the XLA compiler, and measured")
    print(_device_line())
    print()
    print(suite_table(comparisons))
    print()
    if measurements:
        _print_measurements(measurements, ceilings, args.plot)
        print()
    print("Explanations (analytic + items = compiler; the remainder is what no op explains):")
    for index, comparison in enumerate(comparisons, 1):
        spec = comparison.spec
        print(f"{index}. {comparison.label} ({spec.dtype}, input {'x'.join(map(str, spec.input_shape))})")
        print(explanation(comparison, indent="   "))
    print()
    print(f"{len(comparisons)} layers in {time.perf_counter() - start:.1f} s. MACs count taps on real input only; "
          "FLOPs = 2*MACs + bias adds; bytes = inputs + weights + output, each once.")
    return 0


def model_from_arguments(args: argparse.Namespace) -> Any:
    """The zoo model, or the module a ``path.to.module:Factory`` builds (raises ValueError when it cannot)."""
    from jaxcost.models import build

    if ":" not in args.name:
        return build(args.name, alpha=args.alpha, dtype=args.dtype)
    import importlib

    import flax.linen as nn

    module_name, _, attribute = args.name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"name: cannot load {args.name!r}: {error}") from None
    if isinstance(factory, nn.Module):
        model = factory
    else:
        try:
            model = factory()
        except TypeError as error:
            raise ValueError(f"name: {args.name!r} must be a Module or take no arguments: {error}") from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"name: {args.name!r} did not give a flax.linen Module")
    return model


def run_model(args: argparse.Namespace) -> int:
    import jax

    from jaxcost.models.analysis import analyze
    from jaxcost.modules import jax_dtype
    from jaxcost.reports.model import render, summary, to_csv, to_json
    from jaxcost.specs import dtype_name

    for name in ("batch", "resolution", "channels"):
        if getattr(args, name) <= 0:
            raise ValueError(f"{name}: must be a positive integer, got {getattr(args, name)}")
    dtype = jax_dtype(dtype_name(args.dtype))
    model = model_from_arguments(args)
    x = jax.ShapeDtypeStruct((args.batch, args.resolution, args.resolution, args.channels), dtype)
    kwargs = {"train": True} if args.train and ":" not in args.name else {}
    report = analyze(model, x, mode="train" if args.train else "forward", name=args.name, **kwargs)
    if args.json:
        print(to_json(report))
    elif args.csv:
        print(to_csv(report), end="")
    else:
        print(_device_line())
        print(render(report, depth=args.depth, collapse=not args.no_collapse))
        print()
        print(summary(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "layer":
            return run_layer(args)
        if args.command == "model":
            return run_model(args)
        if args.command == "bench":
            return run_bench(args)
        if args.command == "devices":
            return run_devices(args)
        if args.command == "sweep":
            return run_sweep_command(args)
        return run_report(args)
    except ValueError as error:
        print(f"jaxcost: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
