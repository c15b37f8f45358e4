"""Per-key intake rate limits: the Redis token bucket and the 429 response."""

import math
import uuid

import pytest
from rest_framework.test import APIClient

from logs import authentication, ratelimit
from logs.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache(rate_limit_redis):
    authentication.clear_cache()
    yield
    authentication.clear_cache()


def unique_key_id() -> int:
    # Far above any stored key's id, so no two tests share a bucket.
    return 10**15 + uuid.uuid4().int % 10**12


def limited_key(rate: int, burst: int) -> tuple[ApiKey, APIClient]:
    api_key, secret = ApiKey.generate(f"limited {uuid.uuid4().hex[:6]}")
    api_key.rate_limit = rate
    api_key.rate_burst = burst
    api_key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_key, client


def entries(count: int) -> list[dict]:
    return [{"service_name": "checkout", "message": f"m {i}"} for i in range(count)]


def test_bucket_allows_burst_then_refuses():
    limit = ratelimit.Limit(rate=1, burst=5)
    key_id = unique_key_id()
    assert ratelimit.take(key_id, limit, 3).allowed
    assert ratelimit.take(key_id, limit, 2).allowed
    refused = ratelimit.take(key_id, limit, 3)
    assert not refused.allowed
    assert refused.retry_after >= 2


def test_refused_request_takes_nothing():
    limit = ratelimit.Limit(rate=1, burst=10)
    key_id = unique_key_id()
    assert ratelimit.take(key_id, limit, 6).allowed
    assert not ratelimit.take(key_id, limit, 9).allowed
    # The refused 9 left the remaining 4 in the bucket.
    assert ratelimit.take(key_id, limit, 4).allowed


def test_buckets_are_per_key():
    limit = ratelimit.Limit(rate=1, burst=2)
    first, second = unique_key_id(), unique_key_id()
    assert ratelimit.take(first, limit, 2).allowed
    assert not ratelimit.take(first, limit, 2).allowed
    assert ratelimit.take(second, limit, 2).allowed


def test_limit_from_settings_and_key(settings):
    settings.INTAKE_RATE_LIMIT = 100
    settings.INTAKE_RATE_BURST = 400
    assert ratelimit.limit_for(None, None) == ratelimit.Limit(100, 400)
    assert ratelimit.limit_for(5, None) == ratelimit.Limit(5, 400)
    assert ratelimit.limit_for(5, 20) == ratelimit.Limit(5, 20)
    assert ratelimit.limit_for(0, 20) is None
    settings.INTAKE_RATE_LIMIT = 0
    assert ratelimit.limit_for(None, None) is None


def test_redis_down_allows(settings, caplog, monkeypatch):
    monkeypatch.setattr(ratelimit, "_last_failure_log", -math.inf)
    # Port 9 on loopback has no listener, so the connection is refused.
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    key_id = unique_key_id()
    decision = ratelimit.take(key_id, ratelimit.Limit(1, 1), 1)
    assert decision.allowed
    assert f"Rate limit of API key {key_id} not checked" in caplog.text


def test_intake_answers_429_with_retry_after():
    api_key, client = limited_key(rate=1, burst=4)
    limit = ratelimit.limit_for(api_key.rate_limit, api_key.rate_burst)
    assert ratelimit.take(api_key.id, limit, 4).allowed

    response = client.post("/api/logs/", entries(3), format="json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 2
    assert "1 entries per second" in response.json()["detail"]
    assert "Nothing from this request was accepted" in response.json()["detail"]


def test_intake_batch_over_burst_gets_413():
    _api_key, client = limited_key(rate=10, burst=4)
    response = client.post("/api/logs/", entries(5), format="json")
    assert response.status_code == 413
    assert "at most 4 at once" in response.json()["detail"]


def test_invalid_request_takes_nothing():
    api_key, client = limited_key(rate=1, burst=4)
    bad = entries(4) + [{"message": "no service"}]
    assert client.post("/api/logs/", bad, format="json").status_code == 400
    limit = ratelimit.limit_for(api_key.rate_limit, api_key.rate_burst)
    assert ratelimit.take(api_key.id, limit, 4).allowed
