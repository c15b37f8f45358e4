"""Daily partitions of the logs table.

`logs_log` is partitioned by range of `received_at`, one partition per UTC
day named `logs_log_pYYYYMMDD`. Every entry arrives now, whatever its event
time, so the partitions needed are known ahead. Retention counts from
arrival too, so it drops a whole day at once instead of deleting its rows.

The partition `logs_log_default` takes any row whose day has no partition
yet, for example when beat has not run for days or when generated history
lands in the past. Nothing is ever rejected for want of a partition. When a
day's partition is created later, the rows of that day move out of the
default partition into it.

Creating and dropping partitions takes locks on the logs table, so each
statement waits at most PARTITION_LOCK_TIMEOUT; a partition that could not
be made or dropped in time is tried again at the next run.
"""

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from logs.models import Log

logger = logging.getLogger(__name__)

DEFAULT_PARTITION = f"{Log._meta.db_table}_default"
PARTITION_LOCK_TIMEOUT = "5s"
_NAME = re.compile(rf"^{Log._meta.db_table}_p(\d{{8}})$")
# Serializes the creation of partitions between processes (beat's task and
# generate_logs may both make the same day).
_LOCK_KEY = 0x6C6F6773  # "logs"


@dataclass(frozen=True, order=True)
class Partition:
    """A partition of one arrival day, from start (included) to end, in UTC."""

    day: date

    @classmethod
    def from_name(cls, name: str) -> "Partition | None":
        """Return the partition a table name is for, or None for any other table."""
        match = _NAME.match(name)
        return cls(datetime.strptime(match[1], "%Y%m%d").date()) if match else None

    @property
    def name(self) -> str:
        return f"{Log._meta.db_table}_p{self.day:%Y%m%d}"

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)


def partition_for(moment: datetime) -> Partition:
    return Partition(moment.astimezone(UTC).date())


def existing_partitions() -> list[Partition]:
    """The day partitions the logs table has, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits "
            "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
            "WHERE parent.relname = %s",
            [Log._meta.db_table],
        )
        partitions = [Partition.from_name(row[0]) for row in cursor.fetchall()]
    return sorted(partition for partition in partitions if partition)


def create_partitions(first: date, last: date) -> list[Partition]:
    """Make sure each day from first to last has its partition; return the new ones."""
    created = []
    day = first
    while day <= last:
        partition = Partition(day)
        if _create(partition):
            created.append(partition)
        day += timedelta(days=1)
    return created


def ensure_partitions(today: date | None = None) -> list[Partition]:
    """Create the partitions of today and the next LOG_PARTITION_DAYS_AHEAD days."""
    today = today or timezone.now().astimezone(UTC).date()
    return create_partitions(
        today, today + timedelta(days=settings.LOG_PARTITION_DAYS_AHEAD)
    )


def _create(partition: Partition) -> bool:
    """Create one day's partition unless it exists; move its rows out of default.

    The table is built on its own and then attached, which locks the logs
    table only in SHARE UPDATE EXCLUSIVE mode: reads and inserts go on.
    """
    table = Log._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        cursor.execute("SELECT to_regclass(%s)", [partition.name])
        if cursor.fetchone()[0] is not None:
            return False
        cursor.execute(f"SET LOCAL lock_timeout = '{PARTITION_LOCK_TIMEOUT}'")
        cursor.execute(
            f"CREATE TABLE {partition.name} "
            f"(LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        # Attaching next to a default partition checks that the default
        # holds no row of this day, so those rows move first. The attach
        # locks the default partition anyway; locking it now keeps new rows
        # of the day from landing there in between.
        cursor.execute(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
            "WHERE received_at >= %s AND received_at < %s RETURNING *) "
            f"INSERT INTO {partition.name} SELECT * FROM moved",
            [partition.start, partition.end],
        )
        moved = cursor.rowcount
        cursor.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {partition.name} "
            "FOR VALUES FROM (%s) TO (%s)",
            [partition.start, partition.end],
        )
    logger.info(
        "partitions: created %s for arrivals from %s, moved %d rows from %s",
        partition.name,
        partition.start.isoformat(),
        moved,
        DEFAULT_PARTITION,
    )
    return True


def count_rows(partition: Partition) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partition.name}")
        return cursor.fetchone()[0]


def drop_partition(partition: Partition) -> int:
    """Drop one day's partition with its rows; return how many rows went."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{PARTITION_LOCK_TIMEOUT}'")
        # Locking first keeps the count exact: nothing can be added between
        # counting and dropping.
        cursor.execute(f"LOCK TABLE {partition.name} IN ACCESS EXCLUSIVE MODE")
        rows = count_rows(partition)
        cursor.execute(f"DROP TABLE {partition.name}")
    logger.info("partitions: dropped %s with %d rows", partition.name, rows)
    return rows


def services_in(partition: Partition, services: list[str]) -> list[str]:
    """Return which of the given services have rows in the partition."""
    if not services:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM unnest(%s::text[]) AS name WHERE EXISTS "
            f"(SELECT 1 FROM {partition.name} WHERE service_name = name)",
            [services],
        )
        return [row[0] for row in cursor.fetchall()]
