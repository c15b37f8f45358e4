"""Minute rollups: exact counts, idempotent reruns, late entries, backfill."""

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from analytics.models import (
    ErrorMessageRollup,
    MinuteRollup,
    PatternHourRollup,
    PatternMinuteRollup,
)
from analytics.queries import count_in_range, top_patterns
from analytics.rollup import (
    FINGERPRINT_SQL,
    roll_up_range,
    roll_up_recent,
)
from analytics.tasks import roll_up
from logs.levels import Level
from logs.models import Log, Pattern
from logs.storage import insert_entries
from tests.rows import store_pattern, store_rows

# Event times far from any other suite's rows, which may be committed in the
# shared test database. Every query below stays within [BASE, BASE + 1 day).
BASE = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
NOW = BASE + timedelta(hours=2)
SERVICES = ["api", "billing", "search"]


def entry(timestamp, service, level, message="ok", received_at=None):
    return {
        "id": str(uuid.uuid4()),
        "timestamp": timestamp,
        "received_at": received_at or NOW - timedelta(minutes=1),
        "level": level,
        "service_name": service,
        "message": message,
        "metadata": {},
    }


def random_entries(count: int, seed: int = 7) -> list[dict]:
    """Entries spread over 30 minutes, three services and every level."""
    rng = random.Random(seed)
    return [
        entry(
            BASE + timedelta(seconds=rng.randrange(30 * 60), microseconds=17),
            rng.choice(SERVICES),
            rng.choice(Level.names),
            f"request {rng.randrange(1000)} failed after {rng.randrange(90)} ms",
        )
        for _ in range(count)
    ]


def counted_from_logs() -> dict[tuple, int]:
    """COUNT(*) per minute, service and level, straight from the logs table."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT date_trunc('minute', timestamp, 'UTC'), service_name, level,
                   count(*)
            FROM {Log._meta.db_table}
            WHERE timestamp >= %s AND timestamp < %s
            GROUP BY 1, 2, 3
            """,
            [BASE, BASE + timedelta(days=1)],
        )
        return {(minute, svc, lvl): n for minute, svc, lvl, n in cursor.fetchall()}


def rolled_up() -> dict[tuple, int]:
    rows = MinuteRollup.objects.filter(
        minute__gte=BASE, minute__lt=BASE + timedelta(days=1)
    )
    return {(r.minute, r.service_name, r.level): r.count for r in rows}


def error_rows() -> list[tuple]:
    rows = ErrorMessageRollup.objects.filter(
        minute__gte=BASE, minute__lt=BASE + timedelta(days=1)
    ).order_by("minute", "service_name", "fingerprint")
    return [
        (r.minute, r.service_name, r.fingerprint, r.count, r.example_message)
        for r in rows
    ]


def fingerprint(message: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {FINGERPRINT_SQL} FROM (VALUES (%s)) AS l(message)", [message]
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_rollup_matches_count_star():
    insert_entries(random_entries(600))

    result = roll_up_recent(NOW)

    expected = counted_from_logs()
    assert rolled_up() == expected
    assert result.minutes == 30
    assert result.rows_written >= len(expected)
    assert sum(expected.values()) == 600


@pytest.mark.django_db
def test_error_rollup_counts_only_errors():
    entries = random_entries(400)
    insert_entries(entries)

    roll_up_recent(NOW)

    errors = [e for e in entries if Level[e["level"]] >= Level.ERROR]
    total = sum(row[3] for row in error_rows())
    assert total == len(errors)
    for minute, service, _fp, _count, _example in error_rows():
        in_bucket = [
            e
            for e in errors
            if e["service_name"] == service
            and minute <= e["timestamp"] < minute + timedelta(minutes=1)
        ]
        assert in_bucket, f"error rollup row for {service} at {minute} has no entries"


@pytest.mark.django_db
def test_rerun_is_idempotent():
    insert_entries(random_entries(300))
    roll_up_recent(NOW)
    first_counts = rolled_up()
    first_errors = error_rows()
    first_ids = set(MinuteRollup.objects.values_list("id", flat=True))

    again = roll_up_recent(NOW)

    assert rolled_up() == first_counts
    assert error_rows() == first_errors
    assert set(MinuteRollup.objects.values_list("id", flat=True)) == first_ids
    assert again.minutes == 30
    assert again.rows_written == 0
    assert again.rows_removed == 0


@pytest.mark.django_db
def test_late_entry_updates_old_minute():
    old_minute = BASE + timedelta(minutes=3)
    insert_entries([entry(old_minute + timedelta(seconds=5), "api", "ERROR")])
    roll_up_recent(NOW)
    other_minutes = {k: v for k, v in rolled_up().items() if k[0] != old_minute}

    # Arrives an hour later, with its event time in the old minute.
    later = NOW + timedelta(hours=1)
    late = entry(
        old_minute + timedelta(seconds=40),
        "api",
        "ERROR",
        received_at=later - timedelta(seconds=30),
    )
    insert_entries([late])
    result = roll_up_recent(later)

    assert result.minutes == 1
    assert rolled_up()[(old_minute, "api", Level.ERROR)] == 2
    assert {k: v for k, v in rolled_up().items() if k[0] != old_minute} == (
        other_minutes
    )
    assert [row[3] for row in error_rows()] == [2]


@pytest.mark.django_db
def test_window_limits_recomputed_minutes(settings):
    settings.ROLLUP_RECOMPUTE_MINUTES = 5
    arrived_early = entry(BASE, "api", "INFO", received_at=NOW - timedelta(minutes=10))
    insert_entries([arrived_early])

    assert roll_up_recent(NOW).minutes == 0
    assert rolled_up() == {}

    settings.ROLLUP_RECOMPUTE_MINUTES = 15
    assert roll_up_recent(NOW).minutes == 1
    assert rolled_up() == {(BASE, "api", Level.INFO): 1}


@pytest.mark.django_db
def test_deleted_entries_remove_rows():
    insert_entries(
        [
            entry(BASE, "api", "INFO"),
            entry(BASE, "api", "ERROR", "disk 3 failed"),
            entry(BASE, "billing", "ERROR", "card declined"),
        ]
    )
    roll_up_recent(NOW)
    assert len(rolled_up()) == 3
    assert len(error_rows()) == 2

    Log.objects.filter(service_name="api", level=Level.ERROR).delete()
    result = roll_up_range(BASE, BASE + timedelta(minutes=1))

    assert rolled_up() == {
        (BASE, "api", Level.INFO): 1,
        (BASE, "billing", Level.ERROR): 1,
    }
    assert [row[1] for row in error_rows()] == ["billing"]
    assert result.rows_removed == 2


@pytest.mark.django_db
def test_backfill_range_rounds_since_down():
    insert_entries(
        [entry(BASE + timedelta(minutes=m), "api", "WARNING") for m in (0, 1, 2, 9)]
    )

    result = roll_up_range(BASE + timedelta(seconds=30), BASE + timedelta(minutes=3))

    assert result.minutes == 3
    assert sorted(key[0] for key in rolled_up()) == [
        BASE,
        BASE + timedelta(minutes=1),
        BASE + timedelta(minutes=2),
    ]


@pytest.mark.django_db
def test_similar_errors_share_fingerprint():
    insert_entries(
        [
            entry(BASE, "api", "ERROR", "timeout after 31 ms"),
            entry(BASE, "api", "ERROR", "timeout after 45 ms"),
            entry(BASE, "api", "CRITICAL", "timeout after 1200 ms"),
            entry(BASE, "api", "ERROR", "disk full"),
            entry(BASE, "api", "WARNING", "timeout after 9 ms"),
        ]
    )

    roll_up_recent(NOW)

    rows = ErrorMessageRollup.objects.filter(minute=BASE).order_by("-count")
    assert [row.count for row in rows] == [3, 1]
    assert rows[0].max_level == Level.CRITICAL
    assert rows[0].example_message.startswith("timeout after ")
    assert rows[1].example_message == "disk full"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("timeout after 31 ms", "timeout after 45 ms"),
        (
            "job 123e4567-e89b-12d3-a456-426614174000 failed",
            "job abcdefab-cdef-abcd-efab-cdefabcdefab failed",
        ),
        ("bad pointer 0xdeadbeef", "bad pointer 0x1f"),
        ("connect 10.0.0.1:5432 refused", "connect 192.168.10.200:6379 refused"),
        ("commit a3f9c2 rejected", "commit 77be01 rejected"),
        ("x" * 250 + " id 1", "x" * 250 + " id 2"),
    ],
)
@pytest.mark.django_db
def test_fingerprint_masks_numbers_and_ids(first, second):
    assert fingerprint(first) == fingerprint(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("timeout after 31 ms", "timeout before 31 ms"),
        ("face not found", "bead not found"),
        ("a" * 199 + "b", "a" * 199 + "c"),
    ],
)
@pytest.mark.django_db
def test_fingerprint_keeps_words(first, second):
    assert fingerprint(first) != fingerprint(second)


@pytest.mark.django_db
def test_roll_up_command_backfills(capsys):
    insert_entries(
        [entry(BASE + timedelta(minutes=m), "api", "INFO") for m in range(5)]
    )

    call_command(
        "roll_up",
        "--since",
        BASE.isoformat(),
        "--until",
        (BASE + timedelta(minutes=5)).isoformat(),
    )

    assert rolled_up() == {
        (BASE + timedelta(minutes=m), "api", Level.INFO): 1 for m in range(5)
    }
    assert "Recomputed 5 minutes" in capsys.readouterr().out


@pytest.mark.django_db
def test_roll_up_command_naive_times_are_utc():
    insert_entries([entry(BASE, "api", "INFO")])

    call_command(
        "roll_up", "--since", "2031-05-01T12:00", "--until", "2031-05-01T12:01"
    )

    assert rolled_up() == {(BASE, "api", Level.INFO): 1}


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("yesterday", "2031-05-01T12:00Z", "--since 'yesterday' is not an ISO 8601"),
        ("2031-05-01T12:00Z", "2031-13-01", "--until '2031-13-01' is not an ISO 8601"),
        ("2031-05-01T12:00Z", "2031-05-01T11:00Z", "is not before --until"),
    ],
)
@pytest.mark.django_db
def test_roll_up_command_rejects_bad_range(since, until, message):
    with pytest.raises(CommandError, match=message):
        call_command("roll_up", "--since", since, "--until", until)


@pytest.mark.django_db
def test_task_rolls_up_recent_arrivals():
    arrived = timezone.now() - timedelta(seconds=10)
    insert_entries(
        [
            entry(BASE, "api", "INFO", received_at=arrived),
            entry(BASE, "api", "INFO", received_at=arrived),
            entry(BASE + timedelta(minutes=7), "search", "ERROR", received_at=arrived),
        ]
    )

    summary = roll_up.apply().get()

    assert roll_up.name == "analytics.roll_up"
    assert summary["minutes"] >= 2
    assert rolled_up() == {
        (BASE, "api", Level.INFO): 2,
        (BASE + timedelta(minutes=7), "search", Level.ERROR): 1,
    }


@pytest.mark.django_db
def test_backfill_clears_minute_without_entries():
    insert_entries([entry(BASE, "api", "ERROR", "disk 3 failed")])
    roll_up_recent(NOW)
    Log.objects.filter(service_name="api", timestamp__gte=BASE).delete()

    result = roll_up_range(BASE, BASE + timedelta(hours=1))

    assert rolled_up() == {}
    assert error_rows() == []
    assert result.minutes == 1
    assert result.rows_removed == 2


@pytest.mark.django_db
def test_backfill_skips_empty_days():
    far = BASE + timedelta(days=300, minutes=5)
    insert_entries([entry(BASE, "api", "INFO"), entry(far, "api", "INFO")])

    result = roll_up_range(BASE, far + timedelta(minutes=1))

    assert result.minutes == 2
    assert rolled_up()[(BASE, "api", Level.INFO)] == 1
    far_rows = MinuteRollup.objects.filter(minute=far, service_name="api")
    assert [row.count for row in far_rows] == [1]


@pytest.mark.django_db
def test_roll_up_command_defaults_to_stored_range(capsys):
    insert_entries(
        [entry(BASE + timedelta(minutes=m), "search", "DEBUG") for m in (0, 4)]
    )

    call_command("roll_up")

    assert rolled_up() == {
        (BASE, "search", Level.DEBUG): 1,
        (BASE + timedelta(minutes=4), "search", Level.DEBUG): 1,
    }
    assert "Recomputed" in capsys.readouterr().out


@pytest.mark.django_db
def test_run_skips_while_another_holds_the_lock():
    """A scheduled run does not wait behind a slow one; it leaves the work to it."""
    from django.db import connections

    from analytics.rollup import ROLLUP_LOCK_KEY

    insert_entries([entry(BASE + timedelta(seconds=5), "api", "INFO")])
    other = connections.create_connection("default")
    try:
        other.set_autocommit(True)
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [ROLLUP_LOCK_KEY])
        result = roll_up_recent(NOW)
        assert result.skipped and result.minutes == 0
        assert rolled_up() == {}
        # Unlock before closing: the server ends a closed session, and so
        # frees its locks, only some time after the client has gone.
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ROLLUP_LOCK_KEY])
    finally:
        other.close()
    result = roll_up_recent(NOW)
    assert not result.skipped and result.minutes == 1


@pytest.mark.django_db
def test_roll_up_reaches_the_last_minute_of_year_9999():
    last_minute = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    insert_entries([entry(last_minute + timedelta(seconds=30), "far", "INFO")])

    call_command("roll_up", since="9999-12-31T00:00:00+00:00")

    rows = MinuteRollup.objects.filter(minute=last_minute, service_name="far")
    assert [row.count for row in rows] == [1]


def pattern_rows() -> dict[tuple, int]:
    rows = PatternMinuteRollup.objects.filter(
        minute__gte=BASE, minute__lt=BASE + timedelta(days=1)
    )
    return {(row.minute, row.pattern_id): row.count for row in rows}


@pytest.mark.django_db
def test_pattern_rollup_counts_per_minute():
    first = store_pattern("api", "GET <*>", BASE)
    second = store_pattern("api", "POST <*>", BASE)
    late = NOW - timedelta(minutes=1)
    store_rows(
        "api", late, count=3, timestamp=BASE + timedelta(seconds=5), pattern=first
    )
    store_rows(
        "api", late, count=1, timestamp=BASE + timedelta(seconds=70), pattern=first
    )
    store_rows("api", late, count=2, timestamp=BASE, pattern=second)
    # Entries without a pattern, stored while grouping was off, count nowhere.
    store_rows("api", late, count=4, timestamp=BASE)

    roll_up_recent(NOW)

    assert pattern_rows() == {
        (BASE, first.pk): 3,
        (BASE + timedelta(minutes=1), first.pk): 1,
        (BASE, second.pk): 2,
    }


@pytest.mark.django_db
def test_pattern_rollup_drops_emptied_minute():
    pattern = store_pattern("api", "GET <*>", BASE)
    ids = store_rows("api", NOW - timedelta(minutes=1), timestamp=BASE, pattern=pattern)
    roll_up_recent(NOW)
    assert pattern_rows() == {(BASE, pattern.pk): 1}

    Log.objects.filter(id__in=ids).delete()
    result = roll_up_range(BASE, BASE + timedelta(minutes=1))

    assert pattern_rows() == {}
    assert hour_rows() == {}
    # The minute's MinuteRollup row, its PatternMinuteRollup row and the
    # PatternHourRollup row of its hour.
    assert result.rows_removed == 3


def hour_rows() -> dict[tuple, int]:
    rows = PatternHourRollup.objects.filter(
        hour__gte=BASE, hour__lt=BASE + timedelta(days=1)
    )
    return {(row.hour, row.pattern_id): row.count for row in rows}


@pytest.mark.django_db
def test_pattern_hour_rollup_sums_minutes():
    pattern = store_pattern("api", "GET <*>", BASE)
    late = NOW - timedelta(minutes=1)
    store_rows("api", late, count=2, timestamp=BASE, pattern=pattern)
    ids = store_rows(
        "api", late, count=3, timestamp=BASE + timedelta(minutes=59), pattern=pattern
    )
    store_rows(
        "api", late, count=4, timestamp=BASE + timedelta(minutes=60), pattern=pattern
    )

    roll_up_recent(NOW)
    assert hour_rows() == {
        (BASE, pattern.pk): 5,
        (BASE + timedelta(hours=1), pattern.pk): 4,
    }

    Log.objects.filter(id__in=ids).delete()
    roll_up_range(BASE, BASE + timedelta(hours=2))
    assert hour_rows() == {
        (BASE, pattern.pk): 2,
        (BASE + timedelta(hours=1), pattern.pk): 4,
    }


@pytest.mark.django_db
def test_counts_in_range_match_minute_rows():
    first = store_pattern("api", "GET <*>", BASE)
    second = store_pattern("api", "POST <*>", BASE)
    late = NOW - timedelta(minutes=1)
    for minutes, count in [(0, 1), (7, 2), (59, 3), (60, 4), (95, 5), (119, 6)]:
        timestamp = BASE + timedelta(minutes=minutes, seconds=10)
        store_rows("api", late, count=count, timestamp=timestamp, pattern=first)
        store_rows("api", late, count=1, timestamp=timestamp, pattern=second)
    roll_up_recent(NOW)

    ranges = [
        (BASE, BASE + timedelta(hours=2)),
        (BASE + timedelta(minutes=7), BASE + timedelta(minutes=96)),
        (BASE + timedelta(minutes=7, seconds=30), BASE + timedelta(minutes=60)),
        (BASE + timedelta(minutes=8), BASE + timedelta(minutes=59)),
        (BASE - timedelta(hours=3), BASE + timedelta(hours=5)),
        (BASE + timedelta(minutes=61), BASE + timedelta(minutes=62)),
    ]
    for since, until in ranges:
        minute_rows = PatternMinuteRollup.objects.filter(
            minute__gte=since, minute__lt=until
        )
        expected = {
            pattern.pk: sum(
                minute_rows.filter(pattern=pattern).values_list("count", flat=True)
            )
            for pattern in (first, second)
        }
        annotated = Pattern.objects.filter(pk__in=expected).annotate(
            total=count_in_range(since, until)
        )
        assert {row.pk: row.total for row in annotated} == expected, (since, until)
        top = {row.pk: row.count_in_range for row in top_patterns(since, until)}
        assert top == {pk: total for pk, total in expected.items() if total}
