"""Intake backpressure: reject new entries while the pipeline falls behind.

Each API process reads the consumer group's lag and the length of the Celery
queue at most once per INTAKE_LOAD_CHECK_SECONDS, and every request in
between reuses the figures. A figure that cannot be read does not reject
anything: while Kafka is down the consumer lag is unknown, and the intake
still takes entries through the Celery fallback.
"""

import logging
import threading
import time

from django.conf import settings

from ops.probes import ProbeFailed, consumer_group_lag, queued_tasks

logger = logging.getLogger(__name__)


class LoadCheck:
    """The load figures of one process, read again once they are too old."""

    def __init__(self):
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._reason: str | None = None

    def overload_reason(self) -> str | None:
        """Return why intake should reject entries now, or None to accept them."""
        checked_at = self._checked_at
        if (
            checked_at is not None
            and time.monotonic() - checked_at < settings.INTAKE_LOAD_CHECK_SECONDS
        ):
            return self._reason
        # One thread reads the figures. The others return the previous reason
        # instead of queueing behind a slow broker.
        if not self._lock.acquire(blocking=False):
            return self._reason
        try:
            self._reason = measure_overload()
            self._checked_at = time.monotonic()
        finally:
            self._lock.release()
        if self._reason:
            logger.warning("Intake is rejecting entries: %s", self._reason)
        return self._reason


def measure_overload() -> str | None:
    """Read the lag and the queue length; return the first limit they exceed."""
    timeout = settings.DEPENDENCY_TIMEOUT_SECONDS
    checks = (
        ("consumer lag", consumer_group_lag, "INTAKE_MAX_CONSUMER_LAG"),
        ("queued Celery tasks", queued_tasks, "INTAKE_MAX_QUEUED_TASKS"),
    )
    for label, read, setting in checks:
        limit = getattr(settings, setting)
        try:
            value = read(timeout)
        except ProbeFailed as exc:
            logger.warning("Intake load check: %s unknown, no limit: %s", label, exc)
            continue
        if value > limit:
            return f"{label} is {value}, above {setting}={limit}"
    return None


_load_check = LoadCheck()


def overload_reason() -> str | None:
    """Return this process's cached overload reason, reading it when stale."""
    return _load_check.overload_reason()
