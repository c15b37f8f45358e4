"""Retention: delete entries that have been kept longer than their service's limit.

Age counts from arrival (`received_at`), not from the event time. A file of
years-old logs imported today is kept as long as anything else that arrived
today, and a client whose clock runs years ahead cannot keep its entries
forever. The BRIN index on `received_at` finds the old rows.

Rows go in batches of LOG_PURGE_BATCH_SIZE, each batch in its own short
transaction, so a large purge never holds locks or one huge transaction.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from logs.models import Log

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


def purge(
    now: datetime | None = None, dry_run: bool = False, batch_size: int | None = None
) -> dict[str, int]:
    """Delete (or with dry_run, count) expired entries; return counts per rule."""
    batch_size = batch_size or settings.LOG_PURGE_BATCH_SIZE
    counts = {}
    for rule in retention_rules(now):
        if dry_run:
            counts[rule.label] = rule.expired().count()
            continue
        logger.info(
            "purge: deleting entries of %s that arrived before %s (%d days)",
            rule.label,
            rule.cutoff.isoformat(),
            rule.days,
        )
        deleted = 0
        while True:
            batch = _delete_batch(rule, batch_size)
            deleted += batch
            if batch < batch_size:
                break
        logger.info("purge: deleted %d entries of %s", deleted, rule.label)
        counts[rule.label] = deleted
    return counts


def _delete_batch(rule: RetentionRule, batch_size: int) -> int:
    """Delete up to batch_size expired rows in one transaction."""
    query = rule.expired().order_by().values("id")[:batch_size]
    sql, params = query.query.sql_with_params()
    table = connection.ops.quote_name(Log._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id IN ({sql})", params)
        return cursor.rowcount
