"""Device peaks, the precision rule, utilization arithmetic, and the benchmark loop on the CPU."""

import jax
import jax.numpy as jnp
import pytest

import jaxcost as jc
from jaxcost.measure import hardware
from jaxcost.measure.roofline import Utilization
from jaxcost.measure.timing import benchmark
from jaxcost.reports.plots import Roof, RooflinePoint, plot_roofline

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


def test_cpu_estimate_counts_physical_cores_and_vector_width(monkeypatch):
    monkeypatch.setattr(hardware, "_clock_hertz", lambda text: 3.0e9)
    peaks = hardware.cpu_peaks(CPUINFO)
    assert hardware.physical_cores(CPUINFO) == 2  # three hardware threads on two cores
    assert peaks.peak("fp32") == 2 * 3.0e9 * 32  # AVX2 + FMA: 2 units x 8 lanes x 2 flops
    assert peaks.estimate and "estimate" in peaks.source and peaks.bytes_per_second is None
    for dtype in ("bfloat16", "float16"):  # converted to float32 around each operation on the CPU
        assert hardware.precision_for(peaks, dtype)[0] == "fp32"
    assert hardware.fp32_flops_per_cycle({"avx512f"}) == 64
    assert hardware.fp32_flops_per_cycle(set()) == 8


def test_overrides(tmp_path):
    path = tmp_path / "peaks.json"
    path.write_text('{"flops_per_second": {"bf16": 5e14}, "bytes_per_second": 2e12}')
    peaks = hardware.with_overrides(hardware.lookup("TPU v4"), hardware.load_overrides(path))
    assert peaks.peak("bf16") == 5e14 and peaks.bytes_per_second == 2e12 and "overrides" in peaks.source
    with pytest.raises(ValueError, match="^overrides: unknown keys"):
        hardware.with_overrides(peaks, {"flops": 1})
    with pytest.raises(ValueError, match="^peaks: cannot read"):
        hardware.load_overrides(tmp_path / "missing.json")


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


def test_roofline_plot_writes_png_and_svg(tmp_path):
    points = [RooflinePoint("conv3x3", 150.0, 8e10), RooflinePoint("depthwise", 2.3, 4e9)]
    roofs = [Roof("datasheet fp32", "fp32", 3.3e11, 2e10), Roof("measured", "measured", 1.7e11, 7e9)]
    written = plot_roofline(points, roofs, tmp_path / "roof")
    assert [p.suffix for p in written] == [".png", ".svg"]
    assert all(p.stat().st_size > 1000 for p in written)
