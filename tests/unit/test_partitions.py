"""Daily partitions of the logs table, and retention by dropping them."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from logs.models import EventId
from logs.partitions import (
    DEFAULT_PARTITION,
    Partition,
    create_partitions,
    ensure_partitions,
    existing_partitions,
)
from logs.retention import purge
from logs.storage import insert_entries
from logs.tasks import create_partitions as create_partitions_task
from tests.rows import remaining, store_rows

# Days long past, so no other suite's rows or partitions are involved.
NOW = datetime(2001, 5, 1, 12, 0, tzinfo=UTC)
DAY = date(2001, 3, 10)

pytestmark = pytest.mark.django_db


def add(service: str, received: datetime, count: int = 1) -> list[uuid.UUID]:
    return store_rows(service, received, count)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def home(log_id: uuid.UUID) -> str:
    """Return the name of the partition that contains the row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM logs_log WHERE id = %s", [log_id]
        )
        return cursor.fetchone()[0]


def test_logs_table_is_partitioned_by_arrival():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT partstrat, attname FROM pg_partitioned_table "
            "JOIN pg_attribute ON attrelid = partrelid AND attnum = partattrs[0] "
            "WHERE partrelid = 'logs_log'::regclass"
        )
        assert cursor.fetchone() == ("r", "received_at")


def test_rows_land_in_the_partition_of_their_arrival_day():
    create_partitions(DAY, DAY + timedelta(days=1))
    first = add("api", at(DAY, 0))
    second = add("api", at(DAY + timedelta(days=1), 23))
    unplanned = add("api", at(DAY + timedelta(days=2)))

    assert home(first[0]) == "logs_log_p20010310"
    assert home(second[0]) == "logs_log_p20010311"
    assert home(unplanned[0]) == DEFAULT_PARTITION


def test_a_new_partition_takes_its_day_out_of_the_default():
    ids = add("api", at(DAY), count=5)
    other_day = add("api", at(DAY + timedelta(days=1)))
    assert home(ids[0]) == DEFAULT_PARTITION

    created = create_partitions(DAY, DAY)

    assert created == [Partition(DAY)]
    assert remaining(ids) == 5
    assert {home(log_id) for log_id in ids} == {"logs_log_p20010310"}
    assert home(other_day[0]) == DEFAULT_PARTITION


def test_creating_again_changes_nothing():
    assert len(create_partitions(DAY, DAY + timedelta(days=2))) == 3
    assert create_partitions(DAY, DAY + timedelta(days=2)) == []


def test_ensure_makes_today_and_the_days_ahead(settings):
    settings.LOG_PARTITION_DAYS_AHEAD = 2
    today = date(2001, 6, 1)

    ensure_partitions(today)

    days = {partition.day for partition in existing_partitions()}
    assert {today + timedelta(days=n) for n in range(3)} <= days
    assert today + timedelta(days=3) not in days


def test_the_beat_task_makes_the_coming_days(settings):
    settings.LOG_PARTITION_DAYS_AHEAD = 1
    names = create_partitions_task.apply().get()
    today = datetime.now(UTC).date()
    expected = {Partition(today).name, Partition(today + timedelta(days=1)).name}
    on_disk = {partition.name for partition in existing_partitions()}
    # The days may exist already; whatever the task made is among them.
    assert set(names) <= expected
    assert expected <= on_disk


def test_purge_drops_a_day_nobody_keeps(retention):
    create_partitions(DAY, DAY)
    ids = add("api", at(DAY), count=4) + add("chatty", at(DAY), count=2)

    result = purge(NOW)

    assert result.partitions == {"logs_log_p20010310": 6}
    assert remaining(ids) == 0
    assert Partition(DAY) not in existing_partitions()


def test_purge_keeps_a_day_a_longer_kept_service_needs(retention):
    create_partitions(DAY, DAY)
    api = add("api", at(DAY), count=3)
    audit = add("audit", at(DAY), count=2)

    result = purge(NOW)

    assert result.partitions == {}
    assert Partition(DAY) in existing_partitions()
    assert remaining(api) == 0
    assert remaining(audit) == 2
    assert result.rules["other services"] == 3


def test_purge_leaves_a_day_that_is_not_over(retention):
    day = (NOW - timedelta(days=30)).date()
    create_partitions(day, day)
    ids = add("api", at(day, 0)) + add("api", at(day, 23))

    result = purge(NOW)

    assert result.partitions == {}
    # The row from before the cutoff goes on its own; the later one stays.
    assert remaining(ids) == 1


def test_dry_run_counts_the_day_and_drops_nothing(retention):
    create_partitions(DAY, DAY)
    ids = add("api", at(DAY), count=3)

    result = purge(NOW, dry_run=True)

    assert result.partitions == {"logs_log_p20010310": 3}
    # Rows of a day that goes whole are not counted twice.
    assert result.rules["other services"] == 0
    assert remaining(ids) == 3
    assert Partition(DAY) in existing_partitions()


def test_command_names_the_partition(settings, capsys):
    settings.LOG_RETENTION_DAYS = 1
    settings.LOG_RETENTION_OVERRIDES = {}
    # The command counts from the real clock: use a day well before it that
    # no other test's rows fill.
    day = datetime.now(UTC).date() - timedelta(days=400)
    create_partitions(day, day)
    add("api", at(day), count=2)

    call_command("purge_logs", "--dry-run")

    output = capsys.readouterr().out
    assert f"partition {Partition(day).name}: would drop it with its 2 entries" in (
        output
    )
    assert Partition(day) in existing_partitions()


def entry(received_at: datetime, event_id: str) -> dict:
    return {
        "id": event_id,
        "timestamp": received_at.isoformat(),
        "received_at": received_at.isoformat(),
        "level": "INFO",
        "service_name": "api",
        "message": "sent twice",
        "metadata": {},
    }


def test_an_entry_sent_again_on_another_day_is_stored_once():
    create_partitions(DAY, DAY + timedelta(days=1))
    event_id = str(uuid.uuid4())

    assert insert_entries([entry(at(DAY), event_id)]) == 1
    assert insert_entries([entry(at(DAY + timedelta(days=1)), event_id)]) == 0

    assert remaining([event_id]) == 1
    assert home(event_id) == "logs_log_p20010310"


def test_purge_deletes_old_event_ids(settings):
    settings.LOG_DEDUP_DAYS = 3
    old = EventId.objects.create(id=uuid.uuid4(), received_at=NOW - timedelta(days=4))
    recent = EventId.objects.create(
        id=uuid.uuid4(), received_at=NOW - timedelta(days=2)
    )

    result = purge(NOW)

    assert result.event_ids == 1
    assert not EventId.objects.filter(id=old.id).exists()
    assert EventId.objects.filter(id=recent.id).exists()


def test_partition_creation_is_on_the_stored_schedule():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="logs.create_partitions")
    assert task.enabled
    assert task.interval.every == 1
    assert task.interval.period == "hours"
