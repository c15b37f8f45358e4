"""Store the platform's periodic tasks in django-celery-beat's schedule.

Beat runs with the database scheduler, so these rows are the schedule.
"""

from django.db import migrations

from alerts.migrations._schedule import Periodic, schedule_operation

SCHEDULE = [
    Periodic(
        "Evaluate alert rules",
        "alerts.evaluate_rules",
        30,
        "seconds",
        "Counts each enabled rule's window and opens or resolves alerts.",
    ),
    Periodic(
        "Send alert reminders",
        "alerts.send_reminders",
        60,
        "seconds",
        "Reminds channels of firing alerts that nobody has acknowledged.",
    ),
    Periodic(
        "Redeliver stuck notifications",
        "alerts.redeliver_pending",
        60,
        "seconds",
        "Queues again the notifications whose send task was lost.",
    ),
    Periodic(
        "Roll up log counts",
        "analytics.roll_up",
        60,
        "seconds",
        "Recounts the per-minute rollups touched by newly arrived entries.",
    ),
]


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [schedule_operation(SCHEDULE)]
