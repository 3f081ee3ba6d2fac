"""Sharded programs for the mesh tests, run in a process of their own with 8 simulated CPU devices
(``python tests/mesh_programs.py NAME ...`` prints one JSON object: each program's figures by name).
The tests hold them against hand calculations."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jaxcost as jc  # noqa: E402
from jaxcost.mesh.roofline import versus_roofline  # noqa: E402
from jaxcost.models import build  # noqa: E402
from jaxcost.models.analysis import analyze  # noqa: E402
from jaxcost.models.sharding import make_mesh  # noqa: E402
from jaxcost.models.transformer import Mlp  # noqa: E402


def _products(compiler) -> dict[str, int]:
    return {role: sum(op.cost.flops_by_opcode.get(role, 0) for op in compiler.recount.ops)
            for role in ("convolution", "dot")}


def _collectives(compiler) -> list[dict]:
    return [{"kind": c.kind, "group_size": c.group_size, "groups": len(c.groups), "payload_bytes": c.payload_bytes,
             "wire_bytes": c.wire_bytes, "count": c.count, "op_name": c.op_name} for c in compiler.collectives]


def _program(compiler) -> dict:
    return {"devices": compiler.devices, "flops": compiler.flops, "products": _products(compiler),
            "collectives": _collectives(compiler),
            "reproduced": all(compiler.xla_reproduced(key) for key in ("flops", "transcendentals", "bytes_accessed"))}


def data_parallel_resnet() -> dict:
    """ResNet-50's training step, batch 16 at 32x32, on one device and split over data=8 (two images each: with
    one, the classifier's weight gradient is an outer product, which the compiler computes as a multiply)."""
    model, x = build("resnet50"), jax.ShapeDtypeStruct((16, 32, 32, 3), jnp.float32)
    single = analyze(model, x, mode="train")
    sharded = analyze(model, x, mode="train", mesh={"data": 8})
    return {"single": _program(single.compiler), "sharded": _program(sharded.compiler),
            "params_bytes": sum(row.params_bytes for row in sharded.rows), "params": sharded.params}


def tensor_parallel_mlp() -> dict:
    """A Transformer MLP (64 -> 256 -> 64) on 8 tokens, Megatron-style over model=4, forward and training."""
    x = jax.ShapeDtypeStruct((8, 64), jnp.float32)
    result = {}
    for mode in ("forward", "train"):
        single = analyze(Mlp(256), x, mode=mode)
        sharded = analyze(Mlp(256), x, mode=mode, mesh={"model": 4})
        result[mode] = {"single": _program(single.compiler), "sharded": _program(sharded.compiler)}
    return result


class Layer(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(128, use_bias=False)(x)


def fully_sharded_layer() -> dict:
    """A Dense layer (64 -> 128, no bias) with its kernel sharded over fsdp=4, a batch of 256 (so that the
    compiler gathers the kernel, 32 kB, rather than the inputs, 64 kB)."""
    x = jax.ShapeDtypeStruct((256, 64), jnp.float32)
    return {mode: _program(analyze(Layer(), x, mode=mode, mesh={"fsdp": 4}).compiler) for mode in ("forward", "train")}


def _shard_map(function, mesh, in_specs, out_specs):
    from jax import shard_map

    return shard_map(function, mesh=mesh, in_specs=in_specs, out_specs=out_specs)


def collective_in_a_scan() -> dict:
    """A psum over 4 devices inside a 12-step scan."""
    mesh = make_mesh({"data": 4, "model": 2})

    def steps(x):
        def body(carry, _):
            return jax.lax.psum(carry, "data") / 4 + carry, None
        return jax.lax.scan(body, x, None, length=12)[0]

    x = jax.ShapeDtypeStruct((16, 64), jnp.float32)
    return _program(jc.compiled(jax.jit(_shard_map(steps, mesh, P("data", "model"), P("data", "model"))), x))


SHARD_MAPS = {
    "psum": (lambda x: jax.lax.psum(x, "data"), P("data", "model"), P(None, "model")),
    "all_gather": (lambda x: jax.lax.all_gather(x, "model", tiled=True), P("data", "model"), P("data", "model")),
    "psum_scatter": (lambda x: jax.lax.psum_scatter(x, "data", tiled=True), P(None, "model"), P("data", "model")),
    # roofline's all_to_all rule reads the axis names as a tuple (a bare string fails in it)
    "all_to_all": (lambda x: jax.lax.all_to_all(x, ("data",), 0, 0, tiled=True), P("data", "model"),
                   P("data", "model")),
    "ppermute": (lambda x: jax.lax.ppermute(x, "data", [(i, (i + 1) % 4) for i in range(4)]), P("data", "model"),
                 P("data", "model")),
    "ppermute_far": (lambda x: jax.lax.ppermute(x, "data", [(i, (i + 2) % 4) for i in range(4)]), P("data", "model"),
                     P("data", "model")),
    "psum_in_loop": (lambda x: jax.lax.fori_loop(0, 5, lambda i, c: jax.lax.psum(c, "data") / 4 + c, x),
                     P("data", "model"), P("data", "model")),
    "psum_two_axes": (lambda x: jax.lax.psum(x, ("data", "model")), P("data", "model"), P(None, None)),
    "pmax": (lambda x: jax.lax.pmax(x, "data"), P("data", "model"), P(None, "model")),
    "psum_in_a_branch": (lambda x: jax.lax.cond(x.sum() > 0, lambda v: jax.lax.psum(v, "data") / 4 + v,
                                                lambda v: v * 2, x), P("data", "model"), P("data", "model")),
}


def shard_maps() -> dict:
    """shard_map programs on a data=4 x model=2 mesh: jaxcost's collectives, and jax.experimental.roofline's
    ici_bytes for the same function."""
    from jax.experimental import roofline

    mesh = make_mesh({"data": 4, "model": 2})
    x = jax.ShapeDtypeStruct((16, 64), jnp.float32)
    result = {}
    for name, (function, in_specs, out_specs) in SHARD_MAPS.items():
        compiler = jc.compiled(jax.jit(_shard_map(function, mesh, in_specs, out_specs)), x)
        _, estimate = roofline.roofline(function, mesh=mesh, in_specs=in_specs, out_specs=out_specs)(x)
        comparison = versus_roofline(compiler.collectives, dict(mesh.shape), estimate.ici_bytes)
        result[name] = {**_program(compiler), "roofline_ici_bytes": dict(estimate.ici_bytes),
                        "reproduced_ici_bytes": comparison.reproduced_ici_bytes,
                        "roofline_reproduced": comparison.reproduced, "text": str(comparison),
                        "items": [(item.roofline_bytes, item.jaxcost_bytes, item.reason) for item in comparison.items]}
    return result


def mesh_errors() -> dict:
    """The one-line errors for meshes analyze() cannot use."""
    errors = {}
    for name, mesh in {"unknown": {"foo": 2}, "zero": {"data": 0}, "float": {"data": 2.0}, "text": "data=2",
                       "nothing_split": {"model": 4}}.items():
        try:
            analyze(Layer(), jax.ShapeDtypeStruct((8, 64), jnp.float32), mesh=mesh)
            errors[name] = ""
        except ValueError as error:
            errors[name] = str(error)
    return errors


def compare_sharded() -> dict:
    """compare() on a program auto-sharded over data=4 x model=2, and the error for a shape that does not divide."""
    from jax.sharding import NamedSharding

    mesh = make_mesh({"data": 4, "model": 2})
    w = jax.ShapeDtypeStruct((64, 30), jnp.float32, sharding=NamedSharding(mesh, P("model", None)))
    function = jax.jit(lambda x, w: jnp.tanh(x @ w))
    x = jax.ShapeDtypeStruct((12, 64), jnp.float32, sharding=NamedSharding(mesh, P("data", "model")))
    comparison = jc.compare(function, x, w)
    try:
        jc.compiled(function, jax.ShapeDtypeStruct((10, 64), jnp.float32, sharding=x.sharding), w)
        error = ""
    except ValueError as raised:
        error = str(raised)
    return {"analytic": comparison.analytic_flops, "recount": comparison.compiler.flops,
            "deltas": [(delta.kind, delta.flops) for delta in comparison.deltas],
            "verdict": comparison.verdict, "error": error}


PROGRAMS = {function.__name__: function for function in (data_parallel_resnet, tensor_parallel_mlp,
                                                           fully_sharded_layer, collective_in_a_scan, shard_maps,
                                                           compare_sharded, mesh_errors)}


def _imbalance(sharded, single, mesh, outputs=()) -> dict:
    """The figures of jaxcost.mesh.imbalance as JSON: every tensor and row, and the totals they are held against."""
    from jaxcost.mesh.imbalance import imbalance

    result = imbalance(sharded, single, mesh, outputs)
    tensors = {tensor.name: {"shape": list(tensor.shape), "spec": str(tensor.spec), "held": tensor.held,
                             "bytes": tensor.bytes, "bytes_per_device": tensor.bytes_per_device,
                             "added_bytes": tensor.added_bytes, "padding_bytes": tensor.padding_bytes}
               for tensor in result.arguments + result.outputs}
    rows = {row.path: {"flops_per_device": row.flops_per_device, "single_flops": row.single_flops,
                       "added_flops": row.added_flops, "collective_flops_per_device": row.collective_flops_per_device}
            for row in result.rows}
    return {"devices": result.devices, "flops": sharded.compiler.flops, "single_flops": single.compiler.flops,
            "added_flops": result.added_flops, "argument_bytes_per_device": result.argument_bytes_per_device,
            "params_bytes": sum(row.params_bytes for row in single.rows),
            "arguments": [tensor.name for tensor in result.arguments], "tensors": tensors, "rows": rows,
            "text": str(result)}


def imbalance_tied_logits() -> dict:
    """A tiny GPT-2 (vocabulary 100, width 32, one block of 4 heads, 2x8 tokens) forward over model=4: its logits
    come from the token embedding, which the mesh does not split."""
    from jaxcost.mesh.imbalance import module_outputs
    from jaxcost.models.transformer import GPT2

    model = GPT2(vocabulary=100, context=16, width=32, depth=1, heads=4)
    tokens = jax.ShapeDtypeStruct((2, 8), jnp.int32)
    return _imbalance(analyze(model, tokens, mesh={"model": 4}), analyze(model, tokens), {"model": 4},
                      module_outputs(model, tokens, mesh={"model": 4}))


def imbalance_data_parallel() -> dict:
    """A Transformer MLP (32 -> 64 -> 32) training on a batch of 4 over data=2: every parameter on both devices."""
    x = jax.ShapeDtypeStruct((4, 32), jnp.float32)
    return _imbalance(analyze(Mlp(64), x, mode="train", mesh={"data": 2}), analyze(Mlp(64), x, mode="train"),
                      {"data": 2})


class Narrow(nn.Module):
    """The first 30 columns of its input, kept split over model=4 (30 does not divide by 4: the compiler pads the
    last tile)."""

    @nn.compact
    def __call__(self, y):
        from jax.sharding import NamedSharding

        return jax.lax.with_sharding_constraint(y[:, :30], NamedSharding(make_mesh({"model": 4}), P(None, "model")))


class Narrowed(nn.Module):
    """fc1 (16 -> 128, split by columns over model=4), Narrow, then fc2 back to 16."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(16, name="fc2")(Narrow(name="narrow")(nn.Dense(128, name="fc1")(x)))


def imbalance_padded() -> dict:
    """The outputs of Narrowed's modules on 8 rows over model=4."""
    from jaxcost.mesh.imbalance import module_outputs

    outputs = module_outputs(Narrowed(), jax.ShapeDtypeStruct((8, 16), jnp.float32), mesh={"model": 4})
    return {tensor.name: {"shape": list(tensor.shape), "spec": str(tensor.spec), "held": tensor.held,
                          "shard_shape": list(tensor.shard_shape), "bytes_per_device": tensor.bytes_per_device,
                          "added_bytes": tensor.added_bytes, "padding_bytes": tensor.padding_bytes}
            for tensor in outputs}


PROGRAMS.update({function.__name__: function for function in (imbalance_tied_logits, imbalance_data_parallel,
                                                              imbalance_padded)})

if __name__ == "__main__":
    print(json.dumps({name: PROGRAMS[name]() for name in sys.argv[1:]}))
