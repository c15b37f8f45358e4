"""Reading stored logs through the API: filters, pagination, access."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from logs.models import ApiKey
from logs.storage import insert_entries

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


# Other suites leave rows in the test database, so every query here is
# limited to this window, which holds only the rows made below.
WINDOW = {
    "since": BASE.isoformat(),
    "until": (BASE + timedelta(hours=1)).isoformat(),
}


def make_entry(minute: int, service: str, level: str, message: str, **metadata):
    at = (BASE + timedelta(minutes=minute)).isoformat()
    return {
        "id": str(uuid.uuid4()),
        "timestamp": at,
        "received_at": at,
        "level": level,
        "service_name": service,
        "message": message,
        "metadata": metadata,
    }


@pytest.fixture
def stored(db):
    entries = [
        make_entry(
            minute,
            "api" if minute % 2 else "billing",
            LEVELS[minute % 5],
            f"Request {minute} took {minute * 10} ms",
            status=500 if minute % 7 == 0 else 200,
            region="eu" if minute < 30 else "us",
        )
        for minute in range(60)
    ]
    assert insert_entries(entries) == 60
    return entries


def ids_of(response) -> list[str]:
    return [row["id"] for row in response.json()["results"]]


def test_list_newest_first(reader, stored):
    response = reader.get("/api/logs/", WINDOW)
    assert response.status_code == 200
    timestamps = [row["timestamp"] for row in response.json()["results"]]
    assert timestamps == sorted(timestamps, reverse=True)
    assert len(timestamps) == 60


def test_list_has_no_count(reader, stored):
    body = reader.get("/api/logs/", WINDOW).json()
    assert "count" not in body
    assert set(body) == {"next", "previous", "results"}


def test_filter_service(reader, stored):
    rows = reader.get("/api/logs/", WINDOW | {"service": "api"}).json()["results"]
    assert len(rows) == 30
    assert {row["service_name"] for row in rows} == {"api"}


def test_filter_min_level_alias(reader, stored):
    rows = reader.get("/api/logs/", WINDOW | {"level": "err"}).json()["results"]
    assert {row["level"] for row in rows} == {"ERROR", "CRITICAL"}
    assert len(rows) == 24


def test_filter_unknown_level(reader, stored):
    response = reader.get("/api/logs/", {"level": "loud"})
    assert response.status_code == 400
    assert "level" in response.json()


def test_filter_time_range(reader, stored):
    since = (BASE + timedelta(minutes=10)).isoformat()
    until = (BASE + timedelta(minutes=20)).isoformat()
    rows = reader.get("/api/logs/", {"since": since, "until": until}).json()
    assert len(rows["results"]) == 10


def test_filter_text_case_insensitive(reader, stored):
    rows = reader.get("/api/logs/", WINDOW | {"q": "REQUEST 42 "}).json()["results"]
    assert [row["message"] for row in rows] == ["Request 42 took 420 ms"]


def test_filter_metadata_number(reader, stored):
    rows = reader.get(
        "/api/logs/", WINDOW | {"metadata_key": "status", "metadata_value": "500"}
    ).json()["results"]
    assert len(rows) == 9
    assert {row["metadata"]["status"] for row in rows} == {500}


def test_filter_metadata_string(reader, stored):
    rows = reader.get(
        "/api/logs/", WINDOW | {"metadata_key": "region", "metadata_value": "us"}
    ).json()["results"]
    assert len(rows) == 30


def test_cursor_pages_cover_all(reader, stored):
    seen: list[str] = []
    response = reader.get("/api/logs/", WINDOW | {"page_size": 7})
    while True:
        seen.extend(ids_of(response))
        following = response.json()["next"]
        if not following:
            break
        response = reader.get(following)
    assert len(seen) == 60
    assert set(seen) == {entry["id"] for entry in stored}


def test_detail_returns_entry(reader, stored):
    entry = stored[4]
    response = reader.get(f"/api/logs/{entry['id']}/")
    assert response.status_code == 200
    assert response.json()["message"] == entry["message"]
    assert response.json()["level"] == "CRITICAL"


def test_detail_unknown_id(reader, stored):
    response = reader.get(f"/api/logs/{uuid.uuid4()}/")
    assert response.status_code == 404


def test_browsable_list_renders(reader, stored):
    response = reader.get("/api/logs/", WINDOW, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Request 59 took 590 ms" in response.content


def test_reading_needs_login(db, stored):
    response = APIClient().get("/api/logs/")
    assert response.status_code in (401, 403)


def test_api_key_cannot_read(db, stored):
    _key, secret = ApiKey.generate("sender")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.get("/api/logs/")
    assert response.status_code == 403


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_unsupported_method_gets_405(reader, stored, method):
    response = getattr(reader, method)(f"/api/logs/{stored[0]['id']}/")
    assert response.status_code == 405
