"""Whole models, layer by layer: one compile of the whole model, attributed to layers through HLO metadata.

Layer specs come from intercepting the model's own module calls while it is traced for lowering
(nothing is re-implemented). The compiled program is recounted op by op; every flop of every
instruction (fused ones included) is attributed to the module path in its ``op_name`` metadata,
and every byte to the path of the top-level instruction that moves it. Conv and Dense layers get
a row each; everything else is gathered into rows by kind (normalization, activation, pooling,
adds, ...). The rows add up to the whole program's recount exactly, which on the CPU is XLA's own
total.
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

from jaxcost.compiler import CompilerCost, check_arguments, compile_function
from jaxcost.formulas import analytic, check_mode
from jaxcost.hlo.rules import OpRecord
from jaxcost.reports.model import render, summary
from jaxcost.specs import Conv, Dense, Spec, describe_value

_WRAPPER = re.compile(r"^[\w.-]+\((.*)\)$")
_JIT = re.compile(r"^p?jit\(.*\)$")
_NORMALIZATION = ("BatchNorm", "LayerNorm", "GroupNorm", "RMSNorm", "InstanceNorm")
_PRIMITIVE_KINDS = (
    (("reduce_window", "max_pool", "avg_pool", "cumsum", "cummax"), "pooling"),
    (("reduce_sum", "reduce_max", "reduce_min", "mean", "div"), "reduction"),
    (("max", "min", "clamp", "select_n", "gt", "lt", "ge", "le", "eq", "ne", "logistic", "tanh", "exp", "erf",
      "sign"), "activation"),
    (("add", "add_any", "sub"), "add"),
    (("convert_element_type",), "convert"),
    (("conv_general_dilated",), "convolution (no Conv module)"),
    (("dot_general",), "dot (no Dense module)"),
)


@dataclass
class Row:
    """One row of a model report: a Conv/Dense layer (``spec`` set) or everything of one other kind."""

    path: str
    kind: str
    calls: int = 0
    spec: Spec | None = None
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    params: int = 0
    macs: int = 0
    flops: int = 0
    textbook_macs: int = 0
    bytes_accessed: int = 0
    compiler_flops: int = 0
    compiler_bytes: int = 0
    share: float = 0.0

    def __repr__(self) -> str:
        return (f"Row({self.path!r}, kind={self.kind!r}, params={self.params:,}, flops={self.flops:,}, "
                f"compiler_flops={self.compiler_flops:,}, compiler_bytes={self.compiler_bytes:,})")

    @property
    def is_layer(self) -> bool:
        return self.spec is not None

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes_accessed if self.bytes_accessed else 0.0

    def as_dict(self) -> dict[str, Any]:
        names = ("path", "kind", "calls", "input_shape", "output_shape", "params", "macs", "flops", "textbook_macs",
                 "bytes_accessed", "intensity", "compiler_flops", "compiler_bytes", "share")
        return {name: getattr(self, name) for name in names}


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
        return [row for row in self.rows if row.is_layer]

    @property
    def macs(self) -> int:
        return sum(row.macs for row in self.layers)

    @property
    def textbook_macs(self) -> int:
        return sum(row.textbook_macs for row in self.layers)

    @property
    def flops(self) -> int:
        """Analytic flops of the Conv/Dense layers."""
        return sum(row.flops for row in self.layers)

    @property
    def compiler_flops(self) -> int:
        """The whole program's recount: the rows' compiler flops add up to it exactly."""
        return self.compiler.flops

    @property
    def compiler_bytes(self) -> int:
        return self.compiler.bytes_accessed


@dataclass
class _Call:
    path: tuple[str, ...]
    module_type: str
    spec: Spec | None
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None


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
    """The layer spec of one linen Conv/Dense call, from the module's attributes and the traced shapes."""
    dtype = getattr(y, "dtype", None)
    if type(module) is nn.Dense:
        return Dense(tuple(x.shape), module.features, use_bias=module.use_bias, dtype=dtype)
    if type(module) is not nn.Conv:
        return None
    return conv_spec(module, x, module.features, dtype)


class _Recorder:
    """Intercepts module calls while the model is traced: every module's path and type, Conv/Dense specs."""

    def __init__(self) -> None:
        self.calls: list[_Call] = []

    def __call__(self, next_fun: Callable, args: tuple, kwargs: dict, context: Any) -> Any:
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__":
            module = context.module
            x = args[0] if args else None
            spec = None
            if type(module) in (nn.Conv, nn.Dense) and hasattr(x, "shape"):
                try:
                    spec = spec_of_call(module, x, out)
                except ValueError:
                    spec = None  # a layer jaxcost has no spec for: its compiler figures still count
            self.calls.append(_Call(tuple(module.path), type(module).__name__, spec,
                                    tuple(getattr(x, "shape", ())) or None, tuple(getattr(out, "shape", ())) or None))
        return out


def _kind_of_primitive(primitive: str) -> str:
    for names, kind in _PRIMITIVE_KINDS:
        if primitive in names:
            return kind
    return "other"


class _Attribution:
    """Maps an op_name to a row key: a Conv/Dense path, or a kind for everything else."""

    def __init__(self, calls: list[_Call], root: str) -> None:
        self.root = root
        self.types = {call.path: call.module_type for call in calls}
        self.layers = {call.path for call in calls if call.spec is not None}
        self.layer_keys = {"/".join(path) for path in self.layers}

    def row_key(self, op_name: str) -> str:
        if not op_name or "/" not in op_name:
            return "layout and copies"
        path, primitive = self._split(op_name)
        return self.module_key(path) or _kind_of_primitive(primitive)

    def module_key(self, path: tuple[str, ...]) -> str | None:
        """The row of what the module at ``path`` (or the innermost module around it that has one) does."""
        for length in range(len(path), 0, -1):
            prefix = path[:length]
            if prefix in self.layers:
                return "/".join(prefix)
            module_type = self.types.get(prefix)
            if module_type in _NORMALIZATION:
                return "normalization"
            if module_type in ("Dropout",):
                return "dropout"
            if module_type in ("Conv", "Dense", "ConvTranspose", "Embed"):
                return module_type.lower()
        return None

    def _split(self, op_name: str) -> tuple[tuple[str, ...], str]:
        """Module path and primitive of an op_name: nested ``jit(...)`` scopes (``jit(main)`` in older JAX,
        ``jit(relu)``) are dropped, transform wrappers (``transpose(jvp(Net))``) unwrapped, the root removed."""
        parts = op_name.split("/")
        primitive = parts[-1]
        inner = []
        for part in parts[:-1]:
            if _JIT.match(part):
                continue
            match = _WRAPPER.match(part)
            while match:
                part = match.group(1)
                match = _WRAPPER.match(part)
            inner.append(part)
        if inner and inner[0] == self.root:
            inner = inner[1:]
        return tuple(p for p in inner if "(" not in p), primitive


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


def _updated_collections(model: nn.Module, variables: Any, keys: dict, inputs: tuple, kwargs: dict) -> list[str]:
    """The collections a forward call writes (``batch_stats`` with ``train=True``, say): flax refuses to
    write them unless they are declared mutable, and a model that writes none is left as it is."""
    from flax.errors import ModifyScopeVariableError

    others = [name for name in variables if name != "params"]
    if not others:
        return []
    try:
        jax.eval_shape(lambda v, k, *xs: model.apply(v, *xs, rngs=k or None, **kwargs), variables, keys, *inputs)
    except ModifyScopeVariableError:
        return others
    return []


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
        calls, compiler, params = _trace_nnx(model, inputs, mode, kwargs)
        root, others = "", {}
    elif callable(model):
        function = (lambda *xs: model(*xs, **kwargs)) if kwargs else model
        compiler = compile_function(_pullback_step(function) if mode == "train" else function,
                                    *_step_arguments(function, inputs, mode))
        calls, params, root, others = [], {}, "", {}
    else:
        raise ValueError(f"model: expected a flax.linen or flax.nnx Module or a function, got {describe_value(model)}")
    seconds = {"trace_and_compile": time.perf_counter() - start, "compile": compiler.seconds_compile}
    start = time.perf_counter()
    rows = _rows(calls, compiler, root, mode, params)
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
    rows = _rows(recorder.calls, compiler, type(model).__name__, mode, params)
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
                 keys: dict) -> tuple[list[_Call], CompilerCost, Any, dict]:
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
            mutable = _updated_collections(model, variables, keys, inputs, kwargs) or False
            recorder.calls.clear()
            compiler = compile_function(
                lambda v, k, *xs: model.apply(v, *xs, rngs=k or None, mutable=mutable, **kwargs),
                variables, keys, *inputs)
    return recorder.calls, compiler, params, others


def is_nnx_module(model: Any) -> bool:
    """Whether ``model`` is a ``flax.nnx`` Module (False where flax has no nnx)."""
    try:
        from flax import nnx
    except ImportError:
        return False
    return isinstance(model, nnx.Module)


def _nnx_spec(module: Any, x: Any, y: Any) -> Spec | None:
    """The spec of an ``nnx.Conv`` or ``nnx.Linear`` call."""
    from flax import nnx

    dtype = getattr(y, "dtype", None)
    if type(module) is nnx.Linear:
        return Dense(tuple(x.shape), module.out_features, use_bias=module.use_bias, dtype=dtype)
    return conv_spec(module, x, module.out_features, dtype)


def _trace_nnx(model: Any, inputs: tuple, mode: str, kwargs: dict) -> tuple[list[_Call], CompilerCost, Any]:
    """Trace an nnx module with its Conv and Linear calls recorded and named by their path.

    nnx names no scopes itself, so each recorded call runs inside ``jax.named_scope(path)``: the
    compiled program's metadata then carries the module path, as it does for linen.
    """
    from flax import nnx

    graphdef, state = nnx.split(model)
    paths = {id(module): tuple(map(str, path)) for path, module in nnx.iter_graph(model)
             if isinstance(module, nnx.Module)}
    calls: list[_Call] = []
    originals = {cls: cls.__call__ for cls in (nnx.Conv, nnx.Linear)}

    def recording(original: Callable) -> Callable:
        def call(self: Any, x: Any, *args: Any, **call_kwargs: Any) -> Any:
            path = paths.get(id(self), ())
            with jax.named_scope("/".join(path) or type(self).__name__):
                y = original(self, x, *args, **call_kwargs)
            try:
                spec = _nnx_spec(self, x, y)
            except ValueError:
                spec = None
            calls.append(_Call(path, type(self).__name__, spec, tuple(x.shape), tuple(y.shape)))
            return y
        return call

    def forward(state: Any, *xs: Any) -> Any:
        module = nnx.merge(graphdef, state)
        paths.update({id(m): tuple(map(str, p)) for p, m in nnx.iter_graph(module) if isinstance(m, nnx.Module)})
        return module(*xs, **kwargs)

    try:
        for cls in originals:
            cls.__call__ = recording(originals[cls])
        arguments = _step_arguments(forward, (state, *inputs), mode)
        calls.clear()
        compiler = compile_function(_pullback_step(forward) if mode == "train" else forward, *arguments)
    finally:
        for cls, original in originals.items():
            cls.__call__ = original
    return calls, compiler, nnx.state(model, nnx.Param)


def _matching_layer(op: OpRecord, operand_elements: set[int], layers: list[_Call], used: Counter) -> str | None:
    """The layer a convolution or dot without metadata computes for, by the sizes it reads and writes.

    Forward, grad-input and grad-weight passes each touch both the layer's input and its output
    (as operand or result); among layers of the same sizes, the least used is taken.
    """
    touched = operand_elements | {op.instruction.shape.elements}
    candidates = ["/".join(c.path) for c in layers
                  if {math.prod(c.spec.input_shape), math.prod(c.spec.output_shape)} <= touched]
    if not candidates:
        return None
    key = min(candidates, key=lambda candidate: used[candidate])
    used[key] += 1
    return key


def _op_keys(compiler: CompilerCost, attribution: _Attribution, layers: list[_Call]) -> dict[str, str]:
    """Each top-level instruction's row: from its metadata, or, where the compiler dropped the metadata,
    from the layer whose sizes it touches (main ops) or from a neighbouring instruction's row."""
    entry = compiler.recount.module.entry
    by_name = entry.by_name()
    keys: dict[str, str] = {}
    used: Counter = Counter()
    pending = []
    for op in compiler.recount.ops:
        if op.instruction.op_name:
            keys[op.name] = attribution.row_key(op.instruction.op_name)
        elif any(role in op.cost.flops_by_opcode for role in ("convolution", "dot")):
            sizes = {by_name[name].shape.elements for name in op.instruction.operands if name in by_name}
            keys[op.name] = _matching_layer(op, sizes, layers, used) or "layout and copies"
        else:
            pending.append(op)
    for op in pending:
        neighbours = [*op.instruction.operands, *(user.name for user in op.instruction.users)]
        found = [keys[name] for name in neighbours if keys.get(name) in attribution.layer_keys]
        keys[op.name] = found[0] if found else "layout and copies"
    return keys


def _key_name(key: Any) -> str:
    """One step of a pytree path as the name it has in a module path."""
    for attribute in ("key", "name", "idx"):
        if hasattr(key, attribute):
            return str(getattr(key, attribute))
    return str(key)


def _params_by_row(params: Any, attribution: _Attribution) -> Counter:
    """Parameters counted into the rows of the modules that hold them (normalization scales and
    biases, embeddings, ...); what no recorded module holds is its own row."""
    counts: Counter = Counter()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = tuple(_key_name(key) for key in path)
        counts[attribution.module_key(names) or "parameters outside modules"] += math.prod(leaf.shape)
    return counts


def _rows(calls: list[_Call], compiler: CompilerCost, root: str, mode: str, params: Any) -> list[Row]:
    attribution = _Attribution(calls, root)
    rows: dict[str, Row] = {}
    for call in calls:
        if call.spec is None:
            continue
        key = "/".join(call.path)
        row = rows.setdefault(key, Row(key, call.spec.kind, spec=call.spec, input_shape=call.spec.input_shape,
                                       output_shape=call.spec.output_shape))
        cost = analytic(call.spec, mode)
        row.calls += 1
        row.params = cost.params
        row.macs += cost.macs
        row.flops += cost.flops
        row.textbook_macs += cost.textbook_macs
        row.bytes_accessed += cost.bytes_accessed
    op_keys = _op_keys(compiler, attribution, [call for call in calls if call.spec is not None])
    flops: Counter = Counter()
    bytes_moved: Counter = Counter()
    for op in compiler.recount.ops:
        for op_name, amount in op.cost.flops_by_source.items():
            flops[attribution.row_key(op_name) if op_name else op_keys[op.name]] += amount
        bytes_moved[op_keys[op.name]] += op.cost.bytes_accessed
    params_held = _params_by_row(params, attribution)
    for key in list(flops) + list(bytes_moved) + list(params_held):
        if key not in rows:
            rows[key] = Row(key, key, params=params_held[key])
    total = compiler.flops or 1
    for key, row in rows.items():
        row.compiler_flops = flops[key]
        row.compiler_bytes = bytes_moved[key]
        row.share = row.compiler_flops / total
    layers = [row for row in rows.values() if row.is_layer]
    others = sorted((row for row in rows.values() if not row.is_layer), key=lambda row: -row.compiler_flops)
    return layers + others
