"""The device table: one record per device kind, complete, no two records matching the same kind; adding a device
is one record, seen by the peaks, the interconnect, the precision rule, the TPU sizes and the command line."""

import dataclasses

import pytest

from jaxcost import targets
from jaxcost.cli import main
from jaxcost.hlo.text import Sizes
from jaxcost.measure import hardware
from jaxcost.measure.hardware import GB, DeviceRecord, GiB, Interconnect, T, teraflops
from jaxcost.measure.interconnect import interconnect

#: A device that is in no datasheet: what a new record needs, and nothing more.
TEST_GPU = DeviceRecord(
    name="Test GPU", kind_pattern=r"test gpu", device_kinds=("Test GPU 96GB",), platform="gpu",
    flops_per_second=teraflops(fp32=10, tf32=100, bf16=200, fp16=200), bytes_per_second=1.5 * T, memory_bytes=96 * GB,
    interconnect=Interconnect("Test link", 1e11, "ring", "test figures"), tf32_by_default=True, source="test figures")


@pytest.fixture
def table(monkeypatch):
    """The device table, to add to; restored afterwards."""
    monkeypatch.setattr(hardware, "DEVICES", list(hardware.DEVICES))
    return hardware.DEVICES


@pytest.mark.parametrize("record", hardware.DEVICES, ids=lambda record: record.name)
def test_every_record_is_complete_and_finds_itself(record):
    assert record.flops_per_second and all(value > 0 for value in record.flops_per_second.values())
    assert record.bytes_per_second > 0 and record.memory_bytes > 0 and record.source
    assert record.interconnect.bytes_per_second > 0 and record.interconnect.source
    assert (record.tpu_sizes is not None) == (record.platform == "tpu")
    assert (record.last_level_cache_bytes is not None) == (record.platform == "gpu")
    for kind in record.claimed_kinds:
        assert hardware.device_record(kind) is record
        assert hardware.lookup(kind) == record.peaks
        assert interconnect(kind) is record.interconnect


@pytest.mark.parametrize(("name", "memory_bytes"), [
    ("NVIDIA H100 SXM", 80e9), ("NVIDIA H100 PCIe", 80e9), ("NVIDIA H100 NVL", 94e9), ("NVIDIA H200", 141e9),
    ("NVIDIA A100 SXM 40GB", 40e9), ("NVIDIA A100 SXM 80GB", 80e9), ("NVIDIA A100 PCIe 40GB", 40e9),
    ("NVIDIA A100 PCIe 80GB", 80e9), ("NVIDIA L4", 24e9),
    ("TPU v4", 32 * 2**30), ("TPU v5e", 16 * 2**30), ("TPU v5p", 95 * 2**30), ("TPU v6e", 32 * 2**30),
])
def test_memory_capacity(name, memory_bytes):
    assert hardware.device_record(name).memory_bytes == memory_bytes


def test_the_names_read_from_the_table_keep_their_figures():
    assert targets.SIZES == {"TPU v4": Sizes(4, 512, 4096), "TPU v5 lite": Sizes(4, 512, 4096),
                             "TPU v5": Sizes(4, 32, 4096), "TPU v6 lite": Sizes(4, 32, 4096)}
    assert targets.sizes("NVIDIA H100 80GB HBM3") == targets.sizes("TPU v7") == Sizes(4, 512, 4096)
    assert set(hardware.TF32_BY_DEFAULT) == {record.name for record in hardware.DEVICES if record.platform == "gpu"}
    from jaxcost.measure import interconnect as links

    assert dict(links.INTERCONNECTS)[r"(?<![a-z])h200"].name == "NVLink 4"


def test_adding_a_gpu_is_one_record(table, capsys):
    assert hardware.lookup("Test GPU 96GB") is None
    hardware.register(TEST_GPU)
    peaks = hardware.device_peaks("Test GPU 96GB", "gpu")
    assert (peaks.name, peaks.peak("bf16"), peaks.bytes_per_second) == ("Test GPU", 200 * T, 1.5 * T)
    assert hardware.precision_for(peaks, "float32") == ("tf32", "float32 at JAX's default precision runs as TF32 on "
                                                                 "this GPU's tensor cores")
    assert interconnect("NVIDIA Test GPU 96GB").name == "Test link"
    assert hardware.TF32_BY_DEFAULT[-1] == "Test GPU"
    assert main(["model", "mobilenet_v2", "--mesh", "data=2", "--hardware", "Some Future GPU"]) == 2
    error = capsys.readouterr().err
    assert "is not in jaxcost's table of devices (NVIDIA H100 PCIe, " in error and ", Test GPU)" in error


def test_adding_a_tpu_is_one_record(table):
    sizes = Sizes(pointer_bytes=4, table_align=64, untiled_scalar_bytes=4096)
    hardware.register(DeviceRecord(
        name="TPU test", kind_pattern=r"tpu test", device_kinds=("TPU test lite",), platform="tpu",
        flops_per_second=teraflops(bf16=1000), bytes_per_second=5 * T, memory_bytes=64 * GiB,
        interconnect=Interconnect("ICI", 5e11, "2D torus", "test figures"), tpu_sizes=sizes, source="test figures"))
    assert targets.sizes("TPU test lite") == targets.SIZES["TPU test lite"] == sizes
    assert hardware.precision_for(hardware.lookup("TPU test lite"), "float32")[0] == "bf16"
    assert interconnect("TPU test lite").bytes_per_second_bidirectional == 1e12


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "NVIDIA H100 SXM", "kind_pattern": r"test gpu|h100 sxm"}, "two records named 'NVIDIA H100 SXM'"),
    ({"kind_pattern": r"(?<![a-z])h200", "name": "Test H200", "device_kinds": ("Test H200",)},
     r"'NVIDIA H200' and 'Test H200' share the kind_pattern '\(\?<!\[a-z\]\)h200'"),
    ({"kind_pattern": r"test gpu|h100 sxm"}, r"'Test GPU'.s kind_pattern 'test gpu\|h100 sxm' also matches "
                                              r"'NVIDIA H100 SXM' of 'NVIDIA H100 SXM'"),
    # its own kind is one an older pattern already answers for
    ({"kind_pattern": r"h100 test", "device_kinds": ("NVIDIA H100 test",), "name": "NVIDIA H100 test"},
     r"'NVIDIA H100 SXM'.s kind_pattern .* also matches 'NVIDIA H100 test'"),
])
def test_a_duplicate_or_overlapping_pattern_raises(table, changes, message):
    with pytest.raises(ValueError, match=message):
        hardware.register(dataclasses.replace(TEST_GPU, **changes))
    assert hardware.DEVICES[-1].name == "TPU v4"  # nothing added


def test_overlapping_records_put_in_the_table_by_hand_are_refused_on_lookup(table):
    table.append(dataclasses.replace(TEST_GPU, kind_pattern=r"test gpu|l4"))
    with pytest.raises(ValueError, match="'NVIDIA L4' matches NVIDIA L4 and Test GPU: their kind_patterns overlap"):
        hardware.lookup("NVIDIA L4")


@pytest.mark.parametrize(("changes", "message"), [
    ({"flops_per_second": {}}, "flops_per_second must map each precision to a positive FLOP/s"),
    ({"bytes_per_second": 0}, "bytes_per_second must be a positive number"),
    ({"memory_bytes": 9.6e10}, "memory_bytes must be a positive whole number of bytes"),
    ({"interconnect": None}, "interconnect must be an Interconnect"),
    ({"device_kinds": ()}, "device_kinds must list the device_kind strings JAX reports"),
    ({"tpu_sizes": Sizes(4, 32, 4096)}, "a TPU needs tpu_sizes, and only a TPU has them"),
    ({"platform": "tpu"}, "a TPU needs tpu_sizes"),
    ({"device_kinds": ("Test GPU", "Other GPU")}, r"kind_pattern 'test gpu' does not match 'Other GPU'"),
    ({"kind_pattern": r"test (gpu"}, r"kind_pattern 'test \(gpu': missing \)"),
])
def test_an_incomplete_record_raises(changes, message):
    with pytest.raises(ValueError, match=f"^device table: 'Test GPU': .*{message}"):
        dataclasses.replace(TEST_GPU, **changes)
