"""Memory over a long steady load: resident sizes sampled from /proc.

The soak phase runs the steady load for --soak-seconds while a
MemorySampler reads the VmRSS of the API, consumer and worker trees every
--soak-sample-seconds. `memory_figures` then compares each process's size
after the warm-up with its peak and its size at the end.
"""

import logging
import statistics
import threading
import time
from dataclasses import asdict
from typing import Any

from bench import measure

logger = logging.getLogger("bench")

# The figures of a process tree that the soak reports. The API and the
# worker are trees (gunicorn's master with its workers, Celery's main
# process with its pool); the consumer is one process.
MEASURES = ("main_kib", "largest_child_kib", "total_kib")
LOG_EVERY_SECONDS = 60


class MemorySampler(threading.Thread):
    """Reads the VmRSS of each named process tree every `interval` seconds.

    Each sample is {"time": epoch seconds, "processes": {name: sizes}},
    where sizes is a measure.TreeRss as a dict, or None once the process
    is gone.
    """

    def __init__(self, pids: dict[str, int], interval: float):
        super().__init__(name="memory-sampler", daemon=True)
        self.pids = pids
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._logged_at = 0.0

    def run(self) -> None:
        while True:
            self.sample()
            if self._stopping.wait(self.interval):
                return

    def sample(self) -> None:
        processes = {}
        for name, pid in self.pids.items():
            sizes = measure.tree_rss(pid)
            processes[name] = None if sizes is None else asdict(sizes)
        self.samples.append({"time": time.time(), "processes": processes})
        self._log_if_due(processes)

    def finish(self) -> None:
        """Stop sampling and take one last sample, the end figure."""
        self._stopping.set()
        self.join(self.interval + 10)
        self.sample()

    def _log_if_due(self, processes: dict[str, dict | None]) -> None:
        now = time.monotonic()
        if now - self._logged_at < LOG_EVERY_SECONDS:
            return
        self._logged_at = now
        logger.info(
            "Soak RSS: %s",
            ", ".join(
                f"{name} {sizes['total_kib'] / 1024:.0f} MiB"
                for name, sizes in processes.items()
                if sizes is not None
            ),
        )


def memory_series(samples: list[dict], started: float) -> list[dict]:
    """Return the samples with their time as seconds since the load started.

    Samples taken before the load started have a negative `elapsed_s`.
    """
    return [
        {"elapsed_s": sample["time"] - started, "processes": sample["processes"]}
        for sample in samples
    ]


def memory_figures(series: list[dict], warmup_seconds: float) -> dict[str, dict]:
    """Return the RSS figures of each process and measure in `series`.

    The after-warm-up figure is the first sample at `warmup_seconds` or
    later. Growth runs from it to the last sample.
    """
    names = {name for sample in series for name in sample["processes"]}
    figures: dict[str, dict] = {}
    for name in sorted(names):
        for key in MEASURES:
            points = [
                (sample["elapsed_s"], sample["processes"][name][key])
                for sample in series
                if sample["processes"].get(name)
                and sample["processes"][name][key] is not None
            ]
            if points:
                figures.setdefault(name, {})[key] = growth(points, warmup_seconds)
    return figures


def growth(points: list[tuple[float, int]], warmup_seconds: float) -> dict:
    """Return the RSS after the warm-up, the peak, the end and the growth.

    `points` are (seconds since the load started, KiB) in time order. The
    growth figures are None when no point is past the warm-up. The trend is
    the least-squares slope of the points past the warm-up, which one high
    or low sample at either end moves less than it moves the growth.
    """
    after_warmup = [
        (elapsed, size) for elapsed, size in points if elapsed >= warmup_seconds
    ]
    first = after_warmup[0][1] if after_warmup else None
    end = points[-1][1]
    figures: dict[str, float | int | None] = {
        "after_warmup_kib": first,
        "peak_kib": max(size for _elapsed, size in points),
        "end_kib": end,
        "growth_kib": None,
        "growth_percent": None,
        "trend_mib_per_hour": None,
    }
    if first:
        figures["growth_kib"] = end - first
        figures["growth_percent"] = (end - first) * 100 / first
    if len({elapsed for elapsed, _size in after_warmup}) >= 2:
        slope, _intercept = statistics.linear_regression(
            [elapsed for elapsed, _size in after_warmup],
            [size for _elapsed, size in after_warmup],
        )
        figures["trend_mib_per_hour"] = slope * 3600 / 1024
    return figures
