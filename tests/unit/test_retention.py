"""Retention: which entries purge_logs deletes, counted from arrival."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from logplatform.env import env_day_overrides
from logs.retention import purge, retention_rules
from tests.rows import remaining, store_rows

# Far in the past, so rows that other suites store now never count as expired.
NOW = datetime(2001, 5, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def add(
    service: str, arrived_days_ago: float, timestamp=None, count=1
) -> list[uuid.UUID]:
    received = NOW - timedelta(days=arrived_days_ago)
    return store_rows(service, received, count, timestamp)


def test_purge_keeps_each_service_for_its_days(retention):
    old_api = add("api", 31)
    new_api = add("api", 29)
    audit = add("audit", 200)
    old_audit = add("audit", 366)
    old_chatty = add("chatty", 4)
    new_chatty = add("chatty", 2)

    result = purge(NOW)

    assert remaining(old_api) == 0
    assert remaining(new_api) == 1
    assert remaining(audit) == 1
    assert remaining(old_audit) == 0
    assert remaining(old_chatty) == 0
    assert remaining(new_chatty) == 1
    assert result.rules["service audit"] == 1
    assert result.rules["service chatty"] == 1


def test_age_counts_from_arrival_not_event_time(retention):
    ancient = add("api", 1, timestamp=datetime(1990, 1, 1, tzinfo=UTC))
    future = add("api", 40, timestamp=datetime(2999, 1, 1, tzinfo=UTC))

    purge(NOW)

    assert remaining(ancient) == 1
    assert remaining(future) == 0


def test_dry_run_counts_and_deletes_nothing(retention):
    ids = add("api", 45, count=3)

    result = purge(NOW, dry_run=True)

    assert result.rules["other services"] == 3
    assert remaining(ids) == 3


def test_purge_deletes_in_batches(retention):
    ids = add("api", 60, count=25)

    purge(NOW, batch_size=4)

    assert remaining(ids) == 0


def test_zero_days_keeps_forever(settings):
    settings.LOG_RETENTION_DAYS = 0
    settings.LOG_RETENTION_OVERRIDES = {"chatty": 0}
    ids = add("api", 5000) + add("chatty", 5000)

    assert retention_rules(NOW) == []
    purge(NOW)
    assert remaining(ids) == 2


def test_command_dry_run_says_what_would_go(retention, capsys):
    add("chatty", 10, count=2)

    call_command("purge_logs", "--dry-run")

    output = capsys.readouterr().out
    assert "service chatty: kept 3 days, would delete" in output
    assert "other services: kept 30 days, would delete" in output


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("audit=365, chatty=3", {"audit": 365, "chatty": 3}),
        ("a=b=7", {"a=b": 7}),
        ("", {}),
    ],
)
def test_overrides_setting_parses(monkeypatch, raw, expected):
    monkeypatch.setenv("LOG_RETENTION_OVERRIDES", raw)
    assert env_day_overrides("LOG_RETENTION_OVERRIDES") == expected


@pytest.mark.parametrize("raw", ["audit", "=3", "audit=soon", "audit=-1"])
def test_overrides_setting_rejects_bad_items(monkeypatch, raw):
    monkeypatch.setenv("LOG_RETENTION_OVERRIDES", raw)
    with pytest.raises(ImproperlyConfigured) as caught:
        env_day_overrides("LOG_RETENTION_OVERRIDES")
    assert "LOG_RETENTION_OVERRIDES" in str(caught.value)


def test_purge_is_on_the_stored_schedule():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="logs.purge_expired")
    assert task.enabled
    assert task.interval.every == 1
    assert task.interval.period == "hours"
