"""Writing rows of django-celery-beat's schedule, for the schedule migrations.

Django's migration loader skips modules whose name starts with an
underscore, so this one is shared code and not a migration.

Existing rows are left as they are: people may have changed an interval in
the admin, and migrating again must not undo that.
"""

from typing import NamedTuple

from django.db import migrations


class Periodic(NamedTuple):
    name: str
    task: str
    every: int
    period: str  # an IntervalSchedule period: "seconds", "hours" ...
    description: str

    @property
    def seconds(self) -> int:
        return self.every * {"seconds": 1, "minutes": 60, "hours": 3600}[self.period]


def add_periodic_tasks(apps, schedule: list[Periodic]) -> None:
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for row in schedule:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=row.every, period=row.period
        )
        PeriodicTask.objects.get_or_create(
            name=row.name,
            defaults={
                "task": row.task,
                "interval": interval,
                "description": row.description,
                # A run that waited longer than its interval is dropped, so a
                # worker that was down does not face a pile of stale runs.
                "expire_seconds": row.seconds,
            },
        )


def remove_periodic_tasks(apps, schedule: list[Periodic]) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[row.name for row in schedule]).delete()


def schedule_operation(schedule: list[Periodic]) -> migrations.RunPython:
    """The migration operation that adds the rows, and removes them backwards."""

    def forwards(apps, schema_editor):
        add_periodic_tasks(apps, schedule)

    def backwards(apps, schema_editor):
        remove_periodic_tasks(apps, schedule)

    return migrations.RunPython(forwards, backwards)
