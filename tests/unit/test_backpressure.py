"""Intake backpressure: the limits, their cache and the 503 they cause."""

import pytest
from prometheus_client import REGISTRY

from logs import backpressure
from logs.backpressure import LoadCheck, measure_overload
from logs.models import ApiKey
from ops.probes import ProbeFailed


def fail(timeout):
    raise ProbeFailed("unreachable")


@pytest.fixture
def limits(settings):
    settings.INTAKE_MAX_CONSUMER_LAG = 10
    settings.INTAKE_MAX_QUEUED_TASKS = 3
    return settings


@pytest.mark.parametrize(
    ("lag", "queued", "expected"),
    [
        (10, 3, None),
        (11, 3, "consumer lag is 11, above INTAKE_MAX_CONSUMER_LAG=10"),
        (10, 4, "queued Celery tasks is 4, above INTAKE_MAX_QUEUED_TASKS=3"),
    ],
)
def test_limits(limits, monkeypatch, lag, queued, expected):
    monkeypatch.setattr(backpressure, "consumer_group_lag", lambda timeout: lag)
    monkeypatch.setattr(backpressure, "queued_tasks", lambda timeout: queued)
    assert measure_overload() == expected


def test_zero_limit_rejects_any_lag(limits, monkeypatch):
    limits.INTAKE_MAX_CONSUMER_LAG = 0
    monkeypatch.setattr(backpressure, "consumer_group_lag", lambda timeout: 1)
    monkeypatch.setattr(backpressure, "queued_tasks", lambda timeout: 0)
    assert measure_overload() == "consumer lag is 1, above INTAKE_MAX_CONSUMER_LAG=0"


def test_unreadable_lag_does_not_limit(limits, monkeypatch):
    monkeypatch.setattr(backpressure, "consumer_group_lag", fail)
    monkeypatch.setattr(backpressure, "queued_tasks", lambda timeout: 0)
    assert measure_overload() is None


def test_unreadable_queue_does_not_limit(limits, monkeypatch):
    monkeypatch.setattr(backpressure, "consumer_group_lag", lambda timeout: 0)
    monkeypatch.setattr(backpressure, "queued_tasks", fail)
    assert measure_overload() is None


def test_load_check_reuses_figures(settings, monkeypatch):
    reads = []
    monkeypatch.setattr(
        backpressure, "measure_overload", lambda: reads.append(1) or "full"
    )
    settings.INTAKE_LOAD_CHECK_SECONDS = 60
    check = LoadCheck()
    assert check.overload_reason() == "full"
    assert check.overload_reason() == "full"
    assert len(reads) == 1


def test_load_check_reads_when_stale(settings, monkeypatch):
    reads = []
    monkeypatch.setattr(backpressure, "measure_overload", lambda: reads.append(1))
    settings.INTAKE_LOAD_CHECK_SECONDS = 0
    check = LoadCheck()
    check.overload_reason()
    check.overload_reason()
    assert len(reads) == 2


@pytest.mark.django_db
def test_intake_overloaded_503(client, settings, monkeypatch):
    monkeypatch.setattr(
        "logs.views.overload_reason", lambda: "consumer lag is 5, above 1"
    )
    settings.INTAKE_RETRY_AFTER_SECONDS = 7
    _key, secret = ApiKey.generate("backpressure test")
    before = REGISTRY.get_sample_value(
        "logplatform_entries_rejected_total", {"reason": "overloaded"}
    )

    response = client.post(
        "/api/logs/",
        [
            {"service_name": "svc", "message": "one"},
            {"service_name": "svc", "message": "two"},
        ],
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert "consumer lag is 5" in response.json()["detail"]
    after = REGISTRY.get_sample_value(
        "logplatform_entries_rejected_total", {"reason": "overloaded"}
    )
    assert after - (before or 0) == 2
