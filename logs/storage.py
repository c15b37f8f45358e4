"""Set-based writes of normalized entries into the logs table."""

from collections.abc import Sequence
from typing import Any

import orjson
from django.db import connection

from logs.levels import Level
from logs.models import Log

# One statement per batch: the arrays are unnested into rows and rows whose
# event id is already stored are skipped, so a batch delivered twice adds
# nothing the second time. Metadata travels as JSON text and is cast in the
# database, which is cheaper than adapting one Python object per row.
_INSERT_SQL = """
INSERT INTO {table} (id, timestamp, received_at, level, service_name, message, metadata)
SELECT id, ts, received, lvl, svc, msg, meta::jsonb
FROM unnest(
    %s::uuid[], %s::timestamptz[], %s::timestamptz[], %s::smallint[],
    %s::text[], %s::text[], %s::text[]
) AS batch(id, ts, received, lvl, svc, msg, meta)
ON CONFLICT (id) DO NOTHING
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
    sql = _INSERT_SQL.format(table=connection.ops.quote_name(Log._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)
        return cursor.rowcount
