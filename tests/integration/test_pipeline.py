"""The ingest pipeline end to end: HTTP, Kafka, consumer, Celery, PostgreSQL."""

import uuid

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from django.conf import settings

from logs.models import Log
from tests.integration.conftest import stored_count, wait_until
from tests.processes import run_services

# django_db makes pytest-django create the test database; reads inside the
# test transaction still see the rows that the worker commits.
pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def entries_for(service: str, count: int, **extra) -> list[dict]:
    return [
        {
            "id": str(uuid.uuid4()),
            "service_name": service,
            "level": "warn" if i % 3 == 0 else "info",
            "message": f"request {i} handled",
            "metadata": {"request": i},
            **extra,
        }
        for i in range(count)
    ]


def unique_service(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def read_topic(topic: str, wanted: set[bytes], timeout: float = 30) -> list:
    """Read `topic` from the start until messages with every wanted value
    fragment have been seen; return the matching messages."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found = []
    remaining = set(wanted)
    try:
        wait_until(
            lambda: _collect(consumer, remaining, found) or not remaining,
            timeout,
            f"{len(wanted)} messages in {topic}",
            interval=0,
        )
    finally:
        consumer.close()
    return found


def _collect(consumer: Consumer, remaining: set[bytes], found: list) -> bool:
    for message in consumer.consume(num_messages=1000, timeout=0.5):
        if message.error():
            continue
        value = message.value() or b""
        for fragment in list(remaining):
            if fragment in value:
                remaining.discard(fragment)
                found.append(message)
    return False


def test_batch_is_stored_once_per_entry(pipeline):
    service = unique_service("checkout")
    batch = entries_for(service, 250)

    response = pipeline.post(batch)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 250
    assert body["ids"] == [entry["id"] for entry in batch]
    wait_until(lambda: stored_count(service_name=service) == 250, 60, "250 rows")
    row = Log.objects.get(id=batch[3]["id"])
    assert row.level_name == "WARNING"
    assert row.message == "request 3 handled"
    assert row.metadata == {"request": 3}


def test_single_entry_without_id_gets_one(pipeline):
    service = unique_service("single")

    response = pipeline.post(
        {"service_name": service, "message": "hello", "timestamp": 1700000000123}
    )

    assert response.status_code == 202, response.text
    (event_id,) = response.json()["ids"]
    wait_until(lambda: Log.objects.filter(id=event_id).exists(), 60, "the entry")
    row = Log.objects.get(id=event_id)
    assert row.timestamp.isoformat() == "2023-11-14T22:13:20.123000+00:00"
    assert row.level_name == "INFO"


def test_nul_characters_are_replaced(pipeline):
    service = unique_service("nul")
    entry = {
        "service_name": service,
        "message": "before\u0000after",
        "metadata": {"key\u0000": "value\u0000"},
    }

    response = pipeline.post(entry)

    assert response.status_code == 202, response.text
    wait_until(lambda: stored_count(service_name=service) == 1, 60, "the entry")
    row = Log.objects.get(service_name=service)
    assert row.message == "before\ufffdafter"
    assert row.metadata == {"key\ufffd": "value\ufffd"}


def test_same_batch_twice_stores_once(pipeline):
    service = unique_service("resend")
    batch = entries_for(service, 100)

    first = pipeline.post(batch)
    second = pipeline.post(batch)

    assert first.status_code == 202
    assert second.status_code == 202
    wait_until(lambda: stored_count(service_name=service) == 100, 60, "100 rows")
    # Give a late duplicate the time to land, then count again.
    marker = unique_service("marker")
    pipeline.post({"service_name": marker, "message": "after the resend"})
    wait_until(lambda: stored_count(service_name=marker) == 1, 60, "the marker")
    assert stored_count(service_name=service) == 100


def test_consumer_rereading_topic_adds_nothing(pipeline):
    service = unique_service("reread")
    batch = entries_for(service, 300)
    assert pipeline.post(batch).status_code == 202
    wait_until(lambda: stored_count(service_name=service) == 300, 60, "300 rows")
    total_before = Log.objects.count()

    assert pipeline.consumer.stop() == 0
    assert "Consumer stopped" in pipeline.consumer.output()
    _rewind_group(pipeline.group_id, pipeline.topic)
    pipeline.consumer.start()
    pipeline.consumer.wait_for_output(r"Consumer assigned", timeout=60)
    wait_until(
        lambda: _group_lag(pipeline.group_id, pipeline.topic) == 0,
        120,
        "the consumer to read the whole topic again",
    )
    marker = unique_service("marker")
    pipeline.post({"service_name": marker, "message": "after the re-read"})
    wait_until(lambda: stored_count(service_name=marker) == 1, 60, "the marker")

    assert stored_count(service_name=service) == 300
    assert Log.objects.count() == total_before + 1


def _partitions(topic: str, consumer: Consumer) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=10)
    return [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]


def _rewind_group(group_id: str, topic: str) -> None:
    consumer = Consumer(
        {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": group_id}
    )
    try:
        offsets = [
            TopicPartition(tp.topic, tp.partition, 0)
            for tp in _partitions(topic, consumer)
        ]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def _group_lag(group_id: str, topic: str) -> int:
    consumer = Consumer(
        {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": group_id}
    )
    try:
        partitions = _partitions(topic, consumer)
        committed = consumer.committed(partitions, timeout=10)
        lag = 0
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            lag += high - max(tp.offset, 0)
        return lag
    finally:
        consumer.close()


def test_message_that_is_not_an_entry_is_dead_lettered(pipeline):
    service = unique_service("after-garbage")
    garbage = b"\x00\xffnot json at all " + uuid.uuid4().hex.encode()
    wrong_shape = orjson.dumps({"hello": uuid.uuid4().hex})
    good = {"id": str(uuid.uuid4()), "service_name": service, "message": "fine"}
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    # One partition keeps the order: both bad messages come before the entry.
    for value in (garbage, wrong_shape, orjson.dumps(good)):
        producer.produce(pipeline.topic, value, partition=0)
    assert producer.flush(30) == 0

    wait_until(lambda: stored_count(service_name=service) == 1, 60, "the good entry")
    dead = read_topic(pipeline.dlq_topic, {garbage, wrong_shape})
    reasons = {
        message.value(): dict(message.headers())["dlq.reason"].decode()
        for message in dead
    }
    assert "not valid JSON" in reasons[garbage]
    assert "hello" in reasons[wrong_shape]
    assert dict(dead[0].headers())["dlq.topic"].decode() == pipeline.topic


def test_kafka_down_uses_fallback_then_recovers(pipeline):
    down_service = unique_service("kafka-down")
    up_service = unique_service("kafka-back")
    run_services("stop", "kafka")
    try:
        batch = entries_for(down_service, 50)
        response = pipeline.post(batch)
        assert response.status_code == 202, response.text
        wait_until(
            lambda: stored_count(service_name=down_service) == 50,
            60,
            "the fallback rows",
        )
    finally:
        run_services("start", "kafka")

    # The first requests after the restart may still take the fallback while
    # the producer reconnects; resending the same ids is safe, so send the
    # batch until Kafka holds it.
    after = entries_for(up_service, 20)
    wanted = {entry["id"].encode() for entry in after}
    in_kafka = []
    for _attempt in range(10):
        assert pipeline.post(after).status_code == 202
        try:
            in_kafka = read_topic(pipeline.topic, wanted, timeout=6)
            break
        except AssertionError:
            continue
    assert len(in_kafka) == 20
    wait_until(lambda: stored_count(service_name=up_service) == 20, 90, "20 rows")
    assert stored_count(service_name=down_service) == 50
