"""Store the platform's periodic tasks in django-celery-beat's schedule.

Beat runs with the database scheduler, so these rows are the schedule.
Existing rows are left as they are: people may have changed an interval in
the admin, and migrating again must not undo that.
"""

from django.db import migrations

# (name, task, every N seconds, description)
SCHEDULE = [
    (
        "Evaluate alert rules",
        "alerts.evaluate_rules",
        30,
        "Counts each enabled rule's window and opens or resolves alerts.",
    ),
    (
        "Send alert reminders",
        "alerts.send_reminders",
        60,
        "Reminds channels of firing alerts that nobody has acknowledged.",
    ),
    (
        "Redeliver stuck notifications",
        "alerts.redeliver_pending",
        60,
        "Queues again the notifications whose send task was lost.",
    ),
    (
        "Roll up log counts",
        "analytics.roll_up",
        60,
        "Recounts the per-minute rollups touched by newly arrived entries.",
    ),
]


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds, description in SCHEDULE:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=seconds, period="seconds"
        )
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": task,
                "interval": interval,
                "description": description,
                # A run that waited longer than its interval is dropped, so a
                # worker that was down does not face a pile of stale runs.
                "expire_seconds": seconds,
            },
        )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[row[0] for row in SCHEDULE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
