"""Load imbalance of a sharded model (jaxcost.mesh.imbalance), against hand calculations: tensors replicated, split
evenly, partly replicated or padded, with the bytes each adds over an even split; rows whose work every device
repeats, adding up to what the sharding adds; the tables under the command line's total. The sharded programs run
in a process of their own with 8 simulated CPU devices (tests/mesh_programs.py)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jax.sharding import PartitionSpec

from jaxcost.mesh.imbalance import Tensor, argument_tensors
from jaxcost.models.analysis import program_report

PROGRAMS = Path(__file__).with_name("mesh_programs.py")
F32 = 4


@pytest.fixture(scope="module")
def programs():
    environment = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    names = ["imbalance_tied_logits", "imbalance_data_parallel", "imbalance_padded"]
    result = subprocess.run([sys.executable, str(PROGRAMS), *names], capture_output=True, text=True, timeout=300,
                            env=environment, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_tied_logits_are_computed_whole_on_every_device(programs):
    """GPT-2's logits come from the token embedding (100 x 32), which model=4 does not split: each device holds
    it whole (12,800 B, three copies more than an even split) and computes every logit (2x8 tokens x 100 x 32 MACs),
    so the tokens row adds three times its work on one device; the logits (2x8x100 float32) are on every device."""
    tied = programs["imbalance_tied_logits"]
    embedding = tied["tensors"]["params/tokens/embedding"]
    assert (embedding["shape"], embedding["spec"], embedding["held"]) == ([100, 32], "P()", "replicated")
    assert embedding["bytes_per_device"] == 100 * 32 * F32 and embedding["added_bytes"] == 3 * 100 * 32 * F32
    logits = tied["tensors"]["tokens.attend"]
    assert (logits["held"], logits["bytes_per_device"], logits["added_bytes"]) == (
        "replicated", 2 * 8 * 100 * F32, 3 * 2 * 8 * 100 * F32)
    tokens = tied["rows"]["tokens"]
    assert tokens["flops_per_device"] == tokens["single_flops"] >= 2 * 2 * 8 * 100 * 32
    assert tokens["added_flops"] == 3 * tokens["single_flops"]


def test_split_layers_add_nothing_and_the_rows_add_up_to_what_sharding_adds(programs):
    """fc1 (32 -> 128) split by columns over model=4: a quarter of its kernel and of its output on each device, and
    exactly a quarter of its 2·16·32·128 + 16·128 FLOPs. fc2 all-reduces its 2x8x32 output: 512 FLOPs a device.
    Every row's FLOPs per device x 4 less one device's add up to the whole program's, exactly."""
    tied = programs["imbalance_tied_logits"]
    kernel, output = tied["tensors"]["params/block0/mlp/fc1/kernel"], tied["tensors"]["block0/mlp/fc1"]
    assert (kernel["spec"], kernel["held"], kernel["bytes_per_device"], kernel["added_bytes"]) == (
        "P(None, 'model')", "split evenly", 32 * 128 * F32 // 4, 0)
    assert (output["spec"], output["bytes_per_device"], output["added_bytes"]) == (
        "P(None, None, 'model')", 2 * 8 * 128 * F32 // 4, 0)
    fc1 = tied["rows"]["block0/mlp/fc1"]
    assert fc1["single_flops"] == 2 * 16 * 32 * 128 + 16 * 128 == 4 * fc1["flops_per_device"]
    assert fc1["added_flops"] == 0
    assert tied["rows"]["block0/mlp/fc2"]["collective_flops_per_device"] == 2 * 8 * 32
    for program in (tied, programs["imbalance_data_parallel"]):
        assert program["added_flops"] == program["devices"] * program["flops"] - program["single_flops"]
        assert sum(row["added_flops"] for row in program["rows"].values()) == program["added_flops"]
    assert f"the rows add up to {tied['added_flops']:+,} FLOPs" in tied["text"]


def test_data_parallel_holds_every_parameter_on_every_device(programs):
    """An MLP (32 -> 64 -> 32) training on 4 rows over data=2: each device holds all 4,192 parameters (16,768 B)
    and half the inputs and output gradient; the gradients are all-reduced, one FLOP per parameter. Each device sums
    2 rows of the bias gradients where one device sums 4: one add fewer per bias over both (64 and 32)."""
    parallel = programs["imbalance_data_parallel"]
    params = [parallel["tensors"][name] for name in parallel["arguments"] if name.startswith("params/")]
    assert len(params) == 4 and all(tensor["held"] == "replicated" for tensor in params)
    params_bytes = (32 * 64 + 64 + 64 * 32 + 32) * F32
    assert sum(tensor["bytes_per_device"] for tensor in params) == parallel["params_bytes"] == params_bytes
    assert sum(tensor["added_bytes"] for tensor in params) == params_bytes
    for name in ("inputs/0", "output_gradient"):
        assert parallel["tensors"][name]["spec"] == "P('data',)"
        assert parallel["tensors"][name]["bytes_per_device"] == 2 * 32 * F32
    assert parallel["argument_bytes_per_device"] == params_bytes + 2 * 2 * 32 * F32
    assert sum(row["collective_flops_per_device"] for row in parallel["rows"].values()) == params_bytes // F32
    assert (parallel["rows"]["fc1"]["added_flops"], parallel["rows"]["fc2"]["added_flops"]) == (-64, -32)


def test_an_output_split_where_it_does_not_divide_is_padded(programs):
    """30 columns split over model=4 are tiles of 8 (the last holds 6 and 2 of padding): 8 rows x 8 float32 = 256 B
    a device, 4 x 256 - 960 = 64 B of padding over the four."""
    narrow = programs["imbalance_padded"]["narrow"]
    assert (narrow["shape"], narrow["spec"], narrow["held"], narrow["shard_shape"]) == (
        [8, 30], "P(None, 'model')", "padded", [8, 8])
    assert narrow["bytes_per_device"] == 8 * 8 * F32
    assert narrow["added_bytes"] == narrow["padding_bytes"] == 4 * 8 * 8 * F32 - 8 * 30 * F32
    assert programs["imbalance_padded"]["fc1"]["held"] == "split evenly"


def test_copies_and_padding_make_up_what_a_tensor_adds():
    """10x6 float32 split 4 ways along its first axis on 8 devices: tiles of 3 rows (the last padded by 2), each
    held twice. Over the 8 devices: 8 x 72 - 240 = 336 B, 240 of copies and 2 x (4 x 72 - 240) = 96 of padding."""
    tensor = Tensor("x", (10, 6), "float32", PartitionSpec("model"), (4, 1), 8, F32)
    assert (tensor.shard_shape, tensor.bytes, tensor.bytes_per_device, tensor.copies) == ((3, 6), 240, 72, 2)
    assert (tensor.padding_bytes, tensor.added_bytes, tensor.held) == (96, 336, "padded")
    assert tensor.even_bytes_per_device == 30.0
    assert Tensor("y", (8, 6), "float32", PartitionSpec("model"), (4, 1), 8, F32).held == "partly replicated"
    assert Tensor("z", (8, 6), "float32", PartitionSpec("model"), (8, 1), 8, F32).held == "split evenly"


SHARDED_ARGUMENTS = r"""HloModule arguments, num_partitions=8

ENTRY main {
  w = f32[32,1,8]{2,1,0} parameter(0), sharding={devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}, metadata={op_name="params[\'attention\'][\'query\'][\'kernel\']"}
  x = s32[1,8]{1,0} parameter(1), sharding={devices=[2,1,4]<=[8] last_tile_dim_replicate}, metadata={op_name="inputs[0]"}
  e = f32[100,32]{1,0} parameter(2), sharding={replicated}, metadata={op_name="v[\'params\'][\'tokens\'][\'embedding\']"}
  k = f32[4,8]{1,0} parameter(3), sharding={devices=[4,2]0,4,1,5,2,6,3,7}, metadata={op_name="v[\'params\'][\'k\']"}
  ROOT t = (f32[32,1,8]{2,1,0}, s32[1,8]{1,0}, f32[100,32]{1,0}, f32[4,8]{1,0}) tuple(w, x, e, k)
}
"""  # noqa: E501


def test_arguments_of_a_compiled_program_by_their_shardings():
    """On data=2 x model=4 (device d at data d // 4, model d % 4): the iota and listed tile assignments of XLA's
    text, read back as the mesh axes along which each dimension's tiles lie; the whole shape is the shard's times
    its tiles; an argument of collections (``v``) is named by the collection."""
    compiler = program_report(SHARDED_ARGUMENTS).compiler
    found = {tensor.name: tensor for tensor in argument_tensors(compiler, {"data": 2, "model": 4})}
    assert list(found) == ["params/attention/query/kernel", "inputs/0", "params/tokens/embedding", "params/k"]
    query = found["params/attention/query/kernel"]
    assert (query.shape, query.spec, query.copies, query.held) == ((32, 4, 8), PartitionSpec(None, "model"), 2,
                                                                  "partly replicated")
    assert (query.bytes_per_device, query.added_bytes) == (32 * 8 * F32, 8 * 32 * 8 * F32 - 32 * 4 * 8 * F32)
    tokens = found["inputs/0"]
    assert (tokens.shape, tokens.spec, tokens.dtype, tokens.copies) == ((2, 8), PartitionSpec("data"), "int32", 4)
    assert found["params/tokens/embedding"].spec == PartitionSpec() and found["params/tokens/embedding"].devices == 8
    assert (found["params/k"].shape, found["params/k"].spec) == ((16, 16), PartitionSpec("model", "data"))


MLP_MODEL = """
import flax.linen as nn


class Mlp(nn.Module):
    @nn.compact
    def __call__(self, x):
        y = nn.Dense(32, name="fc1")(x)
        y = nn.Dense(16, name="fc2")(nn.relu(y))
        return nn.Dense(8, name="head")(y)
"""


def test_the_command_line_breaks_down_what_sharding_adds(tmp_path):
    """fc1 and fc2 split over model=2, the head not: each device holds the head's 16x8 kernel whole and computes
    all of its 2·4·16·8 + 4·8 FLOPs; fc2 all-reduces its 4x16 output and both devices add its bias to it
    (64 + 2 x 64 FLOPs more); the rows add up to the total the command line prints above them."""
    (tmp_path / "mlp.py").write_text(MLP_MODEL)
    environment = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-m", "jaxcost.cli", "model", f"{tmp_path / 'mlp.py'}:Mlp", "--input",
                             "4,16", "--mesh", "model=2"], capture_output=True, text=True, timeout=300,
                            env=environment, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert "bytes a device holds beyond an even split over 2 devices, tensor by tensor:" in result.stdout
    assert lines["params/head/kernel"][1:] == ["float32[16,8]", "P()", "replicated", "512", "B", "256", "B", "+256",
                                               "B"]
    assert lines["params/fc1/kernel"][2:5] == ["P(None,", "'model')", "split"]
    head_flops = 2 * 4 * 16 * 8 + 4 * 8
    assert lines["head"][:4] == ["head", f"{head_flops:,}", f"{head_flops:,}", f"+{head_flops:,}"]
    assert lines["fc2"][3:5] == [f"+{4 * 16 + 2 * 4 * 16}", f"{2 * 4 * 16}"]
    total = re.search(r"sharding adds ([+-][\d,]+)", result.stdout).group(1)
    assert total == f"+{head_flops + 4 * 16 + 2 * 4 * 16:,}"
    assert f"the rows add up to {total} FLOPs, all the sharding adds" in result.stdout
