"""Who may do what: ingest and read keys, service scopes, staff and the admin."""

import hashlib
import uuid
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import AlertRule, NotificationChannel
from logs import authentication
from logs.models import ApiKey
from tests.rows import open_alert

pytestmark = pytest.mark.django_db

READ_URLS = [
    "/api/logs/",
    "/api/stats/",
    "/api/alerts/",
    "/api/rules/",
    "/api/channels/",
    "/api/deliveries/",
]


@pytest.fixture(autouse=True)
def fresh_cache():
    authentication.clear_cache()
    yield
    authentication.clear_cache()


def key_client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def key_client(kind=ApiKey.Kind.INGEST, services=None) -> APIClient:
    _key, secret = ApiKey.generate(
        f"key {uuid.uuid4().hex[:6]}", kind=kind, services=services
    )
    return key_client_for(secret)


def user_client(is_staff: bool) -> APIClient:
    user = User.objects.create_user(f"user-{uuid.uuid4().hex[:6]}", is_staff=is_staff)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def alert():
    return open_alert()


def entry(service: str) -> dict:
    return {"service_name": service, "message": "hello"}


def test_command_stores_kind_and_services():
    out = StringIO()
    call_command(
        "create_api_key",
        "shop",
        "--service",
        "checkout",
        "--service",
        " billing ",
        stdout=out,
        stderr=StringIO(),
    )
    stored = ApiKey.objects.get(prefix=out.getvalue().strip()[:12])
    assert stored.kind == ApiKey.Kind.INGEST
    assert stored.services == ["checkout", "billing"]


def test_command_creates_read_key():
    out = StringIO()
    call_command(
        "create_api_key", "grafana", "--kind", "read", stdout=out, stderr=StringIO()
    )
    stored = ApiKey.objects.get(prefix=out.getvalue().strip()[:12])
    assert stored.kind == ApiKey.Kind.READ
    assert stored.services == []


def test_command_rejects_services_on_read_key():
    with pytest.raises(CommandError, match="ingest keys only"):
        call_command(
            "create_api_key",
            *["x", "--kind", "read", "--service", "a"],
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert not ApiKey.objects.filter(name="x").exists()


def test_model_rejects_services_on_read_key():
    key = ApiKey(name="x", kind=ApiKey.Kind.READ, services=["a"])
    with pytest.raises(ValidationError):
        key.clean()


def test_secret_stored_only_as_hash():
    api_key, secret = ApiKey.generate("client")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM logs_apikey WHERE id = %s", [api_key.id])
        row = cursor.fetchone()
    assert not any(secret in str(value) for value in row)
    assert hashlib.sha256(secret.encode()).hexdigest() in row


def test_key_compared_in_constant_time(monkeypatch):
    api_key, secret = ApiKey.generate("client")
    calls = []
    real_compare = authentication.hmac.compare_digest

    def recording_compare(left, right):
        calls.append((left, right))
        return real_compare(left, right)

    monkeypatch.setattr(authentication.hmac, "compare_digest", recording_compare)
    response = key_client_for(secret).post("/api/logs/", [], format="json")
    assert response.status_code == 400
    assert calls == [(api_key.key_hash, api_key.key_hash)]


def test_last_used_recorded():
    api_key, secret = ApiKey.generate("client")
    assert api_key.last_used_at is None
    before = timezone.now()
    key_client_for(secret).post("/api/logs/", [], format="json")
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert api_key.last_used_at >= before


def test_cached_key_needs_no_query(django_assert_num_queries):
    api_key, secret = ApiKey.generate("client", services=["checkout"])
    api_key.rate_limit = 7
    api_key.save()
    client = key_client_for(secret)
    client.post("/api/logs/", [], format="json")
    with django_assert_num_queries(0):
        response = client.post("/api/logs/", [], format="json")
    assert response.status_code == 400
    user, _auth = authentication.ApiKeyAuthentication().authenticate(
        response.wsgi_request
    )
    assert user.rate_limit == 7
    assert user.services == frozenset({"checkout"})


def test_revoked_key_rejected():
    api_key, secret = ApiKey.generate("client")
    api_key.revoked_at = timezone.now()
    api_key.save()
    response = key_client_for(secret).post("/api/logs/", entry("a"), format="json")
    assert response.status_code == 401


def test_scoped_key_rejects_other_service():
    client = key_client(services=["checkout"])
    batch = [entry("checkout"), entry("billing"), entry("checkout")]
    response = client.post("/api/logs/", batch, format="json")
    assert response.status_code == 403
    assert response.json()["services"] == ["billing"]
    assert "'billing'" in response.json()["detail"]
    assert "Nothing from this request was accepted" in response.json()["detail"]


def test_scope_compares_normalized_names():
    client = key_client(services=["checkout"])
    response = client.post("/api/logs/", entry("Checkout"), format="json")
    assert response.status_code == 403
    assert response.json()["services"] == ["Checkout"]


@pytest.mark.parametrize("url", READ_URLS)
def test_read_key_reads(url):
    response = key_client(ApiKey.Kind.READ).get(url)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("url", READ_URLS)
def test_ingest_key_cannot_read(url):
    response = key_client().get(url)
    assert response.status_code == 403
    assert "read API key" in response.json()["detail"]


def test_read_key_cannot_send():
    response = key_client(ApiKey.Kind.READ).post(
        "/api/logs/", entry("a"), format="json"
    )
    assert response.status_code == 403
    assert "ingest API key" in response.json()["detail"]


def test_read_key_cannot_change_rules():
    response = key_client(ApiKey.Kind.READ).post(
        "/api/rules/", {"name": "r", "kind": "pattern"}, format="json"
    )
    assert response.status_code == 403
    assert "can only read" in response.json()["detail"]
    assert not AlertRule.objects.filter(name="r").exists()


def test_read_key_cannot_acknowledge(alert):
    url = reverse("alert-acknowledge", args=[alert.pk])
    response = key_client(ApiKey.Kind.READ).post(url)
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_by is None


def test_non_staff_cannot_write_channels():
    body = {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/"}
    response = user_client(is_staff=False).post("/api/channels/", body, format="json")
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]
    assert not NotificationChannel.objects.filter(name="hook").exists()


def test_staff_writes_channels():
    body = {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/"}
    response = user_client(is_staff=True).post("/api/channels/", body, format="json")
    assert response.status_code == 201, response.content


def test_non_staff_cannot_delete_rules(alert):
    response = user_client(is_staff=False).delete(
        reverse("alertrule-detail", args=[alert.rule.pk])
    )
    assert response.status_code == 403
    assert AlertRule.objects.filter(pk=alert.rule.pk).exists()


@pytest.mark.parametrize("url", ["/admin/", "/admin/logs/apikey/", "/overview/"])
def test_admin_needs_staff(client, url):
    user = User.objects.create_user("plain", password="plain-pass-123")
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]

    user.is_staff = True
    user.is_superuser = True
    user.save()
    assert client.get(url).status_code == 200


def test_admin_edits_key_scope(admin_client):
    api_key, _secret = ApiKey.generate("edited")
    url = reverse("admin:logs_apikey_change", args=[api_key.pk])
    form = {
        "name": "edited",
        "kind": "ingest",
        "services": "checkout,billing",
        "rate_limit": "5",
        "rate_burst": "",
        "revoked_at_0": "",
        "revoked_at_1": "",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content
    api_key.refresh_from_db()
    assert api_key.services == ["checkout", "billing"]
    assert api_key.rate_limit == 5
    assert api_key.rate_burst is None
