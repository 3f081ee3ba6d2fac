"""Whole models, module by module: one compile of the whole model, its module calls recorded while it is
traced for lowering (nothing is re-implemented), and every flop and byte of the compiled program placed in
the row of the module that issued it (``models.rows``). The rows add up to the whole program's recount
exactly, which on the CPU is XLA's own total.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax

from jaxcost.compiler import CompilerCost, check_arguments, compile_function
from jaxcost.formulas import attention_macs, check_mode, einsum_macs
from jaxcost.models.rows import Call, Row, build_rows
from jaxcost.reports.model import render, summary
from jaxcost.specs import Conv, Dense, Spec, describe_value


@dataclass
class ModelReport:
    """A model's cost, row by row, from one compile of the whole model."""

    name: str
    mode: str
    rows: list[Row]
    compiler: CompilerCost
    params: int
    seconds: dict[str, float] = field(default_factory=dict)
    #: Values in each variable collection other than the parameters (``batch_stats``): state, not trained.
    collections: dict[str, int] = field(default_factory=dict)

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


def conv_spec(module: Any, x: Any, features: int, dtype: Any) -> Conv | None:
    """The spec of one call of a linen or nnx Conv (their attributes share names), batch dims flattened.

    None for padding jaxcost does not count (CIRCULAR, CAUSAL, ...).
    """
    kernel = (module.kernel_size,) if isinstance(module.kernel_size, int) else tuple(module.kernel_size)
    rank = len(kernel)
    shape = tuple(x.shape)
    shape = (math.prod(shape[:-rank - 1]) if len(shape) > rank + 1 else 1, *shape[-rank - 1:])
    padding = module.padding
    if isinstance(padding, str) and padding.upper() not in ("SAME", "VALID"):
        return None
    return Conv(shape, features, kernel, strides=module.strides or 1, padding=padding,
                input_dilation=module.input_dilation or 1, kernel_dilation=module.kernel_dilation or 1,
                feature_group_count=module.feature_group_count, use_bias=module.use_bias, dtype=dtype)


def spec_of_call(module: nn.Module, x: Any, y: Any) -> Spec | None:
    """The layer spec of one linen Conv, Dense or DenseGeneral call (subclasses included), from the module's
    attributes and the traced shapes. A DenseGeneral that contracts the input's last axes is a Dense layer
    on those axes flattened (the same products and parameters)."""
    dtype = getattr(y, "dtype", None)
    if isinstance(module, nn.Dense):
        return Dense(tuple(x.shape), module.features, use_bias=module.use_bias, dtype=dtype)
    if isinstance(module, nn.DenseGeneral):
        return _dense_general_spec(module, x, dtype)
    if not isinstance(module, nn.Conv):
        return None
    return conv_spec(module, x, module.features, dtype)


def _dense_general_spec(module: nn.DenseGeneral, x: Any, dtype: Any) -> Dense | None:
    """The Dense spec a DenseGeneral call amounts to, or None when it has batch axes or contracts inner axes."""
    axes = (module.axis,) if isinstance(module.axis, int) else tuple(module.axis)
    contracted = sorted(axis % x.ndim for axis in axes)
    if module.batch_dims or contracted != list(range(x.ndim - len(contracted), x.ndim)):
        return None
    features = (module.features,) if isinstance(module.features, int) else tuple(module.features)
    inputs = (*x.shape[:-len(contracted)], math.prod(x.shape[-len(contracted):]))
    return Dense(inputs, math.prod(features), use_bias=module.use_bias, dtype=dtype)


def _first_array(value: Any) -> Any:
    """The first array (or abstract array) in ``value``: what a module's shapes and dtypes are read from."""
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(value) if hasattr(leaf, "shape") and hasattr(leaf, "dtype")]
    return leaves[0] if leaves else None


def _call(path: tuple[str, ...], module_type: str, spec: Spec | None, x: Any, y: Any, macs: int = 0) -> Call:
    return Call(path, module_type, spec, tuple(x.shape) if x is not None else None,
                tuple(y.shape) if y is not None else None, str(x.dtype) if x is not None else "",
                str(y.dtype) if y is not None else "", macs)


def _attention_macs(module: nn.MultiHeadDotProductAttention, x: Any, args: tuple, kwargs: dict) -> int:
    """The multiply-adds of one attention call's two products, from its heads and its query and key lengths."""
    keys = args[1] if len(args) > 1 and args[1] is not None else kwargs.get("inputs_k", kwargs.get("inputs_kv"))
    keys = x if keys is None else keys
    features = module.qkv_features or x.shape[-1]
    return attention_macs(math.prod(x.shape[:-2]), module.num_heads, x.shape[-2], keys.shape[-2],
                          features // module.num_heads)


def _lifted(module: nn.Module) -> bool:
    """Whether the module runs inside a lifted transform (``nn.scan``, ``nn.vmap``, ``nn.remat``, ...): there
    flax traces it more than once and a scan runs it many times, so its traced calls do not count its passes.
    Such modules get the compiler's figures (loops times their trip counts), not the analytic ones."""
    while module.path:  # up to the model itself, whose parent is its scope
        if not isinstance(module.parent, nn.Module):
            return True
        module = module.parent
    return False


class _Recorder:
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
        self.calls.append(None)
        out = next_fun(*args, **kwargs)
        module = context.module
        x, y = _first_array(args[:1]), _first_array(out)
        spec, macs = None, 0
        if x is not None and not _lifted(module):
            try:
                spec = spec_of_call(module, x, y)
            except ValueError:
                spec = None  # a layer jaxcost has no spec for: its compiler figures still count
            if isinstance(module, nn.MultiHeadDotProductAttention):
                macs = _attention_macs(module, x, args, kwargs)
            elif isinstance(module, nn.Einsum) and module.einsum_str:
                try:
                    macs = einsum_macs(module.einsum_str, tuple(x.shape), tuple(module.shape))
                except ValueError:
                    macs = 0  # an equation the formula does not cover: the compiler's figures still count
        self.calls[index] = _call(tuple(module.path), type(module).__name__, spec, x, y, macs)
        return out

    def _attend(self, next_fun: Callable, args: tuple, kwargs: dict, module: nn.Embed) -> Any:
        """``Embed.attend``: a product with the embedding table (tied logits), one multiply-add per query
        element and table row."""
        out = next_fun(*args, **kwargs)
        x, y = _first_array(args[:1]), _first_array(out)
        macs = math.prod(x.shape) * module.num_embeddings if x is not None else 0
        self.calls.append(_call(tuple(module.path), type(module).__name__, None, x, y, macs))
        return out


def _abstract_variables(model: nn.Module, inputs: tuple, kwargs: dict, keys: dict) -> Any:
    """The model's variables as ``jax.ShapeDtypeStruct`` s: initialised abstractly, nothing allocated."""
    return jax.eval_shape(lambda *xs: model.init({"params": jax.random.PRNGKey(0), **keys}, *xs, **kwargs), *inputs)


def _collections(variables: Any) -> tuple[Any, dict]:
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


def _training(apply: Callable, others: dict, kwargs: dict) -> tuple[Callable, Callable]:
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


def analyze(model: Any, *inputs: Any, variables: Any = None, mode: str = "forward", name: str = "",
            rngs: Any = None, **kwargs: Any) -> ModelReport:
    """Per-layer cost of a model from one compile of the whole model.

    ``model`` is a ``flax.linen`` Module, a ``flax.nnx`` Module or a plain JAX function of ``inputs``.
    ``inputs`` may be arrays or ``jax.ShapeDtypeStruct``; linen ``variables`` default to an abstract
    initialisation (nothing is allocated). ``kwargs`` go to the model's call (``train=True``, say);
    collections the call writes (``batch_stats``) are made mutable in both modes. ``rngs`` seeds the
    random streams a linen model draws from (``{"dropout": 0}``; keys or integer seeds).
    ``mode="train"`` costs a training step: forward, then gradients w.r.t. params and inputs.
    """
    check_mode(mode)
    if isinstance(model, (Conv, Dense)):
        raise ValueError("model: got a jaxcost layer spec; use jaxcost.compare(spec) for one layer")
    if not inputs:
        raise ValueError("inputs: analyze(model, *inputs) needs the model's inputs, as arrays or "
                         "jax.ShapeDtypeStruct(shape, dtype)")
    check_arguments(inputs, "inputs")
    start = time.perf_counter()
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
        calls, params, root, others = [], {}, "", {}
    else:
        raise ValueError(f"model: expected a flax.linen or flax.nnx Module or a function, got {describe_value(model)}")
    seconds = {"trace_and_compile": time.perf_counter() - start, "compile": compiler.seconds_compile}
    start = time.perf_counter()
    rows = build_rows(calls, compiler, root, mode, params)
    seconds["attribute"] = time.perf_counter() - start
    label = name or getattr(model, "__name__", type(model).__name__)
    return ModelReport(label, mode, rows, compiler, _count(params), seconds,
                       {name: _count(values) for name, values in others.items()})


def attribute(model: nn.Module, *inputs: Any, compiler: CompilerCost, mode: str = "forward", name: str = "",
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
        variables = _abstract_variables(model, inputs, kwargs, keys)
    params, others = _collections(variables)
    forward, _ = _training(model.apply, others, kwargs)
    recorder = _Recorder()
    with nn.intercept_methods(recorder):
        jax.eval_shape(forward, params, others, keys, *inputs)
    rows = build_rows(recorder.calls, compiler, type(model).__name__, mode, params)
    return ModelReport(name or type(model).__name__, mode, rows, compiler, _count(params),
                       collections={name: _count(values) for name, values in others.items()})


def _count(tree: Any) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))


def _pullback_step(function: Callable) -> Callable:
    """``step(output_gradient, *args) -> (y, gradients)``: forward, then the pullback w.r.t. every argument."""
    def step(output_gradient: Any, *args: Any) -> Any:
        y, pullback = jax.vjp(function, *args)
        return y, pullback(output_gradient)
    return step


def _step_arguments(function: Callable, args: tuple, mode: str) -> tuple:
    """The arguments of ``function`` itself, or of its training step (an output gradient first)."""
    if mode != "train":
        return args
    return (jax.eval_shape(function, *args), *args)


def _trace_linen(model: nn.Module, inputs: tuple, variables: Any, mode: str, kwargs: dict,
                 keys: dict) -> tuple[list[Call], CompilerCost, Any, dict]:
    if variables is None:
        variables = _abstract_variables(model, inputs, kwargs, keys)
    params, others = _collections(variables)
    recorder = _Recorder()
    with nn.intercept_methods(recorder):
        if mode == "train":
            forward, step = _training(model.apply, others, kwargs)
            output = jax.eval_shape(forward, params, others, keys, *inputs)[0]
            recorder.calls.clear()
            compiler = compile_function(step, params, others, keys, output, *inputs)
        else:
            compiler = _compile_forward(model, variables, keys, inputs, kwargs, recorder)
    return recorder.calls, compiler, params, others


def _compile_forward(model: nn.Module, variables: Any, keys: dict, inputs: tuple, kwargs: dict,
                     recorder: _Recorder) -> CompilerCost:
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


def _nnx_spec(module: Any, x: Any, y: Any) -> Spec | None:
    """The spec of an ``nnx.Conv`` or ``nnx.Linear`` call (subclasses included); None for other modules."""
    from flax import nnx

    dtype = getattr(y, "dtype", None)
    if isinstance(module, nnx.Linear):
        return Dense(tuple(x.shape), module.out_features, use_bias=module.use_bias, dtype=dtype)
    if isinstance(module, nnx.Conv):
        return conv_spec(module, x, module.out_features, dtype)
    return None


def _defining_class(cls: type) -> type | None:
    """The class in ``cls``'s MRO that defines ``__call__`` (None for a module without one)."""
    return next((base for base in cls.__mro__ if "__call__" in vars(base)), None)


#: Where each nnx module of a model being traced keeps its path (removed after the trace).
PATH_ATTRIBUTE = "_jaxcost_path"


def _trace_nnx(model: Any, inputs: tuple, mode: str, kwargs: dict) -> tuple[list[Call], CompilerCost, Any]:
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
            calls.append(None)
            active.add(id(self))
            try:
                with jax.named_scope("/".join(path) or type(self).__name__):
                    y = original(self, *args, **call_kwargs)
            finally:
                active.discard(id(self))
            x, out = _first_array(args[:1]), _first_array(y)
            try:  # a copy made by a transform (nnx.scan, nnx.vmap, nnx.remat) runs an unknown number of times
                spec = _nnx_spec(self, x, out) if x is not None and id(self) in direct else None
            except ValueError:
                spec = None
            calls[index] = _call(path, type(self).__name__, spec, x, out)
            return y
        return call

    try:
        for module, path in modules:  # static data: it travels with every copy nnx makes (merges, transforms)
            setattr(module, PATH_ATTRIBUTE, path)
        graphdef, state = nnx.split(model)

        def forward(state: Any, *xs: Any) -> Any:
            merged = nnx.merge(graphdef, state)
            direct.update(id(module) for _, module in nnx.iter_graph(merged) if isinstance(module, nnx.Module))
            return merged(*xs, **kwargs)

        for cls in originals:
            cls.__call__ = recording(originals[cls])
        arguments = _step_arguments(forward, (state, *inputs), mode)
        calls.clear()
        compiler = compile_function(_pullback_step(forward) if mode == "train" else forward, *arguments)
    finally:
        for cls, original in originals.items():
            cls.__call__ = original
        for module, _ in modules:
            if PATH_ATTRIBUTE in vars(module):
                delattr(module, PATH_ATTRIBUTE)
    return calls, compiler, nnx.state(model, nnx.Param)
