"""Device peaks: datasheet FLOP/s per dtype and precision and memory bandwidth, the rule that picks the
peak matching what actually ran, a CPU estimate, and user overrides. No JAX at import time.

Figures are dense (no structured sparsity), from vendor datasheets and the Cloud TPU documentation.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from jaxcost.reports.text import format_bytes, format_rate

T = 1e12
#: The dtypes whose peak ``DevicePeaks`` says it holds them against.
DTYPES = ("float32", "bfloat16", "float16", "int8")

NVIDIA_H100_SOURCE = "NVIDIA H100 Tensor Core GPU datasheet (dense)"
NVIDIA_A100_SOURCE = "NVIDIA A100 Tensor Core GPU datasheet (dense)"
TPU_SOURCE = "Cloud TPU documentation, system architecture"


@dataclass(frozen=True)
class DevicePeaks:
    """Peak FLOP/s per precision ("fp32", "tf32", "bf16", "fp16", "fp8", "int8") and memory bandwidth in bytes/s."""

    name: str
    flops_per_second: dict[str, float]
    bytes_per_second: float | None
    source: str
    last_level_cache_bytes: int | None = None
    estimate: bool = False
    platform: str = ""

    def peak(self, precision: str) -> float | None:
        return self.flops_per_second.get(precision)

    def __repr__(self) -> str:
        kind = "estimate" if self.estimate else "datasheet"
        return f"DevicePeaks({self.name!r}, {kind}, {', '.join(sorted(self.flops_per_second))})"

    def __str__(self) -> str:
        """The roofs, their source, and which peak each dtype is held against."""
        lines = [f"peaks: {self.name} ({'estimate' if self.estimate else 'datasheet'}): {self.source}"]
        for key, value in sorted(self.flops_per_second.items()):
            lines.append(f"  {key:<5} {format_rate(value)}")
        bandwidth = format_bytes(self.bytes_per_second) + "/s" if self.bytes_per_second else "unknown (use measured)"
        lines.append(f"  memory bandwidth {bandwidth}")
        if self.last_level_cache_bytes:
            lines.append(f"  last-level cache {self.last_level_cache_bytes / 2**20:.0f} MiB")
        if self.flops_per_second:
            for dtype in DTYPES:
                key, why = precision_for(self, dtype)
                lines.append(f"  {dtype} is held against {key}: {why}")
        return "\n".join(lines)


def _gpu(name: str, fp32: float, tf32: float, bf16: float, fp8: float | None, int8: float, bandwidth: float,
         source: str, l2_megabytes: int) -> DevicePeaks:
    peaks = {"fp32": fp32 * T, "tf32": tf32 * T, "bf16": bf16 * T, "fp16": bf16 * T, "int8": int8 * T}
    if fp8:
        peaks["fp8"] = fp8 * T
    return DevicePeaks(name, peaks, bandwidth * T, source, l2_megabytes * 2**20)


def _tpu(name: str, bf16: float, int8: float, bandwidth: float, fp8: float | None = None) -> DevicePeaks:
    peaks = {"bf16": bf16 * T, "int8": int8 * T}
    if fp8:
        peaks["fp8"] = fp8 * T
    return DevicePeaks(name, peaks, bandwidth * T, TPU_SOURCE)


#: (pattern on the lower-cased device_kind with any "nvidia " prefix removed, peaks); first match wins.
DEVICES: list[tuple[str, DevicePeaks]] = [
    (r"h100.*pcie", _gpu("NVIDIA H100 PCIe", 51, 378, 756.5, 1513, 1513, 2.0, NVIDIA_H100_SOURCE, 50)),
    (r"h100 nvl", _gpu("NVIDIA H100 NVL", 60, 417.5, 835.5, 1670.5, 1670.5, 3.9, "NVIDIA H100 NVL datasheet (dense)",
                       50)),
    (r"(?<![a-z])h100", _gpu("NVIDIA H100 SXM", 66.9, 494.7, 989.4, 1978.9, 1978.9, 3.35, NVIDIA_H100_SOURCE, 50)),
    (r"(?<![a-z])h200", _gpu("NVIDIA H200", 67, 494.7, 989, 1979, 1979, 4.8, "NVIDIA H200 datasheet (dense)", 50)),
    (r"a100.*(80gb|80g).*pcie|a100.*pcie.*80", _gpu("NVIDIA A100 PCIe 80GB", 19.5, 156, 312, None, 624, 1.935,
                                                    NVIDIA_A100_SOURCE, 40)),
    (r"a100.*pcie", _gpu("NVIDIA A100 PCIe 40GB", 19.5, 156, 312, None, 624, 1.555, NVIDIA_A100_SOURCE, 40)),
    (r"a100.*80", _gpu("NVIDIA A100 SXM 80GB", 19.5, 156, 312, None, 624, 2.039, NVIDIA_A100_SOURCE, 40)),
    (r"a100", _gpu("NVIDIA A100 SXM 40GB", 19.5, 156, 312, None, 624, 1.555, NVIDIA_A100_SOURCE, 40)),
    (r"\bl4\b", _gpu("NVIDIA L4", 30.3, 60, 121, 242.5, 242.5, 0.3, "NVIDIA L4 datasheet (dense)", 48)),
    (r"tpu v6( lite|e)", _tpu("TPU v6e", 918, 1836, 1.638, fp8=918)),
    (r"tpu v5( lite|e)", _tpu("TPU v5e", 197, 394, 0.819)),
    (r"tpu v5p?$|tpu v5p", _tpu("TPU v5p", 459, 918, 2.765)),
    (r"tpu v4(?! lite)", _tpu("TPU v4", 275, 275, 1.2)),
]

#: GPUs whose tensor cores run float32 matmuls and convolutions as TF32 at JAX's default precision.
TF32_BY_DEFAULT = ("A100", "H100", "H200", "L4")


def normalize_kind(device_kind: str) -> str:
    kind = device_kind.strip().lower()
    return kind[len("nvidia "):] if kind.startswith("nvidia ") else kind


def lookup(device_kind: str) -> DevicePeaks | None:
    """The datasheet peaks for a JAX ``device_kind`` string, or None for a device not in the table."""
    kind = normalize_kind(device_kind)
    for pattern, peaks in DEVICES:
        if re.search(pattern, kind):
            return peaks
    return None


def precision_for(peaks: DevicePeaks, dtype: str, precision: str = "default") -> tuple[str, str]:
    """The peak that matches what ran: (precision key, why).

    float32 at JAX's default precision runs as TF32 on Ampere and Hopper tensor cores, and as one
    bfloat16 pass on TPUs; ``precision="highest"`` keeps true float32. On the CPU bfloat16 and float16
    run in float32.
    """
    if dtype in ("bfloat16", "float16") and peaks.platform == "cpu":
        return "fp32", f"{dtype} runs in float32 on the CPU (converted around each operation)"
    if dtype in ("bfloat16", "float16"):
        key = "bf16" if dtype == "bfloat16" else "fp16"
        return key, f"{dtype} runs on the {key} units"
    if dtype == "int8":
        return "int8", "int8 runs on the integer units"
    if dtype in ("float8_e4m3fn", "float8_e5m2"):
        return "fp8", "fp8 runs on the fp8 units"
    if peaks.name.startswith("TPU"):
        if precision == "highest":
            return "bf16", ("float32 at HIGHEST precision on a TPU: several bfloat16 passes "
                            "(the bf16 peak is an upper bound)")
        return "bf16", "float32 at default precision on a TPU runs as one bfloat16 pass"
    if precision == "default" and any(name in peaks.name for name in TF32_BY_DEFAULT):
        return "tf32", "float32 at JAX's default precision runs as TF32 on this GPU's tensor cores"
    return "fp32", "float32 on the float32 units"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def physical_cores(cpuinfo: str | None = None) -> int:
    """Physical cores (not hardware threads), from /proc/cpuinfo where it says; else the CPU count."""
    text = cpuinfo if cpuinfo is not None else _cpuinfo()
    cores = set()
    physical = core = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip() and core is not None:
            cores.add((physical, core))
            physical = core = None
    if core is not None:
        cores.add((physical, core))
    return len(cores) or os.cpu_count() or 1


def _clock_hertz(cpuinfo: str) -> float | None:
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) * 1e3
    except (OSError, ValueError):
        pass
    match = re.search(r"cpu MHz\s*:\s*([\d.]+)", cpuinfo)
    return float(match.group(1)) * 1e6 if match else None


def fp32_flops_per_cycle(flags: set[str]) -> int:
    """Float32 FLOPs per cycle per core: 2 FMA units of 16 lanes (AVX-512), of 8 (AVX2+FMA), else 4-wide SSE."""
    if "avx512f" in flags:
        return 64
    if "avx2" in flags and "fma" in flags:
        return 32
    return 8


def last_level_cache_bytes() -> int | None:
    """The CPU's last-level cache size, from sysfs."""
    for index in (3, 2):
        try:
            text = Path(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size").read_text().strip()
        except OSError:
            continue
        number, unit = int(re.match(r"\d+", text).group()), text[-1].upper()
        return number * {"K": 2**10, "M": 2**20, "G": 2**30}.get(unit, 1)
    return None


def cpu_peaks(cpuinfo: str | None = None) -> DevicePeaks:
    """An estimate for this CPU: physical cores x clock x float32 FLOPs per cycle (its vector ISA).

    There is no datasheet bandwidth: use the measured ceiling (a STREAM-style triad) for memory.
    """
    text = cpuinfo if cpuinfo is not None else _cpuinfo()
    match = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    flags = set(match.group(1).split()) if match else set()
    cores, clock = physical_cores(text), _clock_hertz(text) or 2.0e9
    per_cycle = fp32_flops_per_cycle(flags)
    fp32 = cores * clock * per_cycle
    model = re.search(r"model name\s*:\s*(.*)", text)
    name = model.group(1).strip() if model else "CPU"
    note = (f"estimate: {cores} physical cores x {clock / 1e9:.2f} GHz x {per_cycle} fp32 FLOPs/cycle; "
            "bfloat16 and float16 convolutions run in float32 on the CPU")
    return DevicePeaks(name, {"fp32": fp32, "int8": 2 * fp32}, None, note, last_level_cache_bytes(), estimate=True,
                       platform="cpu")


def with_overrides(peaks: DevicePeaks, overrides: dict) -> DevicePeaks:
    """Peaks with user figures in place: ``{"flops_per_second": {"bf16": 9e14}, "bytes_per_second": 3e12}``."""
    unknown = set(overrides) - {"flops_per_second", "bytes_per_second", "name", "last_level_cache_bytes"}
    if unknown:
        raise ValueError(f"overrides: unknown keys {sorted(unknown)}; use flops_per_second, bytes_per_second, "
                         "name, last_level_cache_bytes")
    flops = {**peaks.flops_per_second, **{k: float(v) for k, v in overrides.get("flops_per_second", {}).items()}}
    return replace(peaks, flops_per_second=flops,
                   bytes_per_second=float(overrides.get("bytes_per_second", peaks.bytes_per_second or 0)) or None,
                   name=overrides.get("name", peaks.name),
                   last_level_cache_bytes=overrides.get("last_level_cache_bytes", peaks.last_level_cache_bytes),
                   source=peaks.source + "; user overrides", estimate=peaks.estimate)


def load_overrides(path: str | os.PathLike) -> dict:
    """User overrides from a JSON file (see ``with_overrides``)."""
    try:
        overrides = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"peaks: cannot read overrides from {str(path)!r}: {error}") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"peaks: {str(path)!r} must hold a JSON object such as "
                         '{"flops_per_second": {"bf16": 9e14}, "bytes_per_second": 3e12}')
    return overrides


def device_peaks(device_kind: str, platform: str) -> DevicePeaks:
    """Datasheet peaks for a device, or for a CPU an estimate; an unknown accelerator gets empty peaks."""
    if platform == "cpu":
        return cpu_peaks()
    found = lookup(device_kind)
    if found is not None:
        return found
    return DevicePeaks(device_kind, {}, None, "not in jaxcost's table: give peaks with overrides")
