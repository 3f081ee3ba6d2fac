"""XLA's files of one compiled step (``xla_dump_to``): the folder they are kept in, the step file written beside them
(what the files do not say: platform, device kind, XLA's ``memory_analysis()``), and a step compiled elsewhere read
back from them with its program lowered here.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from jaxcost import targets
from jaxcost.compiler import CompilerCost, tuple_pointer_bytes
from jaxcost.hlo.allocations import BufferAssignment, read_dump
from jaxcost.hlo.program import recount
from jaxcost.hlo.text import POINTER_BYTES, Module, Sizes, parse_module

#: The file ``memory(dump_to=...)`` writes beside XLA's: what the step was compiled for, and XLA's
#: ``memory_analysis()`` of it, which the dump files do not hold.
STEP_FILE = "jaxcost-step.json"
_BUFFER_ASSIGNMENT = "*after_optimizations-buffer-assignment.txt"
#: The platform in a dump file's name: ``module_0000.jit_step.sm_9.0a_gpu_after_optimizations.txt``.
_DUMP_PLATFORM = re.compile(r"[._](cpu|gpu|tpu)_after_optimizations")


@contextlib.contextmanager
def dump_folder(dump_to: str | None) -> Iterator[str]:
    """``dump_to`` (created), or a temporary folder removed afterwards."""
    if dump_to is not None:
        given = Path(dump_to)
        if given.exists() and not given.is_dir():
            raise ValueError(f"dump_to: {dump_to} is a file; give a folder for XLA's files")
        if given.is_dir() and any(given.glob(_BUFFER_ASSIGNMENT)):
            raise ValueError(f"dump_to: {dump_to} already holds another program's dump; give an empty folder")
        given.mkdir(parents=True, exist_ok=True)
        yield str(dump_to)
        return
    with tempfile.TemporaryDirectory(prefix="jaxcost-dump-") as folder:
        yield folder


def write_step_file(folder: Path, compiler: CompilerCost, compiled_here: bool) -> None:
    """What ``from_dump`` needs beside XLA's files, which do not say it: the platform and device kind, this jax,
    XLA's ``memory_analysis()`` and, for a program compiled for this machine's device, the pointer size the recount
    gave its tuples (XLA:CPU's differs between jaxlib versions)."""
    facts: dict[str, Any] = {"platform": compiler.platform, "device_kind": compiler.device_kind,
                             "jax": jax.__version__, "memory_analysis": compiler.memory}
    if compiled_here:
        facts["tuple_pointer_bytes"] = tuple_pointer_bytes()
    (folder / STEP_FILE).write_text(json.dumps(facts, indent=1) + "\n")


@dataclass(frozen=True)
class Stored:
    """A step compiled elsewhere: XLA's files of it and the step file beside them."""

    folder: Path
    hlo_text: str
    module: Module
    assignment: BufferAssignment
    platform: str
    device_kind: str
    memory: dict[str, int]

    def lower(self, function: Callable, *args: Any, donate: tuple[int, ...] = ()) -> CompilerCost:
        """``function(*args)`` traced and lowered here (the arguments JAX keeps, the program as written with its
        op_names and scans) beside the program XLA compiled from it there, recounted; nothing is compiled."""
        traced = jax.jit(function, donate_argnums=donate).trace(*args)
        compiler = CompilerCost(xla={}, recount=recount(self.module), memory=self.memory,
                                hlo_text=self.hlo_text, platform=self.platform, seconds_compile=0.0,
                                lowered=traced.lower(), jaxpr=traced.jaxpr, device_kind=self.device_kind)
        leaves = jax.tree_util.tree_leaves(args)
        kept = [leaves[index] for index in kept_arguments(compiler, len(leaves))]
        parameters = compiler.recount.module.entry.parameters()
        if len(kept) != len(parameters):
            raise ValueError(f"from_dump: the program in {self.folder} takes {len(parameters)} arguments where this "
                             f"step, lowered here, takes {len(kept)}: the dump is another step's (model, inputs, mode, "
                             "optimizer)")
        if compiler.devices == 1:  # a partitioned program's parameters are one device's shards
            _check_shapes(self.folder, kept, parameters)
        return compiler


def _check_shapes(folder: Path, leaves: list[Any], parameters: list[Any]) -> None:
    """The dumped program's parameters have the shapes of the step's arguments (random keys aside: the program
    holds their raw bits)."""
    for number, (leaf, parameter) in enumerate(zip(leaves, parameters)):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            continue
        if tuple(leaf.shape) != parameter.shape.dims:
            raise ValueError(f"from_dump: the program in {folder} takes a {parameter.shape.dims} array as its "
                             f"argument {number} where this step has {tuple(leaf.shape)}: the dump is another "
                             "step's (model, inputs, batch)")


def read_stored(from_dump: str) -> Stored:
    """The one program dumped in ``from_dump``: its optimized HLO, buffer assignment and live ranges, with the step
    file's facts (without one, the platform is read from the files' names)."""
    hlo = _dumped_program(from_dump)
    step_file = hlo.with_name(STEP_FILE)
    facts = json.loads(step_file.read_text()) if step_file.is_file() else {}
    named = _DUMP_PLATFORM.search(hlo.name)
    platform = facts.get("platform") or (named.group(1) if named else "")
    kind = facts.get("device_kind", "")
    if "tuple_pointer_bytes" in facts:
        sizes: Sizes | int = facts["tuple_pointer_bytes"]
    else:
        sizes = targets.sizes(kind) if platform == "tpu" else POINTER_BYTES
    hlo_text = hlo.read_text()
    return Stored(hlo.parent, hlo_text, parse_module(hlo_text, sizes), read_dump(hlo.parent), platform, kind,
                   facts.get("memory_analysis", {}))


def _dumped_program(from_dump: str) -> Path:
    """The optimized HLO file of the one program dumped in ``from_dump``, its buffer assignment and live ranges
    found beside it."""
    folder = Path(from_dump)
    if not folder.is_dir():
        raise ValueError(f"from_dump: {from_dump} is not a folder; give the dump_to folder of the step compiled "
                         "elsewhere")
    found = sorted(folder.glob(_BUFFER_ASSIGNMENT))
    if not found:
        raise ValueError(f"from_dump: {from_dump} holds no buffer assignment ('{_BUFFER_ASSIGNMENT}'); give the "
                         "folder memory(dump_to=...) wrote XLA's files of the step into")
    if len(found) > 1:
        raise ValueError(f"from_dump: {from_dump} holds {len(found)} programs' dumps; it must hold one step's, as "
                         "memory(dump_to=...) writes it")
    hlo, live = (found[0].with_name(found[0].name.replace("-buffer-assignment.txt", ending))
                 for ending in (".txt", "-live-range.txt"))
    missing = [path.name for path in (hlo, live) if not path.is_file()]
    if missing:
        raise ValueError(f"from_dump: {from_dump} lacks {' and '.join(missing)} beside the buffer assignment; it "
                         "must hold one step's dump, as memory(dump_to=...) writes it")
    return hlo


def kept_arguments(compiler: CompilerCost, count: int) -> list[int]:
    """The flattened argument each entry parameter is: JAX leaves out arguments the program does not read."""
    try:
        kept = compiler.lowered._lowering.compile_args["kept_var_idx"]
    except (AttributeError, KeyError, TypeError):
        return list(range(count))
    return sorted(kept)


__all__ = ["STEP_FILE", "Stored", "dump_folder", "kept_arguments", "read_stored", "write_step_file"]
