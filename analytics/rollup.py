"""Recompute the minute rollups from the logs table.

A rollup row is never incremented. Each run recomputes whole minute buckets
from the entries stored for them, so running it twice gives the same rows.
An entry that arrives late, with an old timestamp, corrects its old minute
the next time that minute is recomputed.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from analytics.models import (
    ErrorMessageRollup,
    MinuteRollup,
    PatternHourRollup,
    PatternMinuteRollup,
)
from analytics.queries import floor_time
from logs.levels import Level
from logs.models import Log

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
# A backfill commits once per this span of event time, so it never holds one
# transaction, and the rollup lock, for the whole history.
BACKFILL_CHUNK = timedelta(days=1)
# Entries may carry any time up to the end of year 9999, the last moment a
# datetime can hold, so ranges that reach past it stop there.
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def capped_add(moment: datetime, delta: timedelta) -> datetime:
    """Return moment + delta, or END_OF_TIME when that is beyond year 9999."""
    try:
        return moment + delta
    except OverflowError:
        return END_OF_TIME


# Key of the transaction-level advisory lock that serializes runs, so a slow
# run and the next scheduled one do not write the same buckets at once. The
# number ("analytic" in ASCII) only has to differ from other advisory locks.
ROLLUP_LOCK_KEY = 0x616E616C79746963

# Messages that differ only in numbers and ids share a fingerprint. Three
# kinds of token become '#': UUIDs, 0x-prefixed hexadecimal numbers, and runs
# of hexadecimal characters that contain a digit (so "404", "10.0.0.1" and
# "a3f9c2" are masked while words such as "face" or "added" are kept).
# PostgreSQL takes the longest match at each position, so a UUID is masked as
# one token. Only the first 1000 characters are masked, which bounds the cost
# per entry. Masking only shortens text, so those give the same first 200
# masked characters as the whole message unless masked tokens take up more
# than 800 of them. FINGERPRINT_SQL reads the log table under the alias `l`.
MASK_PATTERN = (
    r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
    r"|0[xX][0-9a-fA-F]+"
    r"|[0-9a-fA-F]*[0-9][0-9a-fA-F]*"
)
FINGERPRINT_SQL = (
    f"md5(left(regexp_replace(left(l.message, 1000), '{MASK_PATTERN}', '#', 'g'), 200))"
)
EXAMPLE_LENGTH = 1000

# Every statement takes the minute starts to recompute as one array parameter.
# The LATERAL subquery reads each minute as its own range scan of a timestamp
# index, a plan that stays fast even when the planner misjudges how many rows
# a minute has. OFFSET 0 keeps PostgreSQL from flattening it into a plain join,
# which it may run as one scan of the whole table.
#
# In the same statement, rows of those minutes whose key has no entries any
# more are deleted, and the fresh counts are upserted. The NOT EXISTS runs
# as an anti-join. A NOT IN over `fresh` is hashed only while the hash fits
# in work_mem, and beyond that PostgreSQL scans `fresh` once per rollup row:
# a day's backfill over existing rows at 10 million entries ran for more
# than 10 minutes. The upsert skips rows whose values did not change, so
# `written` counts real changes only.
#
# _COUNT_ROLLUP_SQL counts entries per minute and {keys}, columns of the log
# table that also form the rollup's key after the minute. {condition} narrows
# the entries counted.
_COUNT_ROLLUP_SQL = """
WITH buckets AS (
    SELECT unnest(%(minutes)s::timestamptz[]) AS minute
),
fresh AS (
    SELECT b.minute, {keys}, count(*) AS count
    FROM buckets b
    CROSS JOIN LATERAL (
        SELECT {keys} FROM {log}
        WHERE timestamp >= b.minute AND timestamp < b.minute + interval '1 minute'
          {condition}
        OFFSET 0
    ) l
    GROUP BY b.minute, {keys}
),
removed AS (
    DELETE FROM {rollup} r
    WHERE r.minute = ANY(%(minutes)s::timestamptz[])
      AND NOT EXISTS (
          SELECT FROM fresh f WHERE f.minute = r.minute AND {same_keys}
      )
    RETURNING 1
),
written AS (
    INSERT INTO {rollup} (minute, {keys}, count)
    SELECT minute, {keys}, count FROM fresh
    ON CONFLICT (minute, {keys})
    DO UPDATE SET count = EXCLUDED.count
    WHERE {rollup}.count <> EXCLUDED.count
    RETURNING 1
)
SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM removed)
"""

_ERROR_ROLLUP_SQL = """
WITH buckets AS (
    SELECT unnest(%(minutes)s::timestamptz[]) AS minute
),
fresh AS (
    SELECT
        b.minute,
        l.service_name,
        {fingerprint} AS fingerprint,
        count(*) AS count,
        max(l.level) AS max_level,
        min(left(l.message, {example_length})) AS example_message
    FROM buckets b
    CROSS JOIN LATERAL (
        SELECT service_name, level, message FROM {log}
        WHERE timestamp >= b.minute AND timestamp < b.minute + interval '1 minute'
          AND level >= %(min_level)s
        OFFSET 0
    ) l
    GROUP BY b.minute, l.service_name, 3
),
removed AS (
    DELETE FROM {rollup} r
    WHERE r.minute = ANY(%(minutes)s::timestamptz[])
      AND NOT EXISTS (
          SELECT FROM fresh f
          WHERE f.minute = r.minute
            AND f.service_name = r.service_name
            AND f.fingerprint = r.fingerprint
      )
    RETURNING 1
),
written AS (
    INSERT INTO {rollup}
        (minute, service_name, fingerprint, count, max_level, example_message)
    SELECT minute, service_name, fingerprint, count, max_level, example_message
    FROM fresh
    ON CONFLICT (minute, service_name, fingerprint)
    DO UPDATE SET
        count = EXCLUDED.count,
        max_level = EXCLUDED.max_level,
        example_message = EXCLUDED.example_message
    WHERE ({rollup}.count, {rollup}.max_level, {rollup}.example_message)
        IS DISTINCT FROM
        (EXCLUDED.count, EXCLUDED.max_level, EXCLUDED.example_message)
    RETURNING 1
)
SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM removed)
"""


# Recomputes the hours of the given minutes from the pattern minute rollup,
# which the same transaction has just refreshed, in the way of the
# statements above.
_PATTERN_HOUR_SQL = """
WITH hours AS (
    SELECT DISTINCT date_trunc('hour', minute, 'UTC') AS hour
    FROM unnest(%(minutes)s::timestamptz[]) AS minutes(minute)
),
fresh AS (
    SELECT h.hour, m.pattern_id, sum(m.count) AS count
    FROM hours h
    JOIN {minutes} m
      ON m.minute >= h.hour AND m.minute < h.hour + interval '1 hour'
    GROUP BY h.hour, m.pattern_id
),
removed AS (
    DELETE FROM {hours} r
    WHERE r.hour IN (SELECT hour FROM hours)
      AND NOT EXISTS (
          SELECT FROM fresh f
          WHERE f.hour = r.hour AND f.pattern_id = r.pattern_id
      )
    RETURNING 1
),
written AS (
    INSERT INTO {hours} (hour, pattern_id, count)
    SELECT hour, pattern_id, count FROM fresh
    ON CONFLICT (hour, pattern_id)
    DO UPDATE SET count = EXCLUDED.count
    WHERE {hours}.count <> EXCLUDED.count
    RETURNING 1
)
SELECT (SELECT count(*) FROM written), (SELECT count(*) FROM removed)
"""


@dataclass
class RollupResult:
    """Counts of one recompute: minutes read, and rollup rows changed.

    Rows whose values did not change count as neither written nor removed.
    """

    minutes: int = 0
    rows_written: int = 0
    rows_removed: int = 0
    # True when another run held the lock and this one did nothing.
    skipped: bool = False

    def add_rows(self, written: int, removed: int) -> None:
        self.rows_written += written
        self.rows_removed += removed

    def add(self, other: "RollupResult") -> None:
        self.minutes += other.minutes
        self.rows_written += other.rows_written
        self.rows_removed += other.rows_removed


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _run_rollup(sql: str, params: dict) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written, removed = cursor.fetchone()
    return written, removed


ROLLUP_MODELS = (MinuteRollup, ErrorMessageRollup, PatternMinuteRollup)
# The rollups that _COUNT_ROLLUP_SQL fills: the model, its key columns after
# the minute, and the condition on the entries it counts.
COUNT_ROLLUPS = (
    (MinuteRollup, "service_name, level", ""),
    (PatternMinuteRollup, "pattern_id", "AND pattern_id IS NOT NULL"),
)


def recompute_minutes(minutes: Sequence[datetime]) -> RollupResult:
    """Recompute the rollups for these minutes, within the caller's transaction.

    Each value is rounded down to its minute. The caller holds the rollup
    lock (`_lock`), so concurrent runs do not interleave.
    """
    starts = sorted({floor_time(minute, "minute") for minute in minutes})
    if not starts:
        return RollupResult()

    log_table = _table(Log)
    result = RollupResult(minutes=len(starts))
    for model, keys, condition in COUNT_ROLLUPS:
        same_keys = " AND ".join(f"f.{key} = r.{key}" for key in keys.split(", "))
        sql = _COUNT_ROLLUP_SQL.format(
            keys=keys,
            same_keys=same_keys,
            log=log_table,
            rollup=_table(model),
            condition=condition,
        )
        result.add_rows(*_run_rollup(sql, {"minutes": starts}))
    errors = _run_rollup(
        _ERROR_ROLLUP_SQL.format(
            log=log_table,
            rollup=_table(ErrorMessageRollup),
            fingerprint=FINGERPRINT_SQL,
            example_length=EXAMPLE_LENGTH,
        ),
        {"minutes": starts, "min_level": Level.ERROR.value},
    )
    result.add_rows(*errors)
    hours = _PATTERN_HOUR_SQL.format(
        minutes=_table(PatternMinuteRollup), hours=_table(PatternHourRollup)
    )
    result.add_rows(*_run_rollup(hours, {"minutes": starts}))
    return result


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])


def _try_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROLLUP_LOCK_KEY])
        return cursor.fetchone()[0]


def touched_minutes(arrived_since: datetime) -> list[datetime]:
    """List the event minutes of the entries that arrived at or after a time.

    The BRIN index serves the filter on received_at, so only the block
    ranges written recently are read from the table.
    """
    sql = (
        "SELECT DISTINCT date_trunc('minute', timestamp, 'UTC') "
        f"FROM {_table(Log)} WHERE received_at >= %s ORDER BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [arrived_since])
        return [row[0] for row in cursor.fetchall()]


def roll_up_recent(now: datetime | None = None) -> RollupResult:
    """Recompute every minute touched by entries that arrived recently.

    "Recently" is the last ROLLUP_RECOMPUTE_MINUTES before `now`. Everything
    happens in one transaction, so readers see the run's changes all at once.

    NOTE: an entry stored more than ROLLUP_RECOMPUTE_MINUTES after the API
    accepted it (a queue held back by a database outage, say) is missed here,
    because its received_at is already outside the window. `manage.py
    roll_up` over the affected range corrects those minutes.
    """
    now = now or timezone.now()
    arrived_since = now - timedelta(minutes=settings.ROLLUP_RECOMPUTE_MINUTES)
    with transaction.atomic():
        # A run still going covers what this one would do. Waiting for it
        # would only tie up a second worker process while other tasks, such
        # as notifications, queue behind both.
        if not _try_lock():
            return RollupResult(skipped=True)
        minutes = touched_minutes(arrived_since)
        return recompute_minutes(minutes)


def minutes_with_data(since: datetime, until: datetime) -> list[datetime]:
    """List the minutes in [since, until) that have entries or rollup rows.

    Those are the only minutes whose rollup rows can change: a minute
    without either stays without rows.
    """
    parts = [
        f"SELECT date_trunc('minute', timestamp, 'UTC') FROM {_table(Log)} "
        "WHERE timestamp >= %(since)s AND timestamp < %(until)s"
    ] + [
        f"SELECT minute FROM {_table(model)} "
        "WHERE minute >= %(since)s AND minute < %(until)s"
        for model in ROLLUP_MODELS
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            " UNION ".join(parts) + " ORDER BY 1", {"since": since, "until": until}
        )
        return [row[0] for row in cursor.fetchall()]


def _first_at_or_after(model, field: str, after: datetime) -> datetime | None:
    rows = model.objects.filter(**{f"{field}__gte": after})
    return rows.aggregate(first=Min(field))["first"]


def next_data_time(after: datetime) -> datetime | None:
    """Return the first event time or rollup minute at or after a time.

    Each lookup is one step into an index that starts with the time, so a
    backfill skips long empty stretches at no cost.
    """
    candidates = [_first_at_or_after(Log, "timestamp", after)] + [
        _first_at_or_after(model, "minute", after) for model in ROLLUP_MODELS
    ]
    return min((c for c in candidates if c is not None), default=None)


def stored_range() -> tuple[datetime, datetime] | None:
    """Return the earliest event time and a time past the latest event's minute.

    Returns None when no entry is stored.
    """
    bounds = Log.objects.aggregate(first=Min("timestamp"), last=Max("timestamp"))
    if bounds["first"] is None:
        return None
    return bounds["first"], capped_add(bounds["last"], MINUTE)


def roll_up_range(since: datetime, until: datetime) -> RollupResult:
    """Recompute every minute from `since`, rounded down, up to before `until`.

    Minutes without entries lose their rollup rows. Each day of the range is
    committed on its own, so a long backfill can be stopped and rerun, and
    days without entries or rollup rows are skipped.
    """
    total = RollupResult()
    chunk_start = floor_time(since, "minute")
    while chunk_start < until:
        next_time = next_data_time(chunk_start)
        if next_time is None or next_time >= until:
            break
        chunk_start = max(chunk_start, floor_time(next_time, "minute"))
        chunk_end = min(capped_add(chunk_start, BACKFILL_CHUNK), until)
        with transaction.atomic():
            _lock()
            result = recompute_minutes(minutes_with_data(chunk_start, chunk_end))
        logger.info(
            "roll_up: recomputed %s to %s: %d minutes, %d rows written, "
            "%d rows removed",
            chunk_start.isoformat(),
            chunk_end.isoformat(),
            result.minutes,
            result.rows_written,
            result.rows_removed,
        )
        total.add(result)
        chunk_start = chunk_end
    return total
