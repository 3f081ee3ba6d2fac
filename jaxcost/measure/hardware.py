"""The device table, one record per device kind (datasheet peaks, memory, interconnect, TPU sizes), the peaks read
from it and the rule that picks the peak matching what actually ran, a CPU estimate, and user overrides. No JAX at
import time.

Figures are dense (no structured sparsity), from vendor datasheets and the Cloud TPU documentation.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from jaxcost.hlo.text import Sizes
from jaxcost.reports.text import format_bytes, format_rate

T = 1e12
G = 1e9
#: A datasheet's "GB" of memory: NVIDIA prints decimal gigabytes (nvidia-smi shows a little more as usable).
GB = 10**9
#: The Cloud TPU pages give memory in GiB.
GiB = 2**30
MiB = 2**20
#: The dtypes whose peak ``DevicePeaks`` says it holds them against.
DTYPES = ("float32", "bfloat16", "float16", "int8")


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
    #: Whether float32 matmuls and convolutions run as TF32 at JAX's default precision (the device's record says).
    tf32_by_default: bool = False

    def peak(self, precision: str) -> float | None:
        return self.flops_per_second.get(precision)

    def shared(self, devices: int, what: str) -> DevicePeaks:
        """The peaks of one of ``devices`` devices that share these (a chip's TensorCores, each a device of its
        own): FLOP/s and bandwidth split evenly; ``what`` the devices are, said in the name and the source."""
        if devices == 1:
            return self
        return replace(self, name=f"{self.name} (one of {devices} devices a chip)",
                       flops_per_second={key: value / devices for key, value in self.flops_per_second.items()},
                       bytes_per_second=self.bytes_per_second / devices if self.bytes_per_second else None,
                       source=f"{self.source}; the chip's figures split over its {devices} {what}")

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
            lines.append(f"  last-level cache {format_bytes(self.last_level_cache_bytes)} "
                         f"({self.last_level_cache_bytes / MiB:g} MiB)")
        if self.flops_per_second:
            for dtype in DTYPES:
                key, why = precision_for(self, dtype)
                lines.append(f"  {dtype} is held against {key}: {why}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Interconnect:
    """A device's links to the others of its node or slice: bytes per second each way, all its links together (a
    GPU's NVLink ports, a TPU chip's ICI links), which a ring collective's wire bytes (``hlo.collectives``) flow
    through; and what the links form."""

    name: str
    bytes_per_second: float
    topology: str
    source: str

    @property
    def bytes_per_second_bidirectional(self) -> float:
        return 2 * self.bytes_per_second

    def __str__(self) -> str:
        return (f"interconnect: {self.name}, {format_bytes(self.bytes_per_second)}/s per direction per device "
                f"({self.topology}); {self.source}")


def _is_positive(value: object, whole: bool = False) -> bool:
    kinds = int if whole else (int, float)
    return not isinstance(value, bool) and isinstance(value, kinds) and 0 < value < float("inf")


def normalize_kind(device_kind: str) -> str:
    kind = device_kind.strip().lower()
    return kind[len("nvidia "):] if kind.startswith("nvidia ") else kind


@dataclass(frozen=True, kw_only=True)
class DeviceRecord:
    """Everything jaxcost knows of one device kind; checked complete when made (a ValueError says what is missing)."""

    name: str
    #: A regular expression searched in the ``normalize_kind`` of a device_kind; it must match this record's own
    #: name and device kinds, and no other record's (``check_table``).
    kind_pattern: str
    #: The device_kind strings JAX reports for this device.
    device_kinds: tuple[str, ...]
    #: "gpu" or "tpu".
    platform: str
    #: Dense datasheet peaks per precision ("fp32", "tf32", "bf16", "fp16", "fp8", "int8").
    flops_per_second: Mapping[str, float]
    bytes_per_second: float
    #: Memory (HBM or GDDR) per device.
    memory_bytes: int
    interconnect: Interconnect
    #: Where the peaks, bandwidth and memory come from.
    source: str
    #: The L2 cache a GPU's datasheet gives; None where there is no figure.
    last_level_cache_bytes: int | None = None
    #: Whether float32 matmuls and convolutions run as TF32 on the tensor cores at JAX's default precision.
    tf32_by_default: bool = False
    #: A TPU's: how XLA:TPU sizes what a layout does not say (``targets.sizes``).
    tpu_sizes: Sizes | None = None

    def __post_init__(self) -> None:
        problems = [problem for problem, missing in (
            ("platform must be 'gpu' or 'tpu'", self.platform not in ("gpu", "tpu")),
            ("flops_per_second must map each precision to a positive FLOP/s",
             not self.flops_per_second or not all(map(_is_positive, self.flops_per_second.values()))),
            ("bytes_per_second must be a positive number of bytes/s", not _is_positive(self.bytes_per_second)),
            ("memory_bytes must be a positive whole number of bytes", not _is_positive(self.memory_bytes, whole=True)),
            ("last_level_cache_bytes must be None or a positive whole number of bytes",
             self.last_level_cache_bytes is not None and not _is_positive(self.last_level_cache_bytes, whole=True)),
            ("interconnect must be an Interconnect of positive bytes_per_second",
             not isinstance(self.interconnect, Interconnect) or not _is_positive(self.interconnect.bytes_per_second)),
            ("source must say where the figures come from", not self.source),
            ("device_kinds must list the device_kind strings JAX reports", not self.device_kinds),
            ("a TPU needs tpu_sizes, and only a TPU has them", (self.tpu_sizes is None) == (self.platform == "tpu")),
        ) if missing]
        if problems:
            raise ValueError(f"device table: {self.name!r}: {'; '.join(problems)}")
        unmatched = [kind for kind in self.claimed_kinds if not self.matches(kind)]
        if unmatched:
            raise ValueError(f"device table: {self.name!r}: kind_pattern {self.kind_pattern!r} does not match "
                             f"{', '.join(map(repr, unmatched))}")

    @property
    def claimed_kinds(self) -> tuple[str, ...]:
        """The strings this record must answer for alone: its name and the device kinds JAX reports."""
        return (self.name, *self.device_kinds)

    def matches(self, device_kind: str) -> bool:
        """Whether ``kind_pattern`` finds this record in ``device_kind`` (case and an "NVIDIA " prefix ignored)."""
        try:
            return re.search(self.kind_pattern, normalize_kind(device_kind)) is not None
        except re.error as error:
            raise ValueError(f"device table: {self.name!r}: kind_pattern {self.kind_pattern!r}: {error}") from None

    @property
    def peaks(self) -> DevicePeaks:
        """The datasheet peaks, as ``lookup`` gives them."""
        return DevicePeaks(self.name, dict(self.flops_per_second), self.bytes_per_second, self.source,
                           self.last_level_cache_bytes, platform=self.platform, tf32_by_default=self.tf32_by_default)


def teraflops(**peaks: float) -> dict[str, float]:
    """FLOP/s per precision from a datasheet's TFLOP/s (or TOPS): ``teraflops(bf16=989.4)``."""
    return {precision: value * T for precision, value in peaks.items()}


NVIDIA_H100_SOURCE = "NVIDIA H100 Tensor Core GPU datasheet (dense)"
NVIDIA_A100_SOURCE = "NVIDIA A100 Tensor Core GPU datasheet (dense)"
TPU_SOURCE = "Cloud TPU documentation, system architecture"
NVLINK4_SOURCE = "NVIDIA Hopper architecture: NVLink 4, 18 links, 900 GB/s bidirectional per GPU"
NVLINK3_SOURCE = "NVIDIA A100 datasheet: NVLink 3, 12 links, 600 GB/s bidirectional per GPU"
PCIE_SOURCE = "PCI Express x16 per direction: Gen4 32 GB/s, Gen5 64 GB/s"
ICI_SOURCE = "Cloud TPU documentation, {0} page: bidirectional ICI bandwidth per chip"
SCALING_BOOK_SOURCE = "How to Scale Your Model (jax-ml/scaling-book), TPUs: ICI one-way bandwidth per link"

NVLINK4 = Interconnect("NVLink 4", 450 * G, "NVSwitch, all-to-all within the node", NVLINK4_SOURCE)
NVLINK3 = Interconnect("NVLink 3", 300 * G, "NVSwitch, all-to-all within the node", NVLINK3_SOURCE)
PCIE_GEN4 = Interconnect("PCIe Gen4 x16", 32 * G, "PCIe switch", PCIE_SOURCE)
#: Every A100 (SXM or PCIe, 40 or 80 GB) has the same tensor cores.
A100_FLOPS_PER_SECOND = teraflops(fp32=19.5, tf32=156, bf16=312, fp16=312, int8=624)

#: One record per device kind: ``lookup``, ``device_peaks``, ``interconnect.interconnect``, the precision rule,
#: ``targets.sizes`` and the command line's list of devices all read it. Adding a device is adding a record here (or
#: with ``register``). Memory capacities come from the same sources as the peaks: the NVIDIA datasheets' "GPU memory"
#: (GB) and the Cloud TPU generation pages' "HBM capacity per chip" (GiB).
DEVICES: list[DeviceRecord] = [
    DeviceRecord(name="NVIDIA H100 PCIe", kind_pattern=r"h100.*pcie", device_kinds=("NVIDIA H100 PCIe",),
                 platform="gpu",
                 flops_per_second=teraflops(fp32=51, tf32=378, bf16=756.5, fp16=756.5, fp8=1513, int8=1513),
                 bytes_per_second=2.0 * T, memory_bytes=80 * GB, last_level_cache_bytes=50 * MiB,
                 interconnect=Interconnect("PCIe Gen5 x16", 64 * G, "PCIe switch", PCIE_SOURCE),
                 tf32_by_default=True, source=NVIDIA_H100_SOURCE),
    DeviceRecord(name="NVIDIA H100 NVL", kind_pattern=r"h100 nvl", device_kinds=("NVIDIA H100 NVL",),
                 platform="gpu",
                 flops_per_second=teraflops(fp32=60, tf32=417.5, bf16=835.5, fp16=835.5, fp8=1670.5, int8=1670.5),
                 bytes_per_second=3.9 * T, memory_bytes=94 * GB, last_level_cache_bytes=50 * MiB,
                 interconnect=Interconnect("NVLink 4 bridge", 300 * G, "pairs of GPUs",
                                           "NVIDIA H100 NVL datasheet: NVLink 600 GB/s bidirectional"),
                 tf32_by_default=True, source="NVIDIA H100 NVL datasheet (dense)"),
    DeviceRecord(name="NVIDIA H100 SXM", kind_pattern=r"(?<![a-z])h100(?!.*pcie| nvl)",
                 device_kinds=("NVIDIA H100 80GB HBM3",), platform="gpu",
                 flops_per_second=teraflops(fp32=66.9, tf32=494.7, bf16=989.4, fp16=989.4, fp8=1978.9, int8=1978.9),
                 bytes_per_second=3.35 * T, memory_bytes=80 * GB, last_level_cache_bytes=50 * MiB,
                 interconnect=NVLINK4, tf32_by_default=True, source=NVIDIA_H100_SOURCE),
    DeviceRecord(name="NVIDIA H200", kind_pattern=r"(?<![a-z])h200", device_kinds=("NVIDIA H200",), platform="gpu",
                 flops_per_second=teraflops(fp32=67, tf32=494.7, bf16=989, fp16=989, fp8=1979, int8=1979),
                 bytes_per_second=4.8 * T, memory_bytes=141 * GB, last_level_cache_bytes=50 * MiB,
                 interconnect=NVLINK4, tf32_by_default=True, source="NVIDIA H200 datasheet (dense)"),
    DeviceRecord(name="NVIDIA A100 PCIe 80GB", kind_pattern=r"a100(?=.*80).*pcie",
                 device_kinds=("NVIDIA A100 80GB PCIe",), platform="gpu", flops_per_second=A100_FLOPS_PER_SECOND,
                 bytes_per_second=1.935 * T, memory_bytes=80 * GB, last_level_cache_bytes=40 * MiB,
                 interconnect=PCIE_GEN4, tf32_by_default=True, source=NVIDIA_A100_SOURCE),
    DeviceRecord(name="NVIDIA A100 PCIe 40GB", kind_pattern=r"a100(?!.*80).*pcie",
                 device_kinds=("NVIDIA A100-PCIE-40GB",), platform="gpu", flops_per_second=A100_FLOPS_PER_SECOND,
                 bytes_per_second=1.555 * T, memory_bytes=40 * GB, last_level_cache_bytes=40 * MiB,
                 interconnect=PCIE_GEN4, tf32_by_default=True, source=NVIDIA_A100_SOURCE),
    DeviceRecord(name="NVIDIA A100 SXM 80GB", kind_pattern=r"a100(?!.*pcie)(?=.*80)",
                 device_kinds=("NVIDIA A100-SXM4-80GB",), platform="gpu", flops_per_second=A100_FLOPS_PER_SECOND,
                 bytes_per_second=2.039 * T, memory_bytes=80 * GB, last_level_cache_bytes=40 * MiB,
                 interconnect=NVLINK3, tf32_by_default=True, source=NVIDIA_A100_SOURCE),
    DeviceRecord(name="NVIDIA A100 SXM 40GB", kind_pattern=r"a100(?!.*pcie)(?!.*80)",
                 device_kinds=("NVIDIA A100-SXM4-40GB",), platform="gpu", flops_per_second=A100_FLOPS_PER_SECOND,
                 bytes_per_second=1.555 * T, memory_bytes=40 * GB, last_level_cache_bytes=40 * MiB,
                 interconnect=NVLINK3, tf32_by_default=True, source=NVIDIA_A100_SOURCE),
    DeviceRecord(name="NVIDIA L4", kind_pattern=r"\bl4\b", device_kinds=("NVIDIA L4",), platform="gpu",
                 flops_per_second=teraflops(fp32=30.3, tf32=60, bf16=121, fp16=121, fp8=242.5, int8=242.5),
                 bytes_per_second=0.3 * T, memory_bytes=24 * GB, last_level_cache_bytes=48 * MiB,
                 interconnect=PCIE_GEN4, tf32_by_default=True, source="NVIDIA L4 datasheet (dense)"),
    # XLA:TPU's sizes: a tuple's table is 4 B a pointer rounded up to 512 B (v4, v5e) or 32 B (v5p, v6e), measured
    # with tuples of 2 to 200 elements (a copy-done's operand is one too); an array without tiles (a scalar in scalar
    # memory, a sync flag, a scalar constant) is 4 KiB.
    DeviceRecord(name="TPU v6e", kind_pattern=r"tpu v6( lite|e)", device_kinds=("TPU v6 lite",), platform="tpu",
                 flops_per_second=teraflops(bf16=918, int8=1836, fp8=918), bytes_per_second=1.638 * T,
                 memory_bytes=32 * GiB,
                 interconnect=Interconnect("ICI", 400 * G, "2D torus, 256-chip pod", ICI_SOURCE.format("v6e")),
                 tpu_sizes=Sizes(pointer_bytes=4, table_align=32, untiled_scalar_bytes=4096), source=TPU_SOURCE),
    DeviceRecord(name="TPU v5e", kind_pattern=r"tpu v5( lite|e)", device_kinds=("TPU v5 lite",), platform="tpu",
                 flops_per_second=teraflops(bf16=197, int8=394), bytes_per_second=0.819 * T, memory_bytes=16 * GiB,
                 interconnect=Interconnect("ICI", 200 * G, "2D torus, 256-chip pod", ICI_SOURCE.format("v5e")),
                 tpu_sizes=Sizes(pointer_bytes=4, table_align=512, untiled_scalar_bytes=4096), source=TPU_SOURCE),
    DeviceRecord(name="TPU v5p", kind_pattern=r"tpu v5p?$|tpu v5p", device_kinds=("TPU v5",), platform="tpu",
                 flops_per_second=teraflops(bf16=459, int8=918), bytes_per_second=2.765 * T, memory_bytes=95 * GiB,
                 interconnect=Interconnect("ICI", 600 * G, "3D torus", ICI_SOURCE.format("v5p")),
                 tpu_sizes=Sizes(pointer_bytes=4, table_align=32, untiled_scalar_bytes=4096), source=TPU_SOURCE),
    DeviceRecord(name="TPU v4", kind_pattern=r"tpu v4(?! lite)", device_kinds=("TPU v4",), platform="tpu",
                 flops_per_second=teraflops(bf16=275, int8=275), bytes_per_second=1.2 * T, memory_bytes=32 * GiB,
                 interconnect=Interconnect("ICI", 6 * 45 * G, "3D torus, 6 links of 45 GB/s one way",
                                           SCALING_BOOK_SOURCE),
                 tpu_sizes=Sizes(pointer_bytes=4, table_align=512, untiled_scalar_bytes=4096), source=TPU_SOURCE),
]


def check_table(records: Sequence[DeviceRecord]) -> None:
    """Raise a ValueError when two records share a name or a kind pattern, or when one's pattern matches a name or
    device kind another claims: every device_kind finds one record, whatever the order of the table."""
    for index, record in enumerate(records):
        for other in records[index + 1:]:
            if record.name == other.name:
                raise ValueError(f"device table: two records named {record.name!r}")
            if record.kind_pattern == other.kind_pattern:
                raise ValueError(f"device table: {record.name!r} and {other.name!r} share the kind_pattern "
                                 f"{record.kind_pattern!r}")
            for first, second in ((record, other), (other, record)):
                overlap = [kind for kind in second.claimed_kinds if first.matches(kind)]
                if overlap:
                    raise ValueError(f"device table: {first.name!r}'s kind_pattern {first.kind_pattern!r} also "
                                     f"matches {overlap[0]!r} of {second.name!r}")


check_table(DEVICES)


def register(record: DeviceRecord) -> DeviceRecord:
    """Add a device to the table, checked against the records there (``check_table``)."""
    check_table([*DEVICES, record])
    DEVICES.append(record)
    return record


def device_record(device_kind: str) -> DeviceRecord | None:
    """The record of a JAX ``device_kind`` (case and an "NVIDIA " prefix ignored), or None for a device not in the
    table."""
    found = [record for record in DEVICES if record.matches(device_kind)]
    if len(found) > 1:
        raise ValueError(f"device table: {device_kind!r} matches {' and '.join(record.name for record in found)}: "
                         "their kind_patterns overlap")
    return found[0] if found else None


def device_names() -> list[str]:
    """The names of the devices in the table; each is a device_kind ``lookup`` knows."""
    return [record.name for record in DEVICES]


def __getattr__(name: str) -> tuple[str, ...]:
    """``TF32_BY_DEFAULT``, read from the table when asked: the GPUs whose float32 runs as TF32 by default."""
    if name == "TF32_BY_DEFAULT":
        return tuple(record.name for record in DEVICES if record.tf32_by_default)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lookup(device_kind: str) -> DevicePeaks | None:
    """The datasheet peaks for a JAX ``device_kind`` string, or None for a device not in the table."""
    record = device_record(device_kind)
    return record.peaks if record else None


def precision_for(peaks: DevicePeaks, dtype: str, precision: str = "default") -> tuple[str, str]:
    """The peak that matches what ran: (precision key, why).

    float32 at JAX's default precision runs as TF32 on the GPUs whose record says so (Ampere, Ada and Hopper tensor
    cores), and as one bfloat16 pass on TPUs; ``precision="highest"`` keeps true float32. On the CPU bfloat16 and
    float16 run in float32.
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
    if peaks.platform == "tpu":
        if precision == "highest":
            return "bf16", ("float32 at HIGHEST precision on a TPU: several bfloat16 passes "
                            "(the bf16 peak is an upper bound)")
        return "bf16", "float32 at default precision on a TPU runs as one bfloat16 pass"
    if precision == "default" and peaks.tf32_by_default:
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
    if family is None or model is None:
        return None
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
        digits = re.match(r"\d+", text)
        if digits is None:
            continue
        number, unit = int(digits.group()), text[-1].upper()
        return number * {"K": 2**10, "M": 2**20, "G": 2**30}.get(unit, 1)
    return None


def cpu_peaks(cpuinfo: str | None = None) -> DevicePeaks:
    """An estimate for a CPU (this host's unless ``cpuinfo`` is given): physical cores x clock x float32 FLOPs per
    cycle (``vector_rule``). The maximum clock and the cache size come from sysfs for this host only.

    There is no datasheet bandwidth: use the measured ceiling (a STREAM-style triad) for memory.
    """
    host = cpuinfo is None
    text = _cpuinfo() if cpuinfo is None else cpuinfo
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
