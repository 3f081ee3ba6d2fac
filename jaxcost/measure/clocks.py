"""Clocks and power of an NVIDIA GPU, sampled through NVML while a measurement runs.

A datasheet peak assumes the boost clock; under its power cap a GPU runs slower on long, dense work (an
H200 ran an 8192^3 bf16 matmul at 696 TFLOP/s sustained and 786-795 in short bursts). A utilization
figure is read against the clock the chip actually ran at: the clock-adjusted peak is the datasheet
peak times the sampled SM clock over the maximum SM clock. NVML comes from the optional ``gpu`` extra
(``nvidia-ml-py``); where it is absent, or the device is no NVIDIA GPU, nothing is sampled and the
reason is kept.
"""

from __future__ import annotations

import importlib
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClockSamples:
    """What NVML reported while a measurement ran: SM clock (MHz), power (W), temperature (°C)."""

    seconds: float
    sm_clock_mhz: tuple[float, ...]
    max_sm_clock_mhz: float
    power_watts: tuple[float, ...]
    power_limit_watts: float
    temperature_celsius: tuple[float, ...]

    @property
    def sm_clock_median_mhz(self) -> float:
        return statistics.median(self.sm_clock_mhz)

    @property
    def clock_fraction(self) -> float:
        """Median SM clock over the maximum: what share of the datasheet (boost-clock) peak the chip could reach."""
        return self.sm_clock_median_mhz / self.max_sm_clock_mhz

    def clock_adjusted(self, peak: float) -> float:
        """A datasheet peak scaled to the median SM clock the chip ran at."""
        return peak * self.clock_fraction

    def as_dict(self) -> dict[str, float]:
        """The summary figures, JSON-ready."""
        return {"sm_clock_median_mhz": self.sm_clock_median_mhz, "max_sm_clock_mhz": self.max_sm_clock_mhz,
                "power_watts_max": max(self.power_watts), "power_limit_watts": self.power_limit_watts,
                "temperature_celsius_max": max(self.temperature_celsius), "samples": len(self.sm_clock_mhz),
                "seconds": self.seconds}

    def __str__(self) -> str:
        return (f"SM clock {self.sm_clock_median_mhz:.0f} MHz median ({min(self.sm_clock_mhz):.0f}-"
                f"{max(self.sm_clock_mhz):.0f}) of {self.max_sm_clock_mhz:.0f} max = {self.clock_fraction:.0%}; "
                f"power {statistics.median(self.power_watts):.0f} W median, {max(self.power_watts):.0f} W max, "
                f"limit {self.power_limit_watts:.0f} W; {max(self.temperature_celsius):.0f} °C max; "
                f"{len(self.sm_clock_mhz)} samples over {self.seconds:.2f} s")


def _nvml() -> Any:
    return importlib.import_module("pynvml")


class ClockSampler:
    """Samples the GPU of ``device_index`` every ``interval_seconds`` on a background thread while in a
    ``with`` block; afterwards ``samples`` holds them, or ``reason`` says why there are none."""

    def __init__(self, device_index: int = 0, interval_seconds: float = 0.02) -> None:
        self.device_index, self.interval_seconds = device_index, interval_seconds
        self.samples: ClockSamples | None = None
        self.reason = ""
        self._rows: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ClockSampler:
        try:
            self._nvml = _nvml()
            self._nvml.nvmlInit()
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(self.device_index)
            self._max_clock = float(self._nvml.nvmlDeviceGetMaxClockInfo(self._handle, self._nvml.NVML_CLOCK_SM))
            self._limit = self._nvml.nvmlDeviceGetEnforcedPowerLimit(self._handle) / 1000
        except ImportError:
            self.reason = "no NVML here (pip install 'jaxcost[gpu]' on an NVIDIA machine)"
            return self
        except Exception as error:  # NVML present but no NVIDIA GPU or driver
            self.reason = f"NVML could not read the GPU: {error}"
            return self
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> tuple[float, float, float]:
        nvml, handle = self._nvml, self._handle
        return (float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
                nvml.nvmlDeviceGetPowerUsage(handle) / 1000,
                float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)))

    def _sample(self) -> None:
        while True:
            self._rows.append(self._read())
            if self._stop.wait(self.interval_seconds):
                return

    def __exit__(self, *exc_info: Any) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        seconds = time.perf_counter() - self._start
        clocks, power, temperature = zip(*self._rows)
        self.samples = ClockSamples(seconds, clocks, self._max_clock, power, self._limit, temperature)
        self._nvml.nvmlShutdown()
