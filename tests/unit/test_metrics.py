"""The /metrics endpoint and the counters of the store_logs task."""

import uuid

import pytest
from prometheus_client import REGISTRY

from logs.tasks import store_logs


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def entry() -> dict:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-02-03T04:05:06+00:00",
        "received_at": "2026-02-03T04:05:07+00:00",
        "level": "INFO",
        "service_name": "metrics-test",
        "message": "counted",
        "metadata": {},
    }


def test_metrics_open_without_token(client, settings):
    settings.METRICS_BEARER_TOKEN = ""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"# TYPE logplatform_entries_accepted_total counter" in response.content


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer wrong", 401),
        ("Basic s3cret-token", 401),
        ("Bearer s3cret-token", 200),
    ],
)
def test_metrics_token(client, settings, header, status):
    settings.METRICS_BEARER_TOKEN = "s3cret-token"
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == status
    assert b"s3cret-token" not in response.content


@pytest.mark.django_db
def test_store_logs_counts_stored_and_duplicates():
    batch = [entry() for _ in range(3)]
    stored_before = sample("logplatform_entries_stored_total")
    duplicate_before = sample("logplatform_entries_duplicate_total")
    runs_before = sample(
        "logplatform_celery_task_duration_seconds_count", {"task": "logs.store_logs"}
    )

    store_logs.apply(args=[batch])
    store_logs.apply(args=[batch + [entry()]])

    assert sample("logplatform_entries_stored_total") - stored_before == 4
    assert sample("logplatform_entries_duplicate_total") - duplicate_before == 3
    runs = sample(
        "logplatform_celery_task_duration_seconds_count", {"task": "logs.store_logs"}
    )
    assert runs - runs_before == 2
