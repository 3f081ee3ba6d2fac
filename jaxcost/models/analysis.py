"""Whole models, module by module: one compile of the whole model, its module calls recorded while it is
traced for lowering (nothing is re-implemented), and every flop and byte of the compiled program placed in
the row of the module that issued it (``models.rows``). The rows add up to the whole program's recount
exactly, which on the CPU is XLA's own total.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax

from jaxcost import targets
from jaxcost.compiler import CompilerCost, check_arguments, compile_function
from jaxcost.formulas import Mode, check_mode
from jaxcost.hlo.rewrites import Rewrite, flops_by_source, rewrites
from jaxcost.models.paper import DOT, Paper, Traced, paper_cost, signature_elements
from jaxcost.models.rows import Call, Placement, Row, build_rows, scope_calls
from jaxcost.reports.model import render, summary
from jaxcost.specs import Conv, Dense, describe_value


@dataclass
class ModelReport:
    """A model's cost, row by row, from one compile of the whole model."""

    name: str
    mode: Mode
    rows: list[Row]
    compiler: CompilerCost
    params: int
    seconds: dict[str, float] = field(default_factory=dict)
    #: Values in each variable collection other than the parameters (``batch_stats``): state, not trained.
    collections: dict[str, int] = field(default_factory=dict)
    #: Where the program's operations go: their op_names to rows, and instructions without one to theirs.
    placement: Placement | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"ModelReport({self.name!r}, mode={self.mode!r}, {len(self.layers)} layers, params={self.params:,}, "
                f"compiler_flops={self.compiler_flops:,}, compiler_bytes={self.compiler_bytes:,})")

    def __str__(self) -> str:
        return f"{render(self)}\n\n{summary(self)}"

    @property
    def layers(self) -> list[Row]:
        """The Conv/Dense rows: analytic formulas beside the compiler's figures."""
        return [row for row in self.rows if row.is_layer]

    @property
    def modules(self) -> list[Row]:
        """A row per module, in call order, parents before children."""
        return [row for row in self.rows if row.is_module]

    def inclusive(self, path: str, name: str = "compiler_flops") -> int:
        """A figure of the module at ``path`` together with every module under it."""
        return sum(getattr(row, name) for row in self.modules if row.path == path or row.path.startswith(path + "/"))

    def written_flops(self, path: str) -> int:
        """The flops of one row in the program as JAX wrote it, before XLA's optimizations: a module with an
        operation formula (a norm) equals it exactly there; ``rewrites(path)`` leads on to the compiled row."""
        return sum(self._by_source(path, compiled=False).values())

    def rewrites(self, path: str | None = None) -> list[Rewrite]:
        """XLA's rewrites of the operations of the row at ``path`` (of every row when None): flops copied into
        several fusions, folded, or added. A row's rewrites add up to its compiled flops minus its written
        flops."""
        return rewrites(self._by_source(path, compiled=False), self._by_source(path, compiled=True))

    def _by_source(self, path: str | None, compiled: bool) -> Counter:
        """One row's flops (every row's when ``path`` is None) by source operation, in the compiled program or
        in the program as written; instructions without metadata go to the row the report gave them."""
        def in_row(op: Any, source: str) -> bool:
            row = self.placement.row(source, op.name if compiled else "") if self.placement else source
            return path is None or row == path

        return flops_by_source(self.compiler.recount if compiled else self.compiler.written, in_row)

    @property
    def macs(self) -> int:
        """Analytic multiply-adds: the Conv/Dense layers' and attention's products."""
        return sum(row.macs for row in self.rows)

    @property
    def textbook_macs(self) -> int:
        return sum(row.textbook_macs for row in self.rows)

    @property
    def flops(self) -> int:
        """Analytic flops of the layers and products that have a formula."""
        return sum(row.flops for row in self.rows)

    @property
    def compiler_flops(self) -> int:
        """The whole program's recount: the rows' compiler flops add up to it exactly."""
        return self.compiler.flops

    @property
    def compiler_bytes(self) -> int:
        return self.compiler.bytes_accessed


def _first_array(value: Any) -> Any:
    """The first array (or abstract array) in ``value``: what a module's shapes and dtypes are read from."""
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(value) if hasattr(leaf, "shape") and hasattr(leaf, "dtype")]
    return leaves[0] if leaves else None


def _arrays(args: tuple, out: Any) -> tuple[Any, Any]:
    """A call's input and output as whole arrays (vmap's batch sizes included, ``_whole``), or None."""
    x, y = _first_array(args[:1]), _first_array(out)
    return _whole(x, like=y), _whole(y)


def _call(path: tuple[str, ...], module_type: str, paper: Paper, x: Any, y: Any, lifted: bool = False) -> Call:
    return Call(path, module_type, paper.spec, tuple(x.shape) if x is not None else None,
                tuple(y.shape) if y is not None else None, str(x.dtype) if x is not None else "",
                str(y.dtype) if y is not None else "", paper.macs, paper.ops, lifted, paper.signature,
                paper.training_passes, paper.error, paper.training_ops, signature_elements(paper, y))


def _lifted(module: nn.Module) -> bool:
    """Whether the module runs inside a lifted transform (``nn.scan``, ``nn.vmap``, ``nn.remat``, ...): flax may
    trace it more than once, and a scan runs it many times (``models.loops`` says how often)."""
    while module.path:  # up to the model itself, whose parent is its scope
        if not isinstance(module.parent, nn.Module):
            return True
        module = module.parent
    return False


def _whole(value: Any, like: Any = None) -> Any:
    """The array a traced value stands for: inside ``vmap`` a value has the shape of one example, and the
    batch sizes of every vmap around it are put first (as a ``jax.ShapeDtypeStruct``). A value that is not
    batched takes the batch sizes of ``like`` (an ensemble: the parameters are vmapped, the input is shared)."""
    if value is None:
        return None
    sizes = _batch_sizes(value) or (_batch_sizes(like) if like is not None else [])
    return jax.ShapeDtypeStruct((*sizes, *value.shape), value.dtype) if sizes else value


def _batch_sizes(value: Any) -> list[int]:
    """The sizes of the vmaps a traced value is batched by, outermost first."""
    sizes = []
    while isinstance(getattr(value, "batch_dim", None), int) and hasattr(value, "val"):
        sizes.append(value.val.shape[value.batch_dim])  # a vmap's tracer: ``val`` holds the batch at ``batch_dim``
        value = value.val
    return list(reversed(sizes))



def _paper(module: Any, x: Any, y: Any, args: tuple, kwargs: dict) -> Paper:
    """One call's paper cost, from its whole arrays (``_arrays``)."""
    return paper_cost(Traced(module, x, y, args, kwargs)) if x is not None else Paper()


#: The place of a call that has begun and not yet returned: calls are listed as they begin.
_PENDING = Call((), "", None, None, None)


class Recorder:
    """Intercepts module calls while the model is traced: every module's path, type, shapes and dtypes, and the
    Conv/Dense specs. Calls are listed as they begin, so that a module comes before the modules it calls."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __call__(self, next_fun: Callable, args: tuple, kwargs: dict, context: Any) -> Any:
        if context.method_name == "attend" and isinstance(context.module, nn.Embed):
            return self._attend(next_fun, args, kwargs, context.module)
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        index = len(self.calls)
        self.calls.append(_PENDING)
        out = next_fun(*args, **kwargs)
        module = context.module
        x, y = _arrays(args, out)
        paper = _paper(module, x, y, args, kwargs)
        self.calls[index] = _call(tuple(module.path), type(module).__name__, paper, x, y, _lifted(module))
        return out

    def _attend(self, next_fun: Callable, args: tuple, kwargs: dict, module: nn.Embed) -> Any:
        """``Embed.attend``: a product with the embedding table (tied logits), one multiply-add per query
        element and table row."""
        out = next_fun(*args, **kwargs)
        x, y = _arrays(args, out)
        macs = math.prod(x.shape) * module.num_embeddings if x is not None else 0
        self.calls.append(_call(tuple(module.path), type(module).__name__, Paper(macs=macs, signature=DOT), x, y,
                                _lifted(module)))
        return out


def abstract_variables(model: nn.Module, inputs: tuple, kwargs: dict, keys: dict) -> Any:
    """The model's variables as ``jax.ShapeDtypeStruct`` s: initialised abstractly, nothing allocated."""
    return jax.eval_shape(lambda *xs: model.init({"params": jax.random.PRNGKey(0), **keys}, *xs, **kwargs), *inputs)


def split_collections(variables: Any) -> tuple[Any, dict]:
    """The parameters, and every other collection (``batch_stats``, ...)."""
    return variables.get("params", {}), {name: value for name, value in variables.items() if name != "params"}


def random_keys(rngs: Any) -> dict[str, Any]:
    """``rngs`` as flax takes them: a PRNG key per stream name; a stream given as an integer is seeded with it."""
    if rngs is None:
        return {}
    if not isinstance(rngs, dict) or not all(isinstance(name, str) for name in rngs):
        raise ValueError(f"rngs: must map stream names to keys or integer seeds, like {{'dropout': 0}}, "
                         f"got {describe_value(rngs)}")
    return {name: jax.random.PRNGKey(value) if isinstance(value, int) else value for name, value in rngs.items()}


def training_step(apply: Callable, others: dict, kwargs: dict) -> tuple[Callable, Callable]:
    """A training step: forward (the ``others`` collections mutable and updated), then the pullback of an
    output gradient.

    Returns ``forward(params, others, keys, *inputs) -> (y, updates)`` and
    ``step(params, others, keys, output_gradient, *inputs) -> (y, updates, gradients)``.
    """
    mutable = list(others) or False

    def forward(params: Any, others: Any, keys: dict, *inputs: Any) -> Any:
        out = apply({"params": params, **others}, *inputs, rngs=keys or None, mutable=mutable, **kwargs)
        return out if mutable else (out, {})

    def step(params: Any, others: Any, keys: dict, output_gradient: Any, *inputs: Any) -> Any:
        y, pullback, updates = jax.vjp(lambda p, *xs: forward(p, others, keys, *xs), params, *inputs, has_aux=True)
        return y, updates, pullback(output_gradient)

    return forward, step


def _rng_error(error: Exception) -> ValueError:
    """A missing random stream, said as what to pass."""
    stream = re.search(r'PRNG for "(\w+)"', str(error))
    name = stream.group(1) if stream else "<stream>"
    return ValueError(f"rngs: the model draws random numbers from the {name!r} stream; pass "
                      f"rngs={{{name!r}: 0}} (on the command line: --rng {name})")


def analyze(model: Any, *inputs: Any, variables: Any = None, mode: Mode = "forward", name: str = "",
            rngs: Any = None, mesh: Any = None, target: str | None = None, **kwargs: Any) -> ModelReport:
    """Per-layer cost of a model from one compile of the whole model.

    ``model`` is a ``flax.linen`` Module, a ``flax.nnx`` Module or a plain JAX function of ``inputs``.
    ``inputs`` may be arrays or ``jax.ShapeDtypeStruct``; linen ``variables`` default to an abstract
    initialisation (nothing is allocated). ``kwargs`` go to the model's call (``train=True``, say);
    collections the call writes (``batch_stats``) are made mutable in both modes. ``rngs`` seeds the
    random streams a linen model draws from (``{"dropout": 0}``; keys or integer seeds).
    ``mode="train"`` costs a training step: forward, then gradients w.r.t. params and inputs.
    ``mesh`` (a linen model; ``{"data": 8}``, ``{"data": 2, "model": 4}`` or a ``jax.sharding.Mesh``) shards
    the program over JAX's devices as ``models.sharding`` says; its compiler figures are then per device.
    ``target="tpu:v5e:2x2"`` compiles for a TPU slice on this machine (``jaxcost.targets``; with ``mesh``,
    over the slice's devices).
    """
    with targets.compiling_for(target) as where:
        return _analyze(model, inputs, variables, mode, name, rngs, mesh, where, kwargs)


def _analyze(model: Any, inputs: tuple, variables: Any, mode: Mode, name: str, rngs: Any, mesh: Any, where: Any,
             kwargs: dict) -> ModelReport:
    check_mode(mode)
    if isinstance(model, (Conv, Dense)):
        raise ValueError("model: got a jaxcost layer spec; use jaxcost.compare(spec) for one layer")
    if isinstance(model, type):
        raise ValueError(f"model: got the class {model.__name__}; pass an instance, {model.__name__}(...)")
    if not inputs:
        raise ValueError("inputs: analyze(model, *inputs) needs the model's inputs, as arrays or "
                         "jax.ShapeDtypeStruct(shape, dtype)")
    check_arguments(inputs, "inputs")
    start = time.perf_counter()
    if mesh is not None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"mesh: sharding is for flax.linen models, got {describe_value(model)}; jit a "
                             "function with its shardings and pass it to jaxcost.compiled")
        inputs, variables = sharded_arguments(model, inputs, variables, kwargs, random_keys(rngs), mesh,
                                     list(where.devices) if where else None)
    if isinstance(model, nn.Module):
        from flax.errors import InvalidRngError

        try:
            calls, compiler, params, others = _trace_linen(model, inputs, variables, mode, kwargs,
                                                           random_keys(rngs))
        except InvalidRngError as error:
            raise _rng_error(error) from None
        root = type(model).__name__
    elif rngs is not None:
        raise ValueError("rngs: only a flax.linen model takes rngs; an nnx model holds its own streams (nnx.Rngs), "
                         "a function takes its keys as inputs")
    elif is_nnx_module(model):
        from flax import nnx

        calls, compiler, params = _trace_nnx(model, inputs, mode, kwargs)
        statistics = nnx.state(model, nnx.BatchStat)
        root, others = "", {"batch_stats": statistics} if jax.tree_util.tree_leaves(statistics) else {}
    elif callable(model):
        function = (lambda *xs: model(*xs, **kwargs)) if kwargs else model
        compiler = compile_function(_pullback_step(function) if mode == "train" else function,
                                    *_step_arguments(function, inputs, mode))
        calls, params, root, others = scope_calls(compiler), {}, "", {}
    else:
        raise ValueError(f"model: expected a flax.linen or flax.nnx Module or a function, got {describe_value(model)}")
    seconds = {"trace_and_compile": time.perf_counter() - start, "compile": compiler.seconds_compile}
    start = time.perf_counter()
    rows, placement = build_rows(calls, compiler, root, mode, params)
    seconds["attribute"] = time.perf_counter() - start
    label = name or getattr(model, "__name__", type(model).__name__)
    return ModelReport(label, mode, rows, compiler, count_elements(params), seconds,
                       {name: count_elements(values) for name, values in others.items()}, placement)


def program_report(hlo_text: str, name: str = "", platform: str = "", device_kind: str = "") -> ModelReport:
    """The rows of a compiled program given as its optimized HLO text (a dump, a stored program), by the scopes of
    its instructions' op_names; nothing is compiled, and XLA's own figures are unknown."""
    from jaxcost.hlo.program import recount

    compiler = CompilerCost(xla={}, recount=recount(hlo_text), memory={}, hlo_text=hlo_text, platform=platform,
                            seconds_compile=0.0, device_kind=device_kind)
    rows, placement = build_rows(scope_calls(compiler), compiler, "", "forward", {})
    return ModelReport(name or "program", "forward", rows, compiler, 0, placement=placement)


def sharded_arguments(model: nn.Module, inputs: tuple, variables: Any, kwargs: dict, keys: dict, mesh: Any,
             devices: list[Any] | None) -> tuple[tuple, Any]:
    """The inputs split along their batch, the parameters as the mesh's axes say, other state replicated."""
    from jax.sharding import Mesh

    from jaxcost.models.sharding import check_mesh, make_mesh, parse_mesh, replicated, shard_batch, shard_params

    if not isinstance(mesh, Mesh):
        mesh = make_mesh(parse_mesh(mesh) if isinstance(mesh, str) else check_mesh(mesh), devices)
    if variables is None:
        variables = abstract_variables(model, inputs, kwargs, keys)
    params, others = split_collections(variables)
    variables = {"params": shard_params(params, mesh), **replicated(others, mesh)}
    return tuple(shard_batch(x, mesh) for x in inputs), variables


def attribute(model: nn.Module, *inputs: Any, compiler: CompilerCost, mode: Mode = "forward", name: str = "",
              variables: Any = None, rngs: Any = None, **kwargs: Any) -> ModelReport:
    """The rows of a program compiled elsewhere (on another backend, or stored) for a ``flax.linen`` model.

    The model's calls are recorded by an abstract trace here; nothing is compiled. ``compiler`` is the
    program's ``CompilerCost`` (for a stored program: its HLO text recounted, and XLA's figures).
    """
    check_mode(mode)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: attribute() takes a flax.linen Module, got {describe_value(model)}")
    check_arguments(inputs, "inputs")
    keys = random_keys(rngs)
    if variables is None:
        variables = abstract_variables(model, inputs, kwargs, keys)
    params, others = split_collections(variables)
    forward, _ = training_step(model.apply, others, kwargs)
    recorder = Recorder()
    with nn.intercept_methods(recorder):
        jax.eval_shape(forward, params, others, keys, *inputs)
    rows, placement = build_rows(recorder.calls, compiler, type(model).__name__, mode, params)
    return ModelReport(name or type(model).__name__, mode, rows, compiler, count_elements(params),
                       collections={name: count_elements(values) for name, values in others.items()},
                       placement=placement)


def count_elements(tree: Any) -> int:
    """Elements of a pytree's arrays, summed."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def _pullback_step(function: Callable, has_aux: bool = False) -> Callable:
    """``step(output_gradient, *args) -> (y, gradients)``: forward, then the pullback w.r.t. every argument.
    With ``has_aux``, ``function`` returns ``(y, state)`` and the step ``(y, state, gradients)``."""
    def step(output_gradient: Any, *args: Any) -> Any:
        if has_aux:
            y, pullback, state = jax.vjp(function, *args, has_aux=True)
            return y, state, pullback(output_gradient)
        y, pullback = jax.vjp(function, *args)
        return y, pullback(output_gradient)
    return step


def _parameters_pullback_step(function: Callable) -> Callable:
    """``step(output_gradient, params, rest, *inputs) -> (y, state, gradients)`` for ``function(params, rest,
    *inputs) -> (y, state)``: the pullback w.r.t. the parameters and the inputs, as a linen model's training step
    (the other state, running averages say, is read behind ``stop_gradient``: nothing is computed for it). It goes
    through the pullback as an argument: nnx refuses to update state of an outer trace."""
    def step(output_gradient: Any, params: Any, rest: Any, *inputs: Any) -> Any:
        def constant_rest(p: Any, r: Any, *xs: Any) -> Any:
            return function(p, jax.tree_util.tree_map(jax.lax.stop_gradient, r), *xs)

        y, pullback, state = jax.vjp(constant_rest, params, rest, *inputs, has_aux=True)
        params_gradient, _, *inputs_gradients = pullback(output_gradient)  # the rest's: zeros, nothing computed
        return y, state, (params_gradient, *inputs_gradients)
    return step


def _step_arguments(function: Callable, args: tuple, mode: Mode, has_aux: bool = False) -> tuple:
    """The arguments of ``function`` itself, or of its training step (an output gradient first)."""
    if mode != "train":
        return args
    output = jax.eval_shape(function, *args)
    return (output[0] if has_aux else output, *args)


def _trace_linen(model: nn.Module, inputs: tuple, variables: Any, mode: Mode, kwargs: dict,
                 keys: dict) -> tuple[list[Call], CompilerCost, Any, dict]:
    if variables is None:
        variables = abstract_variables(model, inputs, kwargs, keys)
    params, others = split_collections(variables)
    recorder = Recorder()
    with nn.intercept_methods(recorder):
        if mode == "train":
            forward, step = training_step(model.apply, others, kwargs)
            output = jax.eval_shape(forward, params, others, keys, *inputs)[0]
            recorder.calls.clear()
            compiler = compile_function(step, params, others, keys, output, *inputs)
        else:
            compiler = _compile_forward(model, variables, keys, inputs, kwargs, recorder)
    return recorder.calls, compiler, params, others


def _compile_forward(model: nn.Module, variables: Any, keys: dict, inputs: tuple, kwargs: dict,
                     recorder: Recorder) -> CompilerCost:
    """The forward program. Collections the call writes (``batch_stats`` with ``train=True``, say) are made
    mutable, as flax requires; a model that writes none is compiled as it is (found by trying: flax refuses
    the write while the model is traced, before anything is compiled)."""
    from flax.errors import ModifyScopeVariableError

    def forward(mutable: Any) -> Callable:
        return lambda v, k, *xs: model.apply(v, *xs, rngs=k or None, mutable=mutable, **kwargs)

    try:
        return compile_function(forward(False), variables, keys, *inputs)
    except ModifyScopeVariableError:
        recorder.calls.clear()
        return compile_function(forward([name for name in variables if name != "params"]), variables, keys, *inputs)


def is_nnx_module(model: Any) -> bool:
    """Whether ``model`` is a ``flax.nnx`` Module (False where flax has no nnx)."""
    try:
        from flax import nnx
    except ImportError:
        return False
    return isinstance(model, nnx.Module)


def _defining_class(cls: type) -> type | None:
    """The class in ``cls``'s MRO that defines ``__call__`` (None for a module without one)."""
    return next((base for base in cls.__mro__ if "__call__" in vars(base)), None)


#: Where each nnx module of a model being traced keeps its path (removed after the trace).
PATH_ATTRIBUTE = "_jaxcost_path"


def _trace_nnx(model: Any, inputs: tuple, mode: Mode, kwargs: dict) -> tuple[list[Call], CompilerCost, Any]:
    """Trace an nnx module with every module call recorded and named by its path.

    nnx names no scopes itself, so each recorded call runs inside ``jax.named_scope(path)``: the
    compiled program's metadata then carries the module path, as it does for linen. The ``__call__`` of
    every module class in the model is wrapped for the trace and restored after it.
    """
    from flax import nnx

    modules = [(module, tuple(map(str, path))) for path, module in nnx.iter_graph(model)
               if isinstance(module, nnx.Module)]
    calls: list[Call] = []
    classes = {_defining_class(type(module)) for module, _ in modules}
    originals = {cls: vars(cls)["__call__"] for cls in classes if cls is not None}
    active: set[int] = set()
    direct: set[int] = set()  # the modules of the model itself, not copies made inside a transform

    def recording(original: Callable) -> Callable:
        def call(self: Any, *args: Any, **call_kwargs: Any) -> Any:
            if id(self) in active:  # a subclass's call of its base's __call__: one call, recorded once
                return original(self, *args, **call_kwargs)
            path = getattr(self, PATH_ATTRIBUTE, ())
            index = len(calls)
            calls.append(_PENDING)
            active.add(id(self))
            try:
                with jax.named_scope("/".join(path) or type(self).__name__):
                    y = original(self, *args, **call_kwargs)
            finally:
                active.discard(id(self))
            x, out = _arrays(args, y)
            paper = _paper(self, x, out, args, call_kwargs)
            calls[index] = _call(path, type(self).__name__, paper, x, out, id(self) not in direct)  # a transform's copy
            return y
        return call

    try:
        for module, path in modules:  # static data: it travels with every copy nnx makes (merges, transforms)
            setattr(module, PATH_ATTRIBUTE, path)
        graphdef, params, *others = nnx.split(model, nnx.Param, ...)  # the parameters, then all the rest
        rest = others[0]

        def forward(params: Any, rest: Any, *xs: Any) -> Any:
            merged = nnx.merge(graphdef, params, rest)
            direct.update(id(module) for _, module in nnx.iter_graph(merged) if isinstance(module, nnx.Module))
            y = merged(*xs, **kwargs)
            return y, nnx.state(merged, nnx.BatchStat)  # the statistics a call updates are the program's too

        for cls in originals:
            setattr(cls, "__call__", recording(originals[cls]))  # noqa: B010 (assigning a method: mypy refuses it)
        arguments = _step_arguments(forward, (params, rest, *inputs), mode, has_aux=True)
        calls.clear()
        step = _parameters_pullback_step(forward) if mode == "train" else forward
        compiler = compile_function(step, *arguments)
    finally:
        for cls, original in originals.items():
            setattr(cls, "__call__", original)  # noqa: B010 (as above)
        for module, _ in modules:
            if PATH_ATTRIBUTE in vars(module):
                delattr(module, PATH_ATTRIBUTE)
    return calls, compiler, nnx.state(model, nnx.Param)
