"""Prometheus metrics of every platform process.

With PROMETHEUS_MULTIPROC_DIR set, prometheus_client writes each process's
values to memory-mapped files in that folder, and /metrics adds up the files
of all processes: the gunicorn workers, the consumer and the Celery workers.
Without it, each process keeps its own registry and /metrics shows only the
API process that serves the request.

This module imports nothing from Django, because the Celery application
imports it before Django is set up.
"""

import os
import socket
import time

from celery.signals import task_postrun, task_prerun
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
_HOSTNAME = socket.gethostname().replace("_", "-")


def process_identifier(pid: int | None = None) -> str:
    """Return the name of a process's metric files: host name and process id.

    Containers of docker compose share the folder but each has its own
    process ids, so the id alone could name two live processes. The
    collector splits file names on underscores, hence none in the host name.
    """
    return f"{_HOSTNAME}-{os.getpid() if pid is None else pid}"


if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)
    # Metrics read values.ValueClass when they are created, so this must run
    # before the definitions below.
    values.ValueClass = values.MultiProcessValue(process_identifier)

ENTRIES_ACCEPTED = Counter(
    "logplatform_entries_accepted",
    "Entries the intake API made durable, by where they went.",
    ["route"],
)
ENTRIES_REJECTED = Counter(
    "logplatform_entries_rejected",
    "Entries of requests the intake API rejected, by reason.",
    ["reason"],
)
FALLBACK_ENTRIES = Counter(
    "logplatform_fallback_entries",
    "Entries the intake API sent straight to the Celery queue, by outcome.",
    ["outcome"],
)
ENTRIES_STORED = Counter(
    "logplatform_entries_stored",
    "Entries the store_logs task inserted into PostgreSQL.",
)
ENTRIES_DUPLICATE = Counter(
    "logplatform_entries_duplicate",
    "Entries the store_logs task skipped because their event id was stored.",
)
ENTRIES_DEAD_LETTERED = Counter(
    "logplatform_entries_dead_lettered",
    "Kafka messages the consumer moved to the dead-letter topic.",
)
# NOTE: a consumer killed without a clean stop keeps its last lag in the sum
# until the metrics folder is emptied, because only its exit removes it.
CONSUMER_LAG = Gauge(
    "logplatform_consumer_lag",
    "Messages not yet read in the partitions assigned to the consumers.",
    multiprocess_mode="livesum",
)
TASK_DURATION = Histogram(
    "logplatform_celery_task_duration_seconds",
    "Run time of Celery tasks, by task name.",
    ["task"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)

# Start times of the tasks running in this process, by task id.
_task_started: dict[str, float] = {}


@task_prerun.connect
def _start_task_timer(task_id=None, **_kwargs) -> None:
    _task_started[task_id] = time.monotonic()


@task_postrun.connect
def _observe_task_duration(task_id=None, task=None, **_kwargs) -> None:
    started = _task_started.pop(task_id, None)
    if started is not None and task is not None:
        TASK_DURATION.labels(task.name).observe(time.monotonic() - started)


def mark_process_dead(pid: int) -> None:
    """Drop the live gauges of a process that exited, such as a gunicorn worker."""
    if MULTIPROC_DIR:
        multiprocess.mark_process_dead(process_identifier(pid), MULTIPROC_DIR)


def render() -> tuple[bytes, str]:
    """Return the exposition text of every process's metrics and its media type."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, MULTIPROC_DIR)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
