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
    #: How a CPU estimate counted FLOPs a cycle (``vector_rule``); empty for datasheet peaks.
    rule: str = ""

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
        if self.rule:
            lines.append(f"  vector rule: {self.rule}")
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
    """Physical cores (not hardware threads), from /proc/cpuinfo where it says; else the processors it lists, else
    the CPU count."""
    text = cpuinfo if cpuinfo is not None else _cpuinfo()
    cores = set()
    processors = 0
    physical = core = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            processors += 1
        elif key == "physical id":
            physical = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip() and core is not None:
            cores.add((physical, core))
            physical = core = None
    if core is not None:
        cores.add((physical, core))
    return len(cores) or processors or os.cpu_count() or 1


def _clock_hertz(cpuinfo: str, host: bool) -> float | None:
    """The maximum clock from sysfs when ``cpuinfo`` is this host's, else the "cpu MHz" it states."""
    if host:
        try:
            return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) * 1e3
        except (OSError, ValueError):
            pass
    match = re.search(r"cpu MHz\s*:\s*([\d.]+)", cpuinfo)
    return float(match.group(1)) * 1e6 if match else None


@dataclass(frozen=True)
class CpuModel:
    """What /proc/cpuinfo says of the first processor: vendor, family and model numbers, model name, flags."""

    vendor: str = ""
    family: int | None = None
    model: int | None = None
    name: str = ""
    flags: frozenset[str] = frozenset()


def cpu_model(cpuinfo: str) -> CpuModel:
    """The first processor's entry of a /proc/cpuinfo text (x86 ``flags``, or aarch64 ``Features``)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip() and fields:
            break
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    family, model = fields.get("cpu family", ""), fields.get("model", "")
    return CpuModel(fields.get("vendor_id", ""), int(family) if family.isdigit() else None,
                    int(model) if model.isdigit() else None, fields.get("model name", ""),
                    frozenset((fields.get("flags") or fields.get("Features") or "").split()))


def _rule(label: str, datapath: str, fma_units: int, vector_bits: int) -> tuple[int, str]:
    """(FP32 FLOPs a cycle, the rule in words) for ``fma_units`` fused multiply-add units ``vector_bits`` wide."""
    lanes = vector_bits // 32
    flops_per_cycle = fma_units * lanes * 2  # a multiply and an add per lane
    units = f"{fma_units} FMA unit{'s' if fma_units > 1 else ''}"
    return flops_per_cycle, f"{label}: {datapath}, {units} x {lanes} lanes -> {flops_per_cycle} FP32 FLOPs/cycle"


def _amd_rule(cpu: CpuModel) -> tuple[int, str] | None:
    """Zen generations by family and model, as Linux's arch/x86/kernel/cpu/amd.c (bsp_init_amd) splits them."""
    family, model = cpu.family, cpu.model
    if family == 23 and (model <= 0x2f or 0x50 <= model <= 0x5f):
        # Zen/Zen+ run each 256-bit AVX operation as two halves on 128-bit units (AMD Family 17h software
        # optimization guide, pub. 55723).
        return _rule("Zen/Zen+", "AVX2 split over 128-bit units", 2, 128)
    if family == 23:
        return _rule("Zen 2", "AVX2 on 256-bit units", 2, 256)
    if family == 25 and (0x10 <= model <= 0x1f or 0x60 <= model <= 0xaf or "avx512f" in cpu.flags):
        # Zen 4 executes a 512-bit operation on its 256-bit units over two cycles (A. Yee, "Zen4's AVX512
        # teardown", numberworld.org 2022): no more FLOPs a cycle than AVX2.
        return _rule("Zen 4", "AVX-512 on 256-bit units", 2, 256)
    if family == 25:
        return _rule("Zen 3", "AVX2 on 256-bit units", 2, 256)
    if family == 26 and (model <= 0x1f or 0x40 <= model <= 0x4f):
        # EPYC 9005 (models 0x00-0x1f) and Ryzen 9000 / Fire Range (0x40-0x4f) have the full 512-bit datapath
        # (A. Yee, "Zen5's AVX512 teardown", numberworld.org 2024; AMD, Hot Chips 2024).
        return _rule("Zen 5 (EPYC 9005, Ryzen 9000)", "AVX-512 on full 512-bit units", 2, 512)
    if family == 26 and (0x20 <= model <= 0x2f or 0x60 <= model <= 0x7f):
        # Ryzen AI 300 (Strix Point 0x20-0x2f, Krackan 0x60-0x6f) keeps a 256-bit datapath (Chips and Cheese,
        # "AMD's Strix Point: Zen 5 hits mobile", 2024). Strix Halo (0x70-0x7f) is counted here until a source says
        # it has the 512-bit one: the conservative choice.
        return _rule("Zen 5 mobile (Ryzen AI 300, AI Max)", "AVX-512 on 256-bit units", 2, 256)
    return None


#: Intel Xeon Scalable generations with two 512-bit FMA units on every SKU, by family 6 model: Ice Lake-SP
#: (ServeTheHome, "Intel Xeon Ice Lake Edition", 2021: "2 FMA AVX-512 ... throughout the family"), and the later
#: generations taken to keep that (not checked SKU by SKU here).
INTEL_TWO_FMA_SERVERS = {0x6a: "Ice Lake-SP", 0x8f: "Sapphire Rapids", 0xcf: "Emerald Rapids", 0xad: "Granite Rapids"}


def _intel_avx512_rule(cpu: CpuModel) -> tuple[int, str]:
    """Intel AVX-512 parts: two 512-bit FMA units on Xeon Scalable Platinum and Gold 6xxx (all SKUs from Ice Lake-SP
    on, and the Gold 5122/5222 exceptions), one on Skylake/Cascade Lake Gold 5xxx, Silver, Bronze and on client parts
    (Intel ARK, "# of AVX-512 FMA Units")."""
    if cpu.model in INTEL_TWO_FMA_SERVERS:
        return _rule(INTEL_TWO_FMA_SERVERS[cpu.model], "AVX-512 on 512-bit units", 2, 512)
    if cpu.model == 0x55 and re.search(r"Platinum|Gold 6\d{3}|Gold 5[12]22", cpu.name):
        return _rule("Skylake-SP/Cascade Lake Platinum, Gold 6xxx or Gold 5122/5222", "AVX-512 on 512-bit units", 2,
                     512)
    if cpu.model == 0x55:
        return _rule("Skylake-SP/Cascade Lake, not Platinum or Gold 6xxx (conservative: Gold 5xxx, Silver and Bronze "
                     "have one FMA unit, and cpuinfo cannot tell Xeon W or Core X)", "AVX-512 on 512-bit units", 1, 512)
    return _rule(f"Intel model {cpu.model:#x}, a client AVX-512 part or one not in the table (conservative)",
                 "AVX-512 on 512-bit units", 1, 512)


def vector_rule(cpu: CpuModel) -> tuple[int, str]:
    """Float32 FLOPs per cycle per core and the rule that gave them: by microarchitecture where cpuinfo names one
    jaxcost knows, else by the widest vector flags (AVX-512 of unknown make counted at one FMA unit)."""
    known = None
    if cpu.vendor == "AuthenticAMD" and cpu.family is not None and cpu.model is not None:
        known = _amd_rule(cpu)
    elif cpu.vendor == "GenuineIntel" and cpu.family == 6 and cpu.model is not None and "avx512f" in cpu.flags:
        known = _intel_avx512_rule(cpu)
    if known is not None:
        return known
    if "avx512f" in cpu.flags:
        return _rule("AVX-512 on a part not in the table (conservative)", "AVX-512 on 512-bit units", 1, 512)
    if "avx2" in cpu.flags and "fma" in cpu.flags:
        return _rule("AVX2 + FMA", "256-bit units", 2, 256)
    label = "aarch64 ASIMD (no x86 vector flags)" if "asimd" in cpu.flags else "no AVX2+FMA flags"
    return _rule(label, "128-bit vectors, counted as a floor (many cores have more units)", 1, 128)


def fp32_flops_per_cycle(cpu: CpuModel | set[str]) -> int:
    """Float32 FLOPs per cycle per core (``vector_rule``); a bare set of flags is a part of unknown make."""
    return vector_rule(cpu if isinstance(cpu, CpuModel) else CpuModel(flags=frozenset(cpu)))[0]


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
    """An estimate for a CPU (this host's unless ``cpuinfo`` is given): physical cores x clock x float32 FLOPs per
    cycle (``vector_rule``). The maximum clock and the cache size come from sysfs for this host only.

    There is no datasheet bandwidth: use the measured ceiling (a STREAM-style triad) for memory.
    """
    host = cpuinfo is None
    text = _cpuinfo() if host else cpuinfo
    cpu = cpu_model(text)
    per_cycle, rule = vector_rule(cpu)
    cores, clock = physical_cores(text), _clock_hertz(text, host)
    clock_note = "" if clock else " (assumed)"
    clock = clock or 2.0e9
    fp32 = cores * clock * per_cycle
    note = (f"{cores} physical cores x {clock / 1e9:.2f} GHz{clock_note} x {per_cycle} fp32 FLOPs/cycle; "
            "bfloat16 and float16 convolutions run in float32 on the CPU")
    return DevicePeaks(cpu.name or "CPU", {"fp32": fp32, "int8": 2 * fp32}, None, note,
                       last_level_cache_bytes() if host else None, estimate=True, platform="cpu", rule=rule)


#: What each override key holds, said in its errors.
OVERRIDE_RULES = {"flops_per_second": "a positive number of FLOP/s", "bytes_per_second": "a positive number of bytes/s",
                  "last_level_cache_bytes": "a positive whole number of bytes", "name": "a string"}


def _is_positive(value: object, whole: bool = False) -> bool:
    kinds = int if whole else (int, float)
    return not isinstance(value, bool) and isinstance(value, kinds) and 0 < value < float("inf")


def _check_overrides(overrides: dict, where: str = "overrides") -> None:
    """Raise a ValueError, starting with ``where`` (the file), that names the key and what it must hold."""
    unknown = set(overrides) - set(OVERRIDE_RULES)
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; use {', '.join(OVERRIDE_RULES)}")
    flops = overrides.get("flops_per_second", {})
    if not isinstance(flops, dict):
        raise ValueError(f"{where}: flops_per_second must map a precision to {OVERRIDE_RULES['flops_per_second']}, "
                         f"such as {{\"bf16\": 9e14}}, got {flops!r}")
    values = {f"flops_per_second.{precision}": value for precision, value in flops.items()}
    values.update({key: overrides[key] for key in ("bytes_per_second", "last_level_cache_bytes", "name")
                   if key in overrides})
    for key, value in values.items():
        field = key.partition(".")[0]
        whole = field == "last_level_cache_bytes"
        good = isinstance(value, str) if field == "name" else _is_positive(value, whole=whole)
        if not good:
            raise ValueError(f"{where}: {key} must be {OVERRIDE_RULES[field]}, got {value!r}")


def with_overrides(peaks: DevicePeaks, overrides: dict) -> DevicePeaks:
    """Peaks with user figures in place: ``{"flops_per_second": {"bf16": 9e14}, "bytes_per_second": 3e12}``."""
    _check_overrides(overrides)
    flops = {**peaks.flops_per_second, **{k: float(v) for k, v in overrides.get("flops_per_second", {}).items()}}
    return replace(peaks, flops_per_second=flops,
                   bytes_per_second=float(overrides.get("bytes_per_second", peaks.bytes_per_second or 0)) or None,
                   name=overrides.get("name", peaks.name),
                   last_level_cache_bytes=overrides.get("last_level_cache_bytes", peaks.last_level_cache_bytes),
                   source=peaks.source + "; user overrides", estimate=peaks.estimate)


def load_overrides(path: str | os.PathLike) -> dict:
    """User overrides from a JSON file (see ``with_overrides``), checked: an error names the file and the key."""
    try:
        overrides = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"peaks: cannot read overrides from {str(path)!r}: {error}") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"peaks: {str(path)!r} must hold a JSON object such as "
                         '{"flops_per_second": {"bf16": 9e14}, "bytes_per_second": 3e12}')
    _check_overrides(overrides, f"peaks: {str(path)!r}")
    return overrides


def device_peaks(device_kind: str, platform: str) -> DevicePeaks:
    """Datasheet peaks for a device, or for a CPU an estimate; an unknown accelerator gets empty peaks."""
    if platform == "cpu":
        return cpu_peaks()
    found = lookup(device_kind)
    if found is not None:
        return found
    return DevicePeaks(device_kind, {}, None, "not in jaxcost's table: give peaks with overrides")
