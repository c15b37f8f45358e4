"""GET /api/stats/: sums of the minute rollups, zero-filled, with checked input."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.models import MinuteRollup
from logs.levels import Level
from logs.models import ApiKey

BASE = datetime(2031, 6, 1, 0, 0, tzinfo=UTC)
URL = "/api/stats/"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def rollup(minutes: int, service: str, level: Level, count: int) -> None:
    MinuteRollup.objects.create(
        minute=BASE + timedelta(minutes=minutes),
        service_name=service,
        level=level,
        count=count,
    )


@pytest.fixture
def rollups(db):
    rollup(0, "api", Level.INFO, 5)
    rollup(0, "api", Level.ERROR, 2)
    rollup(0, "billing", Level.WARNING, 4)
    rollup(2, "api", Level.DEBUG, 7)
    rollup(61, "billing", Level.CRITICAL, 1)
    rollup(60 * 24 + 5, "api", Level.INFO, 10)


def get(client, **params):
    return client.get(URL, params)


def series(response) -> list[tuple[str, int]]:
    assert response.status_code == 200, response.content
    return [(point["time"], point["count"]) for point in response.json()["series"]]


def test_minutes_zero_filled(reader, rollups):
    response = get(reader, since=iso(BASE), until=iso(BASE + timedelta(minutes=4)))

    assert series(response) == [
        (iso(BASE), 11),
        (iso(BASE + timedelta(minutes=1)), 0),
        (iso(BASE + timedelta(minutes=2)), 7),
        (iso(BASE + timedelta(minutes=3)), 0),
    ]
    body = response.json()
    assert body["bucket"] == "minute"
    assert body["since"] == iso(BASE)
    assert body["until"] == iso(BASE + timedelta(minutes=4))


def test_hour_buckets_sum_minutes(reader, rollups):
    response = get(
        reader,
        since=iso(BASE),
        until=iso(BASE + timedelta(hours=3)),
        bucket="hour",
    )

    assert series(response) == [
        (iso(BASE), 18),
        (iso(BASE + timedelta(hours=1)), 1),
        (iso(BASE + timedelta(hours=2)), 0),
    ]


def test_day_buckets_start_at_utc_midnight(reader, rollups):
    response = get(
        reader,
        since=iso(BASE + timedelta(hours=6)),
        until=iso(BASE + timedelta(days=2)),
        bucket="day",
    )

    # The first day counts only from 06:00, so the minutes at 00:00 and
    # 01:01 are outside the range.
    assert series(response) == [
        (iso(BASE), 0),
        (iso(BASE + timedelta(days=1)), 10),
    ]


def test_level_is_a_minimum_with_aliases(reader, rollups):
    window = {"since": iso(BASE), "until": iso(BASE + timedelta(hours=2))}

    warn = series(get(reader, level="warn", bucket="hour", **window))
    error = series(get(reader, level="ERROR", bucket="hour", **window))

    assert [count for _, count in warn] == [6, 1]
    assert [count for _, count in error] == [2, 1]


def test_service_filter(reader, rollups):
    response = get(
        reader,
        service="billing",
        since=iso(BASE),
        until=iso(BASE + timedelta(hours=2)),
        bucket="hour",
    )

    assert [count for _, count in series(response)] == [4, 1]


def test_since_and_until_round_down_to_minute(reader, rollups):
    response = get(
        reader,
        since=iso(BASE + timedelta(seconds=45)),
        until=iso(BASE + timedelta(minutes=2, seconds=59)),
    )

    assert series(response) == [
        (iso(BASE), 11),
        (iso(BASE + timedelta(minutes=1)), 0),
    ]


def test_naive_times_are_utc(reader, rollups):
    response = get(reader, since="2031-06-01T00:00:00", until="2031-06-01T00:01:00")

    assert series(response) == [(iso(BASE), 11)]


def test_offsets_are_converted_to_utc(reader, rollups):
    response = get(
        reader, since="2031-06-01T02:00:00+02:00", until="2031-06-01T02:01:00+02:00"
    )

    assert series(response) == [(iso(BASE), 11)]


def test_default_is_last_hour(reader, db):
    response = get(reader)

    body = response.json()
    points = series(response)
    assert body["bucket"] == "minute"
    assert len(points) == 60
    assert all(count == 0 for _, count in points)
    until = datetime.fromisoformat(body["until"])
    assert timezone.now() - until < timedelta(minutes=2)
    assert until - datetime.fromisoformat(body["since"]) == timedelta(hours=1)


@pytest.mark.parametrize(
    ("span", "bucket"),
    [
        (timedelta(hours=3), "minute"),
        (timedelta(hours=3, minutes=1), "hour"),
        (timedelta(days=7), "hour"),
        (timedelta(days=8), "day"),
    ],
)
def test_default_bucket_follows_range(reader, db, span, bucket):
    response = get(reader, since=iso(BASE), until=iso(BASE + span))

    assert response.status_code == 200
    assert response.json()["bucket"] == bucket


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"level": "loud"}, "level"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2031-06-01T25:00"}, "until"),
        ({"bucket": "week"}, "bucket"),
        ({"since": "2031-06-01T01:00Z", "until": "2031-06-01T00:00Z"}, "since"),
        ({"since": "2031-06-01T00:00:10Z", "until": "2031-06-01T00:00:50Z"}, "since"),
        (
            {
                "since": "2031-01-01T00:00Z",
                "until": "2031-06-01T00:00Z",
                "bucket": "minute",
            },
            "bucket",
        ),
    ],
)
def test_bad_parameter_is_400_naming_it(reader, db, params, field):
    response = get(reader, **params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_unknown_level_lists_levels(reader, db):
    response = get(reader, level="loud")

    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in response.json()["level"][0]


def test_anonymous_is_rejected(db):
    response = APIClient().get(URL)

    assert response.status_code in (401, 403)


def test_api_key_cannot_read(db):
    _key, secret = ApiKey.generate("sender")
    client = APIClient()

    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 403


def test_browsable_api_renders(reader, rollups):
    response = reader.get(
        URL,
        {"since": iso(BASE), "until": iso(BASE + timedelta(minutes=2))},
        HTTP_ACCEPT="text/html",
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"&quot;count&quot;: 11" in response.content
