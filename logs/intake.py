"""Accept validated entries: Kafka first, the Celery queue as fallback."""

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from django.conf import settings

from logs.kafka import get_intake_producer
from logs.tasks import store_logs
from ops.metrics import ENTRIES_ACCEPTED, FALLBACK_ENTRIES

logger = logging.getLogger(__name__)


class IntakeUnavailable(Exception):
    """Neither Kafka nor the Celery broker took the entries."""


def encode_entry(entry: dict[str, Any]) -> bytes:
    return orjson.dumps(entry)


def enqueue_fallback(entries: Sequence[dict[str, Any]]) -> None:
    """Publish the persisting task straight to the Celery broker.

    The publish is retried a few times within about a second; if the broker
    still does not take it, the error propagates.
    """
    size = settings.CONSUMER_BATCH_SIZE
    for start in range(0, len(entries), size):
        store_logs.apply_async(
            args=[list(entries[start : start + size])],
            retry=True,
            retry_policy={
                "max_retries": settings.CELERY_FALLBACK_PUBLISH_RETRIES,
                "interval_start": 0,
                "interval_step": 0.25,
                "interval_max": 0.5,
            },
        )


def accept_entries(
    entries: Sequence[dict[str, Any]], payloads: Sequence[bytes] | None = None
) -> str:
    """Make every entry durable in Kafka or in the Celery queue.

    `payloads` are the entries already encoded with encode_entry, if the
    caller has them. Returns "kafka" when Kafka confirmed every entry and
    "fallback" when some went through the Celery queue. Raises
    IntakeUnavailable when some entries reached neither.
    """
    if payloads is None:
        payloads = [encode_entry(entry) for entry in entries]
    missing = get_intake_producer().publish(payloads)
    ENTRIES_ACCEPTED.labels("kafka").inc(len(payloads) - len(missing))
    if not missing:
        return "kafka"

    leftovers = [entries[index] for index in missing]
    try:
        enqueue_fallback(leftovers)
    except Exception as exc:
        # Any broker or connection error means the entries are not durable.
        logger.error(
            "Intake fallback failed for %d entries starting with %s: %s",
            len(leftovers),
            leftovers[0]["id"],
            exc,
        )
        FALLBACK_ENTRIES.labels("failed").inc(len(leftovers))
        raise IntakeUnavailable(str(exc)) from exc
    FALLBACK_ENTRIES.labels("queued").inc(len(leftovers))
    ENTRIES_ACCEPTED.labels("fallback").inc(len(leftovers))
    logger.info(
        "Intake sent %d entries starting with %s through the Celery fallback",
        len(leftovers),
        leftovers[0]["id"],
    )
    return "fallback"
