"""Where the time went on an NVIDIA H200 (jax 0.11.2), from the files ``bench/gpu_profile.py`` stored: for ResNet-50's
training step (batch 128, bfloat16), GPT-2 small's forward pass (8x1024 tokens, float32) and its training step
(bfloat16), a trace of 5 calls of the compiled step and the step's optimized HLO. Read here on any machine.

XLA:GPU runs most of these programs as command buffers (CUDA graphs), whose kernels the trace names after the buffer
(``command_buffer_1``), not after their instructions: ResNet-50's batch norms and every kernel of both GPT-2 programs.
They are matched to their instructions by the program's schedule; unmatched, they would be time no row holds, and a
row's bytes over the part of its time that is left would read as 9-14 TB/s (as the table printed on the H200 before
they were matched showed: ``stage1_block0/expand`` at 9.58 TB/s, 199.6 % of its roofline). The stored tables
(``*.txt``, ``*.profile.json.gz``) are these profiles, made from the traces here.
"""

import gzip
import json
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from bench.gpu_profile import WORKLOADS
from jaxcost.compiler import CompilerCost
from jaxcost.hlo.program import recount
from jaxcost.measure.hardware import DevicePeaks
from jaxcost.measure.profile import UNATTRIBUTED, ModelProfile, profile_of, program_events
from jaxcost.measure.trace import command_buffer_instructions, instruction_events, kernel_name
from jaxcost.models import build
from jaxcost.models.analysis import ModelReport, attribute
from jaxcost.reports.model import IDLE
from jaxcost.reports.profile import profile_text

FIXTURES = Path(__file__).parent / "fixtures" / "gpu_profile"
#: Per workload: kernels in the trace (5 calls), and of them those that ran in a command buffer.
KERNELS = {"resnet50_train": (5095, 3585), "gpt2_small_forward": (1715, 1715), "gpt2_small_train": (4640, 4640)}

pytestmark = pytest.mark.cpu


def stored(name: str, folder: Path) -> tuple[dict, Path, Path]:
    """The stored program's facts (``hlo_optimized``, ``calls``, ``seconds_step``, ``device_kind``), and its trace and
    HLO text as the plain files ``jaxcost profile`` reads, written to ``folder``."""
    facts = json.loads(gzip.decompress((FIXTURES / f"{name}.hlo.json.gz").read_bytes()))
    trace, hlo = folder / f"{name}.xplane.pb", folder / f"{name}.hlo.txt"
    trace.write_bytes(gzip.decompress((FIXTURES / f"{name}.xplane.pb.gz").read_bytes()))
    hlo.write_text(facts["hlo_optimized"])
    return facts, trace, hlo


def model_report(name: str, compiler: CompilerCost) -> ModelReport:
    """The rows of the workload's model over its stored program (the model's calls recorded here, nothing compiled),
    not yet profiled."""
    model_name, shape, dtype, compute_dtype, mode, keywords = WORKLOADS[name]
    x = jax.ShapeDtypeStruct(shape, jnp.dtype(dtype if dtype == "int32" else compute_dtype))
    return attribute(build(model_name, dtype=compute_dtype), x, compiler=compiler, mode=mode, **keywords)


@pytest.fixture(scope="module")
def profiles(tmp_path_factory) -> dict[str, tuple[ModelProfile, list, dict]]:
    """Each workload's profile from its stored trace, on the rows of its model; with the trace's events of the program
    and the stored facts."""
    folder = tmp_path_factory.mktemp("gpu_profile")
    found = {}
    for name in WORKLOADS:
        facts, trace, _ = stored(name, folder)
        text = facts["hlo_optimized"]
        compiler = CompilerCost(xla={}, recount=recount(text), memory={}, hlo_text=text, platform="gpu",
                                seconds_compile=0.0, device_kind=facts["device_kind"])
        events = program_events(instruction_events(trace), text)
        profile = profile_of(model_report(name, compiler), events, facts["calls"], facts["seconds_step"])
        found[name] = profile, events, facts
    return found


@pytest.mark.parametrize("name", list(KERNELS))
def test_every_kernel_of_the_trace_is_matched_to_an_instruction_of_the_program(profiles, name):
    profile, events, facts = profiles[name]
    kernels, in_buffers = KERNELS[name]
    assert len(events) == kernels and sum(bool(event.command_buffer) for event in events) == in_buffers
    module = profile.report.compiler.recount.module
    owners = module.owners()
    assert all(event.command_buffer not in owners for event in events)  # the buffer is no instruction
    matched = command_buffer_instructions(events, module)
    assert [event.hlo_op for event in matched if event.hlo_op not in owners] == []
    assert profile.unattributed == () and profile.seconds_unattributed == 0.0
    # a fusion's kernel carries its own name, or that of an identical fusion whose compiled kernel it reuses
    instructions = module.entry.by_name()
    fusions = {event.hlo_op: event.name for event in matched if instructions[event.hlo_op].opcode == "fusion"}
    reused = sum(kernel_name(instruction) != kernel for instruction, kernel in fusions.items())
    assert 0 < reused < len(fusions)
    # each call ran every instruction as often: a whole number of executions per call
    assert sum(profile.executions.values()) == pytest.approx(kernels / facts["calls"])
    assert all(count == pytest.approx(round(count)) for count in profile.executions.values())


@pytest.mark.parametrize("name", list(KERNELS))
def test_the_rows_add_up_to_the_traced_step(profiles, name):
    profile, _, facts = profiles[name]
    assert profile.seconds_step == facts["seconds_step"]
    assert profile.rows[-1].path == f"({IDLE})" and profile.rows[-1].seconds == pytest.approx(profile.seconds_idle)
    assert not any(row.kind == UNATTRIBUTED for row in profile.rows)
    assert sum(row.seconds or 0.0 for row in profile.rows) == pytest.approx(profile.seconds_step, rel=1e-9)
    assert sum(profile.instruction_seconds.values()) == pytest.approx(profile.seconds_busy, rel=1e-9)
    assert 0 < profile.seconds_idle < 0.05 * profile.seconds_step  # one stream, back to back: under 5 % idle
    assert 0.95 < profile.trace_ratio < 1.05


def _seconds_by_type(profile: ModelProfile) -> dict[str, float]:
    by_type: dict[str, float] = {}
    for row in profile.rows:
        by_type[row.module_type or row.kind] = by_type.get(row.module_type or row.kind, 0.0) + (row.seconds or 0.0)
    return by_type


def test_resnet50s_time_goes_to_its_convolutions_then_its_batch_norms(profiles):
    profile = profiles["resnet50_train"][0]
    assert profile.seconds_step == pytest.approx(21.7e-3, abs=0.1e-3)
    heaviest = max(profile.rows, key=lambda row: row.seconds or 0.0)
    assert heaviest.path == "stem/Conv_0" and heaviest.time_share == pytest.approx(0.142, abs=0.002)
    by_type = _seconds_by_type(profile)
    assert by_type["Conv"] / profile.seconds_step == pytest.approx(0.484, abs=0.002)
    assert by_type["BatchNorm"] / profile.seconds_step == pytest.approx(0.385, abs=0.002)
    assert sorted(by_type, key=by_type.__getitem__)[-2:] == ["BatchNorm", "Conv"]
    ops = {op.name: op for op in profile.report.compiler.recount.ops}
    slowest = max(profile.instruction_seconds, key=profile.instruction_seconds.__getitem__)
    # the stem's input gradient: a 3-channel image's, which the step differentiates too
    assert ops[slowest].instruction.attribute("custom_call_target") == '"__cudnn$convBackwardInput"'
    assert profile.report.placement.op_rows[slowest] == "stem/Conv_0"
    assert profile.instruction_seconds[slowest] == pytest.approx(1.62e-3, abs=0.02e-3)


@pytest.mark.parametrize("name, step_seconds, logits_share, attention_share",
                         [("gpt2_small_forward", 16.4e-3, 0.198, 0.373), ("gpt2_small_train", 28.9e-3, 0.235, 0.403)])
def test_gpt2s_time_goes_to_the_logits_then_attention_and_the_mlp(profiles, name, step_seconds, logits_share,
                                                                 attention_share):
    profile = profiles[name][0]
    assert profile.seconds_step == pytest.approx(step_seconds, abs=0.1e-3)
    ranked = sorted((row for row in profile.rows if row.seconds), key=lambda row: -row.seconds)
    # the tied embedding's attend: the 8192x768 by 768x50257 logits product
    assert ranked[0].path == "tokens" and ranked[0].time_share == pytest.approx(logits_share, abs=0.002)
    assert ranked[0].bound == "compute"
    assert {row.path for row in ranked[1:13]} == {f"block{index}/attention" for index in range(12)}
    by_type = _seconds_by_type(profile)
    assert by_type["MultiHeadDotProductAttention"] / profile.seconds_step == pytest.approx(attention_share, abs=0.002)
    mlp = [row for row in profile.rows if row.path.endswith(("mlp/fc1", "mlp/fc2"))]
    assert len(mlp) == 24 and all(row.bound == "compute" for row in mlp)
    assert sorted(by_type, key=by_type.__getitem__)[-4:] == ["DenseGeneral", "Dense", "Embed",
                                                             "MultiHeadDotProductAttention"]


def test_no_resnet50_row_beats_the_memory_roof_and_two_strided_convolutions_are_counted_whole(profiles):
    profile = profiles["resnet50_train"][0]
    expand = [row for row in profile.rows if row.path.startswith("stage1_block0/expand")]
    seconds = sum(row.seconds or 0.0 for row in expand)  # its batch norm's kernels ran in command buffers
    assert sum(row.compiler_bytes for row in expand) == pytest.approx(2.72e9, rel=0.01)
    assert seconds == pytest.approx(735e-6, rel=0.01)
    assert sum(row.roofline_seconds or 0.0 for row in expand) == pytest.approx(0.77 * seconds, abs=0.01 * seconds)
    fastest = max(profile.rows, key=lambda row: row.bytes_per_second or 0.0)
    assert fastest.path == "stage2_block0/shortcut/Conv_0"  # its strided convolutions, counted reading all input
    assert fastest.bytes_per_second == pytest.approx(4.32e12, rel=0.01)
    assert profile.rows_over_roofline() == {}
    over = profile.over_roof()
    assert [instruction.name for instruction in over] == ["cudnn-conv.116", "cudnn-conv-bw-filter.66"]
    for instruction in over:  # a 1x1 window at stride 2 reads a quarter of its 128x56x56x256 input
        assert instruction.reason == "a 1x1 window at stride 2x2 reads 1/4 of its input (205.52 MB counted whole)"
        assert instruction.bytes_unread == 205_520_896 * 3 // 4 and not instruction.from_cache
    assert "of roofline above 100 %" not in profile_text(profile, depth=2)


def test_a_gpt2_row_above_its_roofline_is_starred_and_said_why(profiles):
    profile = profiles["gpt2_small_forward"][0]
    over = profile.over_roof()
    assert len(over) == 39 and all(instruction.bytes_unread for instruction in over)
    reasons = {instruction.name: instruction.reason for instruction in over}
    gather = ("a gather reads only the rows it indexes of its f32[50257,768] operand (154.39 MB counted whole); a "
              "gather reads only the rows it indexes of its f32[1024,768] operand (3.15 MB counted whole)")
    assert reasons["input_reduce_fusion.1"] == gather
    # the tokens the benchmark drew lie in [-8, 8): the gathered rows came from the cache
    assert reasons["loop_add_fusion"] == gather + "; reads served by the cache, not memory"
    slices = {reason for name, reason in reasons.items() if name.startswith("input_transpose_fusion")}
    assert slices == {"a slice reads only what it keeps of its f32[8192,2304] operand (75.50 MB counted whole)"}
    assert [instruction.name for instruction in over if instruction.from_cache] == ["loop_add_fusion"]
    rows = profile.rows_over_roofline()
    assert {"positions", "block0", "block0/norm1", "add"} <= set(rows) and len(rows) == 28
    assert all(instructions for instructions in rows.values())  # every one beat the memory roof, none the peak
    text = profile_text(profile, depth=2)
    positions = next(line for line in text.splitlines() if line.startswith("positions "))
    assert positions.split()[-2:] == ["337.8%*", "overhead"]
    assert "\n  of roofline above 100 % (starred), and why:\n" in text
    assert ("\n  positions, block0/norm1, (add): up to 16.21 TB/s against the 4.80 TB/s memory roof; "
            f"input_reduce_fusion.1 (157.64 MB counted in 6.1 µs): {gather}\n") in text
    assert "\n  block0/attention/query, block0/attention/key, block1/attention/query, block1/attention/key and " \
           "20 more: up to 7.05 TB/s against " in text


def test_a_command_buffers_kernel_that_matches_nothing_is_a_row_of_its_own(profiles):
    profile, events, facts = profiles["gpt2_small_forward"]
    first = events[0]  # between the first two fusions the schedule holds no library call
    stray = replace(first, name="mystery_kernel", start_ns=first.end_ns, duration_ns=100.0)
    report = model_report("gpt2_small_forward", profile.report.compiler)
    result = profile_of(report, [first, stray, *events[1:]], facts["calls"], facts["seconds_step"])
    assert result.unattributed == ("command_buffer_1",)
    assert result.seconds_unattributed == pytest.approx(100e-9 / facts["calls"] / result.trace_ratio)
    assert [row.path for row in result.rows[-2:]] == [f"({UNATTRIBUTED})", f"({IDLE})"]
    assert sum(row.seconds for row in result.rows) == pytest.approx(facts["seconds_step"], rel=1e-9)


@pytest.mark.parametrize("name, row, peak", [("resnet50_train", "ResNet50/stem/Conv_0", "989.00 TFLOP/s"),
                                             ("gpt2_small_forward", "GPT2/tokens", "494.70 TFLOP/s"),  # TF32
                                             ("gpt2_small_train", "GPT2/tokens", "989.00 TFLOP/s")])
def test_the_command_line_profiles_each_stored_trace(tmp_path, capsys, name, row, peak):
    from jaxcost.cli import main

    facts, trace, hlo = stored(name, tmp_path)
    assert main(["profile", str(trace), "--hlo", str(hlo), "--calls", str(facts["calls"]), "--step",
                 str(facts["seconds_step"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"trace: {trace} ({KERNELS[name][0]} executions of ")
    line = next(line for line in out.splitlines() if line.startswith(f"{row} "))
    assert line.split()[-1] in ("compute", "memory") and line.split()[-2].endswith("%")  # the trace's device's roofs
    assert "\n(device idle) " in out and "\ntotal " in out and "not in the program" not in out
    assert f"time per step: {facts['seconds_step'] * 1e3:.1f} ms" in out
    assert f"roofs: compute {peak} (datasheet); memory 4.80 TB/s (datasheet)" in out


def test_a_row_above_the_compute_peak_is_said_to_have_run_at_another_precision(profiles):
    profile, events, facts = profiles["gpt2_small_forward"]
    low = DevicePeaks("a device slower than the H200", {"fp32": 100e12, "tf32": 100e12}, 4.8e12, "a test")
    report = model_report("gpt2_small_forward", profile.report.compiler)
    result = profile_of(report, events, facts["calls"], facts["seconds_step"], peaks=low)
    assert result.rows_over_roofline()["tokens"] == []  # its logits product, at 195 TFLOP/s, beat the peak alone
    line = next(line for line in profile_text(result, depth=2).splitlines() if line.startswith("  tokens, "))
    assert line.endswith(" more: FLOP/s above the fp32 peak (100.00 TFLOP/s): it is not the precision they ran at")
