"""Injection strings through every filter of every read endpoint.

Each value must reach PostgreSQL as a parameter: no response is a 5xx, no
filter returns a row that it should not, and the tables are still there.
"""

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.test import APIClient

from alerts.matching import match_filter
from alerts.models import AlertRule
from logs.models import Log
from logs.storage import insert_entries
from tests.rows import open_alert

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
WINDOW = {"since": BASE.isoformat(), "until": (BASE + timedelta(hours=1)).isoformat()}
SERVICE = f"inject-{uuid.uuid4().hex[:8]}"

ATTACKS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE logs_log; --",
    '"; DROP TABLE "logs_log"; --',
    "1) OR (1=1",
    "%' OR '%'='",
    "*/ OR 1=1 /*",
    "x' UNION SELECT id, message FROM logs_log --",
    "'; SELECT pg_sleep(0); --",
    '$.** ? (@ == "x")',
    "region' ? 'eu",
    '{"region": "eu"}',
    "a'::jsonb @> '{}'::jsonb OR 'a",
    "\\'; --",
    "%",
    "_",
    "ünïcødé ✓ 𝕏 ‮'",
    "\x00' OR 1=1",
    "x" * 5000,
]


@pytest.fixture
def stored(db):
    entries = [
        {
            "id": str(uuid.uuid4()),
            "timestamp": (BASE + timedelta(minutes=minute)).isoformat(),
            "received_at": (BASE + timedelta(minutes=minute)).isoformat(),
            "level": "ERROR",
            "service_name": SERVICE,
            "message": f"plain message {minute}",
            "metadata": {"region": "eu", "status": 500},
        }
        for minute in range(10)
    ]
    insert_entries(entries)
    open_alert(group=SERVICE)
    return entries


@pytest.fixture
def staff(db):
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    client = APIClient()
    client.force_login(user)
    return client


def assert_tables_intact(stored):
    tables = connection.introspection.table_names()
    for table in ("logs_log", "logs_eventid", "logs_apikey", "alerts_alert"):
        assert table in tables
    assert Log.objects.filter(service_name=SERVICE).count() == len(stored)


# Filters that compare text: no stored row contains any attack string, so each
# must return no rows.
TEXT_FILTERS = [
    ("/api/logs/", "service", WINDOW),
    ("/api/logs/", "q", WINDOW),
    ("/api/logs/", "metadata_key", WINDOW),
    ("/api/logs/", "metadata_value", WINDOW | {"metadata_key": "region"}),
    ("/api/alerts/", "group", {}),
    ("/api/rules/", "service", {}),
]

# Filters with a fixed set of values, numbers or times: an attack string is
# either rejected or ignored, and the rows are those of the unfiltered list.
OTHER_FILTERS = [
    ("/api/logs/", "level", WINDOW),
    ("/api/logs/", "since", {}),
    ("/api/logs/", "until", {}),
    ("/api/logs/", "page_size", WINDOW),
    ("/api/logs/", "cursor", WINDOW),
    ("/api/alerts/", "rule", {}),
    ("/api/alerts/", "state", {}),
    ("/api/alerts/", "severity", {}),
    ("/api/alerts/", "open", {}),
    ("/api/alerts/", "since", {}),
    ("/api/alerts/", "until", {}),
    ("/api/rules/", "enabled", {}),
    ("/api/rules/", "kind", {}),
    ("/api/rules/", "severity", {}),
    ("/api/channels/", "page", {}),
    ("/api/deliveries/", "channel", {}),
    ("/api/deliveries/", "alert", {}),
    ("/api/deliveries/", "event", {}),
    ("/api/deliveries/", "status", {}),
    ("/api/stats/", "level", {}),
    ("/api/stats/", "since", {}),
    ("/api/stats/", "until", {}),
    ("/api/stats/", "bucket", {}),
]


def row_ids(response) -> set:
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    return {row["id"] for row in rows}


@pytest.mark.parametrize(("url", "name", "base"), TEXT_FILTERS)
def test_text_filter_injection(staff, stored, url, name, base):
    for attack in ATTACKS:
        response = staff.get(url, base | {name: attack})
        if "\x00" in attack:
            # Django's form fields reject the NUL character.
            assert response.status_code == 400, attack
            continue
        assert response.status_code == 200, (attack, response.content[:300])
        assert row_ids(response) == set(), attack
    assert_tables_intact(stored)


@pytest.mark.parametrize(("url", "name", "base"), OTHER_FILTERS)
def test_other_filter_injection(staff, stored, url, name, base):
    unfiltered = staff.get(url, base)
    assert unfiltered.status_code == 200
    for attack in ATTACKS:
        response = staff.get(url, base | {name: attack})
        assert response.status_code < 500, (attack, response.content[:300])
        if response.status_code == 200 and url != "/api/stats/":
            assert row_ids(response) <= row_ids(unfiltered), attack
    assert_tables_intact(stored)


def test_stats_service_injection(staff, stored):
    for attack in ATTACKS:
        response = staff.get("/api/stats/", {"service": attack})
        if "\x00" in attack or len(attack) > 200:
            # The query serializer rejects NUL and names over 200 characters.
            assert response.status_code == 400, attack
            continue
        assert response.status_code == 200, (attack, response.content[:300])
        counts = [point["count"] for point in response.json()["series"]]
        assert sum(counts) == 0, attack
    assert_tables_intact(stored)


@pytest.mark.parametrize("url", ["/api/logs/", "/api/alerts/", "/api/rules/"])
def test_detail_path_injection(staff, stored, url):
    for attack in ATTACKS:
        response = staff.get(url + quote(attack, safe="") + "/")
        assert response.status_code in (400, 404), (attack, response.status_code)
    assert_tables_intact(stored)


@pytest.mark.parametrize("name", ["range", "since", "until"])
def test_overview_injection(staff, stored, name):
    for attack in ATTACKS:
        response = staff.get("/overview/", {name: attack})
        assert response.status_code in (200, 400), (attack, response.status_code)
    assert_tables_intact(stored)


def test_rule_fields_reject_nul(staff):
    body = {"name": "nul", "kind": "pattern", "message_contains": "a\x00b"}
    response = staff.post("/api/rules/", body, format="json")
    assert response.status_code == 400
    assert "message_contains" in response.json()


@pytest.mark.parametrize(
    "field", ["service_name", "message_contains", "metadata_key", "metadata_value"]
)
def test_rule_matching_injection(stored, field):
    # The API and the admin reject NUL in a rule's fields before it is saved.
    for attack in [attack for attack in ATTACKS if "\x00" not in attack]:
        rule = AlertRule(name="probe", kind="pattern", **{field: attack})
        if field == "metadata_value":
            rule.metadata_key = "region"
        matched = Log.objects.filter(match_filter(rule), service_name=SERVICE)
        assert matched.count() == 0, attack
    assert_tables_intact(stored)
