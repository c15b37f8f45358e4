"""Reading patterns through the API, and the entries of one pattern."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from analytics.rollup import recompute_minutes
from logs.models import ApiKey, Pattern
from tests.rows import store_pattern, store_rows

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RANGE = {
    "since": BASE.isoformat(),
    "until": (BASE + timedelta(hours=1)).isoformat(),
}


@pytest.fixture
def patterns(db):
    """Three patterns: busy in the range, busy before it, and a new one.

    Patterns that the pipeline tests stored for real are deleted first
    (inside the test's transaction), so the listings hold these three only.
    """
    Pattern.objects.all().delete()
    busy = store_pattern("api", "GET <*> took <*> ms", BASE - timedelta(days=2), 7)
    old = store_pattern("api", "cache miss <*>", BASE - timedelta(days=3), 50)
    new = store_pattern("billing", "charge <*> failed", BASE + timedelta(minutes=5))
    store_rows("api", BASE + timedelta(minutes=1), count=5, pattern=busy)
    store_rows("api", BASE + timedelta(minutes=50), count=2, pattern=busy)
    store_rows("api", BASE - timedelta(hours=2), count=50, pattern=old)
    store_rows("billing", BASE + timedelta(minutes=5), count=1, pattern=new)
    store_rows("billing", BASE + timedelta(minutes=6), count=3)
    minutes = [BASE + timedelta(minutes=m) for m in (1, 5, 6, 50)]
    recompute_minutes(minutes + [BASE - timedelta(hours=2)])
    return {"busy": busy, "old": old, "new": new}


def listed(response) -> list[tuple[int, int]]:
    return [(row["id"], row["count_in_range"]) for row in response.json()["results"]]


def test_list_by_count_in_range(reader, patterns):
    response = reader.get("/api/patterns/", RANGE)
    assert response.status_code == 200
    assert listed(response) == [
        (patterns["busy"].pk, 7),
        (patterns["new"].pk, 1),
        (patterns["old"].pk, 0),
    ]


def test_list_item_fields(reader, patterns):
    row = reader.get("/api/patterns/", RANGE).json()["results"][0]
    assert row["service_name"] == "api"
    assert row["template"] == "GET <*> took <*> ms"
    assert row["count"] == 7
    assert row["first_seen"] == "2026-02-27T12:00:00Z"
    assert row["last_seen"] == "2026-02-27T12:00:00Z"
    assert row["entries"].endswith(f"/api/logs/?pattern={patterns['busy'].pk}")


def test_earlier_range_counts_old(reader, patterns):
    earlier = {
        "since": (BASE - timedelta(hours=3)).isoformat(),
        "until": BASE.isoformat(),
    }
    response = reader.get("/api/patterns/", earlier)
    assert listed(response)[0] == (patterns["old"].pk, 50)


def test_default_range_is_one_day(reader, patterns):
    until = BASE + timedelta(hours=1)
    response = reader.get("/api/patterns/", {"until": until.isoformat()})
    assert dict(listed(response))[patterns["old"].pk] == 50


def test_newest_first_ordering(reader, patterns):
    response = reader.get("/api/patterns/", RANGE | {"ordering": "-first_seen"})
    ids = [pattern_id for pattern_id, _ in listed(response)]
    assert ids == [patterns["new"].pk, patterns["busy"].pk, patterns["old"].pk]


def test_filter_service(reader, patterns):
    response = reader.get("/api/patterns/", RANGE | {"service": "billing"})
    assert listed(response) == [(patterns["new"].pk, 1)]


@pytest.mark.parametrize(
    "params",
    [
        {"ordering": "template"},
        {"since": "yesterday"},
        {"since": RANGE["until"], "until": RANGE["since"]},
    ],
)
def test_invalid_query_gets_400(reader, patterns, params):
    response = reader.get("/api/patterns/", params)
    assert response.status_code == 400
    assert set(response.json()) <= {"ordering", "since", "until"}


def test_detail_counts_range(reader, patterns):
    pattern = patterns["busy"]
    response = reader.get(f"/api/patterns/{pattern.pk}/", RANGE)
    assert response.status_code == 200
    assert response.json()["id"] == pattern.pk
    assert response.json()["count_in_range"] == 7


@pytest.mark.parametrize("pattern_id", ["999999", "99999999999999999999", "abc"])
def test_detail_unknown_id_gets_404(reader, patterns, pattern_id):
    response = reader.get(f"/api/patterns/{pattern_id}/")
    assert response.status_code == 404


def test_read_key_may_list(patterns):
    _, key = ApiKey.generate("reader", kind=ApiKey.Kind.READ)
    client = APIClient()
    response = client.get("/api/patterns/", RANGE, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200


def test_ingest_key_cannot_list(patterns):
    _, key = ApiKey.generate("sender")
    client = APIClient()
    response = client.get("/api/patterns/", RANGE, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 403


def test_anonymous_cannot_list(patterns):
    assert APIClient().get("/api/patterns/").status_code in (401, 403)


def test_logs_filter_by_pattern(reader, patterns):
    pattern = patterns["busy"]
    response = reader.get("/api/logs/", RANGE | {"pattern": pattern.pk})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 7
    assert {row["pattern"] for row in rows} == {pattern.pk}


def test_logs_pattern_filter_pages(reader, patterns):
    pattern = patterns["busy"]
    params = RANGE | {"pattern": pattern.pk, "page_size": 3}
    seen = []
    url, query = "/api/logs/", params
    for _ in range(5):
        body = reader.get(url, query).json()
        seen += [row["id"] for row in body["results"]]
        if body["next"] is None:
            break
        url, query = body["next"], None
    assert len(seen) == 7
    assert len(set(seen)) == 7


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "9223372036854775808"])
def test_logs_bad_pattern_gets_400(reader, patterns, value):
    response = reader.get("/api/logs/", {"pattern": value})
    assert response.status_code == 400
    assert "pattern" in response.json()
