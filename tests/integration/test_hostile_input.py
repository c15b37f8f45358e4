"""Hostile request bodies against the intake API, one table row each.

Every row sends a valid entry and a hostile one in the same request, or a
body that is hostile as a whole, under a service name of its own. It then
checks the status and the message, that the API still accepts the next
request, and that exactly the documented entries of that service reach
PostgreSQL through Kafka and the consumer.
"""

import gzip
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection

from logs.models import Log
from logs.partitions import DEFAULT_PARTITION, ensure_partitions, partition_for
from logs.retention import expired_partitions, retention_rules
from tests.integration.conftest import stored_count, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

RUN = uuid.uuid4().hex[:8]
JSON = {"Content-Type": "application/json"}
GZIP = JSON | {"Content-Encoding": "gzip"}
MESSAGE_LIMIT = 262_144
YEAR_1 = datetime(1, 1, 1, tzinfo=UTC)


def service(name: str) -> str:
    return f"hostile-{RUN}-{name}"


def entry(name: str, **raw_fields: bytes) -> bytes:
    """Return one entry as JSON text, given each field value as raw JSON text."""
    fields = {
        "service_name": orjson.dumps(service(name)),
        "message": b'"hostile"',
        **raw_fields,
    }
    pairs = [b'"' + key.encode() + b'": ' + value for key, value in fields.items()]
    return b"{" + b", ".join(pairs) + b"}"


def batch(name: str, *hostile: bytes) -> bytes:
    """Return a valid entry followed by the hostile ones, as a JSON array."""
    valid = orjson.dumps({"service_name": service(name), "message": "valid"})
    return b"[" + b", ".join([valid, *hostile]) + b"]"


def nested(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


def many_keys(count: int) -> bytes:
    return orjson.dumps({f"k{index}": index for index in range(count)})


def gzip_bomb(size: int) -> bytes:
    """Return `size` zero bytes gzip-compressed, without holding them in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, compressor.flush()])


def stored_rows(name: str) -> list[Log]:
    return list(Log.objects.filter(service_name=service(name)).order_by("message"))


def hostile_row(rows: list[Log]) -> Log:
    [row] = [row for row in rows if row.message not in ("valid", "follow-up")]
    return row


@dataclass
class Case:
    name: str
    body: bytes
    status: int
    mentions: str
    headers: dict[str, str] = field(default_factory=lambda: JSON)
    # Entries of the row's service that must be stored: 0 when the request
    # is rejected, since nothing of a rejected request is accepted.
    stored: int = 0
    # What the hostile entry must be stored as, for accepted requests.
    expect: dict = field(default_factory=dict)


def accepted(name: str, body: bytes, headers=JSON, stored=2, **expect) -> Case:
    return Case(name, body, 202, '"accepted"', headers, stored, expect)


def rejected(name: str, body: bytes, status: int, mentions: str, headers=JSON):
    return Case(name, body, status, mentions, headers)


def ts(name: str, value: bytes) -> bytes:
    return batch(name, entry(name, timestamp=value))


def meta(name: str, value: bytes) -> bytes:
    return batch(name, entry(name, metadata=value))


def build_cases() -> list[Case]:
    duplicate = orjson.dumps(str(uuid.uuid4()))
    gzipped = gzip.compress(batch("gzip", entry("gzip", message=b'"zipped"')))
    return [
        # NUL, surrogates and bytes that are not UTF-8.
        accepted(
            "nul-escape",
            batch(
                "nul-escape",
                entry(
                    "nul-escape",
                    message=b'"a\\u0000b"',
                    metadata=b'{"k\\u0000": "\\u0000"}',
                ),
            ),
            message="a\ufffdb",
            metadata={"k\ufffd": "\ufffd"},
        ),
        rejected(
            "nul-byte",
            batch("nul-byte", entry("nul-byte", message=b'"a\x00b"')),
            400,
            "control character",
        ),
        rejected(
            "lone-high-surrogate",
            batch("lone-high-surrogate", entry("x", message=b'"a\\ud800b"')),
            400,
            "surrogate",
        ),
        rejected(
            "lone-low-surrogate",
            batch("lone-low-surrogate", entry("x", metadata=b'{"k": "\\udc00"}')),
            400,
            "not valid JSON",
        ),
        accepted(
            "surrogate-pair",
            batch(
                "surrogate-pair", entry("surrogate-pair", message=b'"\\ud83d\\ude00"')
            ),
            message="\U0001f600",
        ),
        rejected(
            "invalid-utf8",
            batch("invalid-utf8", entry("x", message=b'"caf\xe9"')),
            400,
            "UTF-8",
        ),
        rejected(
            "utf8-encoded-surrogate",
            batch("utf8-encoded-surrogate", entry("x", message=b'"\xed\xa0\x80"')),
            400,
            "UTF-8",
        ),
        # Size and shape.
        rejected(
            "message-10mb",
            batch("message-10mb", entry("x", message=b'"' + b"m" * 10_000_000 + b'"')),
            400,
            f"longer than {MESSAGE_LIMIT} characters",
        ),
        rejected(
            "metadata-1000-deep",
            meta("metadata-1000-deep", nested(1000)),
            400,
            "nested deeper than 32 levels",
        ),
        rejected(
            "metadata-deeper-than-parser",
            meta("metadata-deeper-than-parser", nested(2000)),
            400,
            "depth limit",
        ),
        rejected(
            "metadata-100000-keys",
            meta("metadata-100000-keys", many_keys(100_000)),
            400,
            "more than 1000 keys",
        ),
        accepted(
            "metadata-1000-keys",
            meta("metadata-1000-keys", many_keys(1000)),
        ),
        # Numbers beyond a double, and NaN and Infinity.
        rejected(
            "metadata-1e400", meta("metadata-1e400", b'{"n": 1e400}'), 400, "infinity"
        ),
        rejected(
            "metadata-400-digits",
            meta("metadata-400-digits", b'{"n": ' + b"9" * 400 + b"}"),
            400,
            "infinity",
        ),
        rejected("timestamp-1e400", ts("timestamp-1e400", b"1e400"), 400, "infinity"),
        rejected(
            "timestamp-400-digits",
            ts("timestamp-400-digits", b"-" + b"9" * 400),
            400,
            "infinity",
        ),
        rejected(
            "timestamp-400-digit-text",
            ts("timestamp-400-digit-text", b'"' + b"9" * 400 + b'"'),
            400,
            "out of the supported range",
        ),
        rejected(
            "timestamp-5000-digit-text",
            ts("timestamp-5000-digit-text", b'"' + b"9" * 5000 + b'"'),
            400,
            "5000 digits is out of the supported range",
        ),
        rejected("bare-nan", meta("bare-nan", b'{"n": NaN}'), 400, "not valid JSON"),
        rejected(
            "bare-infinity", ts("bare-infinity", b"Infinity"), 400, "not valid JSON"
        ),
        rejected(
            "bare-minus-infinity", ts("bare-minus-infinity", b"-Infinity"), 400, "JSON"
        ),
        rejected(
            "nan-text-timestamp", ts("nan-text-timestamp", b'"NaN"'), 400, "timestamp"
        ),
        rejected(
            "infinity-text-timestamp",
            ts("infinity-text-timestamp", b'"Infinity"'),
            400,
            "timestamp",
        ),
        accepted(
            "nan-text-metadata",
            meta("nan-text-metadata", b'{"ratio": "NaN", "max": "-Infinity"}'),
            metadata={"ratio": "NaN", "max": "-Infinity"},
        ),
        # Event times far from now are stored as sent.
        accepted(
            "year-1",
            ts("year-1", b'"0001-01-01T00:00:00Z"'),
            timestamp=YEAR_1,
        ),
        accepted(
            "year-9999",
            ts("year-9999", b'"9999-12-31T23:59:59.999999Z"'),
            timestamp=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ),
        accepted(
            "epoch-minus-one",
            ts("epoch-minus-one", b"-1"),
            timestamp=datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        ),
        accepted("epoch-year-1", ts("epoch-year-1", b"-62135596800"), timestamp=YEAR_1),
        accepted(
            "epoch-millis-text",
            ts("epoch-millis-text", b'"-1000000000000"'),
            timestamp=datetime(1938, 4, 24, 22, 13, 20, tzinfo=UTC),
        ),
        rejected(
            "before-year-1",
            ts("before-year-1", b'"0001-01-01T00:00:00+01:00"'),
            400,
            "out of the supported range",
        ),
        # Content types and encodings.
        rejected(
            "form-content-type",
            batch("form-content-type"),
            415,
            "application/x-www-form-urlencoded",
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
        rejected(
            "text-content-type",
            batch("text-content-type"),
            415,
            "text/plain",
            {"Content-Type": "text/plain"},
        ),
        rejected(
            "no-content-type",
            batch("no-content-type"),
            415,
            "Content-Type (none) is not supported",
            {},
        ),
        accepted(
            "gzip",
            gzipped,
            GZIP,
            message="zipped",
        ),
        accepted(
            "gzip-two-members",
            gzip.compress(b"[") + gzip.compress(batch("gzip-two-members")[1:]),
            GZIP,
            stored=1,
        ),
        rejected(
            "gzip-bomb",
            gzip_bomb(1024**3),
            413,
            f"{django_settings.INTAKE_MAX_BODY_BYTES} bytes once decompressed",
            GZIP,
        ),
        rejected("gzip-truncated", gzipped[:-20], 400, "truncated", GZIP),
        rejected("gzip-not-gzip", batch("gzip-not-gzip"), 400, "not valid gzip", GZIP),
        rejected(
            "deflate-encoding",
            zlib.compress(batch("deflate-encoding")),
            415,
            "Content-Encoding 'deflate' is not supported",
            JSON | {"Content-Encoding": "deflate"},
        ),
        # Empty and repeated.
        rejected("empty-array", b"[]", 400, "The array is empty"),
        rejected("empty-body", b"", 400, "The request body is empty"),
        rejected(
            "duplicate-ids",
            batch(
                "duplicate-ids",
                entry("duplicate-ids", id=duplicate),
                entry("duplicate-ids", id=duplicate.upper()),
            ),
            400,
            "is the same as the id of entry 1",
        ),
    ]


CASES = build_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_body(pipeline, case):
    headers = pipeline.headers | case.headers
    response = requests.post(pipeline.url, data=case.body, headers=headers, timeout=60)

    assert response.status_code == case.status, response.text[:2000]
    assert case.mentions in response.text

    follow_up = {"service_name": service(case.name), "message": "follow-up"}
    assert pipeline.post(follow_up).status_code == 202

    expected = case.stored + 1
    wait_until(
        lambda: stored_count(service_name=service(case.name)) >= expected,
        30,
        f"{expected} entries of {case.name}",
    )
    rows = [row for row in stored_rows(case.name) if row.message != "follow-up"]
    assert len(rows) == case.stored
    if case.expect:
        stored = hostile_row(rows)
        for name, value in case.expect.items():
            assert getattr(stored, name) == value, name


def test_rejected_entry_errors_name_the_field(pipeline):
    body = batch("errors", entry("errors", metadata=many_keys(1001)))
    response = requests.post(
        pipeline.url, data=body, headers=pipeline.headers | JSON, timeout=30
    )

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["index"] == 1
    assert error["field"] == "metadata"
    assert error["code"] == "too_many_keys"


def partition_of(row: Log) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM logs_log WHERE id = %s", [row.id]
        )
        return cursor.fetchone()[0]


def test_far_timestamps_count_from_arrival(pipeline):
    # Runs after the table (pytest keeps file order), which stored these rows.
    rows = [hostile_row(stored_rows(name)) for name in ("year-1", "year-9999")]
    ensure_partitions()
    arrival = partition_for(rows[0].received_at)
    assert [partition_of(row) for row in rows] == [arrival.name] * 2
    assert DEFAULT_PARTITION not in [partition_of(row) for row in rows]

    now = rows[0].received_at
    ids = [row.id for row in rows]
    later = now + timedelta(days=django_settings.LOG_RETENTION_DAYS + 1)
    for rule in retention_rules(now):
        assert not rule.expired().filter(id__in=ids).exists(), rule.label
    assert arrival not in expired_partitions(now)
    assert arrival in expired_partitions(later)
