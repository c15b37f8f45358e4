"""Decoding Kafka messages in the consumer."""

from datetime import UTC, datetime

import orjson
import pytest

from logs.consumer import decode_message, message_id
from logs.validation import EntryInvalid

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FakeMessage:
    """Stands in for confluent_kafka.Message, which cannot be built in Python."""

    def __init__(self, value, partition=0, offset=0):
        self._value = value
        self._partition = partition
        self._offset = offset

    def value(self):
        return self._value

    def topic(self):
        return "logs"

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset


def test_decodes_pipeline_entry():
    entry = {
        "id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "received_at": "2026-01-01T00:00:01+00:00",
        "level": "ERROR",
        "service_name": "api",
        "message": "boom",
        "metadata": {},
    }
    assert decode_message(FakeMessage(orjson.dumps(entry)), NOW) == entry


def test_missing_id_derived_from_position():
    raw = orjson.dumps({"service_name": "api", "message": "m"})
    first = decode_message(FakeMessage(raw, partition=2, offset=7), NOW)
    again = decode_message(FakeMessage(raw, partition=2, offset=7), NOW)
    other = decode_message(FakeMessage(raw, partition=2, offset=8), NOW)
    assert first["id"] == again["id"]
    assert first["id"] != other["id"]
    assert first["id"] == message_id(FakeMessage(raw, partition=2, offset=7))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"hello": "world"}', "hello"),
        (b'{"service_name": "a", "message": "b", "level": "loud"}', "loud"),
        # An epoch too large for a float must not crash the consumer.
        (
            b'{"service_name": "a", "message": "b", "timestamp": "'
            + b"9" * 400
            + b'"}',
            "timestamp",
        ),
        (b'{"service_name": "a", "message": "b", "timestamp": 1e400}', "infinity"),
    ],
)
def test_bad_messages_raise(value, reason):
    with pytest.raises(EntryInvalid) as caught:
        decode_message(FakeMessage(value), NOW)
    assert reason in str(caught.value)
