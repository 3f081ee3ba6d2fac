"""The ``jaxcost`` command line: parse, run the subcommand (``commands``), and fail like a Unix tool.

Errors are one line on stderr; ``--debug`` shows the traceback, ``--verbose`` lets compiler and runtime
logs through. Exit statuses are listed in ``EXIT_STATUSES``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaxcost import commands
from jaxcost.backends import let_libtpu_write, start_quietly
from jaxcost.commands import Interrupted, ModelError
from jaxcost.memory_commands import add_fit, add_memory_options, run_fit
from jaxcost.reports.model import sort_keys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141
EXIT_STATUSES = """exit status:
  0    done
  1    a sweep configuration failed, a user model raised an error, or a file could not be written
  2    a bad argument (the message names it and the rule it broke)
  130  interrupted (Ctrl-C); a sweep keeps every finished configuration
  141  the reader of the output went away (| head)"""


BATCH_HELP = "images per layer call (default: 1 on a CPU, 128 on an accelerator)"


class _Subcommands:
    """``add_parser`` that gives every subcommand the common options."""

    def __init__(self, action: Any, common: argparse.ArgumentParser) -> None:
        self.action, self.common = action, common

    def add_parser(self, name: str, leaf: bool = True, **kwargs: Any) -> argparse.ArgumentParser:
        """A subcommand parser; a ``leaf`` (one with no subcommands of its own) takes the common options."""
        return self.action.add_parser(name, parents=[self.common] if leaf else [], **kwargs)


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


def _common_options() -> argparse.ArgumentParser:
    """Options every subcommand takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="let compiler and runtime logs through")
    common.add_argument("--debug", action="store_true", help="full tracebacks instead of one-line errors")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxcost", description="What a JAX/Flax layer costs: on paper, to XLA, and why they differ.",
                     epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = _Subcommands(parser.add_subparsers(dest="command", required=True, parser_class=_Parser),
                            _common_options())
    for subcommand in SUBCOMMANDS:
        subcommand.add(commands)
    return parser


def _add_layer(commands: _Subcommands) -> None:
    """``jaxcost layer conv|depthwise|dense``."""
    _add_layer_kinds(commands.add_parser("layer", leaf=False,
                                         help="one layer: analytic vs compiler, itemized"))


def _add_bench(commands: _Subcommands) -> None:
    """``jaxcost bench conv|depthwise|dense|suite``."""
    bench = commands.add_parser("bench", leaf=False,
                                help="measure one layer, or the reference suite, on the default device")
    bench_kinds = _add_layer_kinds(bench, timing=True)
    suite = bench_kinds.add_parser("suite", help="the reference layer suite")
    _add_timing_arguments(suite)
    suite.add_argument("--batch", type=int, default=None, help=BATCH_HELP)


def _add_devices(commands: _Subcommands) -> None:
    """``jaxcost devices``."""
    devices = commands.add_parser("devices", help="the devices found and the peaks that apply")
    devices.add_argument("--peaks", metavar="FILE", help="JSON overrides of the peaks")
    devices.add_argument("--measure", action="store_true", help="also measure the matmul and triad ceilings")


def _add_model(commands: _Subcommands) -> None:
    """``jaxcost model NAME``."""
    model = commands.add_parser("model", help="a whole model, layer by layer, from one compile")
    model.add_argument("name", help="a zoo model (mobilenet_v1, mobilenet_v2, resnet50, resnet50_v1, vit_b16, "
                                    "gpt2_small), "
                                    "path/to/file.py:Factory or package.module:Factory (a flax.linen or flax.nnx "
                                    "Module, a linen Module class, or a function returning a Module)")
    model.add_argument("--input", action="append", metavar="SHAPE[:DTYPE]",
                       help="one model input, e.g. 1,128:int32 or 1,224,224,3 (the --dtype by default); once per "
                            "input, in the order the model takes them (default: one image, from the next three)")
    model.add_argument("--batch", type=int, default=None, help="images (default 1)")
    model.add_argument("--resolution", type=int, default=None, help="input height and width (default 224)")
    model.add_argument("--channels", type=int, default=None, help="input channels (default 3)")
    model.add_argument("--kwarg", action="append", metavar="NAME=VALUE",
                       help="a keyword argument for the model's call, the value in JSON or Python's True, False, "
                            "None (train=false, train=False, depth=4) or else as text; repeatable")
    model.add_argument("--rng", action="append", metavar="STREAM",
                       help="seed this random stream of a linen model (dropout); repeatable")
    model.add_argument("--alpha", type=float, default=1.0, help="width multiplier (MobileNets)")
    model.add_argument("--dtype", default="float32")
    model.add_argument("--train", action="store_true", help="a training step: forward, then all gradients")
    model.add_argument("--depth", type=int, default=None, help="group modules to this many path components")
    model.add_argument("--sort", choices=sort_keys(),
                       help="largest first by this column (default: call order)")
    model.add_argument("--by", choices=("module", "op"), default="module",
                       help="rows by module (default) or by operator of the compiled program")
    model.add_argument("--no-collapse", action="store_true", help="show repeated blocks one by one")
    model.add_argument("--memory", action="store_true",
                       help="what fills device memory in the step: the peak, and what is live there by row and role")
    add_memory_options(model)
    model.add_argument("--dump-to", metavar="DIR", help="with --memory: keep XLA's files of the compile in DIR, with "
                       "the step file, to read back elsewhere with --from-dump")
    model.add_argument("--from-dump", metavar="DIR", help="with --memory: read the step compiled elsewhere (another "
                       "machine's --dump-to folder) instead of compiling it here")
    model.add_argument("--time", action="store_true",
                       help="run the step on this machine's default device and add where its time goes: each row's "
                            "time, share, FLOP/s, bytes/s, share of its roofline time and regime (with --by op: "
                            "each instruction's)")
    model.add_argument("--plot", default="", metavar="PATH",
                       help="with --time: write where the step's time goes (the rows on the roofline beside the "
                            "time by row) to PATH.png/.svg")
    model.add_argument("--mesh", metavar="AXIS=SIZE,...",
                       help="shard over a mesh of simulated CPU devices: data (data parallel), fsdp (parameters "
                            "sharded too), model (tensor parallel), e.g. data=8 or data=2,model=4")
    _add_target_argument(model)
    model.add_argument("--hardware", metavar="DEVICE_KIND",
                       help="with --mesh: the step-time model against this device's peaks and interconnect "
                            "(e.g. 'H100', 'TPU v5 lite')")
    output = model.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--csv", action="store_true", help="print CSV")


def _add_sweep(commands: _Subcommands) -> None:
    """``jaxcost sweep GRID`` and ``jaxcost sweep merge``."""
    sweep = commands.add_parser("sweep", help="a grid of layer configurations in worker processes; resumable; "
                                              "one record each; 'sweep merge' joins results")
    sweep.add_argument("grid", help="grid file (.json, .toml, or .yaml with PyYAML), or 'merge'")
    sweep.add_argument("files", nargs="*", default=[], help="after 'merge': the results files to merge into --out")
    sweep.add_argument("--out", help="results, .jsonl or .csv (default: the grid's name with .jsonl)")
    sweep.add_argument("--jobs", type=int, default=None,
                       help="worker processes (default: without timing one per core this process may use, up to 8 "
                            "(in a SLURM job its --cpus-per-task); with timing one per GPU, else 1)")
    sweep.add_argument("--shard", metavar="K/N", help="run only this machine's share K of N of the grid")
    sweep.add_argument("--retry-failed", action="store_true", help="run configurations whose last record failed again")
    sweep.add_argument("--plot", metavar="AXIS", help="plot cost (and time) along AXIS to OUT.AXIS.png/.svg")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a "
                                                          "terminal)")
    sweep.add_argument("--target", metavar="tpu:GEN:TOPOLOGY",
                       help="compile every configuration for this TPU slice (counts only; the tpu extra), like the "
                            "grid's target setting")
    sweep.add_argument("--slurm", type=int, metavar="N",
                       help="print a SLURM job-array script instead: task K runs --shard K/N into OUT/partK (OUT: "
                            "--out without its suffix), and the merge command that joins them (docs/clusters.md)")
    sweep.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                       help="with --slurm: an #SBATCH option of the script, e.g. --sbatch-arg=--time=4:00:00 "
                            "(repeatable)")
    sweep.add_argument("--submit", action="store_true",
                       help="with --slurm: hand the script to sbatch; print the job id and the merge command")


def _add_profile(commands: _Subcommands) -> None:
    """``jaxcost profile TRACE --hlo FILE``."""
    trace = commands.add_parser("profile", help="where the time of a program went, from a jax.profiler trace of "
                                                "your own run and the program's optimized HLO")
    trace.add_argument("trace", metavar="TRACE", help="a .xplane.pb file, or the folder jax.profiler wrote")
    trace.add_argument("--hlo", metavar="FILE", required=True,
                       help="the program's optimized HLO text: the *after_optimizations.txt that "
                            "XLA_FLAGS=--xla_dump_to=DIR writes (or that folder: the file of the traced program)")
    trace.add_argument("--calls", type=int, default=1, help="how many calls of the program the trace holds")
    trace.add_argument("--step", type=float, default=None, metavar="SECONDS",
                       help="the step's time measured outside the profiler (default: the traced step's span)")
    trace.add_argument("--depth", type=int, default=None, help="group scopes to this many path components")
    trace.add_argument("--by", choices=("scope", "op"), default="scope",
                       help="rows by op_name scope (default) or by instruction")


def _add_report(commands: _Subcommands) -> None:
    """``jaxcost report``."""
    report = commands.add_parser("report", help="the reference layer suite on the default device")
    report.add_argument("--json", action="store_true", help="print JSON instead of tables")
    report.add_argument("--no-timing", action="store_true", help="counts only, no measurements")
    report.add_argument("--plot", default="jaxcost-roofline", metavar="PATH",
                        help="roofline plot, written as PATH.png and PATH.svg ('' for none)")
    report.add_argument("--peaks", metavar="FILE", help="JSON overrides of the peaks")
    report.add_argument("--batch", type=int, default=None, help=BATCH_HELP)
    report.add_argument("--target", metavar="tpu:GEN:TOPOLOGY",
                        help="compile the suite for this TPU slice (counts only; batch 1 unless --batch; "
                             "the tpu extra)")

def _add_layer_kinds(parser: argparse.ArgumentParser, timing: bool = False) -> Any:
    kinds = _Subcommands(parser.add_subparsers(dest="kind", required=True, parser_class=_Parser), _common_options())
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
    for kind in (conv, depthwise, dense):
        if timing:
            _add_timing_arguments(kind)
        else:
            _add_target_argument(kind)
    return kinds


def _add_target_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", metavar="tpu:GEN:TOPOLOGY",
                        help="compile for a TPU slice on this machine, e.g. tpu:v5e:2x2, tpu:v6e:4x4, tpu:v5p:2x2x1 "
                             "(needs the tpu extra: pip install 'jaxcost[tpu]'); nothing runs")


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


@dataclass(frozen=True)
class Subcommand:
    """One subcommand, declared once: its name, how its arguments are added, what runs it, and whether it compiles
    or runs on this process's device (a sweep's work is in its workers; a trace is only read)."""

    name: str
    add: Callable[[_Subcommands], None]
    run: Callable[[argparse.Namespace], int]
    on_this_device: bool


SUBCOMMANDS = (
    Subcommand("layer", _add_layer, commands.run_layer, True),
    Subcommand("bench", _add_bench, commands.run_bench, True),
    Subcommand("devices", _add_devices, commands.run_devices, True),
    Subcommand("model", _add_model, commands.run_model, True),
    Subcommand("sweep", _add_sweep, commands.run_sweep_command, False),
    Subcommand("profile", _add_profile, commands.run_profile, False),
    Subcommand("report", _add_report, commands.run_report, True),
    Subcommand("fit", add_fit, run_fit, True),
)
COMMANDS = {subcommand.name: subcommand.run for subcommand in SUBCOMMANDS}


def quiet_logs(verbose: bool) -> None:
    """Keep compiler and runtime logging (XLA's C++ log, absl, JAX's Python warnings) out of the output."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("jax", "jaxlib", "absl", "flax"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(jax|jaxlib|flax)(\.|$)")


#: The commands that compile or run on this process's default device.
ON_THIS_DEVICE = tuple(subcommand.name for subcommand in SUBCOMMANDS if subcommand.on_this_device)


def _start_backends_quietly(args: argparse.Namespace) -> None:
    """Where libtpu is installed (the tpu extra) and the command uses this process's device, start JAX's
    backends with libtpu's probe kept off stderr (``backends.start_quietly``): on a machine without a TPU it is not
    the command's output (a backend that fails says so again, when it is used); a target's topology keeps it off
    too. Nowhere else is a backend started early: a sweep's parent or the ``--mesh`` parent must not hold a device.
    ``--verbose`` lets it through."""
    let_libtpu_write(args.verbose)
    if not args.verbose and args.command in ON_THIS_DEVICE and getattr(args, "mesh", None) is None:
        start_quietly()


def _where(error: BaseException) -> str:
    """The innermost line of the traceback outside jaxcost, JAX, flax and the import machinery."""
    skipped = (os.sep + "jaxcost" + os.sep, os.sep + "jax" + os.sep, os.sep + "flax" + os.sep, "<frozen ",
               os.sep + "jaxlib" + os.sep)
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not any(part in frame.filename for part in skipped)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"


def _silence_stdout() -> None:
    """After a broken pipe: send what is left to /dev/null so that the exit flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _fail(message: str, status: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"jaxcost: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see ``EXIT_STATUSES``)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as parsed:  # --help, or a bad argument already reported in one line
        return int(parsed.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        quiet_logs(args.verbose)
        _start_backends_quietly(args)
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that went away is noticed here, not at interpreter exit
        return status
    except ValueError as error:
        return _fail(str(error), EXIT_USAGE, args.debug)
    except ModelError as error:
        hint = "" if args.debug else "; --debug for the traceback"
        return _fail(f"{error}{_where(error.error)}{error.hint}{hint}", EXIT_FAILED, args.debug)
    except (KeyboardInterrupt, Interrupted) as interruption:
        print(f"jaxcost: {str(interruption) or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as error:
        return _fail(str(error), EXIT_FAILED, args.debug)


if __name__ == "__main__":
    sys.exit(main())
