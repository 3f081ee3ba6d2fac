"""Device peaks, the precision rule, utilization arithmetic, and the benchmark loop on the CPU."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc
from jaxcost.measure import hardware
from jaxcost.measure.roofline import Utilization
from jaxcost.measure.timing import benchmark
from jaxcost.reports.plots import Roof, RooflinePoint, plot_roofline, pyplot, roofline_figure

T = 1e12


@pytest.mark.parametrize(("kind", "name", "bf16", "bandwidth"), [
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM", 989.4, 3.35),
    ("H100 80GB HBM3", "NVIDIA H100 SXM", 989.4, 3.35),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe", 756.5, 2.0),
    ("H100 PCIe", "NVIDIA H100 PCIe", 756.5, 2.0),
    ("NVIDIA H200", "NVIDIA H200", 989, 4.8),
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 SXM 40GB", 312, 1.555),
    ("A100-SXM4-40GB", "NVIDIA A100 SXM 40GB", 312, 1.555),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 SXM 80GB", 312, 2.039),
    ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 PCIe 40GB", 312, 1.555),
    ("NVIDIA A100 80GB PCIe", "NVIDIA A100 PCIe 80GB", 312, 1.935),
    ("NVIDIA L4", "NVIDIA L4", 121, 0.3),
    ("L4", "NVIDIA L4", 121, 0.3),
    ("TPU v4", "TPU v4", 275, 1.2),
    ("TPU v5 lite", "TPU v5e", 197, 0.819),
    ("TPU v5e", "TPU v5e", 197, 0.819),
    ("TPU v5", "TPU v5p", 459, 2.765),
    ("TPU v5p", "TPU v5p", 459, 2.765),
    ("TPU v6 lite", "TPU v6e", 918, 1.638),
])
def test_peak_lookup_for_every_device_kind(kind, name, bf16, bandwidth):
    peaks = hardware.lookup(kind)
    assert peaks is not None and peaks.name == name
    assert peaks.peak("bf16") == pytest.approx(bf16 * T)
    assert peaks.bytes_per_second == pytest.approx(bandwidth * T)
    assert peaks.source


def test_unknown_device_gets_no_invented_peaks():
    assert hardware.lookup("Some Future GPU") is None
    peaks = hardware.device_peaks("Some Future GPU", "gpu")
    assert peaks.flops_per_second == {} and peaks.bytes_per_second is None


@pytest.mark.parametrize(("kind", "dtype", "precision", "key"), [
    ("NVIDIA H100 80GB HBM3", "float32", "default", "tf32"),
    ("NVIDIA H100 80GB HBM3", "float32", "highest", "fp32"),
    ("NVIDIA A100-SXM4-40GB", "float32", "default", "tf32"),
    ("NVIDIA H100 80GB HBM3", "bfloat16", "default", "bf16"),
    ("NVIDIA H100 80GB HBM3", "float16", "default", "fp16"),
    ("NVIDIA H100 80GB HBM3", "int8", "default", "int8"),
    ("TPU v4", "float32", "default", "bf16"),
])
def test_precision_rule(kind, dtype, precision, key):
    chosen, reason = hardware.precision_for(hardware.lookup(kind), dtype, precision)
    assert chosen == key and reason


def test_h100_tf32_and_fp32_peaks_differ_sevenfold():
    h100 = hardware.lookup("NVIDIA H100 80GB HBM3")
    assert h100.peak("tf32") / h100.peak("fp32") == pytest.approx(494.7 / 66.9)


CPUINFO = """processor\t: 0
physical id\t: 0
core id\t\t: 0
model name\t: Test CPU
cpu MHz\t\t: 3000.000
flags\t\t: fpu sse avx avx2 fma

processor\t: 1
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse avx avx2 fma

processor\t: 2
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu sse avx avx2 fma

"""

CPUINFO_SAMPLES = Path(__file__).parent / "fixtures" / "cpuinfo"


def test_cpu_estimate_counts_physical_cores_and_vector_width():
    peaks = hardware.cpu_peaks(CPUINFO)
    assert hardware.physical_cores(CPUINFO) == 2  # three hardware threads on two cores
    assert peaks.peak("fp32") == 2 * 3.0e9 * 32  # AVX2 + FMA: 2 units x 8 lanes x 2 flops, at the stated cpu MHz
    assert peaks.rule == "AVX2 + FMA: 256-bit units, 2 FMA units x 8 lanes -> 32 FP32 FLOPs/cycle"
    assert peaks.estimate and peaks.bytes_per_second is None and peaks.last_level_cache_bytes is None
    for dtype in ("bfloat16", "float16"):  # converted to float32 around each operation on the CPU
        assert hardware.precision_for(peaks, dtype)[0] == "fp32"


# (sample, model name, physical cores listed, cpu MHz, FP32 FLOPs a cycle, the rule said)
CPU_RULES = [
    ("amd_zen1_epyc_7601.txt", "AMD EPYC 7601 32-Core Processor", 2, 2200, 16,
     "Zen/Zen+: AVX2 split over 128-bit units, 2 FMA units x 4 lanes -> 16 FP32 FLOPs/cycle"),
    ("amd_zen2_epyc_7742.txt", "AMD EPYC 7742 64-Core Processor", 2, 2250, 32,
     "Zen 2: AVX2 on 256-bit units, 2 FMA units x 8 lanes -> 32 FP32 FLOPs/cycle"),
    ("amd_zen3_epyc_this_machine.txt", "AMD EPYC", 2, 2445.414, 32,
     "Zen 3: AVX2 on 256-bit units, 2 FMA units x 8 lanes -> 32 FP32 FLOPs/cycle"),
    ("amd_zen4_epyc_9654.txt", "AMD EPYC 9654 96-Core Processor", 2, 2400, 32,
     "Zen 4: AVX-512 on 256-bit units, 2 FMA units x 8 lanes -> 32 FP32 FLOPs/cycle"),
    ("amd_zen4_ryzen_9_7950x.txt", "AMD Ryzen 9 7950X 16-Core Processor", 2, 4500, 32,
     "Zen 4: AVX-512 on 256-bit units, 2 FMA units x 8 lanes -> 32 FP32 FLOPs/cycle"),
    ("amd_zen5_epyc_9575f.txt", "AMD EPYC 9575F 64-Core Processor", 2, 3300, 64,
     "Zen 5 (EPYC 9005, Ryzen 9000): AVX-512 on full 512-bit units, 2 FMA units x 16 lanes -> 64 FP32 FLOPs/cycle"),
    ("amd_zen5_ryzen_9_9950x.txt", "AMD Ryzen 9 9950X 16-Core Processor", 2, 4300, 64,
     "Zen 5 (EPYC 9005, Ryzen 9000): AVX-512 on full 512-bit units, 2 FMA units x 16 lanes -> 64 FP32 FLOPs/cycle"),
    ("amd_zen5_ryzen_ai_9_hx_370.txt", "AMD Ryzen AI 9 HX 370 w/ Radeon 890M", 2, 2000, 32,
     "Zen 5 mobile (Ryzen AI 300, AI Max): AVX-512 on 256-bit units, 2 FMA units x 8 lanes -> 32 FP32 FLOPs/cycle"),
    ("intel_haswell_xeon_e5_2680_v3.txt", "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", 2, 2500, 32,
     "AVX2 + FMA: 256-bit units, 2 FMA units x 8 lanes -> 32 FP32 FLOPs/cycle"),
    ("intel_skylake_sp_silver_4114.txt", "Intel(R) Xeon(R) Silver 4114 CPU @ 2.20GHz", 2, 2200, 32,
     "Skylake-SP/Cascade Lake, not Platinum or Gold 6xxx (conservative: Gold 5xxx, Silver and Bronze have one FMA "
     "unit, and cpuinfo cannot tell Xeon W or Core X): AVX-512 on 512-bit units, 1 FMA unit x 16 lanes -> 32 FP32 "
     "FLOPs/cycle"),
    ("intel_cascade_lake_platinum_8280.txt", "Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", 2, 2700, 64,
     "Skylake-SP/Cascade Lake Platinum, Gold 6xxx or Gold 5122/5222: AVX-512 on 512-bit units, 2 FMA units x 16 "
     "lanes -> 64 FP32 FLOPs/cycle"),
    ("intel_sapphire_rapids_platinum_8480.txt", "Intel(R) Xeon(R) Platinum 8480+", 2, 2000, 64,
     "Sapphire Rapids: AVX-512 on 512-bit units, 2 FMA units x 16 lanes -> 64 FP32 FLOPs/cycle"),
    ("intel_tiger_lake_i7_1185g7.txt", "11th Gen Intel(R) Core(TM) i7-1185G7 @ 3.00GHz", 2, 3000, 32,
     "Intel model 0x8c, a client AVX-512 part or one not in the table (conservative): AVX-512 on 512-bit units, "
     "1 FMA unit x 16 lanes -> 32 FP32 FLOPs/cycle"),
    ("arm_neoverse_n1.txt", "CPU", 4, 2000, 8,  # no core ids: the 4 processors listed; no cpu MHz: 2 GHz assumed
     "aarch64 ASIMD (no x86 vector flags): 128-bit vectors, counted as a floor (many cores have more units), "
     "1 FMA unit x 4 lanes -> 8 FP32 FLOPs/cycle"),
]


@pytest.mark.parametrize(("sample", "name", "cores", "megahertz", "per_cycle", "rule"), CPU_RULES,
                         ids=[row[0].removesuffix(".txt") for row in CPU_RULES])
def test_cpu_vector_width_by_microarchitecture(sample, name, cores, megahertz, per_cycle, rule):
    cpuinfo = (CPUINFO_SAMPLES / sample).read_text()
    peaks = hardware.cpu_peaks(cpuinfo)
    assert hardware.fp32_flops_per_cycle(hardware.cpu_model(cpuinfo)) == per_cycle
    assert hardware.physical_cores(cpuinfo) == cores
    assert peaks.name == name and peaks.rule == rule
    assert peaks.peak("fp32") == pytest.approx(cores * megahertz * 1e6 * per_cycle, rel=1e-12)
    assert f"  vector rule: {rule}" in str(peaks).splitlines()


def test_every_cpuinfo_sample_has_a_rule_case():
    assert sorted(path.name for path in CPUINFO_SAMPLES.glob("*.txt")) == sorted(row[0] for row in CPU_RULES)


def test_zen4_is_told_by_model_when_a_hypervisor_hides_avx512():
    genoa = hardware.CpuModel("AuthenticAMD", 25, 0x11, "AMD EPYC 9654", frozenset({"avx2", "fma"}))
    assert hardware.vector_rule(genoa)[1].startswith("Zen 4: AVX-512 on 256-bit units")
    milan_flags = hardware.cpu_model((CPUINFO_SAMPLES / "amd_zen3_epyc_this_machine.txt").read_text()).flags
    assert "avx512f" not in milan_flags and {"avx2", "fma"} <= milan_flags


def test_parts_not_in_the_table_fall_back_to_the_flags_conservatively():
    assert hardware.fp32_flops_per_cycle({"avx512f", "avx2", "fma"}) == 32  # was 64 on the flag alone
    assert hardware.fp32_flops_per_cycle({"avx2", "fma"}) == 32
    assert hardware.fp32_flops_per_cycle({"avx2"}) == 8
    assert hardware.fp32_flops_per_cycle(set()) == 8
    zen6 = hardware.CpuModel("AuthenticAMD", 26, 0x50, "AMD EPYC", frozenset({"avx512f", "avx2", "fma"}))
    assert hardware.vector_rule(zen6) == (32, "AVX-512 on a part not in the table (conservative): AVX-512 on 512-bit "
                                              "units, 1 FMA unit x 16 lanes -> 32 FP32 FLOPs/cycle")


def test_cpu_peaks_say_estimate_once():
    peaks = hardware.cpu_peaks((CPUINFO_SAMPLES / "amd_zen3_epyc_this_machine.txt").read_text())
    assert str(peaks).splitlines()[0] == ("peaks: AMD EPYC (estimate): 2 physical cores x 2.45 GHz x 32 fp32 "
                                          "FLOPs/cycle; bfloat16 and float16 convolutions run in float32 on the CPU")
    arm = hardware.cpu_peaks((CPUINFO_SAMPLES / "arm_neoverse_n1.txt").read_text())
    assert str(arm).splitlines()[0].startswith("peaks: CPU (estimate): 4 physical cores x 2.00 GHz (assumed) x 8 ")
    overridden = hardware.with_overrides(peaks, {"bytes_per_second": 1e11})
    assert str(overridden).count("estimate") == 1 and overridden.rule == peaks.rule


def test_overrides(tmp_path):
    path = tmp_path / "peaks.json"
    path.write_text('{"flops_per_second": {"bf16": 5e14}, "bytes_per_second": 2e12}')
    peaks = hardware.with_overrides(hardware.lookup("TPU v4"), hardware.load_overrides(path))
    assert peaks.peak("bf16") == 5e14 and peaks.bytes_per_second == 2e12 and "overrides" in peaks.source
    with pytest.raises(ValueError, match="^overrides: unknown keys"):
        hardware.with_overrides(peaks, {"flops": 1})
    with pytest.raises(ValueError, match="^peaks: cannot read"):
        hardware.load_overrides(tmp_path / "missing.json")


@pytest.mark.parametrize(("text", "message"), [
    ('{"flops_per_second": {"fp32": "fast"}}', "flops_per_second.fp32 must be a positive number of FLOP/s, got 'fast'"),
    ('{"flops_per_second": {"bf16": -1}}', "flops_per_second.bf16 must be a positive number of FLOP/s, got -1"),
    ('{"flops_per_second": {"bf16": true}}', "flops_per_second.bf16 must be a positive number of FLOP/s, got True"),
    ('{"flops_per_second": 9e14}', 'flops_per_second must map a precision to a positive number of FLOP/s, such as '
                                   '{"bf16": 9e14}, got 900000000000000.0'),
    ('{"bytes_per_second": "fast"}', "bytes_per_second must be a positive number of bytes/s, got 'fast'"),
    ('{"last_level_cache_bytes": 1.5}', "last_level_cache_bytes must be a positive whole number of bytes, got 1.5"),
    ('{"name": 7}', "name must be a string, got 7"),
    ('{"flops": 1}', "unknown keys ['flops']; use flops_per_second, bytes_per_second, last_level_cache_bytes, name"),
])
def test_bad_overrides_name_the_file_the_key_and_the_rule(text, message, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        hardware.load_overrides(path)
    assert str(error.value) == f"peaks: {str(path)!r}: {message}"
    with pytest.raises(ValueError) as error:
        hardware.with_overrides(hardware.lookup("TPU v4"), json.loads(text))
    assert str(error.value) == f"overrides: {message}"


def test_utilization_arithmetic_on_known_numbers():
    # 8192^3 bf16 matmul on an H100 SXM in 1.2 ms: 2 * 8192^3 flops, 3 * 8192^2 * 2 bytes
    flops, bytes_accessed = 2 * 8192**3, 3 * 8192**2 * 2
    use = Utilization(flops, bytes_accessed, 1.2e-3, 989.4 * T, 3.35 * T)
    assert use.flops_per_second == pytest.approx(flops / 1.2e-3)
    assert use.compute_utilization == pytest.approx(flops / 1.2e-3 / (989.4 * T))
    assert use.intensity == pytest.approx(8192 / 3)
    assert use.ridge == pytest.approx(989.4 / 3.35)
    assert use.bound == "compute"
    assert use.attainable_flops_per_second == 989.4 * T
    assert use.roofline_fraction == pytest.approx(use.compute_utilization)
    depthwise = Utilization(10**9, 10**9, 1e-3, 989.4 * T, 3.35 * T)  # 1 flop per byte
    assert depthwise.bound == "memory"
    assert depthwise.attainable_flops_per_second == pytest.approx(3.35 * T)
    assert depthwise.memory_utilization == pytest.approx(1e12 / (3.35 * T))
    assert Utilization(1, 1, 1.0, None, None).compute_utilization is None


@pytest.mark.cpu
def test_benchmark_on_the_cpu_reports_every_field():
    spec = jc.standard_conv((2, 16, 16, 8), 16, 3)
    measurement = benchmark(spec, repeats=3, seconds_per_repeat=0.01, ceilings=(1e15, 1e15))
    cost = jc.analytic(spec)
    assert measurement.flops == jc.compiled(spec).flops == cost.flops  # the recount, never MACs
    assert measurement.macs == cost.macs
    assert 0 < measurement.seconds_min <= measurement.seconds_median <= measurement.seconds_max
    assert measurement.seconds_compile > 0 and measurement.calls_per_repeat >= 1 and measurement.repeats == 3
    assert measurement.flops_per_second == pytest.approx(cost.flops / measurement.seconds_median)
    assert 0 < measurement.measured_utilization.compute_utilization <= 1
    assert measurement.peaks.estimate and measurement.precision == "fp32"
    assert measurement.cache_warning is not None  # 20 kB fits in any cache
    assert "NOT FLOP/s" in measurement.mac_trap and "back-to-back" in measurement.method
    rotated = benchmark(spec, repeats=3, seconds_per_repeat=0.01, rotate=2)
    assert rotated.cache_warning is None and rotated.rotate == 2


def test_benchmark_a_function_and_bad_arguments():
    x = jax.ShapeDtypeStruct((64, 64), jnp.float32)
    measurement = benchmark(jnp.matmul, x, x, repeats=3, seconds_per_repeat=0.01)
    assert measurement.flops == 2 * 64**3
    with pytest.raises(ValueError, match="^repeats:"):
        benchmark(jnp.matmul, x, x, repeats=0)
    with pytest.raises(ValueError, match="^rotate:"):
        benchmark(jnp.matmul, x, x, rotate=-1)
    with pytest.raises(ValueError, match="^mode:"):
        benchmark(jc.dense((2, 3), 4), mode="inference")


def test_a_roofline_legend_names_what_varies_and_its_title_once_what_every_point_shares():
    """A bench of bfloat16 layers and a matmul (bench/gpu_perf.py): "bfloat16" once in the title, not on every
    point; a lone point keeps its whole label."""
    points = [RooflinePoint("matmul 8192^3 bfloat16", 2700.0, 7e14),
              RooflinePoint("conv3x3 256->256 s1 SAME bfloat16", 300.0, 6e14),
              RooflinePoint("conv3x3 64->64 dw(m=1) s1 SAME bfloat16", 4.0, 2e12)]
    roofs = [Roof("datasheet bf16", "bf16", 9.9e14, 4.8e12)]
    figure = roofline_figure(points, roofs, "roofline on NVIDIA H200")
    texts = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert texts[1:] == ["1. matmul 8192^3", "2. conv3x3 256->256 s1 SAME", "3. conv3x3 64->64 dw(m=1) s1 SAME"]
    assert figure.axes[0].get_title() == "roofline on NVIDIA H200\nevery point: bfloat16"
    lone = roofline_figure(points[:1], roofs)
    assert [text.get_text() for text in lone.axes[0].get_legend().get_texts()][1:] == ["1. matmul 8192^3 bfloat16"]
    assert lone.axes[0].get_title() == "roofline"
    pyplot().close("all")


def test_roofline_plot_writes_png_and_svg(tmp_path):
    points = [RooflinePoint("conv3x3", 150.0, 8e10), RooflinePoint("depthwise", 2.3, 4e9)]
    roofs = [Roof("datasheet fp32", "fp32", 3.3e11, 2e10), Roof("measured", "measured", 1.7e11, 7e9)]
    written = plot_roofline(points, roofs, tmp_path / "roof")
    assert [p.suffix for p in written] == [".png", ".svg"]
    assert all(p.stat().st_size > 1000 for p in written)
