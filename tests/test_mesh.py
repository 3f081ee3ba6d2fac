"""Sharded programs: collectives with their groups, payload and wire bytes, counted through loops; per-device
figures of data-parallel, tensor-parallel and fully sharded programs against hand calculations (8 simulated
CPU devices, in a process of their own); jax.experimental.roofline's ici_bytes reproduced and each difference
itemized; the interconnect table and the step-time model."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcost.hlo.collectives import Collective, collectives, parse_groups
from jaxcost.hlo.text import parse_module
from jaxcost.measure.hardware import lookup
from jaxcost.measure.interconnect import interconnect
from jaxcost.measure.step import StepTime
from jaxcost.mesh.axes import coordinates, spanned_axes
from jaxcost.models.sharding import parse_mesh

PROGRAMS = Path(__file__).with_name("mesh_programs.py")
RESNET50_PARAMS = 25_557_032


@pytest.fixture(scope="module")
def programs():
    """Every program of tests/mesh_programs.py, compiled once in a process with 8 CPU devices."""
    environment = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    names = ["data_parallel_resnet", "tensor_parallel_mlp", "fully_sharded_layer", "collective_in_a_scan", "shard_maps",
             "compare_sharded", "mesh_errors"]
    result = subprocess.run([sys.executable, str(PROGRAMS), *names], capture_output=True, text=True, timeout=600,
                            env=environment, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_data_parallel_resnet50_training_step(programs):
    """Batch 16 over data=8: each device convolves two images, 1/8 of the single-device convolution and dot
    flops exactly; the gradients are all-reduced over the 8 devices, their payload the parameters' bytes
    (float32), and each device sends 2·7/8 of it."""
    single, sharded = programs["data_parallel_resnet"]["single"], programs["data_parallel_resnet"]["sharded"]
    assert sharded["devices"] == 8 and single["devices"] == 1
    for role in ("convolution", "dot"):
        assert single["products"][role] == 8 * sharded["products"][role] > 0
    assert programs["data_parallel_resnet"]["params"] == RESNET50_PARAMS
    reduces = [c for c in sharded["collectives"] if c["kind"] == "all-reduce"]
    assert sum(c["payload_bytes"] for c in reduces) == 4 * RESNET50_PARAMS == programs["data_parallel_resnet"][
        "params_bytes"]
    assert all(c["group_size"] == 8 and c["count"] == 1 for c in reduces)
    assert all(c["wire_bytes"] == -(-2 * 7 * c["payload_bytes"] // 8) for c in reduces)
    assert single["reproduced"] and sharded["reproduced"]


def test_tensor_parallel_mlp(programs):
    """fc1 split by columns and fc2 by rows over model=4: a quarter of the products per device and one
    all-reduce of fc2's output (8 tokens x 64 float32 = 2,048 B) forward; in training also the input's
    gradient (the compiler combines the two into one all-reduce of 4,096 B)."""
    for mode, payload in (("forward", 8 * 64 * 4), ("train", 2 * 8 * 64 * 4)):
        single, sharded = (programs["tensor_parallel_mlp"][mode][name] for name in ("single", "sharded"))
        assert single["products"]["dot"] == 4 * sharded["products"]["dot"]
        (reduce,) = sharded["collectives"]
        assert (reduce["kind"], reduce["group_size"], reduce["payload_bytes"]) == ("all-reduce", 4, payload)
        assert reduce["wire_bytes"] == 2 * 3 * payload // 4
        assert sharded["reproduced"]


def test_fully_sharded_layer_gathers_its_parameters(programs):
    """The 64x128 float32 kernel (32,768 B) split over fsdp=4 is gathered where it is used: each device sends
    3/4 of it. Each device multiplies its 64 rows of the batch by the whole kernel. In training the gradient of
    the kernel is all-reduced (the CPU compiler leaves the all-reduce and the slice of it as written)."""
    forward, train = programs["fully_sharded_layer"]["forward"], programs["fully_sharded_layer"]["train"]
    assert forward["products"]["dot"] == 2 * 64 * 64 * 128
    (gather,) = forward["collectives"]
    assert (gather["kind"], gather["group_size"], gather["payload_bytes"], gather["wire_bytes"]) == (
        "all-gather", 4, 32_768, 24_576)
    kinds = sorted((c["kind"], c["payload_bytes"]) for c in train["collectives"])
    assert kinds == [("all-gather", 32_768), ("all-reduce", 32_768)]
    assert forward["reproduced"] and train["reproduced"]


def test_a_collective_in_a_scan_counts_every_trip(programs):
    """A psum of a (4, 32) float32 shard over 4 devices inside a 12-step scan: 12 all-reduces of 512 B, each
    device sending 2·3/4 of it every step."""
    (reduce,) = programs["collective_in_a_scan"]["collectives"]
    assert (reduce["kind"], reduce["group_size"], reduce["payload_bytes"]) == ("all-reduce", 4, 512)
    assert reduce["count"] == 12
    assert reduce["wire_bytes"] == 768
    assert programs["collective_in_a_scan"]["reproduced"]


def test_roofline_ici_bytes_reproduced_and_differences_itemized(programs):
    """On eight shard_map programs roofline's rules applied to the compiled collectives give its ici_bytes
    exactly; where jaxcost's figure differs, the item says why, and the items add up."""
    shard_maps = programs["shard_maps"]
    assert len(shard_maps) >= 5
    for name, program in shard_maps.items():
        assert program["roofline_reproduced"], (name, program["text"])
        assert program["reproduced"], name  # XLA's own totals, the all-to-all's tuple output included
    same = {name for name, program in shard_maps.items()
            if all(roofline == ours for roofline, ours, _ in program["items"])}
    assert same == {"psum", "all_gather", "psum_scatter", "ppermute"}
    ((roofline, ours, why),) = shard_maps["psum_in_loop"]["items"]
    assert (roofline, ours) == (768, 5 * 768) and "5 times by a loop" in why
    ((roofline, ours, why),) = shard_maps["all_to_all"]["items"]
    assert (roofline, ours) == (512 * 4 // 2 // 2, 3 * 512 // 4) and "bisection" in why
    ((roofline, ours, why),) = shard_maps["ppermute_far"]["items"]
    assert (roofline, ours) == (2 * 512, 512) and "share links" in why
    ((roofline, ours, why),) = shard_maps["psum_two_axes"]["items"]
    assert (roofline, ours) == (448, 2 * 7 * 512 // 8) and "phase per axis" in why
    ((roofline, ours, why),) = shard_maps["pmax"]["items"]  # roofline: one element of 4 bytes, 3 sends
    assert (roofline, ours) == (3 * 4, 2 * 3 * 512 // 4) and "one element" in why
    ((roofline, ours, why),) = shard_maps["psum_in_a_branch"]["items"]
    assert (roofline, ours) == (0, 768) and "does not look inside" in why
    (branch,) = shard_maps["psum_in_a_branch"]["collectives"]
    assert branch["count"] is None  # runs only when its branch is taken


def test_compare_explains_a_sharded_program_and_a_shape_that_does_not_divide_is_one_line(programs):
    """The program as written is the whole (12x64 @ 64x30: 46,080 flops); each of the 8 devices does 1/8 of the
    product, and its all-reduce adds one flop per element of the reduced 3x30 shard."""
    compared = programs["compare_sharded"]
    assert compared["analytic"] == 2 * 12 * 64 * 30
    assert compared["deltas"][0] == ["sharding", 2 * 12 * 64 * 30 // 8 - 2 * 12 * 64 * 30]
    assert ["elementwise", 3 * 30] in compared["deltas"] and compared["verdict"] == "explained"
    # one line naming the argument; JAX's own words follow (jax 0.10: "Sharding ...", 0.11: "NamedSharding(...) ...")
    assert compared["error"].startswith("args: ") and "\n" not in compared["error"]
    assert "dimension size is 10" in compared["error"]


def test_meshes_analyze_cannot_use_are_one_line(programs):
    errors = programs["mesh_errors"]
    assert errors["unknown"].startswith("mesh: unknown axis 'foo'")
    assert errors["zero"] == "mesh: the size of 'data' must be a positive integer, got 0"
    assert errors["float"] == "mesh: the size of 'data' must be a positive integer, got 2.0"
    assert errors["text"] == ""  # 'data=2' is read as the command line reads it
    assert errors["nothing_split"].startswith("mesh: model=4 splits no parameter of this model")


ASYNC_PROGRAM = """HloModule sharded, num_partitions=8

body {
  p = (s32[], f32[64]{0}) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  x = f32[64]{0} get-tuple-element(p), index=1
  start = f32[64]{0} all-reduce-start(x), replica_groups=[2,4]<=[4,2]T(1,0), to_apply=add
  done = f32[64]{0} all-reduce-done(start)
  one = s32[] constant(1)
  next = s32[] add(i, one)
  ROOT t = (s32[], f32[64]{0}) tuple(next, done)
}

cond {
  p = (s32[], f32[64]{0}) parameter(0)
  i = s32[] get-tuple-element(p), index=0
  n = s32[] constant(3)
  ROOT lt = pred[] compare(i, n), direction=LT
}

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

ENTRY main {
  x = f32[16]{0} parameter(0)
  gs = (f32[16]{0}, f32[128]{0}) all-gather-start(x), replica_groups={}, dimensions={0}
  g = f32[128]{0} all-gather-done(gs)
  zero = s32[] constant(0)
  y = f32[64]{0} slice(g), slice={[0:64]}
  init = (s32[], f32[64]{0}) tuple(zero, y)
  loop = (s32[], f32[64]{0}) while(init), condition=cond, body=body, backend_config={"known_trip_count":{"n":"3"}}
  ROOT out = f32[64]{0} get-tuple-element(loop), index=1
}
"""


def test_async_pairs_iota_groups_and_loop_trips_from_text():
    """An async all-gather over every device (no groups given) counted at its start, its payload the gathered
    output; an async all-reduce in a 3-trip loop over the iota groups [2,4]<=[4,2]T(1,0)."""
    gather, reduce = collectives(parse_module(ASYNC_PROGRAM), devices=8)
    assert (gather.kind, gather.group_size, gather.payload_bytes, gather.wire_bytes, gather.count) == (
        "all-gather", 8, 512, 448, 1)
    assert (reduce.kind, reduce.groups, reduce.count) == ("all-reduce", ((0, 2, 4, 6), (1, 3, 5, 7)), 3)
    assert (reduce.payload_bytes, reduce.wire_bytes, reduce.wire_bytes_total) == (256, 384, 3 * 384)


@pytest.mark.parametrize("text, groups", [
    ("{{0,1},{2,3}}", ((0, 1), (2, 3))),
    ("[2,4]<=[8]", ((0, 1, 2, 3), (4, 5, 6, 7))),
    ("[4,2]<=[2,4]T(1,0)", ((0, 4), (1, 5), (2, 6), (3, 7))),
    ("[1,4]<=[4]", ((0, 1, 2, 3),)),
    ("{}", ()),
    ("mesh['axis_0'=2,'axis_1'=1,'axis_2'=4,'axis_3'=1] {'axis_0'}", ((0, 4), (1, 5), (2, 6), (3, 7))),
    ("mesh['axis_0'=2,'axis_1'=4] {'axis_1'}", ((0, 1, 2, 3), (4, 5, 6, 7))),
])
def test_replica_groups_in_every_form(text, groups):
    assert parse_groups(text) == groups


def test_wire_bytes_round_up_and_a_group_of_one_sends_nothing():
    assert Collective("a", "all-reduce", ((0, 1, 2),), 100, 1).wire_bytes == 134  # 2·2/3·100 = 133.3
    assert Collective("a", "all-reduce", ((0,),), 100, 1).wire_bytes == 0
    assert Collective("p", "collective-permute", ((0, 1), (1, 0)), 100, None).wire_bytes_total is None


def test_mesh_coordinates_and_spanned_axes():
    where = coordinates([0, 1, 2, 3, 4, 5, 6, 7], {"data": 4, "model": 2})
    assert where[5] == (2, 1)
    assert spanned_axes((0, 2, 4, 6), where, ["data", "model"]) == ("data",)
    assert spanned_axes((0, 1, 2, 3), where, ["data", "model"]) == ("data", "model")


def test_device_kinds_match_their_own_rows():
    assert lookup("NVIDIA GH200 480GB") is None and interconnect("NVIDIA GH200 480GB") is None
    assert lookup("NVIDIA H100 NVL").name == "NVIDIA H100 NVL"
    assert interconnect("NVIDIA H100 NVL").name == "NVLink 4 bridge"
    assert lookup("TPU v4 lite") is None


def test_interconnect_table_and_overrides():
    assert interconnect("NVIDIA H100 80GB HBM3").bytes_per_second == 450e9
    assert interconnect("NVIDIA H200").name == "NVLink 4"
    assert interconnect("TPU v5 lite").bytes_per_second_bidirectional == 400e9
    assert interconnect("cpu") is None
    assert interconnect("NVIDIA H100 80GB HBM3", {"bytes_per_second": 3.8e11}).bytes_per_second == 3.8e11
    with pytest.raises(ValueError, match="overrides: unknown interconnect keys"):
        interconnect("H100", {"latency": 1})
    for rate in (-5, 0, "fast", None):
        with pytest.raises(ValueError, match="overrides: bytes_per_second must be a positive number"):
            interconnect("H100", {"bytes_per_second": rate})


def test_step_time_model_by_hand():
    """1e12 flops at 989.4 TFLOP/s, 3.35e9 bytes at 3.35 TB/s, 4.5e8 wire bytes at 450 GB/s: compute 1.0107 ms,
    memory 1 ms, communication 1 ms; overlapped, the compute bounds the step; without overlap 3.0107 ms."""
    peaks = lookup("NVIDIA H100 80GB HBM3")
    step = StepTime(10**12, 3_350_000_000, 450_000_000, peaks.peak("bf16"), peaks.bytes_per_second, 450e9,
                    model_flops=75 * 10**10, precision="bf16")
    assert step.compute_seconds == pytest.approx(1e12 / 989.4e12)
    assert (step.memory_seconds, step.communication_seconds) == (pytest.approx(1e-3), pytest.approx(1e-3))
    assert step.dominant == "compute" and step.lower_bound_seconds == step.compute_seconds
    assert step.upper_bound_seconds == pytest.approx(step.compute_seconds + 2e-3)
    assert step.hfu(step.lower_bound_seconds) == pytest.approx(1.0)
    assert step.mfu(step.lower_bound_seconds) == pytest.approx(0.75)
    assert "compute-bound" in str(step)
    unknown = StepTime(1, 1, 10, 1.0, 1.0, None, 1)
    assert unknown.communication_seconds is None and unknown.upper_bound_seconds is None
    assert unknown.lower_bound_seconds == 1.0 and "whose link is unknown" in str(unknown)
    with pytest.raises(ValueError, match="step_seconds: must be a positive number"):
        step.mfu(0)


@pytest.mark.parametrize("text, message", [
    ("data=8", None), ("data=2,model=4", None),
    ("data", "mesh: each axis is NAME=SIZE"), ("data=0", "mesh: the size of .data. must be a positive integer"),
    ("pipe=2", "mesh: unknown axis 'pipe'"), ("data=2,data=2", "mesh: axis 'data' given twice"),
    ("", "mesh: each axis is NAME=SIZE"), ("data=99999999999999999999", "at most 4,096"),
])
def test_mesh_on_the_command_line(text, message):
    if message is None:
        assert parse_mesh(text) == {name: int(size) for name, size in (part.split("=") for part in text.split(","))}
    else:
        with pytest.raises(ValueError, match=message):
            parse_mesh(text)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _two_processes(*what: str) -> dict:
    """What process 0 of two (2 CPU devices each, joined by jax.distributed over gloo) prints running
    ``tests/hosts_program.py`` with ``what``."""
    script = str(Path(__file__).with_name("hosts_program.py"))
    environment = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    port = str(_free_port())
    others = [subprocess.Popen([sys.executable, script, port, "1", *what], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=environment)]
    try:
        first = subprocess.run([sys.executable, script, port, "0", *what], capture_output=True, text=True,
                               timeout=120, env=environment, check=False)
    finally:
        for process in others:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    assert first.returncode == 0, first.stderr[-3000:]
    return json.loads(first.stdout.strip().splitlines()[-1])


def test_two_processes_report_what_one_process_of_four_devices_reports():
    """Two processes of 2 CPU devices joined by jax.distributed (gloo): process 0 gathers both processes'
    figures for a data=2 x model=2 training step; they agree, and equal one process of 4 devices."""
    script = str(Path(__file__).with_name("hosts_program.py"))
    environment = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    gathered = _two_processes()
    one = json.loads(subprocess.run([sys.executable, script], capture_output=True, text=True, timeout=120,
                                    env=environment, check=True).stdout)
    assert gathered["consistent"] and [entry["local_devices"] for entry in gathered["processes"]] == [2, 2]
    for entry in gathered["processes"]:
        assert {key: entry[key] for key in ("devices", "flops", "bytes_accessed", "collectives")} == {
            key: one[key] for key in ("devices", "flops", "bytes_accessed", "collectives")}
    assert one["devices"] == 4 and one["collectives"]
    assert "2 processes, 4 devices (2, 2 local): the same program on every process" in gathered["text"]


def test_timing_across_processes_names_a_bad_argument():
    """Said before any process waits on another (nothing is dispatched)."""
    import jax

    from jaxcost.mesh.timing import placed_arguments, time_across_processes

    with pytest.raises(ValueError, match="repeats: must be a positive integer, got 0"):
        time_across_processes(object(), repeats=0)
    with pytest.raises(ValueError, match="seconds_per_repeat: must be a positive number of seconds"):
        time_across_processes(object(), seconds_per_repeat="0.1")
    with pytest.raises(ValueError, match="executable: a compiled program"):
        time_across_processes(lambda x: x)
    with pytest.raises(ValueError, match="executable: a compiled program"):
        placed_arguments(jax.jit(lambda x: x))


def test_two_processes_time_a_data_parallel_step():
    """Both processes time the same data=4 step: the same calls in each of the same repeats, the step time the
    slowest process's median, the input placed as the program takes it (each process holds its two quarters of the
    batch), and the step-time model beside the measurement."""
    timed = _two_processes("time")
    processes = timed["processes"]
    assert [entry["process"] for entry in processes] == [0, 1]
    assert len({entry["calls"] for entry in processes}) == 1 and processes[0]["calls"] >= 1
    assert len({len(entry["seconds_per_call"]) for entry in processes}) == 1
    assert timed["seconds_step"] == max(entry["seconds_median"] for entry in processes)
    mine = processes[0]  # process 0's repeats fit in the time its own clock saw around the whole timing
    assert 0 < mine["calls"] * sum(mine["seconds_per_call"]) < timed["wall_seconds"]
    assert timed["slowest"] == max(processes, key=lambda entry: entry["seconds_median"])["process"]
    assert timed["input"] == {"shape": [64, 128], "spec": "P('data',)", "placed_as_compiled": True,
                              "fully_addressable": False, "local_shards": [[16, 128], [16, 128]]}
    assert f"step time over 2 processes, 4 devices: {timed['seconds_step'] * 1e3:.3f} ms" in timed["text"]
    assert "step-time model: " in timed["text"] and "MFU" in timed["text"]


def test_the_command_line_shards_a_zoo_model_on_simulated_devices():
    """--mesh runs the model in a process whose CPU shows the mesh's devices; this process keeps its own."""
    from jaxcost.cli import main

    environment = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-m", "jaxcost.cli", "model", "gpt2_small", "--input", "8,128:int32",
                             "--mesh", "data=2,model=4", "--hardware", "H100", "--depth", "1"],
                            capture_output=True, text=True, timeout=300, env=environment, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sharded over 8 devices" in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("module "))
    assert header.split()[-6:] == ["FLOPs", "compiler", "FLOPs/device", "compiler", "bytes/device", "share"]
    assert "over all 8 devices:" in result.stdout and "one device alone" in result.stdout
    assert "all-reduce (x24)" in result.stdout  # two per block in the forward pass, Megatron-style
    assert "step-time model per device on NVIDIA H100 SXM" in result.stdout and "MFU" in result.stdout
    assert main(["model", "mobilenet_v2", "--hardware", "H100"]) == 2


TINY_MODEL = """
import flax.linen as nn


class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(8)(x)
"""


def test_the_mesh_process_runs_the_jaxcost_its_parent_imported_not_one_in_the_working_directory(tmp_path):
    """A ``jaxcost/`` folder in the working directory (a checkout, a user's own) does not stand in for the package
    the command line was started from when ``--mesh`` runs the command again in a process of its own."""
    (tmp_path / "jaxcost").mkdir()
    (tmp_path / "jaxcost" / "__init__.py").write_text("raise ImportError('the working directory was imported')\n")
    (tmp_path / "tiny.py").write_text(TINY_MODEL)
    root = str(Path(__file__).resolve().parents[1])
    start = f"import sys; sys.path[0] = {root!r}; from jaxcost.cli import main; sys.exit(main())"  # as installed
    environment = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", start, "model", "tiny.py:Tiny", "--input", "4,16", "--mesh",
                             "data=2"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=environment,
                            check=False)
    assert "the working directory was imported" not in result.stderr
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sharded over 2 devices" in result.stdout
