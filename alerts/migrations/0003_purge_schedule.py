"""Add the hourly retention purge to the stored beat schedule."""

from django.db import migrations

from alerts.migrations._schedule import Periodic, schedule_operation

SCHEDULE = [
    Periodic(
        "Purge expired logs",
        "logs.purge_expired",
        1,
        "hours",
        "Deletes entries kept longer than their retention.",
    )
]


class Migration(migrations.Migration):
    dependencies = [("alerts", "0002_periodic_tasks")]

    operations = [schedule_operation(SCHEDULE)]
