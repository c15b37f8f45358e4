"""Retention: remove entries that have been kept longer than their service's limit.

Age counts from arrival (`received_at`), not from the event time. A file of
years-old logs imported today is kept as long as anything else that arrived
today, and a client whose clock runs years ahead cannot keep its entries
forever.

The logs table has one partition per arrival day (logs/partitions.py), so
most of a purge is dropping the partitions of days that have expired for
every service in them, a quick statement whatever their size. The rest is
deleted row by row: entries of services with a shorter
limit than the default, entries in days that a longer-kept service still
holds, and entries in the default partition. Those rows go in batches of
LOG_PURGE_BATCH_SIZE, each in its own short transaction, so a large purge
never holds locks or one huge transaction.

The purge also deletes the event ids older than LOG_DEDUP_DAYS.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from logs.models import EventId, Log
from logs.partitions import (
    Partition,
    count_rows,
    drop_partition,
    existing_partitions,
    services_in,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionRule:
    """Entries of some services that arrived before a cutoff."""

    label: str
    days: int
    cutoff: datetime
    condition: Q

    def expired(self):
        return Log.objects.filter(self.condition, received_at__lt=self.cutoff)


def retention_rules(now: datetime | None = None) -> list[RetentionRule]:
    """List what is due for deletion: one rule per override and one for the rest.

    A limit of 0 days keeps entries forever and gives no rule.
    """
    now = now or timezone.now()
    overrides = settings.LOG_RETENTION_OVERRIDES
    rules = []
    for service, days in sorted(overrides.items()):
        if days > 0:
            rules.append(
                RetentionRule(
                    label=f"service {service}",
                    days=days,
                    cutoff=now - timedelta(days=days),
                    condition=Q(service_name=service),
                )
            )
    default_days = settings.LOG_RETENTION_DAYS
    if default_days > 0:
        rules.append(
            RetentionRule(
                label="other services" if overrides else "all services",
                days=default_days,
                cutoff=now - timedelta(days=default_days),
                condition=~Q(service_name__in=list(overrides)),
            )
        )
    return rules


def expired_partitions(now: datetime | None = None) -> list[Partition]:
    """List the day partitions that contain no entry any service still keeps."""
    now = now or timezone.now()
    default_days = settings.LOG_RETENTION_DAYS
    if default_days == 0:
        return []
    cutoff = now - timedelta(days=default_days)
    overrides = settings.LOG_RETENTION_OVERRIDES
    expired = []
    for partition in existing_partitions():
        if partition.end > cutoff:
            break
        # Services kept longer than the rest may still need this day.
        keepers = [
            service
            for service, days in overrides.items()
            if days == 0 or partition.end > now - timedelta(days=days)
        ]
        if not services_in(partition, keepers):
            expired.append(partition)
    return expired


def dedup_cutoff(now: datetime | None = None) -> datetime:
    """Return the arrival time before which event ids are deleted."""
    return (now or timezone.now()) - timedelta(days=settings.LOG_DEDUP_DAYS)


@dataclass
class PurgeResult:
    """What a purge removed, or with dry_run would remove."""

    partitions: dict[str, int] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)
    event_ids: int = 0


def purge(
    now: datetime | None = None, dry_run: bool = False, batch_size: int | None = None
) -> PurgeResult:
    """Remove (or with dry_run, count) expired entries and old event ids."""
    now = now or timezone.now()
    batch_size = batch_size or settings.LOG_PURGE_BATCH_SIZE
    result = PurgeResult()
    whole_days = expired_partitions(now)
    for partition in whole_days:
        if dry_run:
            result.partitions[partition.name] = count_rows(partition)
            continue
        try:
            result.partitions[partition.name] = drop_partition(partition)
        except OperationalError as exc:
            # Most likely the lock timeout behind a long query; the next run
            # tries again.
            logger.warning("purge: could not drop %s yet: %s", partition.name, exc)
    # Rows in those days are left to the drop, even one that failed.
    outside = Q()
    for partition in whole_days:
        outside &= ~Q(received_at__gte=partition.start, received_at__lt=partition.end)

    for rule in retention_rules(now):
        expired = rule.expired().filter(outside)
        if dry_run:
            result.rules[rule.label] = expired.count()
            continue
        logger.info(
            "purge: deleting entries of %s that arrived before %s (%d days)",
            rule.label,
            rule.cutoff.isoformat(),
            rule.days,
        )
        deleted = _delete_in_batches(expired, ["id", "received_at"], batch_size)
        logger.info("purge: deleted %d entries of %s", deleted, rule.label)
        result.rules[rule.label] = deleted

    old_ids = EventId.objects.filter(received_at__lt=dedup_cutoff(now))
    if dry_run:
        result.event_ids = old_ids.count()
    else:
        result.event_ids = _delete_in_batches(old_ids, ["id"], batch_size)
        logger.info("purge: deleted %d event ids", result.event_ids)
    return result


def _delete_in_batches(rows: QuerySet, key: list[str], batch_size: int) -> int:
    """Delete the rows batch_size at a time, one transaction each."""
    table = connection.ops.quote_name(rows.model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(name) for name in key)
    sql, params = rows.order_by().values(*key)[:batch_size].query.sql_with_params()
    statement = f"DELETE FROM {table} WHERE ({columns}) IN ({sql})"
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
            batch = cursor.rowcount
        deleted += batch
        if batch < batch_size:
            return deleted
