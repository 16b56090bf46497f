"""System metrics: a sampler thread that logs CPU, memory, disk, network and NVIDIA GPU use.

A run opened with ``system_metrics=True`` (or a number of seconds between samples)
starts a :class:`Sampler`; it stops when the run ends. Every sample is one mapping
handed to the run's logging callback:

- with psutil (the ``system`` extra): ``system/cpu_percent`` (the whole machine),
  ``system/memory_rss_mb`` (this process), ``system/memory_percent`` (the whole
  machine), and ``system/disk_read_mb``, ``system/disk_write_mb``,
  ``system/net_sent_mb``, ``system/net_recv_mb``: the machine's traffic since the
  sampler started, so the series only rise and a rate is a difference of two points;
- for each NVIDIA GPU that NVML sees, when ``nvidia-ml-py`` (``pynvml``) is installed:
  ``system/gpu{i}/util_percent``, ``memory_used_mb``, ``memory_percent``,
  ``temperature_c`` and ``power_w``, ``i`` being NVML's device index.

Megabytes here are MiB (2**20 bytes). A reading the platform does not offer (disk
counters in some containers, power on some GPUs) is left out of the sample; the
others still go in. The sampler never fails the run: a failed reading is skipped,
and if the logging callback itself raises (its tracker was closed), the sampler
stops and says so on the ``runjournal`` logger.

This module is imported only when a run asks for system metrics, so
``import runjournal`` does not import psutil.
"""

from __future__ import annotations

import importlib
import logging
import threading
import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["MB", "Sampler", "SystemMetricsWarning"]

MB = float(2**20)
"""Bytes in one of the ``_mb`` units (a MiB)."""

_logger = logging.getLogger("runjournal")


class SystemMetricsWarning(RuntimeWarning):
    """System metrics were asked for, but this environment cannot give them (psutil missing)."""


def _read(sample: dict[str, float], key: str, reading: Callable[[], float]) -> None:
    """Put one reading in the sample; a reading the platform refuses is left out."""
    try:
        sample[key] = float(reading())
    except Exception:  # noqa: BLE001 - one missing reading must not cost the others
        return


class _Host:
    """psutil's readings of the machine and of this process."""

    def __init__(self, psutil: ModuleType) -> None:
        self._psutil = psutil
        self._process = psutil.Process()
        psutil.cpu_percent(interval=None)  # the first call only sets the reference point
        self._base: dict[str, float] = {}
        self._counters(self._base)

    def _counters(self, into: dict[str, float]) -> None:
        psutil = self._psutil
        _read(into, "system/disk_read_mb", lambda: psutil.disk_io_counters().read_bytes / MB)
        _read(into, "system/disk_write_mb", lambda: psutil.disk_io_counters().write_bytes / MB)
        _read(into, "system/net_sent_mb", lambda: psutil.net_io_counters().bytes_sent / MB)
        _read(into, "system/net_recv_mb", lambda: psutil.net_io_counters().bytes_recv / MB)

    def sample(self, sample: dict[str, float]) -> None:
        psutil = self._psutil
        _read(sample, "system/cpu_percent", lambda: psutil.cpu_percent(interval=None))
        _read(sample, "system/memory_rss_mb", lambda: self._process.memory_info().rss / MB)
        _read(sample, "system/memory_percent", lambda: psutil.virtual_memory().percent)
        totals: dict[str, float] = {}
        self._counters(totals)
        for key, total in totals.items():
            # A counter first readable after the start counts from its first reading.
            sample[key] = total - self._base.setdefault(key, total)


class _Gpus:
    """NVML's readings of each NVIDIA GPU."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls) -> _Gpus | None:
        """The GPUs, or None without nvidia-ml-py, a driver, or a GPU (CI's usual case)."""
        try:
            nvml: Any = importlib.import_module("pynvml")
        except ImportError:
            return None
        try:
            nvml.nvmlInit()
        except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound and friends: no GPU here
            return None
        try:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception:  # noqa: BLE001 - as above
            _shutdown(nvml)
            return None
        if not handles:
            _shutdown(nvml)
            return None
        return cls(nvml, handles)

    def sample(self, sample: dict[str, float]) -> None:
        for i, handle in enumerate(self._handles):
            self._sample_gpu(sample, f"system/gpu{i}/", handle)

    def _sample_gpu(self, sample: dict[str, float], prefix: str, handle: Any) -> None:
        nvml = self._nvml
        _read(
            sample, prefix + "util_percent", lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu
        )
        try:
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            sample[prefix + "memory_used_mb"] = float(memory.used) / MB
            if memory.total:
                sample[prefix + "memory_percent"] = 100.0 * float(memory.used) / memory.total
        except Exception:
            _logger.debug("no memory reading from %sGPU", prefix, exc_info=True)
        _read(
            sample,
            prefix + "temperature_c",
            lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        )
        # NVML reports milliwatts.
        _read(sample, prefix + "power_w", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)

    def close(self) -> None:
        _shutdown(self._nvml)


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        _logger.debug("nvmlShutdown failed", exc_info=True)


class Sampler:
    """A daemon thread that logs one sample of system metrics every ``interval`` seconds.

    ``log`` receives each sample as a ``{key: value}`` mapping. The first sample comes
    one interval after :meth:`start`, and :meth:`stop` takes a last one before the
    thread ends, so even a run shorter than the interval has a sample. Without
    psutil, :meth:`start` warns (:class:`SystemMetricsWarning`) and the sampler logs
    the GPU readings alone, if any. Nothing the sampler does raises into the run.
    """

    def __init__(self, log: Callable[[Mapping[str, float]], None], interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"the system metrics interval must be positive, not {interval!r}")
        self._log = log
        self._interval = float(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._psutil: ModuleType | None = None

    @property
    def interval(self) -> float:
        """Seconds between two samples."""
        return self._interval

    @property
    def running(self) -> bool:
        """True between :meth:`start` and the end of the thread."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            raise RuntimeError("this sampler was started already")
        try:
            self._psutil = importlib.import_module("psutil")
        except ImportError:
            warnings.warn(
                "system metrics need psutil: pip install 'runjournal[system]'",
                SystemMetricsWarning,
                stacklevel=2,
            )
        self._thread = threading.Thread(
            target=self._main, name="runjournal-system-metrics", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Take the last sample and end the thread, waiting at most ``timeout`` seconds."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _main(self) -> None:
        try:
            readers = self._open()
        except Exception:
            _logger.warning("system metrics could not start", exc_info=True)
            return
        try:
            while not self._stop.wait(self._interval):
                if not self._emit(readers):
                    return
            self._emit(readers)
        finally:
            for reader in readers:
                if isinstance(reader, _Gpus):
                    reader.close()

    def _open(self) -> list[_Host | _Gpus]:
        readers: list[_Host | _Gpus] = []
        if self._psutil is not None:
            readers.append(_Host(self._psutil))
        gpus = _Gpus.open()
        if gpus is not None:
            readers.append(gpus)
        return readers

    def _emit(self, readers: list[_Host | _Gpus]) -> bool:
        """Log one sample; False once the callback has failed (the sampler then stops)."""
        sample: dict[str, float] = {}
        for reader in readers:
            try:
                reader.sample(sample)
            except Exception:
                _logger.debug("a system metrics reader failed", exc_info=True)
        if not sample:
            return True
        try:
            self._log(sample)
        except Exception:
            _logger.warning("system metrics stopped: logging a sample failed", exc_info=True)
            return False
        return True
