"""The dependency probes, /healthz and /readyz.

"Down" is a closed port on 127.0.0.1 that free_port picked, never a stopped
shared service.
"""

import os
import time
import uuid

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from ops import probes, views
from ops.probes import ProbeFailed
from tests.processes import free_port

REDIS_TEST_DB = int(os.environ.get("TEST_REDIS_DB", "15"))


@pytest.fixture(autouse=True)
def fresh_readiness(monkeypatch):
    """Run every check on each request and drop admin clients of closed ports."""
    monkeypatch.setattr(views, "READY_REUSE_SECONDS", 0.0)
    yield
    probes._admin_clients.clear()


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_database_probe_closed_port(settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES["default"], "PORT", str(free_port()))
    with pytest.raises(ProbeFailed) as failure:
        probes.probe_database(1.0)
    assert "127.0.0.1" not in str(failure.value)


def test_broker_probe_closed_port(settings):
    port = free_port()
    settings.CELERY_BROKER_URL = f"redis://:secret@127.0.0.1:{port}/0"
    with pytest.raises(ProbeFailed) as failure:
        probes.probe_broker(1.0)
    assert str(port) not in str(failure.value)
    assert "secret" not in str(failure.value)


def test_kafka_probe_closed_port(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{free_port()}"
    with pytest.raises(ProbeFailed, match="metadata request failed"):
        probes.probe_kafka(0.5)


def test_kafka_probe_missing_topic(settings):
    settings.KAFKA_TOPIC = f"test-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ProbeFailed, match="not found"):
        probes.probe_kafka(1.5)


def test_kafka_probe_existing_topic(settings, kafka_topic):
    settings.KAFKA_TOPIC = kafka_topic
    probes.probe_kafka(1.5)


def test_queued_tasks_counts_every_priority(settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_TEST_DB}"
    queue = f"test-queue-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.rpush(queue, "a", "b", "c")
        client.rpush(f"{queue}\x06\x163", "d", "e")
        assert probes.queued_tasks(1.0, queue) == 5
    finally:
        client.delete(queue, f"{queue}\x06\x163")
    assert probes.queued_tasks(1.0, queue) == 0


def test_consumer_group_lag(settings, kafka_topic):
    settings.KAFKA_TOPIC = kafka_topic
    settings.KAFKA_CONSUMER_GROUP = f"test-health-group-{uuid.uuid4().hex[:8]}"
    assert probes.consumer_group_lag(1.5) == 0

    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    for value in (b"a", b"b", b"c"):
        producer.produce(kafka_topic, value, partition=0)
    producer.produce(kafka_topic, b"d", partition=1)
    assert producer.flush(10) == 0
    assert probes.consumer_group_lag(1.5) == 4

    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": settings.KAFKA_CONSUMER_GROUP,
        }
    )
    try:
        consumer.commit(offsets=[TopicPartition(kafka_topic, 0, 2)], asynchronous=False)
    finally:
        consumer.close()
    assert probes.consumer_group_lag(1.5) == 2


def test_lag_check_limit(settings, monkeypatch):
    monkeypatch.setattr(views, "consumer_group_lag", lambda timeout: 5)
    settings.READY_MAX_CONSUMER_LAG = 5
    views.check_consumer_lag(1.0)
    settings.READY_MAX_CONSUMER_LAG = 4
    with pytest.raises(ProbeFailed, match="lag 5 is above"):
        views.check_consumer_lag(1.0)


def test_run_checks_times_out(monkeypatch):
    def slow(timeout):
        time.sleep(timeout * 4)

    monkeypatch.setattr(views, "READY_CHECKS", {"slow": slow})
    assert views.run_checks(0.2) == {
        "slow": {"status": "failed", "reason": "timed out"}
    }


def test_run_checks_reports_unexpected_error(monkeypatch):
    def broken(timeout):
        raise ValueError("bug")

    monkeypatch.setattr(views, "READY_CHECKS", {"broken": broken})
    assert views.run_checks(1.0) == {
        "broken": {"status": "failed", "reason": "ValueError"}
    }


@pytest.mark.django_db
def test_readyz_broker_down(client, settings, kafka_topic):
    settings.KAFKA_TOPIC = kafka_topic
    settings.KAFKA_CONSUMER_GROUP = f"test-health-group-{uuid.uuid4().hex[:8]}"
    port = free_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["status"] == "failed"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["kafka"] == {"status": "ok"}
    assert body["checks"]["consumer_lag"] == {"status": "ok"}
    assert str(port) not in response.content.decode()


@pytest.mark.django_db
def test_readyz_all_up(client, settings, kafka_topic):
    settings.KAFKA_TOPIC = kafka_topic
    settings.KAFKA_CONSUMER_GROUP = f"test-health-group-{uuid.uuid4().hex[:8]}"
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:6379/{REDIS_TEST_DB}"

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response["Cache-Control"].startswith("max-age=0")
