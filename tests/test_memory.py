"""Device memory of a step from XLA's buffer assignment: the peak against memory_analysis(), the live set at the
peak attributed to rows and roles, a two-layer MLP checked by hand, the zoo on the CPU, a TPU slice compiled here."""

import importlib.util
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
import pytest

import jaxcost as jc
from jaxcost.hlo.allocations import parse_buffer_assignment, parse_live_ranges
from jaxcost.models import ZOO, build
from jaxcost.models.memory import ROLES, MemoryReport, memory
from jaxcost.models.residuals import hlo_shape
from jaxcost.models.transformer import GPT2

pytestmark = pytest.mark.cpu
HAS_LIBTPU = importlib.util.find_spec("libtpu") is not None

BATCH, FEATURES_IN, HIDDEN, CLASSES = 64, 784, 512, 10
F32 = 4


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(HIDDEN, name="fc1")(x)
        return nn.Dense(CLASSES, name="fc2")(nn.relu(x))


def _inputs() -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct((BATCH, FEATURES_IN), jnp.float32)


def _params_bytes() -> int:
    return (FEATURES_IN * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES) * F32


def _xla_implied(report: MemoryReport) -> int:
    xla = report.xla
    return (xla["argument_size_in_bytes"] + xla["output_size_in_bytes"] + xla["temp_size_in_bytes"]
            - xla["alias_size_in_bytes"])


def check_adds_up(report: MemoryReport) -> None:
    """The relations every report keeps, on any backend."""
    assert sum(value.bytes for value in report.live) == report.live_peak_bytes
    assert sum(report.bytes_by_row().values()) == report.live_peak_bytes
    assert sum(report.bytes_by_role().values()) == report.live_peak_bytes
    assert set(report.bytes_by_role()) <= set(ROLES)
    assert report.live_peak_bytes <= report.peak_bytes
    assert report.peak_bytes == _xla_implied(report) + max(0, -report.temp_unassigned_bytes)
    assert report.arguments_bytes == report.xla["argument_size_in_bytes"]
    assert report.outputs_bytes == report.xla["output_size_in_bytes"]
    assert report.aliased_bytes == report.xla["alias_size_in_bytes"]


def check_cpu_assignment(report: MemoryReport) -> None:
    """On the CPU the buffer assignment holds every byte: its total is the peak plus constants and thread-local
    scratch, which memory_analysis() leaves out."""
    assert report.temp_unassigned_bytes == 0
    assert report.peak_bytes == _xla_implied(report)
    assert report.assignment.total_bytes == report.peak_bytes + report.constants_bytes
    # XLA's own listing of the values live at its peak step is the live set there, read inclusively
    stated = report.assignment.live.stated_peak
    assert {value.key for value in report.assignment.live_at(stated)} == set(report.assignment.live.stated_peak_values)


def test_mlp_training_step_by_hand():
    report = memory(MLP(), _inputs(), mode="train")
    check_adds_up(report)
    check_cpu_assignment(report)
    activation = BATCH * HIDDEN * F32
    # arguments: the parameters, the input and the output gradient
    assert report.arguments_bytes == _params_bytes() + BATCH * FEATURES_IN * F32 + BATCH * CLASSES * F32
    # outputs: the output, a gradient for every parameter and for the input, and the result tuple's table
    assert report.outputs_bytes - report.assignment.allocations[-1].bytes * 0 >= _params_bytes()
    roles = report.bytes_by_role()
    assert roles["parameters"] == _params_bytes()
    assert roles["gradients"] == _params_bytes() + BATCH * FEATURES_IN * F32
    assert roles["inputs"] == BATCH * FEATURES_IN * F32 + BATCH * CLASSES * F32
    # saved for the backward pass: fc1's output (relu's gradient reads it) and relu's output (fc2's kernel gradient
    # reads it); fc1's input is an argument, not saved
    assert report.saved_bytes == 2 * activation
    assert sorted(report.saved_by_row().values()) == [activation, activation]
    assert report.bytes_by_row()["fc1"] >= 2 * (FEATURES_IN * HIDDEN + HIDDEN) * F32


def test_mlp_forward_holds_parameters_input_and_one_activation():
    report = memory(MLP(), _inputs())
    check_adds_up(report)
    check_cpu_assignment(report)
    roles = report.bytes_by_role()
    assert roles["parameters"] == _params_bytes()
    assert roles["inputs"] == BATCH * FEATURES_IN * F32
    assert report.saved == [] and report.mode == "forward"
    assert report.peak_bytes == _params_bytes() + BATCH * FEATURES_IN * F32 + BATCH * CLASSES * F32 + (
        report.temp_bytes)


def test_adam_keeps_two_moments_and_a_count_donated_with_the_parameters():
    report = memory(MLP(), _inputs(), mode="train", optimizer=optax.adam(1e-3))
    check_adds_up(report)
    check_cpu_assignment(report)
    state_bytes = 2 * _params_bytes() + 4  # mu and nu at the parameters' dtype, and an int32 step count
    assert report.formulas["optimizer state"] == state_bytes
    # the parameters and the optimizer's state are donated: the outputs reuse their buffers
    assert report.aliased_bytes == _params_bytes() + state_bytes
    assert report.bytes_by_role()["optimizer state"] >= 2 * _params_bytes()


def test_sgd_keeps_no_state():
    report = memory(MLP(), _inputs(), mode="train", optimizer=optax.sgd(0.1))
    check_adds_up(report)
    assert report.formulas["optimizer state"] == 0
    assert report.bytes_by_role()["optimizer state"] == 0


@pytest.mark.parametrize("name", list(ZOO))
@pytest.mark.parametrize("mode", ["forward", "train"])
def test_zoo_peak_agrees_with_memory_analysis_and_rows_add_up(name, mode):
    model = build(name)
    if ZOO[name].tokens:
        x = jax.ShapeDtypeStruct((1, 128), jnp.int32)
    else:
        x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    kwargs = {"train": mode == "train"} if "resnet" in name or "mobilenet" in name else {}
    report = memory(model, x, mode=mode, **kwargs)
    check_adds_up(report)
    check_cpu_assignment(report)
    assert report.bytes_by_role()["parameters"] == report.formulas["parameters"]
    if mode == "train":
        assert report.saved_bytes > 0
        # the per-layer rule: a Dense or Conv layer's kernel gradient reads its input, which JAX saves at the
        # layer's dtype (unless it is the step's own input, held anyway)
        saved = {value.shape for value in report.residuals}
        for row in report.model.rows:
            if row.is_layer and tuple(row.input_shape) != x.shape:
                assert hlo_shape(jax.ShapeDtypeStruct(row.input_shape, jnp.dtype(row.input_dtype))) in saved, row.path


def test_a_function_is_reported_by_its_scopes():
    def f(w, x):
        with jax.named_scope("layer"):
            return jnp.tanh(x @ w).sum(axis=1)

    w = jax.ShapeDtypeStruct((256, 256), jnp.float32)
    x = jax.ShapeDtypeStruct((32, 256), jnp.float32)
    report = jc.memory(f, w, x, mode="train")
    check_adds_up(report)
    assert report.bytes_by_role()["inputs"] == (256 * 256 + 32 * 256 + 32) * F32
    assert report.saved_bytes == 32 * 256 * F32  # tanh's output, which its derivative reads
    assert report.saved_by_row() == {"layer": 32 * 256 * F32}


@pytest.mark.parametrize("mode", ["forward", "train"])
def test_a_loop_state_shared_by_its_values_is_counted_once(mode):
    """A while loop's state is one buffer that several values (the loop's, its body's parameter and result) name: the
    live set holds it once, so the live peak stays within what is allocated."""
    def f(w, x):
        def body(carry, _):
            return jnp.tanh(carry @ w), None
        return jnp.sum(jax.lax.scan(body, x, None, length=4)[0])

    report = memory(f, jax.ShapeDtypeStruct((128, 128), jnp.float32), jax.ShapeDtypeStruct((8, 128), jnp.float32),
                    mode=mode)
    check_adds_up(report)
    check_cpu_assignment(report)
    assert max(report.assignment.live_bytes()) == report.live_peak_bytes
    phi = [value for value in report.assignment.values if value.phi]
    assert phi  # the loop's values are there, and shared
    assert report.live_peak_bytes <= report.assignment.total_bytes


def test_checkpoint_lowers_the_saved_bytes():
    def block(w1, w2, x):
        return x + jnp.tanh(x @ w1) @ w2

    def blocks(remat):
        def f(weights, x):
            for w1, w2 in weights:
                x = (jax.checkpoint(block) if remat else block)(w1, w2, x)
            return x.sum(axis=1)
        return f

    weights = [(jax.ShapeDtypeStruct((512, 2048), jnp.float32), jax.ShapeDtypeStruct((2048, 512), jnp.float32))] * 3
    x = jax.ShapeDtypeStruct((256, 512), jnp.float32)
    plain = memory(blocks(False), weights, x, mode="train")
    rematted = memory(blocks(True), weights, x, mode="train")
    check_adds_up(plain)
    check_adds_up(rematted)
    hidden, width = 256 * 2048 * F32, 256 * 512 * F32
    # every block keeps tanh's output for its gradient; the later blocks their input too (the first one's is an
    # argument); recomputed, only the inputs of the later blocks are kept, and the rematted blocks' own
    assert plain.saved_bytes == 3 * hidden + 2 * width
    assert rematted.saved_bytes < plain.saved_bytes
    assert rematted.peak_bytes <= plain.peak_bytes


def test_remat_on_the_blocks_keeps_only_their_outputs():
    """nn.remat on GPT-2's blocks: each block keeps only what its recomputation starts from (the previous block's
    output, here attributed to the block that wrote it) and, with XLA:CPU of jax 0.10, its norm's statistics, which
    XLA merges with the forward pass's rather than computing again (jax 0.11's recomputes them too); the rest is
    recomputed. The peak, in the backward pass of the logits, does not fall: the report's live set says what holds
    it."""
    batch, length, width, depth = 8, 256, 256, 3
    tokens = jax.ShapeDtypeStruct((batch, length), jnp.int32)
    sizes = dict(vocabulary=1000, context=length, width=width, depth=depth, heads=4)
    plain = memory(GPT2(**sizes), tokens, mode="train")
    rematted = memory(GPT2(**sizes, remat=True), tokens, mode="train")
    check_adds_up(rematted)
    in_blocks = {row: amount for row, amount in rematted.saved_by_row().items() if row.startswith("block")}
    statistics = 2 * batch * length * F32  # a LayerNorm's mean and variance, a value per token each
    outputs = {f"block{index}": batch * length * width * F32 for index in range(depth)}
    kept_statistics = {f"block{index}/norm1": statistics for index in range(depth)}
    recomputed_statistics = tuple(int(part) for part in jax.__version__.split(".")[:2]) >= (0, 11)
    assert in_blocks == (outputs if recomputed_statistics else {**outputs, **kept_statistics})
    assert sum(amount for row, amount in plain.saved_by_row().items() if row.startswith("block")) > 10 * sum(
        in_blocks.values())
    assert rematted.bytes_by_role()["saved for backward"] < plain.bytes_by_role()["saved for backward"]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="optimizer: .*mode='train'"):
        memory(MLP(), _inputs(), optimizer=optax.adam(1e-3))
    with pytest.raises(ValueError, match="inputs: "):
        memory(MLP())
    with pytest.raises(ValueError, match="model: "):
        memory(MLP, _inputs())
    with pytest.raises(ValueError, match="optimizer: "):
        memory(MLP(), _inputs(), mode="train", optimizer="adam")
    from flax import nnx

    with pytest.raises(ValueError, match="model: .*flax.nnx"):
        memory(nnx.Linear(4, 4, rngs=nnx.Rngs(0)), jax.ShapeDtypeStruct((2, 4), jnp.float32))


def test_a_dump_is_kept_where_asked_and_never_mixed_with_another(tmp_path):
    """dump_to keeps XLA's files of the one compile; the report read from them is the report of a temporary dump;
    a folder that holds another program's dump, or a file, is refused by name."""
    kept = memory(MLP(), _inputs(), mode="train", dump_to=str(tmp_path / "dump"))
    assert len(list((tmp_path / "dump").glob("*after_optimizations-buffer-assignment.txt"))) == 1
    assert kept.peak_bytes == memory(MLP(), _inputs(), mode="train").peak_bytes
    with pytest.raises(ValueError, match="dump_to: .* already holds another program's dump"):
        memory(MLP(), _inputs(), dump_to=str(tmp_path / "dump"))
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="dump_to: .* is a file"):
        memory(MLP(), _inputs(), dump_to=str(tmp_path / "file"))


def test_from_dump_refuses_a_folder_that_is_not_one_steps_dump(tmp_path):
    """from_dump reads the one step that memory(dump_to=...) dumped there, compiling nothing: a missing folder, one
    without a buffer assignment, one with several programs' or another step's, and dump_to or target beside it,
    are refused by name."""
    dump = tmp_path / "dump"
    memory(MLP(), _inputs(), mode="train", dump_to=str(dump))
    with pytest.raises(ValueError, match="from_dump: .*missing is not a folder"):
        memory(MLP(), _inputs(), mode="train", from_dump=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="from_dump: .*empty holds no buffer assignment"):
        memory(MLP(), _inputs(), mode="train", from_dump=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="from_dump: reads a step compiled elsewhere.*no dump_to"):
        memory(MLP(), _inputs(), mode="train", from_dump=str(dump), dump_to=str(tmp_path / "again"))
    with pytest.raises(ValueError, match="from_dump: reads a step compiled elsewhere.*no target"):
        memory(MLP(), _inputs(), mode="train", from_dump=str(dump), target="tpu:v5e:2x2")
    with pytest.raises(ValueError, match="from_dump: the program in .* takes 6 arguments where this step, lowered "
                                         "here, takes 5: the dump is another step's"):
        memory(MLP(), _inputs(), from_dump=str(dump))  # the forward pass against the training step's dump
    with pytest.raises(ValueError, match=r"from_dump: the program in .* takes a \(64, 10\) array as its argument "
                                         r"\d+ where this step has \(32, 10\): the dump is another step's"):
        # at batch 32: the output gradient is the first argument whose shape differs
        memory(MLP(), jax.ShapeDtypeStruct((32, 784), jnp.float32), mode="train", from_dump=str(dump))
    assignment = next(dump.glob("*-buffer-assignment.txt"))
    (tmp_path / "lone").mkdir()
    (tmp_path / "lone" / assignment.name).write_text(assignment.read_text())
    with pytest.raises(ValueError, match="from_dump: .*lone lacks .*after_optimizations.txt and "
                                         ".*-live-range.txt beside the buffer assignment"):
        memory(MLP(), _inputs(), mode="train", from_dump=str(tmp_path / "lone"))
    (dump / f"another.{assignment.name}").write_text(assignment.read_text())
    with pytest.raises(ValueError, match="from_dump: .* holds 2 programs' dumps; it must hold one step's"):
        memory(MLP(), _inputs(), mode="train", from_dump=str(dump))


def test_the_dump_parsers_refuse_text_that_is_not_a_dump():
    with pytest.raises(ValueError, match="buffer assignment"):
        parse_buffer_assignment("nothing here")
    with pytest.raises(ValueError, match="live ranges"):
        parse_live_ranges("nothing here")


def test_report_prints_the_peak_rows_and_values():
    report = memory(MLP(), _inputs(), mode="train")
    text = str(report)
    assert f"peak: {report.peak_bytes:,} B" in text
    assert "saved for backward" in text and "fc1" in text
    assert repr(report).startswith("MemoryReport('MLP', mode='train'")


@pytest.mark.skipif(not HAS_LIBTPU, reason="libtpu is not installed (the tpu extra, in the test extra)")
def test_tpu_slice_compiled_here():
    model = GPT2(vocabulary=512, context=128, width=128, depth=1, heads=2, dtype=jnp.bfloat16)
    report = memory(model, jax.ShapeDtypeStruct((8, 128), jnp.int32), mode="train", target="tpu:v5e:2x2")
    assert report.platform == "tpu" and "v5" in report.device_kind.lower()
    check_adds_up(report)
    assert report.generated_code_bytes > 0
    assert report.required_bytes == report.peak_bytes + report.generated_code_bytes
    # the TPU's on-chip memories (other colors) are not device memory: every live value is in HBM
    assert all(value.color == 0 for value in report.assignment.values if value.key in
               {live.instruction + live.index for live in report.live})


MODEL_FILE = '''
import flax.linen as nn


class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.relu(nn.Dense(256)(x)))
'''


def test_fit_finds_the_largest_batch_that_fits_in_few_compiles(tmp_path, capsys):
    from jaxcost.cli import main

    path = tmp_path / "net.py"
    path.write_text(MODEL_FILE)
    capacity = 8 * 2**20
    assert main(["fit", f"{path}:Net", "--input", "1,1024:float32", "--train", "--memory", f"{capacity}",
                 "--json"]) == 0
    import json

    found = json.loads(capsys.readouterr().out)
    batch, peaks = found["batch"], {int(key): value for key, value in found["peaks"].items()}
    assert found["compiles"] < 10
    assert peaks[batch] <= capacity < peaks[batch + 1]  # the batch fits and the next one does not
    assert peaks[batch + 1] - peaks[batch] > 0


def test_fit_says_when_nothing_fits_and_refuses_a_size_it_cannot_read(tmp_path, capsys):
    from jaxcost.cli import main

    path = tmp_path / "net.py"
    path.write_text(MODEL_FILE)
    assert main(["fit", f"{path}:Net", "--input", "1,1024:float32", "--memory", "1KiB"]) == 1
    out = capsys.readouterr().out
    assert "does not fit even at batch 1" in out and "batch 1:" in out
    assert main(["fit", f"{path}:Net", "--input", "1,1024:float32", "--memory", "16 gigs"]) == 2
    err = capsys.readouterr().err
    assert "--memory: not a size: '16 gigs'" in err and len(err.strip().splitlines()) == 1
    assert main(["fit", f"{path}:Net", "--input", "1,1024:float32"]) == 2  # the CPU's memory is not in the table
    assert "--memory: " in capsys.readouterr().err


@pytest.mark.parametrize("text, size", [("16GiB", 16 * 2**30), ("16GB", 16 * 10**9), ("16e9", 16 * 10**9),
                                        ("512 MiB", 512 * 2**20), ("1.5TiB", 3 * 2**39), ("4096", 4096)])
def test_sizes(text, size):
    from jaxcost.models.fit import parse_size

    assert parse_size(text) == size


def test_model_memory_prints_the_peak_after_the_table(capsys):
    from jaxcost.cli import main

    assert main(["model", "mobilenet_v2", "--alpha", "0.35", "--resolution", "32", "--train", "--memory",
                 "--optimizer", "adam"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("module "))
    assert header.split()[-4:] == ["share", "live", "at", "peak"] or "saved" in header.split()
    assert "  peak: " in out and "optimizer state" in out and "saved for backward" in out
    assert main(["model", "mobilenet_v2", "--optimizer", "adam"]) == 2
    assert "--optimizer: " in capsys.readouterr().err


def test_model_memory_keeps_a_dump_and_reads_it_back(tmp_path, capsys):
    """``--dump-to`` keeps XLA's files and the step file; ``--from-dump`` prints the same report from them, nothing
    compiled; either without ``--memory`` is refused by name."""
    from jaxcost.cli import main

    command = ["model", "mobilenet_v2", "--alpha", "0.35", "--resolution", "32", "--train", "--memory", "--json"]
    assert main([*command, "--dump-to", str(tmp_path)]) == 0
    compiled = json.loads(capsys.readouterr().out)
    assert (tmp_path / "jaxcost-step.json").is_file()
    assert main([*command, "--from-dump", str(tmp_path)]) == 0
    read = json.loads(capsys.readouterr().out)
    for figure in ("peak_bytes", "live_peak_bytes", "saved_bytes", "residuals_bytes", "by_row", "by_role"):
        assert read[figure] == compiled[figure], figure
    assert main(["model", "mobilenet_v2", "--from-dump", str(tmp_path)]) == 2
    assert "--from-dump: with --memory" in capsys.readouterr().err


def test_a_sharded_step_holds_its_share_of_the_parameters(tmp_path):
    """FSDP splits the parameters over the devices; data parallelism replicates them (the command runs itself again in
    a child process whose CPU shows the mesh's devices)."""
    import json
    import os
    import subprocess
    import sys

    held = {}
    for mesh in ("data=2", "fsdp=2"):
        (tmp_path / "net.py").write_text(MODEL_FILE)
        result = subprocess.run([sys.executable, "-m", "jaxcost.cli", "model", f"{tmp_path / 'net.py'}:Net", "--input",
                                 "4,1024", "--memory", "--train", "--mesh", mesh, "--json"],
                                capture_output=True, text=True, timeout=300, check=False,
                                env={**os.environ, "JAX_PLATFORMS": "cpu"})
        assert result.returncode == 0, result.stderr[-2000:]
        found = json.loads(result.stdout)
        assert found["devices"] == 2
        held[mesh] = found["by_role"]["parameters"], found["formulas"]["parameters"]
    assert held["data=2"][0] == held["data=2"][1]
    assert held["fsdp=2"][0] < 0.6 * held["fsdp=2"][1]


@pytest.mark.skipif(not HAS_LIBTPU, reason="libtpu is not installed (the tpu extra, in the test extra)")
def test_fit_on_a_tpu_slice_takes_the_device_memory_from_the_table(tmp_path, capsys):
    import argparse

    from jaxcost.cli import main
    from jaxcost.memory_commands import capacity

    assert capacity(argparse.Namespace(memory=None, target="tpu:v5e:2x2")) == (
        16 * 2**30, "TPU v5e's 16 GiB (the device table)")
    path = tmp_path / "net.py"
    path.write_text(MODEL_FILE)
    assert main(["fit", f"{path}:Net", "--input", "1,4096:float32", "--train", "--target", "tpu:v5e:2x2",
                 "--memory", "64MiB"]) == 0
    out = capsys.readouterr().out
    assert "largest batch that fits: " in out
    compiles = int(out.split(" compiles")[0].rsplit("; ", 1)[1])
    assert compiles < 10


class _Peak:
    """A stand-in for a step's report: its required bytes, and whether they fit."""

    def __init__(self, required_bytes):
        self.required_bytes = required_bytes

    def fits(self, capacity_bytes):
        return self.required_bytes <= capacity_bytes


@pytest.mark.parametrize("fixed, per_sample, tile, capacity, unit", [
    (10**6, 10**5, 1, 10**8, 1),          # linear: 990 samples fit
    (10**6, 10**5, 8, 10**8, 1),          # padded to tiles of 8: a staircase
    (10**6, 3 * 10**4, 128, 10**9, 1),    # a staircase of 128
    (5 * 10**8, 10**3, 1, 10**9, 4),      # a large fixed part, a batch that splits over 4 devices
    (10**6, 10**7, 1, 10**8, 1),          # 9 samples
])
def test_the_search_finds_a_batch_that_fits_and_one_above_that_does_not(fixed, per_sample, tile, capacity, unit):
    from jaxcost.models.fit import largest_batch

    def peak(batch):
        return fixed + per_sample * (-(-batch // tile) * tile)

    truth = max(batch for batch in range(unit, 2_000_000, unit) if peak(batch) <= capacity)
    found = largest_batch(lambda batch: _Peak(peak(batch)), capacity, unit=unit)
    assert found.compiles <= 9
    assert found.batch is not None and peak(found.batch) <= capacity and found.batch % unit == 0
    following = found.next_batch()
    assert following is not None and peak(following) > capacity
    assert following <= 2 * found.batch  # the next doubling does not fit
    assert found.batch <= truth and (not found.exact or found.batch == truth)
    assert found.batch >= truth - tile  # within a step of the staircase at worst


def test_the_search_says_when_nothing_fits_or_everything_does():
    from jaxcost.models.fit import largest_batch

    nothing = largest_batch(lambda batch: _Peak(10**9), 10**6)
    assert nothing.batch is None and nothing.compiles == 1
    everything = largest_batch(lambda batch: _Peak(batch), 10**9, most=64)
    assert everything.batch == 64 and not everything.exact and everything.next_batch() is None
