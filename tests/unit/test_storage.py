"""The batch insert that the Celery task runs."""

import uuid

import pytest

from logs.models import Log
from logs.storage import insert_entries
from logs.tasks import store_logs

# Other suites leave rows in the test database; these tests count only
# their own service's rows.
SERVICE = f"storage-test-{uuid.uuid4().hex[:8]}"


def entry(**fields):
    return {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-02-03T04:05:06+00:00",
        "received_at": "2026-02-03T04:05:07+00:00",
        "level": "ERROR",
        "service_name": SERVICE,
        "message": "disk full",
        "metadata": {"disk": "/dev/sda1", "free": 0},
    } | fields


@pytest.mark.django_db
def test_insert_returns_new_rows():
    batch = [entry() for _ in range(10)]
    assert insert_entries(batch) == 10
    assert Log.objects.filter(service_name=SERVICE).count() == 10


@pytest.mark.django_db
def test_insert_ignores_stored_ids():
    batch = [entry() for _ in range(10)]
    insert_entries(batch)
    assert insert_entries(batch + [entry()]) == 1
    assert Log.objects.filter(service_name=SERVICE).count() == 11


@pytest.mark.django_db
def test_insert_ignores_duplicates_in_batch():
    one = entry()
    assert insert_entries([one, dict(one), dict(one)]) == 1


@pytest.mark.django_db
def test_insert_keeps_every_field():
    one = entry(metadata={"nested": {"list": [1, "two", None]}, "ok": True})
    insert_entries([one])
    row = Log.objects.get(id=one["id"])
    assert row.timestamp.isoformat() == one["timestamp"]
    assert row.received_at.isoformat() == one["received_at"]
    assert row.level == 40
    assert row.service_name == SERVICE
    assert row.message == "disk full"
    assert row.metadata == one["metadata"]


@pytest.mark.django_db
def test_task_runs_inline_and_counts():
    batch = [entry() for _ in range(3)]
    assert store_logs.apply(args=[batch]).get() == 3
    assert store_logs.apply(args=[batch]).get() == 0
