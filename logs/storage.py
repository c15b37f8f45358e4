"""Set-based writes of normalized entries into the logs table."""

from collections.abc import Sequence
from typing import Any

import orjson
from django.db import connection

from logs.levels import Level
from logs.models import EventId, Log

# One statement per batch. The arrays are unnested into rows, and each id
# first goes into the event id table, whose unique key decides which rows
# are new: only those reach the logs table. A batch delivered twice thus
# adds nothing the second time, even when a client sent the same entry again
# on another day (another partition). Concurrent copies wait on that key for
# each other. The logs table's own key, (id, received_at), catches a
# redelivered batch whose ids are older than the event id table remembers.
# Metadata travels as JSON text and is cast in the database, which is cheaper
# than adapting one Python object per row.
_INSERT_SQL = """
WITH batch AS (
    SELECT DISTINCT ON (id) id, ts, received, lvl, svc, msg, meta
    FROM unnest(
        %s::uuid[], %s::timestamptz[], %s::timestamptz[], %s::smallint[],
        %s::text[], %s::text[], %s::text[]
    ) AS entry(id, ts, received, lvl, svc, msg, meta)
), fresh AS (
    INSERT INTO {ids} (id, received_at)
    SELECT id, received FROM batch
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
INSERT INTO {logs} (id, timestamp, received_at, level, service_name, message, metadata)
SELECT id, ts, received, lvl, svc, msg, meta::jsonb
FROM batch JOIN fresh USING (id)
ON CONFLICT (id, received_at) DO NOTHING
"""


def insert_entries(entries: Sequence[dict[str, Any]]) -> int:
    """Store normalized entries; return how many rows were new."""
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
    sql = _INSERT_SQL.format(
        ids=connection.ops.quote_name(EventId._meta.db_table),
        logs=connection.ops.quote_name(Log._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)
        return cursor.rowcount
