"""Add the hourly retention purge to the stored beat schedule.

Like 0002, it leaves an existing row alone, so an interval changed in the
admin survives migrating again.
"""

from django.db import migrations

NAME = "Purge expired logs"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "logs.purge_expired",
            "interval": interval,
            "description": "Deletes entries kept longer than their retention.",
            "expire_seconds": 3600,
        },
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("alerts", "0002_periodic_tasks")]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
