"""System metrics: the sampler thread with real psutil, and its GPU path against a fake NVML.

CI has no GPU, so the NVIDIA path runs against a fake ``pynvml`` module put in
``sys.modules`` by the test; the real nvidia-ml-py (installed with the frameworks
group) is also loaded once, to show that a machine without a driver logs no GPU
keys and no error.
"""

from __future__ import annotations

import logging
import sys
import threading
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from runjournal import SyncTracker, Tracker
from runjournal.system_metrics import MB, Sampler, SystemMetricsWarning

HOST_KEYS = {
    "system/cpu_percent",
    "system/memory_rss_mb",
    "system/memory_percent",
    "system/disk_read_mb",
    "system/disk_write_mb",
    "system/net_sent_mb",
    "system/net_recv_mb",
}
GPU_FIELDS = ["util_percent", "memory_used_mb", "memory_percent", "temperature_c", "power_w"]


def gpu_keys(i: int, fields: list[str] = GPU_FIELDS) -> set[str]:
    return {f"system/gpu{i}/{field}" for field in fields}


class NVMLError(Exception):
    pass


class NVMLErrorNotSupported(NVMLError):
    pass


@dataclass
class FakeGpu:
    util: int
    used: int
    total: int
    temperature: int
    milliwatts: int | None  # None: this GPU does not report power


@dataclass
class Utilization:
    gpu: int
    memory: int


@dataclass
class Memory:
    used: int
    total: int
    free: int


def fake_nvml(gpus: list[FakeGpu], *, init_error: bool = False) -> types.ModuleType:
    """A module with the part of pynvml's surface that the sampler uses, and a call log."""
    nvml = types.ModuleType("pynvml")
    calls: list[str] = []
    state: dict[str, Any] = {"calls": calls}

    def init() -> None:
        calls.append("init")
        if init_error:
            raise NVMLError("NVML Shared Library Not Found")

    def power(handle: FakeGpu) -> int:
        if handle.milliwatts is None:
            raise NVMLErrorNotSupported("Not Supported")
        return handle.milliwatts

    def temperature(handle: FakeGpu, sensor: int) -> int:
        assert sensor == 0
        return handle.temperature

    members: dict[str, Any] = {
        "NVMLError": NVMLError,
        "NVML_TEMPERATURE_GPU": 0,
        "nvmlInit": init,
        "nvmlShutdown": lambda: calls.append("shutdown"),
        "nvmlDeviceGetCount": lambda: len(gpus),
        "nvmlDeviceGetHandleByIndex": lambda i: gpus[i],
        "nvmlDeviceGetUtilizationRates": lambda h: Utilization(gpu=h.util, memory=0),
        "nvmlDeviceGetMemoryInfo": lambda h: Memory(used=h.used, total=h.total, free=0),
        "nvmlDeviceGetTemperature": temperature,
        "nvmlDeviceGetPowerUsage": power,
        "state": state,
    }
    for name, value in members.items():
        setattr(nvml, name, value)
    return nvml


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynvml absent, whatever this machine has."""
    monkeypatch.setitem(sys.modules, "pynvml", None)


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "runjournal-system-metrics"]


class Collector:
    def __init__(self) -> None:
        self.samples: list[dict[str, float]] = []
        self.lock = threading.Lock()
        self.some = threading.Event()

    def __call__(self, sample: Mapping[str, float]) -> None:
        with self.lock:
            self.samples.append(dict(sample))
        if len(self.samples) >= 3:
            self.some.set()


@pytest.fixture
def collector() -> Iterator[Collector]:
    yield Collector()
    assert sampler_threads() == []


def sample_once(collector: Collector, interval: float = 60.0) -> list[dict[str, float]]:
    """Start and stop at once: stop's last sample is the only one."""
    sampler = Sampler(collector, interval)
    sampler.start()
    sampler.stop(timeout=10)
    assert not sampler.running
    return collector.samples


@pytest.mark.usefixtures("no_gpu")
def test_host_readings_with_real_psutil(collector: Collector) -> None:
    sampler = Sampler(collector, 0.01)
    sampler.start()
    assert collector.some.wait(10)
    sampler.stop(timeout=10)
    samples = collector.samples
    assert len(samples) >= 3
    for sample in samples:
        assert set(sample) == HOST_KEYS
        assert all(type(v) is float for v in sample.values())
        assert 0.0 <= sample["system/cpu_percent"] <= 100.0 * 1024
        assert 0.0 < sample["system/memory_percent"] <= 100.0
    # This process holds a Python interpreter and pytest: more than 10 MiB, less than 24 GiB.
    assert 10.0 < samples[-1]["system/memory_rss_mb"] < 24 * 1024
    # Traffic counts from the start of the sampler: it starts near 0 and never falls.
    for key in ("disk_read_mb", "disk_write_mb", "net_sent_mb", "net_recv_mb"):
        series = [s[f"system/{key}"] for s in samples]
        assert series[0] >= 0.0
        assert series == sorted(series), key


@pytest.mark.usefixtures("no_gpu")
def test_disk_write_is_counted_from_the_start(collector: Collector, tmp_path: Path) -> None:
    """Counters are differences from the first reading, not the machine's totals since boot."""
    counters = psutil.disk_io_counters()
    if counters is None:
        pytest.skip("this machine has no disk counters")
    sampler = Sampler(collector, 60.0)
    sampler.start()
    sampler.stop(timeout=10)
    assert collector.samples[-1]["system/disk_write_mb"] < counters.write_bytes / MB


def test_each_gpu_through_a_fake_nvml(
    monkeypatch: pytest.MonkeyPatch, collector: Collector
) -> None:
    nvml = fake_nvml(
        [
            FakeGpu(util=37, used=2 * 2**30, total=8 * 2**30, temperature=61, milliwatts=123_456),
            FakeGpu(util=0, used=0, total=16 * 2**30, temperature=30, milliwatts=None),
        ]
    )
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    [sample] = sample_once(collector)
    assert set(sample) == HOST_KEYS | gpu_keys(0) | gpu_keys(1, GPU_FIELDS[:-1])
    assert sample["system/gpu0/util_percent"] == 37.0
    assert sample["system/gpu0/memory_used_mb"] == 2048.0
    assert sample["system/gpu0/memory_percent"] == 25.0
    assert sample["system/gpu0/temperature_c"] == 61.0
    assert sample["system/gpu0/power_w"] == pytest.approx(123.456)
    # The second GPU reports no power: that key is missing, the rest are there.
    assert sample["system/gpu1/memory_percent"] == 0.0
    assert sample["system/gpu1/temperature_c"] == 30.0
    assert nvml.state["calls"] == ["init", "shutdown"]


def test_nvml_without_a_driver_logs_the_host_alone(
    monkeypatch: pytest.MonkeyPatch, collector: Collector
) -> None:
    nvml = fake_nvml([FakeGpu(1, 1, 1, 1, 1)], init_error=True)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    [sample] = sample_once(collector)
    assert set(sample) == HOST_KEYS
    assert nvml.state["calls"] == ["init"]


def test_nvml_with_no_gpu_is_shut_down(
    monkeypatch: pytest.MonkeyPatch, collector: Collector
) -> None:
    nvml = fake_nvml([])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    [sample] = sample_once(collector)
    assert set(sample) == HOST_KEYS
    assert nvml.state["calls"] == ["init", "shutdown"]


def test_the_real_nvidia_ml_py(collector: Collector) -> None:
    """On this machine's real NVML: GPU keys when a GPU is there, none (and no error) when not."""
    import pynvml  # type: ignore[import-untyped]

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        gpus = 0
    else:
        gpus = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
    [sample] = sample_once(collector)
    assert set(sample) >= HOST_KEYS
    assert {k for k in sample if k.startswith("system/gpu")} <= set().union(
        *(gpu_keys(i) for i in range(gpus))
    )
    if gpus:
        assert "system/gpu0/memory_used_mb" in sample


def test_without_psutil_it_warns_and_logs_the_gpus(
    monkeypatch: pytest.MonkeyPatch, collector: Collector
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([FakeGpu(5, 1, 4, 40, 50_000)]))
    sampler = Sampler(collector, 60.0)
    with pytest.warns(SystemMetricsWarning, match=r"runjournal\[system\]"):
        sampler.start()
    sampler.stop(timeout=10)
    assert collector.samples == [
        {
            "system/gpu0/util_percent": 5.0,
            "system/gpu0/memory_used_mb": 1 / MB,
            "system/gpu0/memory_percent": 25.0,
            "system/gpu0/temperature_c": 40.0,
            "system/gpu0/power_w": 50.0,
        }
    ]


@pytest.mark.usefixtures("no_gpu")
def test_a_failing_callback_stops_the_sampler_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def closed_tracker(sample: Mapping[str, float]) -> None:
        calls.append(1)
        raise RuntimeError("tracker closed")

    sampler = Sampler(closed_tracker, 0.005)
    with caplog.at_level(logging.WARNING, logger="runjournal"):
        sampler.start()
        for _ in range(1000):
            if not sampler.running:
                break
            threading.Event().wait(0.01)
        assert not sampler.running
        sampler.stop(timeout=10)
    assert calls == [1]
    assert "system metrics stopped" in caplog.text


def test_a_failing_reading_is_left_out(
    monkeypatch: pytest.MonkeyPatch, collector: Collector
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(psutil, "disk_io_counters", lambda *a, **k: None)  # some containers
    [sample] = sample_once(collector)
    assert set(sample) == HOST_KEYS - {"system/disk_read_mb", "system/disk_write_mb"}


@pytest.mark.parametrize("interval", [0, -1.0, float("nan")])
def test_the_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Sampler(lambda sample: None, interval)


def test_a_sampler_starts_once() -> None:
    sampler = Sampler(lambda sample: None, 60.0)
    sampler.start()
    try:
        with pytest.raises(RuntimeError, match="started already"):
            sampler.start()
    finally:
        sampler.stop(timeout=10)


# -- through a run -----------------------------------------------------------------------------


@pytest.mark.usefixtures("no_gpu")
async def test_a_run_with_system_metrics_logs_them_and_stops_the_sampler(
    tracker: Tracker,
) -> None:
    async with tracker.run("sys", system_metrics=0.01) as run:
        assert len(sampler_threads()) == 1
        await run.log({"loss": 1.0})
    assert sampler_threads() == []
    keys = set(await tracker.list_metric_keys(run.id))
    assert keys == HOST_KEYS | {"loss"}
    points = await tracker.get_metrics(run.id, "system/memory_rss_mb")
    assert len(points) >= 1
    # System samples keep their own steps: 0, 1, 2, ... whatever the training loop logs.
    assert [p.step for p in points] == list(range(len(points)))


async def test_a_run_logs_gpu_metrics_from_nvml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(
        sys.modules, "pynvml", fake_nvml([FakeGpu(80, 3 * 2**20, 4 * 2**20, 70, 250_000)])
    )
    async with Tracker.open(tmp_path / "e.db") as tracker:
        async with tracker.run("sys", system_metrics=True) as run:
            pass
        [point] = await tracker.get_metrics(run.id, "system/gpu0/power_w")
        assert point.value == 250.0
        assert set(await tracker.list_metric_keys(run.id)) == HOST_KEYS | gpu_keys(0)


async def test_no_system_metrics_unless_asked(tracker: Tracker) -> None:
    async with tracker.run("quiet") as run:
        assert sampler_threads() == []
    assert await tracker.list_metric_keys(run.id) == []


@pytest.mark.usefixtures("no_gpu")
def test_the_sync_face_and_a_failing_run(tmp_path: Path) -> None:
    """The sampler stops with the run however the run ends."""
    with SyncTracker.open(tmp_path / "e.db") as tracker:
        threads: list[threading.Thread] = []
        ids: list[str] = []

        def training() -> None:
            with tracker.run("sys", system_metrics=60) as run:
                ids.append(run.id)
                threads.extend(sampler_threads())
                _ = 1 / 0

        with pytest.raises(ZeroDivisionError):
            training()
        assert len(threads) == 1
        assert sampler_threads() == []
        assert set(tracker.list_metric_keys(ids[0])) == HOST_KEYS
