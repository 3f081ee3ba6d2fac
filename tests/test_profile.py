"""Where the time goes: a traced burst's instruction executions become each instruction's time (overlaps split so
the rows add up to the busy time), each instruction's time its rows'; checked on constructed events, on CPU runs,
and on the stored H200 traces."""

import json
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxcost.hlo.text import parse_module
from jaxcost.measure.profile import IDLE, exclusive_seconds, profile, profile_of, program_events
from jaxcost.measure.trace import Kernel, instruction_events
from jaxcost.models import build
from jaxcost.models.analysis import program_report

FIXTURES = Path(__file__).parent / "fixtures"


def _event(name: str, start_ns: float, duration_ns: float) -> Kernel:
    return Kernel(name, "/host:CPU", "thread", start_ns, duration_ns, name, "jit_f")


def test_overlapping_instructions_split_the_time_they_share():
    events = [_event("a", 0, 100), _event("b", 50, 100), _event("c", 300, 10), _event("a", 60, 20)]
    seconds = exclusive_seconds(events)
    # 0-50 a alone; 50-60 a, b; 60-80 a, a, b; 80-100 a, b; 100-150 b; 300-310 c
    assert seconds["a"] * 1e9 == pytest.approx(50 + 5 + 40 / 3 + 10)
    assert seconds["b"] * 1e9 == pytest.approx(5 + 20 / 3 + 10 + 50)
    assert seconds["c"] * 1e9 == pytest.approx(10)
    assert sum(seconds.values()) * 1e9 == pytest.approx(160)  # the union of the intervals
    assert exclusive_seconds([]) == {}


LOOP = """HloModule jit_f, entry_computation_layout={(f32[4]{0})->f32[4]{0}}

%body (state: (s32[], f32[4])) -> (s32[], f32[4]) {
  %state = (s32[], f32[4]{0}) parameter(0)
  %i = s32[] get-tuple-element(%state), index=0
  %x = f32[4]{0} get-tuple-element(%state), index=1
  %one = s32[] constant(1)
  %next = s32[] add(%i, %one)
  %doubled = f32[4]{0} add(%x, %x)
  ROOT %out = (s32[], f32[4]{0}) tuple(%next, %doubled)
}

%cond (state.1: (s32[], f32[4])) -> pred[] {
  %state.1 = (s32[], f32[4]{0}) parameter(0)
  %i.1 = s32[] get-tuple-element(%state.1), index=0
  %ten = s32[] constant(10)
  ROOT %less = pred[] compare(%i.1, %ten), direction=LT
}

ENTRY %main (x.1: f32[4]) -> f32[4] {
  %x.1 = f32[4]{0} parameter(0)
  %zero = s32[] constant(0)
  %init = (s32[], f32[4]{0}) tuple(%zero, %x.1)
  %loop = (s32[], f32[4]{0}) while(%init), condition=%cond, body=%body
  ROOT %result = f32[4]{0} get-tuple-element(%loop), index=1
}
"""


def test_an_instruction_in_a_loop_body_runs_under_the_loop():
    owners = parse_module(LOOP).owners()
    assert owners["doubled"] == owners["less"] == owners["loop"] == "loop"
    assert owners["x.1"] == "x.1" and owners["result"] == "result"


class _Plane:
    """A profile's plane as ``jax.profiler.ProfileData`` gives it: a name and lines of events."""

    def __init__(self, name, lines):
        self.name, self.lines = name, lines


class _Line:
    def __init__(self, name, events):
        self.name, self.events = name, events


class _Event:
    def __init__(self, name, start_ns, duration_ns, stats=()):
        self.name, self.start_ns, self.duration_ns, self.stats = name, start_ns, duration_ns, list(stats)


class _Profile:
    def __init__(self, planes):
        self.planes = planes


def test_a_tpu_trace_names_its_ops_on_the_xla_ops_line():
    # as XProf's TPU planes hold them: an "XLA Modules" line spanning each run of the program, and its ops on
    # "XLA Ops", each event named after its instruction; the host's own events are not the device's time
    tpu = _Plane("/device:TPU:0", [
        _Line("XLA Modules", [_Event("jit_f(123)", 0, 100)]),
        _Line("XLA Ops", [_Event("fusion.1", 0, 60), _Event("copy.2", 60, 30)]),
        _Line("Steps", [_Event("0", 0, 100)]),
    ])
    host = _Plane("/host:CPU", [_Line("python", [_Event("fusion.1", 0, 500, [("hlo_op", "fusion.1")])])])
    events = instruction_events(_Profile([host, tpu]))
    assert [(event.hlo_op, event.line, event.duration_ns) for event in events] == [
        ("fusion.1", "XLA Ops", 60), ("copy.2", "XLA Ops", 30)]


def test_events_of_another_program_are_left_out():
    mine, other = _event("a", 0, 10), Kernel("b", "/device:GPU:0", "Stream", 0, 10, "b", "jit_other")
    assert program_events([mine, other], LOOP) == [mine]


def _conv_program() -> str:
    """The stored H200 program of a 3x3 conv 256->256 bf16 at batch 32, at the traced workload's batch of 64 (its
    instructions and their names are the trace's: the kernel transposed, then cuDNN)."""
    entries = json.loads((FIXTURES / "gpu_hlo_fixtures.json").read_text())["entries"]
    text = next(entry for entry in entries if entry["name"] == "conv_std_bf16_big")["hlo_optimized"]
    return text.replace("[32,56,56,256]", "[64,56,56,256]").replace("HloModule jit__lambda", "HloModule jit_apply")


def test_the_stored_h200_conv_trace_is_all_in_the_programs_instructions():
    events = instruction_events(FIXTURES / "conv_bf16.xplane.pb")
    report = program_report(_conv_program(), "conv", "gpu", "NVIDIA H200")
    meta = next(trace for trace in json.loads((FIXTURES / "gpu_traces.json").read_text())["traces"]
                if trace["name"] == "conv_bf16")
    result = profile_of(report, program_events(events, report.compiler.hlo_text), meta["calls"],
                        meta["loop_seconds_per_call"])
    assert not result.unattributed and report.compiler.flops == meta["hlo_flops"]
    kernel_seconds = sum(event.duration_ns for event in events) / 1e9 / 20
    span_seconds = (max(event.end_ns for event in events) - min(event.start_ns for event in events)) / 1e9 / 20
    assert result.seconds_traced == pytest.approx(span_seconds) and 0.8 < result.trace_ratio < 1.2
    # one stream, nothing at once: all of the kernels' time is the instructions', as a share of the step
    assert sum(result.instruction_seconds.values()) / result.seconds_step == pytest.approx(kernel_seconds /
                                                                                            span_seconds)
    assert set(result.instruction_seconds) == {"wrapped_transpose", "cudnn-conv.1"}
    assert result.instruction_seconds["cudnn-conv.1"] > 0.9 * sum(result.instruction_seconds.values())
    rows = {row.path: row for row in result.rows}
    assert rows["Conv"].seconds == pytest.approx(result.instruction_seconds["cudnn-conv.1"])
    assert sum(row.seconds for row in result.rows) == pytest.approx(result.seconds_busy + result.seconds_idle)
    assert rows["Conv"].flops_per_second == pytest.approx(rows["Conv"].compiler_flops / rows["Conv"].seconds)
    assert rows["Conv"].bound == "compute" and 0.5 < rows["Conv"].speed_of_light < 1.0  # 989 TFLOP/s, 4.8 TB/s


def test_a_trace_of_another_program_is_said_to_be_one():
    report = program_report(LOOP, "loop")
    events = instruction_events(FIXTURES / "conv_bf16.xplane.pb")
    assert profile_of(report, events, 20, 1e-3).unattributed == ("cudnn-conv.1", "wrapped_transpose")
    with pytest.raises(ValueError, match="^trace: no instruction of the program ran in it"):
        profile_of(report, program_events(events, LOOP), 20, 1e-3)


pytestmark = pytest.mark.cpu


def _check_adds_up(result) -> None:
    assert not result.unattributed  # every traced execution is an instruction of the compiled program
    assert result.rows[-1].path == f"({IDLE})" and result.rows[-1].seconds == pytest.approx(result.seconds_idle)
    assert sum(row.seconds for row in result.rows) == pytest.approx(result.seconds_busy + result.seconds_idle)
    assert sum(row.time_share for row in result.rows) == pytest.approx(1.0)


def test_mobilenet_forward_on_the_cpu_adds_up():
    result = profile(build("mobilenet_v2"), jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32),
                     repeats=3, seconds_per_repeat=0.05, seconds_budget=1.0)
    _check_adds_up(result)
    rows = {row.path: row for row in result.rows}
    assert rows["block1/depthwise/Conv_0"].seconds > 0
    # a CPU has no datasheet bandwidth: without a measured one there is no roofline, nor a ridge to bound by
    assert rows["classifier"].roofline_seconds is None and rows["classifier"].bound in (None, "overhead")
    measured = profile(build("mobilenet_v2"), jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32), repeats=3,
                       seconds_per_repeat=0.05, seconds_budget=1.0, ceilings=(50e9, 10e9))
    classifier = {row.path: row for row in measured.rows}["classifier"]
    assert classifier.roofline_seconds == max(classifier.compiler_flops / measured.peak_flops_per_second,
                                              classifier.compiler_bytes / 10e9)
    assert classifier.bound in ("memory", "overhead")  # 0.5 FLOPs a byte, under the ridge


def test_a_resnet_training_step_on_the_cpu_adds_up_and_its_mfu_is_the_model_flops_over_the_step():
    result = profile(build("resnet50"), jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32), mode="train",
                     repeats=3, seconds_per_repeat=0.05, seconds_budget=1.0)
    _check_adds_up(result)
    peak = result.peaks.peak(result.precision)
    assert result.mfu == result.report.flops / (result.seconds_step * peak)
    assert result.hfu == result.report.compiler.flops / (result.seconds_step * peak)
    assert result.report.flops < result.report.compiler.flops  # the norms' backward has no formula


class Twins(nn.Module):
    @nn.compact
    def __call__(self, x):
        # the same layer, on a sixteenth of the batch and on all of it, one after the other (nothing runs at once)
        light = nn.Dense(512, name="light")(x[: x.shape[0] // 16])
        return nn.Dense(512, name="heavy")(x + light.sum())


def test_a_layer_sixteen_times_heavier_than_its_twin_takes_at_least_eight_times_its_time():
    result = profile(Twins(), jax.ShapeDtypeStruct((1024, 512), jnp.float32), repeats=5, seconds_per_repeat=0.05,
                     seconds_budget=2.0)
    rows = {row.path: row for row in result.rows}
    assert rows["heavy"].compiler_flops == 16 * rows["light"].compiler_flops
    assert rows["heavy"].seconds >= 8 * rows["light"].seconds


class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        for _ in range(6):
            x = nn.tanh(nn.Dense(4)(x))
        return x


def test_tiny_layers_at_batch_one_are_overhead_bound():
    """A layer's regime is judged by a majority of three profiles: its instructions take well under a microsecond,
    and one that happens to wait on another process in one run looks like work in that run."""
    runs = [profile(Tiny(), jax.ShapeDtypeStruct((1, 4), jnp.float32), repeats=3, seconds_per_repeat=0.05,
                    seconds_budget=1.0) for _ in range(3)]
    votes: dict[str, int] = {}
    for run in runs:
        for row in run.rows:
            if row.path.startswith("Dense_"):
                votes[row.path] = votes.get(row.path, 0) + (row.bound == "overhead")
    assert len(votes) == 6
    assert sum(count >= 2 for count in votes.values()) > len(votes) / 2, votes


def test_a_target_has_nothing_to_profile():
    with pytest.raises(ValueError, match="^target: tpu:v5e:2x2 is compiled here and nothing runs there"):
        profile(Tiny(), jax.ShapeDtypeStruct((1, 4), jnp.float32), target="tpu:v5e:2x2")


def _user_run(tmp_path, function, *args, calls=3):
    """What a user has: an HLO dump of the compile and a trace of a few calls."""
    dump, trace = tmp_path / "dump", tmp_path / "trace"
    executable = jax.jit(function).lower(*args).compile(compiler_options={"xla_dump_to": str(dump)})
    jax.block_until_ready(executable(*args))
    with jax.profiler.trace(str(trace)):
        for _ in range(calls):
            out = executable(*args)
        jax.block_until_ready(out)
    return dump, trace


def _mlp(params, x):
    for index, weight in enumerate(params):
        with jax.named_scope(f"layer{index}"):
            x = jnp.tanh(x @ weight)
    return x


def test_the_command_line_profiles_a_trace_from_a_users_own_run(tmp_path, capsys):
    from jaxcost.cli import main

    params = [jnp.ones((64, 64)) / 64 for _ in range(3)]
    dump, trace = _user_run(tmp_path, _mlp, params, jnp.ones((32, 64)))
    assert main(["profile", str(trace), "--hlo", str(dump), "--calls", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"trace: {trace} (") and "3 calls)" in out.splitlines()[0]
    assert "\nlayer0 .. layer2  (x3)  scope " in out  # the named scopes are the rows (alike, so collapsed)
    assert "\n(device idle)  " in out
    assert "time per step:" in out and "busy +" in out
    assert main(["profile", str(trace), "--hlo", str(dump), "--calls", "3", "--by", "op"]) == 0
    assert "instruction" in capsys.readouterr().out.splitlines()[1]


def test_a_wrong_trace_or_hlo_is_one_line_naming_it(tmp_path, capsys):
    from jaxcost.cli import main

    params = [jnp.ones((64, 64)) for _ in range(2)]
    dump, trace = _user_run(tmp_path, _mlp, params, jnp.ones((8, 64)))
    other = tmp_path / "other.txt"
    other.write_text(LOOP)
    not_a_trace = tmp_path / "notes.xplane.pb"
    not_a_trace.write_text("my notes")
    cases = [
        (["profile", str(not_a_trace), "--hlo", str(dump)], f"trace: {str(not_a_trace)!r} is not a jax.profiler trace"),
        (["profile", str(tmp_path / "none"), "--hlo", str(dump)], "trace: no such trace file"),
        (["profile", str(trace), "--hlo", str(other)], f"trace: no instruction of the program in {str(other)!r} ran"),
        (["profile", str(trace), "--hlo", str(tmp_path / "missing.txt")], "--hlo: no such file"),
        (["profile", str(trace), "--hlo", str(not_a_trace)], "--hlo: "),
        (["profile", str(trace), "--hlo", str(dump), "--calls", "0"], "--calls: must be a positive integer"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert captured.err.startswith(f"jaxcost: error: {message}") and captured.err.count("\n") == 1, captured.err
        assert captured.out == ""  # nothing half-printed
    renamed = tmp_path / "renamed.txt"  # the same program, its instructions named otherwise
    text = next(dump.glob("*after_optimizations.txt")).read_text()
    renamed.write_text(text.replace("fusion", "fused"))
    assert main(["profile", str(trace), "--hlo", str(renamed)]) == 2
    assert "instructions of the trace are not in" in capsys.readouterr().err


def test_the_command_line_adds_the_time_columns_and_carries_them_in_json(capsys):
    import json as json_module

    from jaxcost.cli import main

    assert main(["model", "tests.test_profile:Tiny", "--input", "1,4", "--time", "--sort", "seconds"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("module "))
    assert header.split()[-9:] == ["share", "time", "time", "share", "FLOP/s", "bytes/s", "of", "roofline", "bound"]
    assert "(device idle)" in out and "time per step:" in out and "MFU" in out
    assert main(["model", "tests.test_profile:Tiny", "--input", "1,4", "--time", "--json"]) == 0
    data = json_module.loads(capsys.readouterr().out)
    assert data["profile"]["seconds_step"] > 0 and data["rows"][-1]["path"] == "(device idle)"
    assert sum(row["seconds"] for row in data["rows"]) == pytest.approx(data["profile"]["seconds_step"])
    assert main(["model", "tests.test_profile:Tiny", "--input", "1,4", "--sort", "seconds"]) == 2
    assert "sort: seconds is measured, and this report was not profiled" in capsys.readouterr().err
    assert main(["model", "mobilenet_v2", "--time", "--target", "tpu:v5e:2x2"]) == 2
    assert "--time: a target is compiled here and nothing runs there" in capsys.readouterr().err


def test_the_command_line_draws_where_the_time_goes(tmp_path, capsys):
    from jaxcost.cli import main

    path = tmp_path / "tiny"
    assert main(["model", "tests.test_profile:Tiny", "--input", "1,4", "--time", "--plot", str(path)]) == 0
    assert f"profile plot: {path}.png, {path}.svg" in capsys.readouterr().out
    assert path.with_suffix(".png").stat().st_size > 10_000
    for argv, message in ((["--plot", str(path)], "--plot: needs --time"),
                          (["--time", "--json", "--plot", str(path)], "--plot: is drawn beside the tables"),
                          (["--time", "--plot", str(tmp_path / "no" / "such")], "--plot: the folder")):
        assert main(["model", "tests.test_profile:Tiny", "--input", "1,4", *argv]) == 2
        assert capsys.readouterr().err.startswith(f"jaxcost: error: {message}")
