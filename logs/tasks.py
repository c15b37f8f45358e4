import logging
from dataclasses import asdict
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from logs.partitions import ensure_partitions
from logs.patterns import assign_patterns
from logs.retention import purge
from logs.storage import insert_entries
from ops.metrics import ENTRIES_DUPLICATE, ENTRIES_STORED

logger = logging.getLogger(__name__)

# Retry delays grow 1, 2, 4 ... seconds up to this cap, and retries never
# stop: a batch waits for the database rather than being dropped.
MAX_RETRY_DELAY = 60


@shared_task(bind=True, name="logs.store_logs", acks_late=True, max_retries=None)
def store_logs(self, entries: list[dict[str, Any]]) -> int:
    """Write one batch of normalized entries; return how many were new."""
    try:
        stored = insert_entries(entries, assign_patterns(entries))
    except (OperationalError, InterfaceError) as exc:
        close_old_connections()
        delay = min(2**self.request.retries, MAX_RETRY_DELAY)
        logger.warning(
            "store_logs: database unavailable, retry %d in %ds for a batch of %d "
            "entries starting with %s: %s",
            self.request.retries + 1,
            delay,
            len(entries),
            entries[0]["id"] if entries else "-",
            exc,
        )
        raise self.retry(exc=exc, countdown=delay) from exc

    duplicates = len(entries) - stored
    ENTRIES_STORED.inc(stored)
    ENTRIES_DUPLICATE.inc(duplicates)
    logger.info(
        "store_logs: stored %d of %d entries (%d already stored), first id %s",
        stored,
        len(entries),
        duplicates,
        entries[0]["id"] if entries else "-",
    )
    return stored


@shared_task(name="logs.purge_expired")
def purge_expired() -> dict[str, Any]:
    """Remove the entries past their retention; beat runs this every hour."""
    return asdict(purge())


@shared_task(name="logs.create_partitions")
def create_partitions() -> list[str]:
    """Create the coming days' partitions of the logs table; beat runs this hourly."""
    return [partition.name for partition in ensure_partitions()]
