"""Partition the logs table by day of arrival, and add the event id table.

Django cannot describe a partitioned table, so this is done in SQL and the
model state stays as it was. The existing rows are copied into the new
table. Days from today on get their own partitions; older rows land in the
default partition, from which the purge deletes them row by row when they
expire. The ids of rows that arrived within LOG_DEDUP_DAYS go into the event
id table, so copies of them sent again are still recognised.
"""

from datetime import timedelta

import django.contrib.postgres.indexes
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

TABLE = "logs_log"
OLD = "logs_log_unpartitioned"
COLUMNS = "id, timestamp, received_at, level, service_name, message, metadata"


def create_indexes(apps, schema_editor):
    Log = apps.get_model("logs", "Log")
    for index in Log._meta.indexes:
        schema_editor.execute(index.create_sql(Log, schema_editor))


def partition(apps, schema_editor):
    from logs.partitions import DEFAULT_PARTITION, ensure_partitions

    run = schema_editor.execute
    run(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    run(f"ALTER TABLE {OLD} RENAME CONSTRAINT {TABLE}_pkey TO {OLD}_pkey")
    run(
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY RANGE (received_at)"
    )
    # A unique key of a partitioned table must hold the partition key.
    run(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, received_at)"
    )
    run(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    ensure_partitions()
    run(f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {OLD}")
    since = timezone.now() - timedelta(days=settings.LOG_DEDUP_DAYS)
    run(
        "INSERT INTO logs_eventid (id, received_at) "
        f"SELECT id, received_at FROM {OLD} WHERE received_at >= %s",
        [since],
    )
    run(f"DROP TABLE {OLD}")
    # Indexes made on the partitioned table are made on every partition,
    # and on each partition created later.
    create_indexes(apps, schema_editor)


def unpartition(apps, schema_editor):
    run = schema_editor.execute
    run(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    run(f"ALTER TABLE {OLD} RENAME CONSTRAINT {TABLE}_pkey TO {OLD}_pkey")
    run(f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    run(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
    run(
        f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {OLD} "
        "ON CONFLICT (id) DO NOTHING"
    )
    run(f"DROP TABLE {OLD}")
    create_indexes(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("logs", "0003_service_level_and_trigram"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventId",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        primary_key=True, serialize=False, verbose_name="event id"
                    ),
                ),
                ("received_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "event id",
                "indexes": [
                    django.contrib.postgres.indexes.BrinIndex(
                        fields=["received_at"], name="eventid_received_brin"
                    )
                ],
            },
        ),
        migrations.RunPython(partition, unpartition),
    ]
