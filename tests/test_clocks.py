"""Clock and power sampling through NVML: the arithmetic of the clock-adjusted peak, and the reasons kept when
there is nothing to sample. NVML is replaced by a stand-in that plays back what an H200 reports."""

import time

import pytest

from jaxcost.measure import clocks
from jaxcost.measure.clocks import ClockSampler


class _FakeNvml:
    NVML_CLOCK_SM, NVML_TEMPERATURE_GPU = 1, 0

    def __init__(self, sm_clocks):
        self.sm_clocks, self.reads, self.shut = list(sm_clocks), 0, False

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        self.shut = True

    def nvmlDeviceGetHandleByIndex(self, index):
        return f"gpu{index}"

    def nvmlDeviceGetMaxClockInfo(self, handle, kind):
        return 1980

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return 700_000  # milliwatts

    def nvmlDeviceGetClockInfo(self, handle, kind):
        self.reads += 1
        return self.sm_clocks[(self.reads - 1) % len(self.sm_clocks)]  # played back in a loop

    def nvmlDeviceGetPowerUsage(self, handle):
        return 690_000

    def nvmlDeviceGetTemperature(self, handle, kind):
        return 61


def test_samples_give_the_clock_adjusted_peak(monkeypatch):
    fake = _FakeNvml([1755, 1755, 1980])
    monkeypatch.setattr(clocks, "_nvml", lambda: fake)
    with ClockSampler(0, interval_seconds=0.001) as sampler:
        time.sleep(0.05)
    samples = sampler.samples
    assert fake.shut and sampler.reason == ""
    assert samples.max_sm_clock_mhz == 1980 and samples.power_limit_watts == 700
    assert samples.sm_clock_median_mhz == 1755 and len(samples.sm_clock_mhz) >= 3
    assert samples.clock_adjusted(989e12) == pytest.approx(989e12 * 1755 / 1980)
    text = str(samples)
    assert "SM clock 1755 MHz median (1755-1980) of 1980 max = 89%" in text and "limit 700 W" in text


def test_without_nvml_the_reason_is_kept(monkeypatch):
    def missing():
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(clocks, "_nvml", missing)
    with ClockSampler() as sampler:
        pass
    assert sampler.samples is None and "jaxcost[gpu]" in sampler.reason


def test_without_a_gpu_the_reason_is_kept(monkeypatch):
    class NoDriver(_FakeNvml):
        def nvmlInit(self):
            raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setattr(clocks, "_nvml", lambda: NoDriver([1]))
    with ClockSampler() as sampler:
        pass
    assert sampler.samples is None and sampler.reason == "NVML could not read the GPU: NVML Shared Library Not Found"
