"""What each ``jaxcost`` subcommand does, given its parsed arguments; ``cli`` parses and handles errors.

A bad argument raises ValueError naming it; an error raised by a user's own model is wrapped in
``ModelError`` so that the command line can say where it came from.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from jaxcost.loading import ModelError, first_line, model_from_arguments, model_inputs, model_keywords
from jaxcost.reports.text import left_out, terminal_columns, terminal_width, wrap
from jaxcost.specs import Conv, Dense, Spec, depthwise_conv, reference_suite

if TYPE_CHECKING:
    from jaxcost.formulas import Mode
    from jaxcost.measure.timing import Measurement

EXIT_SOME_FAILED = 1


def _peaks(args: argparse.Namespace) -> Any:
    from jaxcost.compiler import default_device
    from jaxcost.measure.hardware import device_peaks, load_overrides, with_overrides

    device = default_device()
    peaks = device_peaks(device.device_kind, device.platform)
    return with_overrides(peaks, load_overrides(args.peaks)) if getattr(args, "peaks", None) else peaks


def _measure(specs: list, args: argparse.Namespace,
             mode: Mode = "forward") -> tuple[list[Measurement], tuple[Measurement, Measurement] | None]:
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


def _print_measurements(measurements: list[Measurement], ceilings: tuple[Measurement, Measurement] | None,
                        plot: str) -> None:
    """Peaks, ceilings, the measurement table and its notes; the roofline plot when ``plot`` names a path."""
    from jaxcost.reports.performance import ceilings_text, measurements_table, notes_text, write_roofline

    width = terminal_width()
    print(measurements[0].peaks)
    if ceilings:
        print(ceilings_text(*ceilings, width=width))
    print()
    print(measurements_table(measurements, terminal_columns()))
    print()
    print(wrap("Timed back to back: K calls dispatched, one block per repeat; FLOP/s from the recounted flops "
               "(2 per multiply-add), never from MACs.", width))
    print(notes_text(measurements, width))
    if plot:
        roofs = (ceilings[0].flops_per_second, ceilings[1].bytes_per_second) if ceilings else None
        try:
            print("roofline: " + ", ".join(map(str, write_roofline(measurements, plot, roofs))))
        except ImportError as error:
            print(f"roofline plot skipped: {error}")


def _check_plot_folder(path: str) -> None:
    """Fail now, naming ``--plot``, when the plot's folder cannot be written: before anything is measured."""
    from jaxcost.sweep.results import check_folder

    check_folder(Path(path), "--plot")


def run_bench(args: argparse.Namespace) -> int:
    if args.plot and not args.json:
        _check_plot_folder(args.plot)
    specs = reference_suite(suite_batch(args)[0]) if args.kind == "suite" else [spec_from_arguments(args)]
    mode: Mode = "train" if getattr(args, "train", False) else "forward"
    measurements, ceilings = _measure(specs, args, mode)
    if args.json:
        print(json.dumps([m.as_dict() for m in measurements], indent=2))
    else:
        _print_measurements(measurements, ceilings, args.plot)
    return 0


class Interrupted(Exception):
    """Ctrl-C, with what the user should know about the work done so far."""


def run_sweep_command(args: argparse.Namespace) -> int:
    for given, option in ((args.sbatch_arg, "--sbatch-arg"), (args.submit, "--submit")):
        if given and args.slurm is None:
            raise ValueError(f"{option}: goes with --slurm N (the job-array script it changes)")
    if args.grid == "merge":
        if args.slurm is not None:
            raise ValueError("--slurm: a job array runs a grid; give the grid file, not 'merge'")
        return _merge(args)
    from jaxcost.sweep import load_grid, parse_shard, plot_axis, run_sweep
    from jaxcost.sweep.grid import check_target
    from jaxcost.sweep.progress import ProgressBar
    from jaxcost.sweep.results import check_path

    if args.files:
        raise ValueError(f"grid: one grid file per sweep, got {len(args.files) + 1} files; "
                         "'jaxcost sweep merge A B --out R' merges results")
    grid = load_grid(args.grid)
    if args.target:
        check_target(args.target, grid.timing)
        grid = dataclasses.replace(grid, target=args.target)
    out = check_path(args.out or Path(args.grid).with_suffix(".jsonl"), "--out")
    if args.plot and args.plot not in grid.axes:
        raise ValueError(f"--plot: {args.plot!r} is not an axis of the grid; its axes are {', '.join(grid.axes)}")
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs: must be a positive integer, got {args.jobs}")
    if args.slurm is not None:
        return _job_array(args, out)
    shard = parse_shard(args.shard) if args.shard is not None else None
    show = not args.quiet and sys.stderr.isatty()
    try:
        with ProgressBar() if show else contextlib.nullcontext() as bar:
            summary = run_sweep(grid, out, jobs=args.jobs, shard=shard, retry_failed=args.retry_failed,
                                progress=bar)
    except ValueError as error:  # said with the command line's names for run_sweep's arguments
        message = str(error)
        for name, option in (("jobs:", "--jobs:"), ("results:", "--out:")):
            if message.startswith(name):
                message = option + message[len(name):]
        raise ValueError(message) from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; every finished configuration is in {out}: run the same command to resume") \
            from None
    print(summary)
    for line in summary.failure_lines():
        print(f"  {line}")
    if args.plot:
        try:
            written = plot_axis(out, args.plot, out.with_suffix(f".{args.plot}"), keys=summary.keys)
            print(f"plot: {written}")
        except ValueError as error:  # nothing to draw: said, and the sweep's own status kept
            print(f"jaxcost: plot: {error}", file=sys.stderr)
        except ImportError as error:
            print(f"plot skipped: {error}")
    return EXIT_SOME_FAILED if summary.any_failed else 0


def _job_array(args: argparse.Namespace, out: Path) -> int:
    """``--slurm N``: print the job-array script that runs the grid in N shards; with ``--submit``, submit it and
    say the job's id and the merge command."""
    from jaxcost.sweep.slurm import JobArray, check_sbatch_option, check_shards, submit

    check_shards(args.slurm)
    if args.shard is not None:
        raise ValueError("--shard: --slurm N runs every shard K/N, one an array task; drop --shard")
    if args.plot:
        raise ValueError("--plot: plot once the shards are merged (jaxcost sweep GRID --out MERGED --plot AXIS "
                         "computes nothing more)")
    for option in args.sbatch_arg:
        check_sbatch_option(option)
    options = (*(("--jobs", str(args.jobs)) if args.jobs else ()), *(("--target", args.target) if args.target else ()),
               *(("--retry-failed",) if args.retry_failed else ()))
    array = JobArray(args.grid, args.slurm, out, options, tuple(args.sbatch_arg))
    if not args.submit:
        print(array.script(), end="")
        return 0
    job = submit(array)
    print(f"submitted job array {job}: {args.slurm} task{'s' if args.slurm != 1 else ''}, task K writing "
          f"{array.prefix}K{out.suffix}")
    print(f"once every task has ended: {array.merge_command()}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from jaxcost.sweep import merge

    if not args.out:
        raise ValueError("--out: 'jaxcost sweep merge A B ... --out R' needs the merged file's path")
    print(merge(args.files, args.out))
    return 0


def run_devices(args: argparse.Namespace) -> int:
    import jax

    from jaxcost.compiler import default_device
    from jaxcost.measure.timing import measure_ceilings
    from jaxcost.reports.performance import ceilings_text

    peaks = _peaks(args)  # a bad --peaks file is reported before anything is printed
    for device in jax.devices(default_device().platform):
        print(f"{device.platform}:{device.id} {device.device_kind}")
    print(peaks)
    if args.measure:
        print(ceilings_text(*measure_ceilings(), width=terminal_width()))
    return 0


#: The reference suite's batch where none is given, and why: one image on a CPU; on an accelerator enough images
#: that each call carries work rather than dispatch (at batch 1 an H200 spends 40-80 µs a layer, mostly waiting).
CPU_BATCH = (1, "one image, as papers quote the layers")
ACCELERATOR_BATCH = (128, "enough images per call to leave the overhead regime")


def suite_batch(args: argparse.Namespace) -> tuple[int, str]:
    """``--batch``, or the default batch for this device; and, for a default, why it is the default."""
    if args.batch is not None:
        if args.batch <= 0:
            raise ValueError(f"--batch: must be a positive integer, got {args.batch}")
        return args.batch, ""
    from jaxcost.compiler import default_device

    platform = default_device().platform
    batch, reason = CPU_BATCH if platform == "cpu" else ACCELERATOR_BATCH
    return batch, f"the default on a {platform}: {reason}"


def spec_from_arguments(args: argparse.Namespace) -> Conv | Dense:
    """The layer spec the ``layer`` arguments describe (raises ValueError naming a bad argument)."""
    common = dict(use_bias=not args.no_bias, dtype=args.dtype)
    if args.kind == "dense":
        return Dense(args.input, args.features, **common)
    conv = dict(kernel_size=args.kernel, strides=args.strides, padding=args.padding,
                input_dilation=args.input_dilation, kernel_dilation=args.kernel_dilation, **common)
    if args.kind == "depthwise":
        spec = depthwise_conv(args.input, depth_multiplier=args.multiplier, **conv)
    else:
        spec = Conv(args.input, args.features, feature_group_count=args.groups, **conv)
    _say_convolution_rank(spec.input_shape)
    return spec


#: The names of a convolution's spatial dimensions, by their number.
SPATIAL_NAMES = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _say_convolution_rank(input_shape: tuple[int, ...]) -> None:
    """On stderr, how a conv ``--input`` other than N,H,W,C was read: 3 numbers are a 1-D convolution."""
    spatial = SPATIAL_NAMES.get(len(input_shape) - 2, ())
    if len(spatial) in (0, 2):
        return
    reading = ", ".join(f"{name}={size}" for name, size in zip(("N", *spatial, "C"), input_shape))
    print(f"jaxcost: --input {'x'.join(map(str, input_shape))} read as ({reading}): a {len(spatial)}-D "
          "convolution; give 4 numbers, N,H,W,C, for a 2-D one", file=sys.stderr)


def device_line(target: str | None = None) -> str:
    """The device programs are compiled for: this machine's default device, or a target's."""
    import jax

    from jaxcost.compiler import default_device
    from jaxcost.targets import target as target_named

    if target:
        return f"target: {target_named(target)}, jax {jax.__version__}"
    device = default_device()
    return f"device: {device.platform} ({device.device_kind}), jax {jax.__version__}"


def run_layer(args: argparse.Namespace) -> int:
    from jaxcost.comparison import compare
    from jaxcost.reports.layer import comparison_dict, comparison_text, conventions_table
    from jaxcost.reports.program import ops_table

    spec = spec_from_arguments(args)
    comparison = compare(spec, mode="train" if args.train else "forward", target=args.target)
    if args.json:
        print(json.dumps(comparison_dict(comparison), indent=2))
        return 0
    print(comparison_text(comparison, device_line(args.target), width=terminal_width()))
    if args.ops > 0:
        print()
        print("Compiled program, costliest instructions:")
        print(ops_table(comparison.compiler.recount.ops, top=args.ops))
    print()
    print("What other tools print for this layer's forward pass:")
    print(conventions_table(spec, width=terminal_width()))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from jaxcost.comparison import compare
    from jaxcost.reports.layer import comparison_dict, explanation, suite_table

    start = time.perf_counter()
    if args.target:
        from jaxcost.targets import target

        target(args.target)  # a wrong name or a missing libtpu, said before any work
        batch, why = suite_batch(args) if args.batch is not None else (1, f"the default for {args.target}")
    else:
        batch, why = suite_batch(args)
    timed = not args.no_timing and not args.target  # nothing runs on a target
    if timed and args.plot and not args.json:
        _check_plot_folder(args.plot)
    comparisons = [compare(spec, target=args.target) for spec in reference_suite(batch)]
    measurements, ceilings = _measure([c.spec for c in comparisons], args) if timed else ([], None)
    if args.json:
        rows = [comparison_dict(c) for c in comparisons]
        for row, measurement in zip(rows, measurements):
            row["measured"] = measurement.as_dict()
        print(json.dumps(rows, indent=2))
        return 0
    print("jaxcost report: the classic layer types, analytic against the XLA compiler"
          + (", and measured" if timed else ""))
    print(device_line(args.target))
    print(f"batch {batch}" + (f" ({why})" if why else ""))
    print()
    print(suite_table(comparisons, terminal_columns()))
    print()
    if measurements:
        _print_measurements(measurements, ceilings, args.plot)
        print()
    print("Explanations (analytic + items = compiler; the remainder is what no op explains):")
    for index, comparison in enumerate(comparisons, 1):
        spec = cast(Spec, comparison.spec)  # the suite's comparisons are of layer specs
        print(f"{index}. {comparison.label} (input {'x'.join(map(str, spec.input_shape))})")
        print(explanation(comparison, indent="   ", width=terminal_width()))
    print()
    print(wrap(f"{len(comparisons)} layers in {time.perf_counter() - start:.1f} s. MACs count taps on real input "
               "only; FLOPs = 2*MACs + bias adds; bytes = inputs + weights + output, each once.", terminal_width()))
    return 0


def _print_table(report: Any, args: argparse.Namespace) -> None:
    """The per-module table: on a terminal, narrowed to its width (columns left out, said below, and long module
    names shortened) and drawn with rich; elsewhere (a file, a pipe) every column in plain text."""
    from jaxcost.reports.model import alignment, fitted, headers, rich_grid, table_columns, table_rows
    from jaxcost.reports.text import table

    rows = table_rows(report, depth=args.depth, collapse=not args.no_collapse, sort=args.sort)
    columns, devices = table_columns(report), report.compiler.devices
    if not sys.stdout.isatty():
        print(table(headers(columns, devices), rows, align=alignment(columns)))
        return
    from rich.console import Console

    console = Console()
    columns, cells, dropped = fitted(rows, columns, console.width, devices)
    console.print(rich_grid(cells, columns, devices))
    if dropped:
        print(left_out(dropped, console.width))


#: Set in the process that ``--mesh`` starts with the mesh's devices simulated on the CPU.
MESH_PROCESS = "JAXCOST_MESH_PROCESS"


def own_module_command(module: str) -> list[str]:
    """``python -m module`` with the jaxcost this process imported: ``-m`` puts the working directory first on the
    path, where a ``jaxcost/`` folder (a checkout, a user's own) would stand in for it."""
    root = str(Path(__file__).resolve().parents[1])
    start = (f"import runpy, sys; sys.path[0] = {root!r}; "
             f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", start]


def _on_simulated_devices(args: argparse.Namespace, devices: int) -> int:
    """This command line run again in a process of its own whose CPU shows ``devices`` devices (the flag
    must be set before JAX starts; this process keeps its own devices), with this process's jaxcost."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    environment = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu", MESH_PROCESS: "1"}
    return subprocess.run([*own_module_command("jaxcost"), *args.argv], env=environment, check=False).returncode


def _hardware(args: argparse.Namespace) -> tuple[Any, Any, str] | None:
    """``--hardware``: its peaks, its interconnect and the precision the model's dtype runs at, checked before
    any work."""
    from jaxcost.measure.hardware import device_names, lookup, precision_for
    from jaxcost.measure.interconnect import interconnect

    if args.hardware is not None and args.target:
        raise ValueError("--hardware: the program is compiled for the --target's chips, whose peaks and interconnect "
                         "the step-time model uses; drop --hardware")
    if args.hardware is None and not (args.target and args.mesh is not None):
        return None
    if args.mesh is None:
        raise ValueError("--hardware: models the step time of a sharded program; give --mesh too")
    if args.json or args.csv:
        raise ValueError("--hardware: prints the step-time model beside the table; not with --json or --csv")
    if args.target:
        from jaxcost.targets import target

        kind = target(args.target).device_kind
        peaks = target(args.target).peaks  # one device's: a v4 chip's two TensorCores are two devices
    else:
        kind = args.hardware
        peaks = lookup(kind) if kind.strip() else None
    if peaks is None:
        raise ValueError(f"--hardware: {kind!r} is not in jaxcost's table of devices ({', '.join(device_names())})")
    precision, _ = precision_for(peaks, args.dtype)
    return peaks, interconnect(kind), precision


def _mesh_lines(args: argparse.Namespace, report: Any, single: Any, hardware: tuple[Any, Any, str] | None) -> list[str]:
    """A sharded model's work over all its devices against one device's, tensor by tensor and row by row
    (``jaxcost.mesh.imbalance``), its collectives, and its step-time model on ``hardware``."""
    from jaxcost.measure.step import step_time
    from jaxcost.mesh.imbalance import imbalance, module_outputs
    from jaxcost.models.sharding import parse_mesh
    from jaxcost.reports.program import collectives_table

    devices, flops = report.compiler.devices, report.compiler.flops
    extra = devices * flops - single.compiler.flops
    lines = ["", f"over all {devices} devices: {devices * flops:,} FLOPs, one device alone {single.compiler.flops:,}: "
                 f"sharding adds {extra:+,} ({extra / single.compiler.flops:+.1%}): work every device repeats, "
                 "shards padded where a shape does not divide, the collectives' adds"]
    mesh = parse_mesh(args.mesh)
    model, inputs, kwargs, rngs = _model_call(args)
    outputs = module_outputs(model, *inputs, mesh=mesh, rngs=rngs or None, target=args.target, **kwargs)
    lines += ["", str(imbalance(report, single, mesh, outputs))]
    if report.compiler.collectives:
        lines += ["", collectives_table(report.compiler.collectives)]
    if hardware:
        peaks, link, precision = hardware
        recomputed = sum(row.recompute_flops for row in single.rows)
        model_flops = (single.compiler.flops - recomputed) // devices  # the model's work, split evenly
        lines += ["", f"step-time model per device on {peaks.name} ({precision} peak; {link or 'no interconnect'}):",
                  str(step_time(report.compiler, peaks, link, precision, model_flops=model_flops)),
                  f"(MFU counts the model's FLOPs on one device, without recomputation, split evenly over the "
                  f"{devices} devices: {model_flops:,} each; HFU every FLOP a device performs)"]
    return lines


def _hlo_text(path: str, events: list) -> str:
    """``--hlo``: the optimized HLO of a dump file, or of the file in a dump folder whose program the most events
    ran."""
    from collections import Counter

    from jaxcost.measure.profile import module_name

    folder = Path(path)
    if folder.is_dir():
        texts = {file: file.read_text() for file in sorted(folder.glob("*after_optimizations.txt"))}
        if not texts:
            raise ValueError(f"--hlo: no *after_optimizations.txt file in {path!r} (XLA_FLAGS=--xla_dump_to=DIR "
                             "writes them)")
        ran = Counter(event.hlo_module for event in events)
        return max(texts.values(), key=lambda text: ran[module_name(text)])
    if not folder.is_file():
        raise ValueError(f"--hlo: no such file {path!r}")
    text = folder.read_text()
    if not module_name(text):
        raise ValueError(f"--hlo: {path!r} is not HLO text (it starts with no 'HloModule' line)")
    return text


def run_profile(args: argparse.Namespace) -> int:
    """``jaxcost profile TRACE --hlo FILE``: a trace from the user's own run, attributed to the program's
    instructions and their op_name scopes."""
    from jaxcost.measure.profile import module_name, profile_of, program_events
    from jaxcost.measure.trace import instruction_events
    from jaxcost.models.analysis import program_report
    from jaxcost.reports.model import summary
    from jaxcost.reports.profile import instruction_table, profile_lines

    if args.calls < 1:
        raise ValueError(f"--calls: must be a positive integer, got {args.calls}")
    if args.step is not None and not args.step > 0:
        raise ValueError(f"--step: must be a positive number of seconds, got {args.step}")
    try:
        events = instruction_events(args.trace)
    except ValueError as error:
        raise ValueError(f"trace: {str(error).partition(': ')[2]}") from None
    except Exception as error:  # not a trace: what the reader said, on one line
        raise ValueError(f"trace: {args.trace!r} is not a jax.profiler trace ({first_line(error)})") from None
    if not events:
        raise ValueError(f"trace: {args.trace!r} holds no execution of a compiled program's instructions")
    text = _hlo_text(args.hlo, list(events))
    report = program_report(text, module_name(text))
    ran = program_events(events, text)
    if not ran:
        raise ValueError(f"trace: no instruction of the program in {args.hlo!r} ran in {args.trace!r} (the trace "
                         f"holds {', '.join(sorted({event.hlo_module for event in events}))})")
    result = profile_of(report, ran, args.calls, args.step)
    if result.unattributed:
        raise ValueError(f"--hlo: {len(result.unattributed)} instructions of the trace are not in {args.hlo!r} "
                         f"(e.g. {', '.join(result.unattributed[:3])}): the HLO of another program, or of another "
                         "compile of it")
    print(f"trace: {args.trace} ({len(ran)} executions of {report.name}, {args.calls} call"
          f"{'s' if args.calls != 1 else ''})")
    if args.by == "op":
        print(instruction_table(result))
    else:
        _print_table(report, argparse.Namespace(depth=args.depth, no_collapse=False, sort=None))
    print()
    print(summary(report))
    for line in profile_lines(result):
        print(line)
    return 0


def _profiled(model: Any, inputs: list, args: argparse.Namespace, rngs: dict, kwargs: dict) -> Any:
    """``--time``: the model's profile on this process's default device; where the device has no datasheet
    bandwidth (a CPU), the measured ceilings stand in for its roofs."""
    from jaxcost.compiler import default_device
    from jaxcost.measure.hardware import device_peaks
    from jaxcost.measure.profile import profile
    from jaxcost.measure.timing import measure_ceilings

    device = default_device()
    ceilings = None
    if not device_peaks(device.device_kind, device.platform).bytes_per_second:
        matmul, triad = measure_ceilings(seconds_budget=2.0)
        ceilings = (matmul.flops_per_second, triad.bytes_per_second)
    return profile(model, *inputs, mode="train" if args.train else "forward", rngs=rngs or None, ceilings=ceilings,
                   **kwargs)


def _check_model_options(args: argparse.Namespace, mesh: dict | None) -> None:
    """The model command's options that cannot go together, or take a bad value, said before any work (and before
    the target's name and libtpu are checked)."""
    if args.depth is not None and args.depth < 1:
        raise ValueError(f"--depth: must be a positive integer, got {args.depth}")
    if args.time and (args.target or mesh):
        raise ValueError(f"--time: {'a target is compiled here and nothing runs there' if args.target else ''}"
                         f"{'a sharded step is not profiled yet; time it without --mesh' if mesh else ''}")
    if args.memory and (args.time or args.csv):
        raise ValueError(f"--memory: {'compiles a step to read, not to run' if args.time else 'has no CSV'}; "
                         f"drop {'--time' if args.time else '--csv'}")
    if args.optimizer and not (args.memory and args.train):
        raise ValueError("--optimizer: with --memory --train (the step that updates the parameters)")
    for option, folder in (("--dump-to", args.dump_to), ("--from-dump", args.from_dump)):
        if folder is not None and not args.memory:
            raise ValueError(f"{option}: with --memory (XLA's files of the step whose memory is read)")
    if args.plot and not args.time:
        raise ValueError("--plot: needs --time (the plot is of where the step's time goes)")
    if args.plot and (args.json or args.csv):
        raise ValueError("--plot: is drawn beside the tables; --json and --csv print the data alone")
    if args.plot:
        _check_plot_folder(args.plot)  # before anything is measured
    if args.json or args.csv:
        table_only = [option for option, used in (("--by op", args.by == "op"), ("--sort", args.sort),
                                                   ("--depth", args.depth), ("--no-collapse", args.no_collapse))
                      if used]
        if table_only:
            raise ValueError(f"{table_only[0]}: shapes the table; --json and --csv carry every row as it is")
    if args.target:
        from jaxcost.targets import target

        target(args.target)  # a wrong name or a missing libtpu


def _on_mesh_devices(args: argparse.Namespace, mesh: dict) -> int:
    """``--mesh`` in this process: the batch checked against the mesh, then the command again in a process whose CPU
    shows the mesh's devices."""
    ways = mesh.get("data", 1) * mesh.get("fsdp", 1)
    batches = [x.shape[0] for x in model_inputs(args) if x.ndim]
    if any(batch % ways for batch in batches):  # said before the devices are made
        raise ValueError(f"--mesh: a batch of {batches[0]} does not split over {ways} devices (data x fsdp)")
    return _on_simulated_devices(args, math.prod(mesh.values()))


def _model_call(args: argparse.Namespace) -> tuple[Any, list, dict, dict]:
    """The model the arguments name, its inputs, the keywords of its call, and its random streams."""
    from jaxcost.models import training_keywords

    inputs, kwargs, model = model_inputs(args), model_keywords(args), model_from_arguments(args)
    if args.train and ":" not in args.name:  # a zoo network with batch norm trains with batch statistics
        kwargs = {**training_keywords(model, "train"), **kwargs}
    return model, inputs, kwargs, {stream: 0 for stream in args.rng or []}


def _analyzed(args: argparse.Namespace, mesh: dict | None) -> tuple[Any, Any, Any]:
    """The model's report; its profile with ``--time``; and with ``--mesh``, the same model on one device. What the
    user's own model raises is a ``ModelError``, with what jaxcost passed it when no ``--input`` was given."""
    from jaxcost.models.analysis import analyze

    model, inputs, kwargs, rngs = _model_call(args)
    mode: Mode = "train" if args.train else "forward"
    unasked = "" if args.input else (f"; jaxcost passed it one {'x'.join(map(str, inputs[0].shape))} "
                                     f"{inputs[0].dtype} image, having no --input: give the model's inputs with "
                                     "--input SHAPE[:DTYPE], once each (e.g. --input 1,128:int32)")
    try:
        measured = _profiled(model, inputs, args, rngs, kwargs) if args.time else None
        report = measured.report if measured else analyze(model, *inputs, mode=mode, name=args.name,
                                                          rngs=rngs or None, mesh=mesh, target=args.target, **kwargs)
        single = None if mesh is None or args.json or args.csv else analyze(
            model, *inputs, mode=mode, rngs=rngs or None, target=args.target, **kwargs)
    except TypeError as error:
        if kwargs and "keyword argument" in str(error):
            raise ValueError(f"--kwarg: {first_line(error)}") from None
        if ":" not in args.name:
            raise
        raise ModelError(args.name, "tracing the model", error, unasked) from error
    except Exception as error:
        if ":" not in args.name or (isinstance(error, ValueError) and str(error).startswith("rngs:")):
            raise
        raise ModelError(args.name, "tracing the model", error, unasked) from error
    return report, measured, single


def _print_model(args: argparse.Namespace, report: Any, measured: Any, single: Any, hardware: Any) -> None:
    """The model command's text: the table (or the op table), the summary, where the time went, the mesh's lines."""
    from jaxcost.reports.model import by_operator, summary
    from jaxcost.reports.profile import instruction_table, profile_lines

    print(device_line(args.target))
    if args.by == "op":
        print(instruction_table(measured) if measured else by_operator(report))
    else:
        _print_table(report, args)
    print()
    print(summary(report))
    for line in profile_lines(measured) if measured else []:
        print(line)
    if measured and args.plot:
        from jaxcost.reports.plots import plot_profile

        try:
            print("profile plot: " + ", ".join(map(str, plot_profile(measured, args.plot, depth=args.depth))))
        except ImportError as error:
            print(f"profile plot skipped: {error}")
    for line in _mesh_lines(args, report, single, hardware) if single else []:
        print(line)


def run_model(args: argparse.Namespace) -> int:
    from jaxcost.models.sharding import parse_mesh
    from jaxcost.reports.model import to_csv, to_json
    from jaxcost.reports.profile import profile_json

    mesh = parse_mesh(args.mesh) if args.mesh is not None else None
    hardware = _hardware(args)
    if mesh and os.environ.get(MESH_PROCESS) != "1" and not args.target:
        return _on_mesh_devices(args, mesh)
    _check_model_options(args, mesh)
    if args.memory:
        return _print_memory(args)
    report, measured, single = _analyzed(args, mesh)
    if args.json:
        print(profile_json(measured) if measured else to_json(report))
    elif args.csv:
        print(to_csv(report), end="")
    else:
        _print_model(args, report, measured, single, hardware)
    return 0


def _print_memory(args: argparse.Namespace) -> int:
    """``jaxcost model NAME --memory``: the step's table with its memory columns, the summary, then the peak."""
    from jaxcost.memory_commands import memory_of
    from jaxcost.reports.memory import memory_json, peak_lines, values_table
    from jaxcost.reports.model import summary

    report = memory_of(args)
    if args.json:
        print(json.dumps({**memory_json(report), "rows": [row.as_dict() for row in report.model.rows]}, indent=2))
        return 0
    print(device_line(args.target))
    _print_table(report.model, args)
    print()
    print(summary(report.model))
    print("\n".join(peak_lines(report)))
    print()
    print(values_table(report))
    for line in _saved_lines(args, report):
        print(line)
    return 0


def _saved_lines(args: argparse.Namespace, report: Any) -> list[str]:
    """For the zoo's transformers in training: a middle block's saved bytes beside the published formula."""
    from jaxcost.loading import model_from_arguments, model_inputs
    from jaxcost.models.saved import LEVELS, compare_block, transformer_dimensions
    from jaxcost.reports.memory import comparison_lines

    # Any: a dict[str, int] cannot promise mypy that it fits compare_block's keywords (one of which is a bool)
    dimensions: dict[str, Any] | None = (transformer_dimensions(model_from_arguments(args), tuple(model_inputs(args)))
                                         if args.train else None)
    if dimensions is None:
        return []
    block = f"block{dimensions.pop('depth') // 2}"
    return ["", *comparison_lines([compare_block(report, block, **dimensions, level=level) for level in LEVELS[::-1]])]
