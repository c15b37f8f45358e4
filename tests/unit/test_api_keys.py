"""API keys: creation by command, hashed storage, authentication."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import OperationalError
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory

from logs.authentication import (
    ApiKeyAuthentication,
    ApiKeyUser,
    KeyStoreUnavailable,
    clear_cache,
)
from logs.models import ApiKey, hash_api_key


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def authenticate(header: str | None):
    factory = APIRequestFactory()
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    request = factory.post("/api/logs/", {}, format="json", **extra)
    return ApiKeyAuthentication().authenticate(request)


@pytest.mark.django_db
def test_command_prints_key_last():
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "deploy bot", stdout=out, stderr=err)
    lines = out.getvalue().strip().splitlines()
    key = lines[-1]
    assert len(lines) == 1
    assert key.startswith("lp_")
    stored = ApiKey.objects.get(name="deploy bot")
    assert stored.key_hash == hash_api_key(key)
    assert key not in stored.key_hash
    assert stored.prefix == key[:12]


@pytest.mark.django_db
def test_valid_key_authenticates():
    api_key, secret = ApiKey.generate("client")
    user, auth = authenticate(f"Bearer {secret}")
    assert isinstance(user, ApiKeyUser)
    assert user.key_id == api_key.id
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


@pytest.mark.django_db
def test_wrong_key_fails():
    _api_key, secret = ApiKey.generate("client")
    with pytest.raises(exceptions.AuthenticationFailed):
        authenticate(f"Bearer {secret[:-2]}xx")


@pytest.mark.django_db
def test_revoked_key_fails():
    api_key, secret = ApiKey.generate("client")
    api_key.revoked_at = api_key.created_at
    api_key.save()
    with pytest.raises(exceptions.AuthenticationFailed):
        authenticate(f"Bearer {secret}")


@pytest.mark.django_db
def test_no_header_is_anonymous():
    assert authenticate(None) is None


@pytest.mark.django_db
def test_malformed_header_fails():
    with pytest.raises(exceptions.AuthenticationFailed):
        authenticate("Bearer two parts")


def database_down(*args, **kwargs):
    raise OperationalError("connection refused")


@pytest.mark.django_db
def test_unchecked_key_gets_503_while_database_is_down(monkeypatch, settings):
    settings.INTAKE_RETRY_AFTER_SECONDS = 7
    _api_key, secret = ApiKey.generate("client")
    monkeypatch.setattr("logs.authentication._check", database_down)

    with pytest.raises(KeyStoreUnavailable) as caught:
        authenticate(f"Bearer {secret}")

    assert caught.value.status_code == 503
    assert caught.value.wait == 7


@pytest.mark.django_db
def test_checked_key_still_works_while_database_is_down(monkeypatch):
    api_key, secret = ApiKey.generate("client")
    authenticate(f"Bearer {secret}")
    # The cached check has expired, and the database is gone.
    monkeypatch.setattr("logs.authentication.CACHE_SECONDS", 0.0)
    monkeypatch.setattr("logs.authentication._check", database_down)

    user, _auth = authenticate(f"Bearer {secret}")

    assert user.key_id == api_key.id
