"""Validation and normalization of log entries."""

import uuid
from datetime import UTC, datetime

import pytest

from logs.ids import uuid7
from logs.validation import (
    BatchInvalid,
    EntryInvalid,
    normalize_batch,
    normalize_entry,
    parse_timestamp,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def entry(**fields):
    return {"service_name": "api", "message": "hello"} | fields


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-06T07:08:09Z", "2024-05-06T07:08:09+00:00"),
        ("2024-05-06T07:08:09.123+02:00", "2024-05-06T05:08:09.123000+00:00"),
        ("2024-05-06 07:08:09", "2024-05-06T07:08:09+00:00"),
        ("2024-05-06T07:08:09.123456789Z", "2024-05-06T07:08:09.123456+00:00"),
        (1714979289, "2024-05-06T07:08:09+00:00"),
        (1714979289.5, "2024-05-06T07:08:09.500000+00:00"),
        (1714979289123, "2024-05-06T07:08:09.123000+00:00"),
        ("1714979289", "2024-05-06T07:08:09+00:00"),
        (1714979289123456, "2024-05-06T07:08:09.123456+00:00"),
        (-86400, "1969-12-31T00:00:00+00:00"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59+00:00"),
    ],
)
def test_timestamp_forms(value, expected):
    assert parse_timestamp(value).isoformat() == expected


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2024-13-01T00:00:00Z",
        True,
        [],
        {},
        float("nan"),
        float("inf"),
        "9" * 400,
        10**400,
        -(10**30),
        "9" * 5000,
    ],
)
def test_timestamp_rejects(value):
    with pytest.raises(EntryInvalid) as caught:
        parse_timestamp(value)
    assert caught.value.field == "timestamp"


def test_timestamp_out_of_range():
    with pytest.raises(EntryInvalid) as caught:
        parse_timestamp("0001-01-01T00:00:00+05:00")
    assert "range" in caught.value.message


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("warn", "WARNING"),
        ("WARNING", "WARNING"),
        ("Err", "ERROR"),
        ("fatal", "CRITICAL"),
        ("trace", "DEBUG"),
        ("notice", "INFO"),
        ("crit", "CRITICAL"),
    ],
)
def test_level_aliases(given, stored):
    assert normalize_entry(entry(level=given), NOW)["level"] == stored


def test_level_defaults_to_info():
    assert normalize_entry(entry(), NOW)["level"] == "INFO"


def test_missing_timestamp_is_intake_time():
    normalized = normalize_entry(entry(), NOW)
    assert normalized["timestamp"] == NOW.isoformat()
    assert normalized["received_at"] == NOW.isoformat()


def test_client_id_is_kept_and_canonical():
    event_id = uuid.uuid4()
    normalized = normalize_entry(entry(id=str(event_id).upper()), NOW)
    assert normalized["id"] == str(event_id)


def test_server_id_is_uuid7():
    normalized = normalize_entry(entry(), NOW)
    assert uuid.UUID(normalized["id"]).version == 7


def test_uuid7_ids_sort_by_time():
    first = uuid7()
    later = [uuid7() for _ in range(50)]
    assert all(str(first)[:8] <= str(other)[:8] for other in later)
    assert len({str(first), *map(str, later)}) == 51


def test_nul_replaced_everywhere():
    normalized = normalize_entry(
        entry(
            service_name="svc\x00",
            message="a\x00b",
            metadata={"k\x00": ["x\x00", {"y": "\x00"}]},
        ),
        NOW,
    )
    assert normalized["service_name"] == "svc\ufffd"
    assert normalized["message"] == "a\ufffdb"
    assert normalized["metadata"] == {"k\ufffd": ["x\ufffd", {"y": "\ufffd"}]}


def test_normalizing_twice_is_stable():
    once = normalize_entry(entry(level="warn", timestamp=1714979289), NOW)
    twice = normalize_entry(once, NOW, allowed_fields=frozenset(once))
    assert twice == once


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"service_name": None}, "service_name", "required"),
        ({"service_name": "  "}, "service_name", "blank"),
        ({"service_name": "x" * 201}, "service_name", "max_length"),
        ({"message": None}, "message", "required"),
        ({"message": 42}, "message", "invalid"),
        ({"level": "loud"}, "level", "invalid"),
        ({"level": 3}, "level", "invalid"),
        ({"metadata": [1, 2]}, "metadata", "invalid"),
        ({"metadata": "text"}, "metadata", "invalid"),
        ({"id": "not-a-uuid"}, "id", "invalid"),
        ({"id": 12}, "id", "invalid"),
        ({"timestamp": "soon"}, "timestamp", "invalid"),
        ({"msg": "typo"}, "msg", "unknown_field"),
        ({"received_at": "2024-01-01T00:00:00Z"}, "received_at", "unknown_field"),
    ],
)
def test_entry_errors_name_field(fields, field, code):
    with pytest.raises(EntryInvalid) as caught:
        normalize_entry(entry(**fields), NOW)
    assert caught.value.field == field
    assert caught.value.code == code


def test_deep_metadata_rejected(settings):
    settings.INTAKE_MAX_METADATA_DEPTH = 5
    nested: dict = {}
    for _ in range(10):
        nested = {"inner": nested}
    with pytest.raises(EntryInvalid) as caught:
        normalize_entry(entry(metadata=nested), NOW)
    assert caught.value.code == "too_deep"


def test_long_message_rejected(settings):
    settings.INTAKE_MAX_MESSAGE_LENGTH = 10
    with pytest.raises(EntryInvalid) as caught:
        normalize_entry(entry(message="x" * 11), NOW)
    assert caught.value.field == "message"


def test_batch_reports_every_bad_index():
    items = [entry(), entry(level="nope"), entry(), "text", entry(message=None)]
    with pytest.raises(BatchInvalid) as caught:
        normalize_batch(items, NOW)
    found = [(error.index, error.field) for error in caught.value.errors]
    assert found == [(1, "level"), (3, "non_field_errors"), (4, "message")]


def test_metadata_key_limit_counts_nested_keys(settings):
    settings.INTAKE_MAX_METADATA_KEYS = 4
    allowed = {"a": 1, "b": {"c": 2, "d": [{}]}}
    normalize_entry(entry(metadata=allowed), NOW)

    too_many = {"a": 1, "b": {"c": 2, "d": [{"e": 3}]}}
    with pytest.raises(EntryInvalid) as caught:
        normalize_entry(entry(metadata=too_many), NOW)
    assert caught.value.field == "metadata"
    assert caught.value.code == "too_many_keys"


def test_batch_rejects_repeated_id():
    event_id = str(uuid.uuid4())
    items = [entry(id=event_id), entry(), entry(id=event_id.upper())]
    with pytest.raises(BatchInvalid) as caught:
        normalize_batch(items, NOW)
    [error] = caught.value.errors
    assert (error.index, error.field, error.code) == (2, "id", "duplicate_id")
    assert "entry 0" in error.message
