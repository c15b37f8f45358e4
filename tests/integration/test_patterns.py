"""Patterns assigned by the pipeline's Celery worker (two processes)."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from logs.models import Log, Pattern
from tests.integration.conftest import stored_count, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

KINDS = {
    "order {i} shipped to warehouse {w}": "order <*> shipped to warehouse <*>",
    "payment declined for card ending {i}": "payment declined for card ending <*>",
    "session {u} closed by peer {i}": "session <*> closed by peer <*>",
}
REQUESTS = 4
PER_KIND = 10


def request_body(service: str) -> list[dict]:
    """One entry of each kind per turn, PER_KIND turns."""
    return [
        {
            "id": str(uuid.uuid4()),
            "service_name": service,
            "message": kind.format(i=i, w=i % 7, u=uuid.uuid4()),
            "metadata": {"kind": kind},
        }
        for i in range(PER_KIND)
        for kind in KINDS
    ]


def test_stored_entries_carry_patterns(pipeline):
    service = f"patterns-{uuid.uuid4().hex[:8]}"
    bodies = [request_body(service) for _ in range(REQUESTS)]

    # Requests sent at once land in batches that the two worker processes
    # may store at the same time, each seeing the kinds for the first time.
    with ThreadPoolExecutor(REQUESTS) as pool:
        responses = list(pool.map(pipeline.post, bodies))
    assert [response.status_code for response in responses] == [202] * REQUESTS
    total = REQUESTS * PER_KIND * len(KINDS)
    wait_until(lambda: stored_count(service_name=service) == total, 60, "every entry")

    stored = Pattern.objects.filter(service_name=service)
    assert sorted(stored.values_list("template", flat=True)) == sorted(KINDS.values())
    for kind, template in KINDS.items():
        pattern = stored.get(template=template)
        rows = Log.objects.filter(service_name=service, metadata__kind=kind)
        assert set(rows.values_list("pattern_id", flat=True)) == {pattern.id}
        assert pattern.count == REQUESTS * PER_KIND
