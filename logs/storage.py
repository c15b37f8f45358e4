"""Set-based writes of normalized entries into the logs table."""

from collections.abc import Sequence
from typing import Any

import orjson
from django.db import connection

from logs.levels import Level
from logs.models import EventId, Log, Pattern

# One statement per batch. The arrays are unnested into rows, and each id
# first goes into the event id table, whose unique key decides which rows
# are new: only those reach the logs table. A batch delivered twice thus
# adds nothing the second time, even when a client sent the same entry again
# on another day (another partition). Concurrent copies wait on that key for
# each other. The logs table's own key, (id, received_at), catches a
# redelivered batch whose ids are older than the event id table remembers.
# Metadata travels as JSON text and is cast in the database, which is cheaper
# than adapting one Python object per row.
#
# The same statement adds the inserted rows, and only those, to their
# patterns' counts, so a redelivered batch counts nothing twice. The pattern
# rows are locked in id order before the update: two workers whose batches
# share patterns then wait for each other instead of deadlocking.
_INSERT_SQL = """
WITH batch AS (
    SELECT DISTINCT ON (id) id, ts, received, lvl, svc, msg, meta, pattern
    FROM unnest(
        %s::uuid[], %s::timestamptz[], %s::timestamptz[], %s::smallint[],
        %s::text[], %s::text[], %s::text[], %s::bigint[]
    ) AS entry(id, ts, received, lvl, svc, msg, meta, pattern)
), fresh AS (
    INSERT INTO {ids} (id, received_at)
    SELECT id, received FROM batch
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), inserted AS (
    INSERT INTO {logs}
        (id, timestamp, received_at, level, service_name, message, metadata,
         pattern_id)
    SELECT id, ts, received, lvl, svc, msg, meta::jsonb, pattern
    FROM batch JOIN fresh USING (id)
    ON CONFLICT (id, received_at) DO NOTHING
    RETURNING pattern_id, received_at
), counts AS (
    SELECT pattern_id, count(*) AS entries, min(received_at) AS first,
        max(received_at) AS last
    FROM inserted
    WHERE pattern_id IS NOT NULL
    GROUP BY pattern_id
), {count_patterns}
SELECT count(*) FROM inserted
"""

# Adds the rows of a CTE `counts` (pattern_id, entries, first, last), which
# precedes it, to their patterns. Patterns are locked in id order, as above.
_COUNT_PATTERNS_SQL = """locked AS (
    SELECT id FROM {patterns}
    WHERE id IN (SELECT pattern_id FROM counts)
    ORDER BY id
    FOR UPDATE
), counted AS (
    UPDATE {patterns} AS pattern
    SET count = pattern.count + counts.entries,
        first_seen = least(pattern.first_seen, counts.first),
        last_seen = greatest(pattern.last_seen, counts.last)
    FROM counts JOIN locked ON locked.id = counts.pattern_id
    WHERE pattern.id = counts.pattern_id
    RETURNING 1
)"""

_ADD_COUNTS_SQL = """
WITH counts AS (
    SELECT * FROM unnest(
        %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[]
    ) AS counts(pattern_id, entries, first, last)
), {count_patterns}
SELECT count(*) FROM counted
"""


def insert_entries(
    entries: Sequence[dict[str, Any]],
    pattern_ids: Sequence[int | None] | None = None,
) -> int:
    """Store normalized entries; return how many rows were new.

    `pattern_ids`, one per entry, sets each row's pattern. Without it, every
    row is stored without a pattern.
    """
    if not entries:
        return 0
    columns: list[list[Any]] = [[], [], [], [], [], [], []]
    for entry in entries:
        columns[0].append(entry["id"])
        columns[1].append(entry["timestamp"])
        columns[2].append(entry["received_at"])
        columns[3].append(Level[entry["level"]].value)
        columns[4].append(entry["service_name"])
        columns[5].append(entry["message"])
        columns[6].append(orjson.dumps(entry["metadata"]).decode())
    if pattern_ids is None:
        pattern_ids = [None] * len(entries)
    sql = _INSERT_SQL.format(
        ids=connection.ops.quote_name(EventId._meta.db_table),
        logs=connection.ops.quote_name(Log._meta.db_table),
        count_patterns=_count_patterns_sql(),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*columns, list(pattern_ids)])
        return cursor.fetchone()[0]


def _count_patterns_sql() -> str:
    patterns = connection.ops.quote_name(Pattern._meta.db_table)
    return _COUNT_PATTERNS_SQL.format(patterns=patterns)


def add_pattern_counts(counts: dict[int, tuple[int, Any, Any]]) -> int:
    """Add entries to patterns' counts and widen their first and last seen times.

    `counts` maps a pattern id to (entries, earliest arrival, latest
    arrival). Returns how many patterns were found and updated.
    """
    if not counts:
        return 0
    ids = list(counts)
    columns = [ids] + [[counts[pattern_id][n] for pattern_id in ids] for n in range(3)]
    sql = _ADD_COUNTS_SQL.format(count_patterns=_count_patterns_sql())
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)
        return cursor.fetchone()[0]
