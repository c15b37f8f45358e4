"""Fixtures shared by the unit tests."""

import os

import pytest


@pytest.fixture
def reader(db):
    """An API client logged in as a user who is not staff."""
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(User.objects.create_user("reader", password="s3cret-pass-word"))
    return client


@pytest.fixture
def retention(settings):
    """Keep entries 30 days, the service audit a year and chatty 3 days."""
    settings.LOG_RETENTION_DAYS = 30
    settings.LOG_RETENTION_OVERRIDES = {"audit": 365, "chatty": 3}
    return settings


@pytest.fixture
def rate_limit_redis(settings):
    """Keep rate-limit buckets in the tests' Redis database, emptied after."""
    import redis

    from logs import ratelimit

    database = int(os.environ.get("TEST_REDIS_DB", "15"))
    url = f"redis://127.0.0.1:6379/{database}"
    settings.REDIS_URL = url
    yield settings
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}*"):
        client.delete(key)
