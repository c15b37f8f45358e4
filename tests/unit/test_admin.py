"""The Django admin pages for logs and API keys."""

import uuid

import pytest
from django.contrib.auth.models import User

from logs.admin import distinct_services
from logs.models import ApiKey, Log
from logs.storage import insert_entries

SERVICE = f"admin-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def staff_client(client, db):
    User.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    client.login(username="admin", password="admin-pass-123")
    return client


@pytest.fixture
def entry(db):
    one = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-04-05T06:07:08+00:00",
        "received_at": "2026-04-05T06:07:09+00:00",
        "level": "ERROR",
        "service_name": SERVICE,
        "message": "payment failed\nTraceback: line 2",
        "metadata": {"order": {"id": 17, "total": "9.99"}},
    }
    insert_entries([one])
    return one


def test_changelist_renders(staff_client, entry):
    response = staff_client.get("/admin/logs/log/", {"service_name": SERVICE})
    assert response.status_code == 200
    assert b"payment failed" in response.content
    assert b"Traceback" not in response.content
    assert SERVICE.encode() in response.content


def test_changelist_level_filter(staff_client, entry):
    response = staff_client.get(
        "/admin/logs/log/", {"service_name": SERVICE, "level__exact": "20"}
    )
    assert response.status_code == 200
    assert b"payment failed" not in response.content


def test_changelist_search(staff_client, entry):
    response = staff_client.get("/admin/logs/log/", {"q": "PAYMENT FAILED"})
    assert response.status_code == 200
    assert SERVICE.encode() in response.content


def test_detail_shows_indented_metadata(staff_client, entry):
    response = staff_client.get(f"/admin/logs/log/{entry['id']}/change/")
    assert response.status_code == 200
    assert b"<pre" in response.content
    # Quotes are HTML-escaped inside the <pre>.
    assert b"\n    &quot;id&quot;: 17" in response.content


def test_logs_are_read_only(staff_client, entry):
    assert staff_client.get("/admin/logs/log/add/").status_code == 403
    response = staff_client.post(
        f"/admin/logs/log/{entry['id']}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert Log.objects.filter(id=entry["id"]).exists()


def test_distinct_services_lists_each_once(entry):
    names = distinct_services(limit=10_000)
    assert names.count(SERVICE) == 1
    assert names == sorted(names)


def test_admin_needs_staff(client, entry):
    response = client.get("/admin/logs/log/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_api_key_admin_lists_keys(staff_client):
    ApiKey.generate("listed key")
    response = staff_client.get("/admin/logs/apikey/")
    assert response.status_code == 200
    assert b"listed key" in response.content


@pytest.fixture
def patterned(db):
    """Two patterns of one service, the second newer, each with its entries."""
    from datetime import UTC, datetime

    from tests.rows import store_pattern, store_rows

    at = datetime(2026, 4, 5, 6, 0, tzinfo=UTC)
    busy = store_pattern(SERVICE, "GET <*> took <*> ms", at, count=3)
    rare = store_pattern(SERVICE, "cache <*> evicted", at.replace(hour=7), count=1)
    store_rows(SERVICE, at, count=3, pattern=busy)
    store_rows(SERVICE, at, count=1, pattern=rare)
    return busy, rare


def test_pattern_admin_lists_by_count(staff_client, patterned):
    busy, rare = patterned
    response = staff_client.get("/admin/logs/pattern/", {"service_name": SERVICE})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("GET &lt;*&gt; took") < html.index("cache &lt;*&gt; evicted")
    assert f"/admin/logs/log/?pattern={busy.pk}" in html


def test_pattern_admin_newest_first(staff_client, patterned):
    # Column 4 is first_seen; a minus sorts it descending.
    response = staff_client.get(
        "/admin/logs/pattern/", {"service_name": SERVICE, "o": "-4"}
    )
    html = response.content.decode()
    assert html.index("cache &lt;*&gt; evicted") < html.index("GET &lt;*&gt; took")


def test_pattern_admin_search(staff_client, patterned):
    response = staff_client.get("/admin/logs/pattern/", {"q": "evicted"})
    assert b"cache &lt;*&gt; evicted" in response.content
    assert b"took &lt;*&gt; ms" not in response.content


def test_log_changelist_by_pattern(staff_client, patterned):
    busy, _ = patterned
    response = staff_client.get("/admin/logs/log/", {"pattern": busy.pk})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 3
    # The filter offers the chosen pattern only.
    assert b"GET &lt;*&gt; took" in response.content
    assert b"cache &lt;*&gt; evicted" not in response.content


def test_log_changelist_hides_pattern_filter(staff_client, patterned):
    response = staff_client.get("/admin/logs/log/", {"service_name": SERVICE})
    assert b"By pattern" not in response.content


@pytest.mark.parametrize("value", ["abc", "0", "99999999999999999999"])
def test_log_changelist_bad_pattern(staff_client, patterned, value):
    response = staff_client.get("/admin/logs/log/", {"pattern": value})
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")
