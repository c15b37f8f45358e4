"""Add the hourly creation of the logs table's coming partitions to beat."""

from django.db import migrations

from alerts.migrations._schedule import Periodic, schedule_operation

SCHEDULE = [
    Periodic(
        "Create log partitions",
        "logs.create_partitions",
        1,
        "hours",
        "Creates the partitions of the logs table for the coming days "
        "(LOG_PARTITION_DAYS_AHEAD).",
    )
]


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0003_purge_schedule"),
        ("logs", "0004_eventid_and_partitions"),
    ]

    operations = [schedule_operation(SCHEDULE)]
