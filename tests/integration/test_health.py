"""Health, readiness, metrics and backpressure of the running pipeline."""

import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import stored_count, wait_until
from tests.processes import ManagedProcess, free_port, gunicorn_command

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def base_url(pipeline) -> str:
    return pipeline.url.removesuffix("/api/logs/")


def metric_samples(pipeline) -> dict[tuple[str, tuple], float]:
    """Return every sample of /metrics by name and sorted labels."""
    response = requests.get(f"{base_url(pipeline)}/metrics", timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def accepted(samples) -> float:
    return sum(
        samples.get(("logplatform_entries_accepted_total", (("route", route),)), 0)
        for route in ("kafka", "fallback")
    )


def counter(samples, name: str) -> float:
    return samples.get((name, ()), 0)


def batch_for(service: str, count: int) -> list[dict]:
    return [
        {"id": str(uuid.uuid4()), "service_name": service, "message": f"entry {i}"}
        for i in range(count)
    ]


def test_healthz_and_readyz(pipeline):
    health = requests.get(f"{base_url(pipeline)}/healthz", timeout=5)
    assert health.status_code == 200

    ready = requests.get(f"{base_url(pipeline)}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert set(checks) == {"database", "broker", "kafka", "consumer_lag"}
    for name, check in checks.items():
        assert check == {"status": "ok"}, name


def test_metrics_follow_a_batch(pipeline):
    service = f"metrics-{uuid.uuid4().hex[:8]}"
    batch = batch_for(service, 40)
    before = metric_samples(pipeline)

    assert pipeline.post(batch).status_code == 202
    wait_until(lambda: stored_count(service_name=service) == 40, 60, "40 rows")
    wait_until(
        lambda: (
            counter(metric_samples(pipeline), "logplatform_entries_stored_total")
            - counter(before, "logplatform_entries_stored_total")
            >= 40
        ),
        30,
        "the stored counter",
    )
    stored = metric_samples(pipeline)
    assert accepted(stored) - accepted(before) == 40
    runs = (
        "logplatform_celery_task_duration_seconds_count",
        (("task", "logs.store_logs"),),
    )
    assert stored.get(runs, 0) > before.get(runs, 0)

    assert pipeline.post(batch).status_code == 202
    wait_until(
        lambda: (
            counter(metric_samples(pipeline), "logplatform_entries_duplicate_total")
            - counter(stored, "logplatform_entries_duplicate_total")
            >= 40
        ),
        60,
        "the duplicate counter",
    )
    assert stored_count(service_name=service) == 40


def test_intake_rejects_over_lag_limit(pipeline, kafka_topic):
    # No consumer reads kafka_topic, so each entry sent to it adds to the lag.
    port = free_port()
    env = pipeline.env | {
        "KAFKA_TOPIC": kafka_topic,
        "KAFKA_CONSUMER_GROUP": f"test-idle-group-{uuid.uuid4().hex[:8]}",
        "INTAKE_MAX_CONSUMER_LAG": "0",
        "INTAKE_LOAD_CHECK_SECONDS": "0",
        "READY_MAX_CONSUMER_LAG": "0",
    }
    api = ManagedProcess(
        "api-lag-limit",
        gunicorn_command(port, "--workers", "1"),
        env,
        pipeline.log_dir,
    )
    url = f"http://127.0.0.1:{port}"
    api.start()
    try:
        wait_until(lambda: _answers(f"{url}/healthz"), 60, "the second API")
        entry = {"service_name": "lag-limit", "message": "one"}

        first = requests.post(
            f"{url}/api/logs/", json=entry, headers=pipeline.headers, timeout=30
        )
        assert first.status_code == 202, first.text

        second = requests.post(
            f"{url}/api/logs/", json=entry, headers=pipeline.headers, timeout=30
        )
        assert second.status_code == 503
        assert second.headers["Retry-After"] == pipeline.env.get(
            "INTAKE_RETRY_AFTER_SECONDS", "5"
        )
        assert "INTAKE_MAX_CONSUMER_LAG=0" in second.json()["detail"]

        ready = requests.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["consumer_lag"]["status"] == "failed"
        assert checks["database"] == {"status": "ok"}
    finally:
        api.stop()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
