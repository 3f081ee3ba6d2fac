"""The compiler's view: compile with ``jax.jit``, read XLA's cost and memory analyses, recount op by op."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jax

from jaxcost import targets
from jaxcost.hlo.collectives import Collective, collectives
from jaxcost.hlo.program import Recount, recount
from jaxcost.hlo.text import POINTER_BYTES
from jaxcost.reports.program import compiler_table
from jaxcost.specs import Conv, Dense, describe_value, is_flax_module

if TYPE_CHECKING:
    from jaxcost.formulas import Mode

XLA_FLOPS, XLA_TRANSCENDENTALS, XLA_BYTES = "flops", "transcendentals", "bytes accessed"


def normalize_cost_analysis(value: Any) -> dict[str, float]:
    """XLA's cost analysis as a flat dict, whatever JAX returned (dict, list of one dict, or None)."""
    if value is None:
        return {}
    if isinstance(value, (list, tuple)):
        return normalize_cost_analysis(value[0]) if value else {}
    return {str(key): float(number) for key, number in dict(value).items()}


def normalize_memory_analysis(value: Any) -> dict[str, int]:
    """``memory_analysis()`` fields ending in ``_in_bytes`` as a dict of ints (empty when unavailable)."""
    if value is None:
        return {}
    return {name: int(getattr(value, name)) for name in dir(value)
            if name.endswith("_in_bytes") and isinstance(getattr(value, name, None), int)}


@dataclass
class CompilerCost:
    """What XLA says one compiled program costs, beside jaxcost's op-by-op recount of the same program.

    ``xla`` holds XLA's figures exactly as given (-1 included; a key XLA left out means 0).
    ``flops``, ``transcendentals`` and ``bytes_accessed`` are the true recount: exact ints, never with
    -1 in them, library calls recounted, loops multiplied by their trip counts. The same program
    costed by XLA's rules reproduces XLA's totals exactly (``xla_reproduced``).
    """

    xla: dict[str, float]
    recount: Recount
    memory: dict[str, int]
    hlo_text: str
    platform: str
    seconds_compile: float
    lowered: Any = field(default=None, repr=False)
    #: The traced program (a ClosedJaxpr): where the scans and their lengths are.
    jaxpr: Any = field(default=None, repr=False)
    #: The kind of device it was compiled for (a target's, for a TPU slice compiled here).
    device_kind: str = ""
    #: The compiled program, kept to be run when it was compiled inside ``runnable()``; else None.
    executable: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"CompilerCost(platform={self.platform!r}, flops={self.flops:,}, "
                f"bytes_accessed={self.bytes_accessed:,}, xla_flops={self.xla_flops:,.0f}, "
                f"xla_bytes_accessed={self.xla_bytes_accessed:,.0f})")

    def __str__(self) -> str:
        return compiler_table(self)

    @property
    def lowered_text(self) -> str:
        """The program as written, before the compiler changed it (HLO text with each operation's metadata;
        '' when not kept)."""
        return self.lowered.as_text(dialect="hlo", debug_info=True) if self.lowered is not None else ""

    @functools.cached_property
    def collectives(self) -> list[Collective]:
        """The program's collectives, per device, each with its count per run (``hlo.collectives``)."""
        return collectives(self.recount.module, self.devices)

    @functools.cached_property
    def devices(self) -> int:
        """Devices the program runs on: its partitions times its replicas (1 for an unsharded program).
        Every figure here is per device; the program's total is that times ``devices``."""
        header = self.hlo_text.partition("\n")[0]
        partitions = re.search(r"\bnum_partitions=(\d+)", header)
        replicas = re.search(r"\breplica_count=(\d+)", header)
        return (int(partitions.group(1)) if partitions else 1) * (int(replicas.group(1)) if replicas else 1)

    @functools.cached_property
    def written(self) -> Recount:
        """The recount of the program as JAX wrote it, before XLA's optimizations (``hlo.rewrites`` sets it
        against the compiled one)."""
        return recount(self.lowered_text)

    @property
    def flops(self) -> int:
        return self.recount.flops

    @property
    def transcendentals(self) -> int:
        return self.recount.transcendentals

    @property
    def bytes_accessed(self) -> int:
        return self.recount.bytes_accessed

    @property
    def xla_flops(self) -> float:
        return self.xla.get(XLA_FLOPS, 0.0)

    @property
    def xla_transcendentals(self) -> float:
        return self.xla.get(XLA_TRANSCENDENTALS, 0.0)

    @property
    def xla_bytes_accessed(self) -> float:
        return self.xla.get(XLA_BYTES, 0.0)

    @property
    def bytes_operands(self) -> dict[int, float]:
        """XLA's per-operand-slot byte figures (``bytes accessed{i}{}``), summed over all instructions."""
        prefix = XLA_BYTES
        return {int(key[len(prefix):-2]): number for key, number in self.xla.items()
                if key.startswith(prefix) and key.endswith("{}") and key[len(prefix):-2].isdigit()}

    @property
    def bytes_output(self) -> float:
        """XLA's summed output bytes (``bytes accessedout{}``)."""
        return self.xla.get(XLA_BYTES + "out{}", 0.0)

    @property
    def xla_unknown(self) -> list[str]:
        """What XLA does not know: its keys reported as -1, and the instructions it counted as -1."""
        calls = len(self.recount.xla_unknown)
        keys = [f"XLA '{key}' = {number:g}" + (f" (-1 for each of {calls} library calls)" if calls > 1 else "")
                for key, number in self.xla.items() if number < 0]
        return keys + self.recount.xla_unknown

    @property
    def unknown(self) -> list[str]:
        """What even the recount does not know: unknown custom calls, loops of unknown trip count."""
        return self.recount.unknown

    @property
    def bounds(self) -> list[str]:
        """Where the recount is an upper bound: work that depends on data (a conditional's costliest branch)."""
        return self.recount.bounds

    @property
    def silent_zeros(self) -> list[str]:
        """XLA's keys that are positive where the recount is 0 with nothing in ``unknown`` to say why: none, or a
        rule is missing."""
        pairs = (("flops", self.xla_flops, self.flops), ("transcendentals", self.xla_transcendentals,
                                                          self.transcendentals),
                 ("bytes accessed", self.xla_bytes_accessed, self.bytes_accessed))
        return [] if self.unknown else [key for key, xla, ours in pairs if xla > 0 and ours == 0]

    @property
    def xla_known(self) -> bool:
        """True when XLA reported totals and no -1 went into them."""
        return bool(self.xla) and not self.xla_unknown

    def xla_reproduced(self, key: str) -> bool:
        """Whether the recount by XLA's rules, summed the way XLA sums (float32), equals XLA's total."""
        xla_key = {"flops": XLA_FLOPS, "transcendentals": XLA_TRANSCENDENTALS, "bytes_accessed": XLA_BYTES}[key]
        return self.recount.as_xla_sums(key) == self.xla.get(xla_key, 0.0)


def check_function(function: Any, argument: str = "spec_or_function") -> None:
    """A one-line error for what cannot be jit-compiled as ``function(*args)`` (a flax Module, a non-callable)."""
    if is_flax_module(function):
        raise ValueError(f"{argument}: got {describe_value(function)}, which is not a function of arrays; for a "
                         "model use jaxcost.analyze(module, x), or pass module.apply with its variables: "
                         "(module.apply, variables, x)")
    if not callable(function):
        raise ValueError(f"{argument}: expected a jaxcost.Conv/Dense or a function, got {describe_value(function)}")


def check_arguments(args: tuple, argument: str = "args") -> None:
    """One-line errors for arguments that are not arrays or trees of arrays (a list of numbers, a string)."""
    for index, value in enumerate(args):
        leaves = jax.tree_util.tree_leaves(value)
        if any(isinstance(leaf, str) for leaf in leaves):
            raise ValueError(f"{argument}[{index}]: a string where an array goes ({describe_value(value)}); pass an "
                             "array or jax.ShapeDtypeStruct(shape, dtype)")
        if isinstance(value, (list, tuple)) and leaves and all(
                isinstance(leaf, (bool, int, float, complex)) for leaf in leaves):
            raise ValueError(f"{argument}[{index}]: a Python {type(value).__name__} of numbers where an array goes "
                             f"({describe_value(value)}); pass jnp.asarray(...) or jax.ShapeDtypeStruct(shape, dtype)")


def default_device() -> Any:
    """The device ``jax.jit`` places work on: the one ``jax.default_device(...)`` names, else the first device."""
    # jax's Config sets its options as attributes at run time (declared for pytype, not for mypy), and read()
    # refuses the options that have a context manager, as this one does
    configured = jax.config.jax_default_device  # type: ignore[attr-defined]
    if configured is None:
        return jax.devices()[0]
    return jax.devices(configured)[0] if isinstance(configured, str) else configured


def counting_options() -> dict[str, Any] | None:
    """Compiler options for a compile whose executable is only read, never run.

    On the CPU, LLVM's optimization level 0 leaves XLA's optimized HLO (and so every count) exactly
    as it is at the default level, and halves the compile time; the tests check that the HLO is
    identical. Elsewhere the defaults are kept.
    """
    return {"xla_backend_optimization_level": 0} if default_device().platform == "cpu" else None


def tuple_pointer_bytes() -> int:
    """Bytes per element that XLA's cost analysis on the default device's backend gives a tuple's pointer table.

    Read off the compiler itself, once per backend: a probe program returning a pair is costed by XLA and
    recounted with tables of 0 and 1 byte an element; the difference says what XLA used (8 on most
    backends, 4 on the CPU of jaxlib 0.11).
    """
    return _probe_pointer_bytes(default_device().platform)


#: The probe: a program returning a pair, whose only tuple is its result.
POINTER_PROBE = (lambda x: (x + 1.0, x * 2.0), jax.ShapeDtypeStruct((), "float32"))


@functools.cache
def _probe_pointer_bytes(platform: str) -> int:
    function, argument = POINTER_PROBE
    executable = jax.jit(function).lower(argument).compile(compiler_options=counting_options())
    xla_bytes = normalize_cost_analysis(executable.cost_analysis()).get(XLA_BYTES)
    return pointer_bytes_of(optimized_hlo(executable), xla_bytes)


def optimized_hlo(executable: jax.stages.Compiled) -> str:
    """The optimized HLO text of a compiled program; RuntimeError where the backend gives none."""
    hlo_text = executable.as_text()
    if hlo_text is None:
        raise RuntimeError("the backend gives no HLO text for this compiled program: there is nothing to recount")
    return hlo_text


def pointer_bytes_of(hlo_text: str, xla_bytes: float | None) -> int:
    """The pointer size that makes the recount of ``hlo_text`` by XLA's rules equal XLA's byte figure
    (``POINTER_BYTES`` when the program has no tuple or no figure, or no whole size fits)."""
    without, with_one = (recount(hlo_text, size).xla_rule_total("bytes_accessed") for size in (0, 1))
    if xla_bytes is None or with_one == without or (xla_bytes - without) % (with_one - without):
        return POINTER_BYTES
    return int(xla_bytes - without) // (with_one - without)


_RUNNABLE: contextvars.ContextVar[bool] = contextvars.ContextVar("jaxcost_runnable", default=False)


@contextlib.contextmanager
def runnable() -> Iterator[None]:
    """Inside, ``compile_function`` compiles with the default options (the program is to be run, not only read)
    and keeps the executable in ``CompilerCost.executable``: one compile serves the counts and the timing."""
    token = _RUNNABLE.set(True)
    try:
        yield
    finally:
        _RUNNABLE.reset(token)


_DUMP_TO: contextvars.ContextVar[str | None] = contextvars.ContextVar("jaxcost_dump_to", default=None)


@contextlib.contextmanager
def dumping_to(folder: str) -> Iterator[None]:
    """Inside, ``compile_function`` has XLA write the compiled program's files into ``folder`` (its optimized HLO,
    buffer assignment and live ranges: ``hlo.allocations.read_dump`` reads them)."""
    token = _DUMP_TO.set(folder)
    try:
        yield
    finally:
        _DUMP_TO.reset(token)


def _compile_options(where: Any, keep: bool) -> dict[str, Any] | None:
    options = dict(counting_options() or {}) if where is None and not keep else {}
    if _DUMP_TO.get() is not None:
        options["xla_dump_to"] = _DUMP_TO.get()
    return options or None


def compile_function(function: Callable[..., Any], *args: Any, donate: tuple[int, ...] = ()) -> CompilerCost:
    """Lower and compile ``function(*args)`` with ``jax.jit``; ``args`` may be arrays or ShapeDtypeStructs.
    Inside ``targets.compiling_for(name)`` the program is compiled for that target (a TPU slice), not run;
    inside ``runnable()`` it is compiled to be run, and kept. ``donate`` names arguments whose buffers the outputs
    may reuse (``jax.jit``'s ``donate_argnums``)."""
    where = targets.current()
    if where is not None:
        args = targets.placed(args, where)
    start = time.perf_counter()
    traced = jax.jit(function, donate_argnums=donate).trace(*args)
    try:
        lowered = traced.lower()
    except ValueError as error:
        if type(error).__name__ == "IndivisibleError":  # a sharding that does not divide an argument's shape
            raise ValueError(f"args: {str(error).splitlines()[0]}") from None
        raise
    keep = _RUNNABLE.get() and where is None
    executable = lowered.compile(compiler_options=_compile_options(where, keep))
    seconds_compile = time.perf_counter() - start
    try:
        memory = normalize_memory_analysis(executable.memory_analysis())
    except (NotImplementedError, RuntimeError, AttributeError):
        memory = {}
    hlo_text = optimized_hlo(executable)
    xla = normalize_cost_analysis(executable.cost_analysis())
    sizes = tuple_pointer_bytes() if where is None else targets.sizes(where.device_kind)
    return CompilerCost(
        xla=xla,
        recount=recount(hlo_text, sizes),
        memory=memory,
        hlo_text=hlo_text,
        platform=default_device().platform if where is None else where.platform,
        seconds_compile=seconds_compile,
        lowered=lowered,
        jaxpr=traced.jaxpr,
        device_kind=default_device().device_kind if where is None else where.device_kind,
        executable=executable if keep else None,
    )


def replayed(entry: dict) -> CompilerCost:
    """A stored TPU program (``targets.stored_programs``) recounted here, without libtpu."""
    hlo_text, kind = entry["hlo_optimized"], entry["device_kind"]
    return CompilerCost(xla=entry["compiled_cost_analysis"], recount=recount(hlo_text, targets.sizes(kind)),
                        memory={}, hlo_text=hlo_text, platform="tpu", seconds_compile=0.0, device_kind=kind)


def program_of(spec_or_function: Conv | Dense | Callable[..., Any], args: tuple,
               mode: Mode = "forward") -> tuple[Callable[..., Any], tuple, Conv | Dense | None]:
    """What to compile, checked: a layer spec's forward pass (or, with ``mode="train"``, its training step) with
    its abstract arguments, or ``function`` with ``args``; and the spec when one was given."""
    if isinstance(spec_or_function, (Conv, Dense)):
        from jaxcost.formulas import check_mode
        from jaxcost.modules import abstract_arguments, forward_function, training_arguments, training_function

        if args:
            raise ValueError("args: a layer spec brings its own arguments; pass none")
        spec = spec_or_function
        if check_mode(mode) == "train":
            return training_function(spec), training_arguments(spec), spec
        return forward_function(spec), abstract_arguments(spec), spec
    check_function(spec_or_function)
    check_arguments(args)
    return spec_or_function, args, None


def compiled(spec_or_function: Conv | Dense | Callable[..., Any], *args: Any, mode: Mode = "forward",
             target: str | None = None) -> CompilerCost:
    """What the compiler says a layer spec, or ``function(*args)``, costs.

    For a spec, ``mode="train"`` compiles a training step: the forward pass and the gradients with
    respect to input and parameters, given an output gradient. ``target="tpu:v5e:2x2"`` compiles for a TPU
    slice on this machine (``jaxcost.targets``).
    """
    function, arguments, _ = program_of(spec_or_function, args, mode)
    with targets.compiling_for(target):
        return compile_function(function, *arguments)
