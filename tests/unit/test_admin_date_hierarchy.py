"""The logs changelist's date hierarchy: same periods, without a full scan."""

import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from logs.admin import LogAdminQuerySet, next_period_start, period_start
from logs.models import Log
from logs.storage import insert_entries

SERVICE = f"hierarchy-{uuid.uuid4().hex[:8]}"
# Event times in 2033, away from other suites' rows: two in January (one on
# the last microsecond of the month), one on 1 March and one in 2034.
TIMES = [
    datetime(2033, 1, 5, 10, 0, tzinfo=UTC),
    datetime(2033, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2033, 3, 1, 0, 0, tzinfo=UTC),
    datetime(2034, 12, 31, 12, 0, tzinfo=UTC),
]


@pytest.fixture
def stored(db):
    entries = [
        {
            "id": str(uuid.uuid4()),
            "timestamp": moment.isoformat(),
            "received_at": moment.isoformat(),
            "level": "INFO",
            "service_name": SERVICE,
            "message": f"entry {index}",
            "metadata": {},
        }
        for index, moment in enumerate(TIMES)
    ]
    assert insert_entries(entries) == len(entries)


@pytest.fixture
def staff_client(client, db):
    User.objects.create_superuser("hierarchy", "h@example.com", "hierarchy-pass-1")
    client.login(username="hierarchy", password="hierarchy-pass-1")
    return client


def admin_rows():
    queryset = Log.objects.filter(service_name=SERVICE)
    return LogAdminQuerySet(model=Log, query=queryset.query, using=queryset.db)


@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_periods_match_distinct_query(stored, kind):
    expected = list(
        Log.objects.filter(service_name=SERVICE).datetimes("timestamp", kind)
    )

    found = admin_rows().datetimes("timestamp", kind)

    assert found == expected
    assert len(found) >= 2


def test_periods_follow_filters(stored):
    rows = admin_rows().filter(timestamp__gte=datetime(2033, 2, 1, tzinfo=UTC))

    months = rows.datetimes("timestamp", "month")

    assert months == [
        datetime(2033, 3, 1, tzinfo=UTC),
        datetime(2034, 12, 1, tzinfo=UTC),
    ]


def test_periods_of_no_rows(db):
    assert admin_rows().datetimes("timestamp", "month") == []


def test_next_period_start_rolls_over():
    year = datetime(2033, 1, 1, tzinfo=UTC)
    december = datetime(2033, 12, 1, tzinfo=UTC)
    last_day = datetime(2033, 12, 31, tzinfo=UTC)

    assert next_period_start(year, "year") == datetime(2034, 1, 1, tzinfo=UTC)
    assert next_period_start(december, "month") == datetime(2034, 1, 1, tzinfo=UTC)
    assert next_period_start(last_day, "day") == datetime(2034, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_no_period_after_year_9999(kind):
    assert next_period_start(datetime(9999, 12, 31, tzinfo=UTC), kind) is None


@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_periods_end_at_year_9999(db, kind):
    service = f"far-future-{uuid.uuid4().hex[:8]}"
    moment = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    entry = {
        "id": str(uuid.uuid4()),
        "timestamp": moment.isoformat(),
        "received_at": datetime.now(UTC).isoformat(),
        "level": "INFO",
        "service_name": service,
        "message": "the last year",
        "metadata": {},
    }
    assert insert_entries([entry]) == 1
    rows = LogAdminQuerySet(Log).filter(service_name=service)

    periods = rows.datetimes("timestamp", kind)

    assert periods == [period_start(moment, kind)]


def test_period_start_truncates():
    moment = datetime(2033, 7, 14, 15, 16, 17, 18, tzinfo=UTC)

    assert period_start(moment, "year") == datetime(2033, 1, 1, tzinfo=UTC)
    assert period_start(moment, "month") == datetime(2033, 7, 1, tzinfo=UTC)
    assert period_start(moment, "day") == datetime(2033, 7, 14, tzinfo=UTC)


def test_changelist_lists_months_without_distinct(staff_client, stored):
    params = {"service_name": SERVICE, "timestamp__year": "2033"}
    with CaptureQueriesContext(connection) as captured:
        response = staff_client.get("/admin/logs/log/", params)

    assert response.status_code == 200
    assert b"January 2033" in response.content
    assert b"March 2033" in response.content
    assert b"February 2033" not in response.content
    statements = [query["sql"].upper() for query in captured.captured_queries]
    assert not [sql for sql in statements if "DISTINCT DATE_TRUNC" in sql]


def test_changelist_day_links(staff_client, stored):
    params = {
        "service_name": SERVICE,
        "timestamp__year": "2033",
        "timestamp__month": "1",
    }
    response = staff_client.get("/admin/logs/log/", params)

    assert response.status_code == 200
    assert b"timestamp__day=5" in response.content
    assert b"timestamp__day=31" in response.content
    assert b"timestamp__day=6" not in response.content
