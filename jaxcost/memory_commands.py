"""The command line's memory views: ``jaxcost model NAME --memory`` (what fills the memory of one step) and
``jaxcost fit NAME`` (the largest batch whose step fits a device's memory)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from jaxcost.loading import ModelError, model_from_arguments, model_inputs, model_keywords

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")


def add_memory_options(parser: argparse.ArgumentParser) -> None:
    """The options that say which step's memory: the optimizer a training step updates with."""
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                        help="with --train: the step also updates the parameters and this optimizer's state")


def _optimizer(name: str | None) -> Any:
    if name is None:
        return None
    import optax

    return {"sgd": lambda: optax.sgd(1e-3), "momentum": lambda: optax.sgd(1e-3, momentum=0.9),
            "adam": lambda: optax.adam(1e-3), "adamw": lambda: optax.adamw(1e-3)}[name]()


def memory_of(args: argparse.Namespace, batch: int | None = None) -> Any:
    """The memory report of the command's model at ``batch`` (its own batch when None)."""
    from jaxcost.models import training_keywords
    from jaxcost.models.memory import memory
    from jaxcost.models.sharding import parse_mesh

    if args.optimizer and not args.train:
        raise ValueError("--optimizer: a training step's (add --train)")
    model = model_from_arguments(args)
    inputs = model_inputs(_with_batch(args, batch))
    kwargs = model_keywords(args)
    if args.train and ":" not in args.name:
        kwargs = {**training_keywords(model, "train"), **kwargs}
    rngs = {stream: 0 for stream in args.rng or []}
    try:
        return memory(model, *inputs, mode="train" if args.train else "forward", optimizer=_optimizer(args.optimizer),
                      rngs=rngs or None, mesh=parse_mesh(args.mesh) if args.mesh else None, target=args.target,
                      name=args.name, dump_to=args.dump_to, from_dump=args.from_dump,
                      **kwargs)
    except Exception as error:
        if ":" not in args.name or isinstance(error, ValueError):
            raise
        raise ModelError(args.name, "tracing the model", error) from error


def _with_batch(args: argparse.Namespace, batch: int | None) -> argparse.Namespace:
    """The arguments with the batch set: ``--batch``, or the first size of every ``--input``."""
    if batch is None:
        return args
    changed = argparse.Namespace(**vars(args))
    if args.input:
        changed.input = [f"{batch}," + text.partition(",")[2] if "," in text.partition(":")[0] else text
                         for text in args.input]
    else:
        changed.batch = batch
    return changed


def add_fit(commands: Any) -> None:
    fit = commands.add_parser("fit", help="the largest batch whose step fits in a device's memory (compile only)")
    fit.add_argument("name", help="a zoo model, or path/to/file.py:Factory")
    fit.add_argument("--train", action="store_true", help="a training step: forward, then all gradients")
    add_memory_options(fit)
    fit.add_argument("--target", metavar="tpu:GEN:TOPOLOGY", help="compile for a TPU slice here (per device)")
    fit.add_argument("--mesh", metavar="AXIS=SIZE,...", help="shard over the target's devices (data=4, fsdp=4)")
    fit.add_argument("--memory", metavar="SIZE", help="the device's memory (16GiB, 16GB, 16e9); default: the "
                     "device table's for the target or this machine's device")
    fit.add_argument("--input", action="append", metavar="SHAPE[:DTYPE]",
                     help="an input shape; its first size is the batch the search changes")
    fit.add_argument("--resolution", type=int, default=None)
    fit.add_argument("--channels", type=int, default=None)
    fit.add_argument("--kwarg", action="append", metavar="NAME=VALUE")
    fit.add_argument("--rng", action="append", metavar="STREAM")
    fit.add_argument("--alpha", type=float, default=1.0)
    fit.add_argument("--dtype", default="float32")
    fit.add_argument("--most", type=int, default=1 << 20, help="the largest batch to consider")
    fit.add_argument("--compiles", type=int, default=9, help="the most batches to compile (default 9)")
    fit.add_argument("--json", action="store_true", help="print JSON")
    fit.set_defaults(batch=None, dump_to=None, from_dump=None)  # one compile per batch: no dump kept or read


def capacity(args: argparse.Namespace) -> tuple[int, str]:
    """The device memory to fit in, and where the figure comes from."""
    from jaxcost.measure import hardware
    from jaxcost.models.fit import parse_size

    if args.memory is not None:
        return parse_size(args.memory), "--memory"
    if args.target:
        from jaxcost.targets import target

        kind = target(args.target).device_kind
    else:
        from jaxcost.compiler import default_device

        kind = default_device().device_kind
    record = hardware.device_record(kind)
    if record is None or record.platform == "cpu":
        raise ValueError(f"--memory: the memory of a {kind!r} device is not in the device table; give it, like "
                         "--memory 16GiB")
    return record.memory_bytes, f"{record.name}'s {record.memory_bytes / 2**30:.0f} GiB (the device table)"


def run_fit(args: argparse.Namespace) -> int:
    from jaxcost.models.fit import largest_batch
    from jaxcost.models.sharding import parse_mesh
    from jaxcost.reports.memory import fit_lines

    capacity_bytes, source = capacity(args)
    for option, value in (("--most", args.most), ("--compiles", args.compiles)):
        if value < (2 if option == "--compiles" else 1):
            raise ValueError(f"{option}: must be {'at least 2' if option == '--compiles' else 'positive'}, got {value}")
    mesh = parse_mesh(args.mesh) if args.mesh else None
    unit = (mesh or {}).get("data", 1) * (mesh or {}).get("fsdp", 1)
    found = largest_batch(lambda batch: memory_of(args, batch), capacity_bytes, unit=unit, most=args.most,
                          max_compiles=args.compiles)
    if args.json:
        print(json.dumps({"capacity_bytes": capacity_bytes, "batch": found.batch, "compiles": found.compiles,
                          "exact": found.exact,
                          "peaks": {str(batch): report.required_bytes for batch, report in
                                    sorted(found.reports.items())}}, indent=2))
    else:
        print("\n".join(fit_lines(found, args.name, source)))
    return 0 if found.batch is not None else 1
