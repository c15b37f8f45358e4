"""Scoped and rate-limited ingest keys through the running API."""

import uuid
from dataclasses import dataclass

import pytest
import requests

from logs.models import ApiKey
from tests.integration.conftest import stored_count, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ALLOWED = f"access-allowed-{uuid.uuid4().hex[:8]}"
OTHER = f"access-other-{uuid.uuid4().hex[:8]}"


@dataclass
class Keys:
    scoped: str
    limited: str


@pytest.fixture(scope="module")
def keys(pipeline, django_db_blocker) -> Keys:
    # Committed outside any test transaction, so the API processes see them.
    with django_db_blocker.unblock():
        _scoped, scoped = ApiKey.generate("scoped", services=[ALLOWED])
        limited_key, limited = ApiKey.generate("limited")
        limited_key.rate_limit = 1
        limited_key.rate_burst = 3
        limited_key.save()
    return Keys(scoped=scoped, limited=limited)


def post(pipeline, secret: str, body) -> requests.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    return requests.post(pipeline.url, json=body, headers=headers, timeout=30)


def entry(service: str) -> dict:
    return {"id": str(uuid.uuid4()), "service_name": service, "message": "access"}


def test_scoped_key_stores_nothing_of_mixed_request(pipeline, keys):
    refused = [entry(ALLOWED), entry(OTHER)]
    response = post(pipeline, keys.scoped, refused)
    assert response.status_code == 403
    assert response.json()["services"] == [OTHER]

    accepted = entry(ALLOWED)
    assert post(pipeline, keys.scoped, [accepted]).status_code == 202
    wait_until(lambda: stored_count(id=accepted["id"]) == 1, 60, "the entry")
    assert stored_count(id__in=[item["id"] for item in refused]) == 0


def test_rate_limit_shared_by_api_processes(pipeline, keys):
    first = [entry(ALLOWED) for _ in range(3)]
    assert post(pipeline, keys.limited, first).status_code == 202

    # The bucket refills at 1 entry per second, so 3 more entries wait about
    # 3 seconds. The API runs two gunicorn processes, and whichever serves
    # each request reads the same bucket in Redis.
    refused = [[entry(ALLOWED) for _ in range(3)] for _ in range(4)]
    responses = [post(pipeline, keys.limited, batch) for batch in refused]
    assert [response.status_code for response in responses] == [429] * 4
    assert all(int(r.headers["Retry-After"]) >= 1 for r in responses)

    first_ids = [item["id"] for item in first]
    wait_until(lambda: stored_count(id__in=first_ids) == 3, 60, "the entries")
    refused_ids = [item["id"] for batch in refused for item in batch]
    assert stored_count(id__in=refused_ids) == 0
