"""The consumer dead-letters any message it cannot use, and replay sends them back."""

import io
import uuid

import orjson
import pytest
from confluent_kafka import Producer
from django.conf import settings
from django.core.management import call_command

from logs.dead_letters import list_dead_letters
from tests.integration.conftest import stored_count, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# Larger than the dead-letter producer's limit (KAFKA_MAX_MESSAGE_BYTES plus
# 4 KiB) but within the broker's default of about 1 MiB, so it reaches the
# consumer and has to be truncated on its way to the dead-letter topic.
OVERSIZED_BYTES = 1_030_000


def _produce(topic: str, values: list[bytes], headers=None) -> None:
    producer = Producer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "message.max.bytes": 2_000_000,
        }
    )
    for value in values:
        producer.produce(topic, value, partition=0, headers=headers)
    assert producer.flush(30) == 0


def _letters_with(topic: str, marker: str) -> list:
    return [
        letter for letter in list_dead_letters(topic) if marker.encode() in letter.value
    ]


def test_consumer_survives_hostile_messages(pipeline):
    marker = uuid.uuid4().hex
    service = f"after-hostile-{marker[:8]}"
    hostile = {
        b"": "empty",
        b"\x00\xff\xfe binary " + marker.encode(): "not valid JSON",
        orjson.dumps([marker]): "JSON object",
        orjson.dumps({"service_name": marker}): "message",
        b'{"service_name": "' + marker.encode() + b'", "message": "\xed\xa0\x80"}': (
            "not valid JSON"
        ),
        orjson.dumps({"service_name": "s", "message": marker * 20_000}): "longer",
        b'{"service_name": "a", "message": "'
        + marker.encode()
        + b"x" * OVERSIZED_BYTES
        + b'"}': "longer",
    }
    before = len(list(list_dead_letters(pipeline.dlq_topic)))
    good = {"service_name": service, "message": "still consuming"}
    _produce(pipeline.topic, [*hostile, orjson.dumps(good)])

    wait_until(lambda: stored_count(service_name=service) == 1, 60, "the good entry")
    letters = list(list_dead_letters(pipeline.dlq_topic))[before:]
    assert len(letters) == len(hostile)
    for letter, (value, reason) in zip(letters, hostile.items(), strict=True):
        assert reason in letter.reason, (letter.reason, value[:60])
        assert letter.size == len(value)
    assert letters[-1].truncated
    assert not any(letter.truncated for letter in letters[:-1])
    assert pipeline.consumer.process.poll() is None


def test_replay_sends_each_letter_once(pipeline):
    service = f"replayed-{uuid.uuid4().hex[:8]}"
    # An entry without an id, dead-lettered by an older version of the
    # consumer: each time it reaches the logs topic it gets a new id, so a
    # second replay would store it twice.
    entry = orjson.dumps({"service_name": service, "message": "fixed"})
    _produce(pipeline.dlq_topic, [entry], headers=[("dlq.reason", b"old bug")])
    letter = _letters_with(pipeline.dlq_topic, service)[0]
    group = f"test-replay-{uuid.uuid4().hex[:8]}"
    options = {
        "dlq_topic": pipeline.dlq_topic,
        "topic": pipeline.topic,
        "group": group,
        "from_offset": letter.offset,
        "to_offset": letter.offset,
    }

    listing = io.StringIO()
    call_command("dead_letters", "list", dlq_topic=pipeline.dlq_topic, stdout=listing)
    line = next(row for row in listing.getvalue().splitlines() if service in row)
    assert line.split("\t")[:4] == ["0", str(letter.offset), str(len(entry)), "old bug"]

    first = io.StringIO()
    call_command("dead_letters", "replay", stdout=first, **options)
    assert "Replayed 1 dead letters" in first.getvalue()
    wait_until(lambda: stored_count(service_name=service) == 1, 60, "the replay")

    again = io.StringIO()
    call_command("dead_letters", "replay", stdout=again, **options)
    assert "Replayed 0 dead letters" in again.getvalue()
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    assert pipeline.post({"service_name": marker, "message": "m"}).status_code == 202
    wait_until(lambda: stored_count(service_name=marker) == 1, 60, "the marker")
    assert stored_count(service_name=service) == 1
