"""Pattern assignment in the worker, with its state shared through PostgreSQL.

Each PatternAssigner stands for one worker process: it keeps its own Drain
trees and shares nothing with another assigner except the Pattern table.
"""

import uuid

import pytest
from django.db import connection, transaction

from logs import patterns
from logs.mining import WILDCARD, Drain
from logs.models import Log, Pattern
from logs.patterns import PatternAssigner, assign_patterns
from logs.tasks import store_logs
from tests.unit.test_storage import entry as storage_entry

LINES = [
    "user 17 logged in from 10.0.0.1",
    "worker started on alpha",
    "disk /dev/sda1 is 91% full",
    "user 42 logged in from 10.0.0.7",
    "connection to db-3 lost after 30 s",
    "worker started on beta",
    "cache warmed in 120 ms",
    "connection to db-7 lost after 12 s",
    "worker started on gamma",
    "user 5 logged in from 192.168.1.20",
]
# Indexes of LINES that are the same kind of line.
SAME_KIND = [(0, 3), (0, 9), (4, 7), (1, 5), (1, 8)]


def new_service() -> str:
    # Other tests leave patterns in the test database; each test counts only
    # the patterns of its own service.
    return f"patterns-test-{uuid.uuid4().hex[:8]}"


def entry(service: str, message: str) -> dict:
    return storage_entry(service_name=service, message=message)


def ids_by_line(assigner: PatternAssigner, service: str) -> dict[str, int | None]:
    ids = assigner.assign([entry(service, line) for line in LINES])
    return dict(zip(LINES, ids, strict=True))


@pytest.mark.django_db
def test_two_assigners_agree_in_any_order():
    service = new_service()
    first, second = PatternAssigner(100), PatternAssigner(100)

    first.assign([entry(service, line) for line in LINES[:5]])
    second.assign([entry(service, line) for line in reversed(LINES)])
    first.assign([entry(service, line) for line in LINES[5:]])

    first_ids = ids_by_line(first, service)
    second_ids = ids_by_line(second, service)
    assert first_ids == second_ids
    for one, other in SAME_KIND:
        assert first_ids[LINES[one]] == first_ids[LINES[other]]
    assert len(set(first_ids.values())) == 5
    stored = Pattern.objects.filter(service_name=service)
    assert sorted(stored.values_list("id", flat=True)) == sorted(
        set(first_ids.values())
    )
    worker = stored.get(id=first_ids["worker started on alpha"])
    assert worker.template == "worker started on <*>"


@pytest.mark.django_db
def test_assigner_sees_template_change_of_another():
    service = new_service()
    first, second = PatternAssigner(100), PatternAssigner(100)
    [alpha] = first.assign([entry(service, "worker started on alpha")])
    assert second.assign([entry(service, "worker started on alpha")]) == [alpha]
    revision = Pattern.objects.get(id=alpha).revision

    assert first.assign([entry(service, "worker started on beta")]) == [alpha]
    changed = Pattern.objects.get(id=alpha)
    assert changed.template == "worker started on <*>"
    assert changed.revision > revision

    # The second assigner reads the change before it looks a line up, even
    # a line that its old template matches exactly.
    assert second.assign([entry(service, "worker started on alpha")]) == [alpha]
    assert tree_templates(second, service) == ["worker started on <*>"]
    assert second.assign([entry(service, "worker started on gamma")]) == [alpha]
    assert Pattern.objects.get(id=alpha).revision == changed.revision


def tree_templates(assigner: PatternAssigner, service: str) -> list[str]:
    """Return the templates in the assigner's own Drain tree of the service."""
    return [
        cluster.template for cluster in assigner._services[service].drain.clusters()
    ]


@pytest.mark.django_db
def test_known_lines_cost_one_query(django_assert_num_queries):
    service = new_service()
    assigner = PatternAssigner(100)
    first = assigner.assign([entry(service, line) for line in LINES])

    with django_assert_num_queries(1):
        again = assigner.assign([entry(service, line) for line in reversed(LINES)])

    assert again == first[::-1]


@pytest.mark.django_db
def test_restart_keeps_ids():
    service = new_service()
    before = ids_by_line(PatternAssigner(100), service)
    revisions = dict(
        Pattern.objects.filter(service_name=service).values_list("id", "revision")
    )

    after = ids_by_line(PatternAssigner(100), service)

    assert after == before
    assert (
        dict(Pattern.objects.filter(service_name=service).values_list("id", "revision"))
        == revisions
    )


@pytest.mark.django_db
def test_redelivered_batch_counts_once():
    service = new_service()
    batch = [entry(service, line) for line in LINES]
    batch[-1]["received_at"] = "2026-02-03T04:06:00+00:00"

    assert store_logs.apply(args=[batch]).get() == len(LINES)
    assert store_logs.apply(args=[batch]).get() == 0

    rows = Log.objects.filter(service_name=service)
    assert rows.filter(pattern__isnull=True).count() == 0
    counts = {
        pattern.id: pattern.count
        for pattern in Pattern.objects.filter(service_name=service)
    }
    for pattern_id, count in counts.items():
        assert rows.filter(pattern_id=pattern_id).count() == count
    assert sum(counts.values()) == len(LINES)
    user = Pattern.objects.get(id=rows.get(id=batch[0]["id"]).pattern_id)
    assert user.count == 3
    assert user.first_seen.isoformat() == "2026-02-03T04:05:07+00:00"
    assert user.last_seen.isoformat() == "2026-02-03T04:06:00+00:00"


@pytest.mark.django_db
def test_count_adds_new_entries_only():
    service = new_service()
    first = [entry(service, "cache warmed in 120 ms") for _ in range(3)]
    store_logs.apply(args=[first]).get()
    again = first[:2] + [entry(service, "cache warmed in 80 ms")]

    assert store_logs.apply(args=[again]).get() == 1

    [pattern] = Pattern.objects.filter(service_name=service)
    assert pattern.count == 4


@pytest.mark.django_db
def test_bound_per_service():
    service, other = new_service(), new_service()
    first, second = PatternAssigner(2), PatternAssigner(2)
    kinds = ["disk /dev/sda1 is 91% full", "cache warmed in 120 ms"]
    known = first.assign([entry(service, line) for line in kinds])

    beyond = second.assign(
        [
            entry(service, "connection to db-3 lost after 30 s"),
            entry(service, "disk /dev/sdb2 is 97% full"),
            entry(other, "connection to db-3 lost after 30 s"),
        ]
    )

    assert None not in known
    assert beyond[0] is None
    assert beyond[1] == known[0]
    assert beyond[2] is not None
    assert Pattern.objects.filter(service_name=service).count() == 2
    assert first.assign([entry(service, "connection to db-9 lost after 1 s")]) == [None]
    assert Pattern.objects.filter(service_name=service).count() == 2


@pytest.mark.django_db
def test_bound_above_drain_default():
    # Distinct words in the first two places give each line a leaf of its
    # own, so learning stays fast. No line is like another.
    words = [a + b for a in "abcdefghij" for b in "abcdefghij"]
    lines = [f"{first} {second} tail" for first in words for second in words[:51]]
    service = new_service()
    assigner = PatternAssigner(len(lines) + 10)

    ids = assigner.assign([entry(service, line) for line in lines])

    assert len(lines) > Drain().max_clusters
    assert None not in ids
    assert len(set(ids)) == len(lines)
    stored = Pattern.objects.filter(service_name=service)
    assert stored.count() == len(lines)
    assert not stored.filter(template__contains=WILDCARD).exists()


@pytest.mark.django_db
def test_bound_still_changes_templates():
    service = new_service()
    assigner = PatternAssigner(1)
    [alpha] = assigner.assign([entry(service, "worker started on alpha")])

    assert assigner.assign([entry(service, "worker started on beta")]) == [alpha]
    assert Pattern.objects.get(id=alpha).template == "worker started on <*>"


def cached_characters(assigner: PatternAssigner) -> int:
    return sum(
        len(service) + len(message) + len(joined)
        for (service, message), (joined, *_rest) in assigner._cache.items()
    )


@pytest.mark.django_db
def test_cache_bounded_by_characters(monkeypatch):
    monkeypatch.setattr(patterns, "CACHE_MAX_CHARACTERS", 10_000)
    service = new_service()
    assigner = PatternAssigner(100)
    word = "x" * 2_000

    ids = assigner.assign([entry(service, f"{word} {index}") for index in range(20)])

    assert len(set(ids)) == 1
    assert 0 < cached_characters(assigner) <= 10_000
    [longer] = assigner.assign([entry(service, f"{'x' * 20_000} 7")])
    assert longer is not None
    assert 0 < cached_characters(assigner) <= 10_000
    assert (service, f"{'x' * 20_000} 7") not in assigner._cache


@pytest.mark.django_db
def test_mining_off_stores_no_pattern(settings):
    settings.PATTERN_MINING_ENABLED = False
    service = new_service()
    batch = [entry(service, line) for line in LINES]

    assert assign_patterns(batch) is None
    assert store_logs.apply(args=[batch]).get() == len(LINES)
    assert not Log.objects.filter(service_name=service, pattern__isnull=False)
    assert not Pattern.objects.filter(service_name=service).exists()


@pytest.mark.django_db
def test_miner_error_stores_without_patterns(monkeypatch):
    def broken(message):
        raise ValueError(f"cannot tokenize {message!r}")

    monkeypatch.setattr(patterns, "tokenize", broken)
    service = new_service()

    assert assign_patterns([entry(service, "cache warmed in 120 ms")]) is None


@pytest.mark.django_db
def test_rolled_back_write_is_forgotten(monkeypatch):
    service = new_service()
    assigner = PatternAssigner(100)

    def failing_write(writes):
        raise RuntimeError("write failed")

    monkeypatch.setattr(assigner, "_write", failing_write)
    with pytest.raises(RuntimeError):
        assigner.assign([entry(service, "cache warmed in 120 ms")])
    monkeypatch.undo()

    [pattern_id] = assigner.assign([entry(service, "cache warmed in 80 ms")])
    assert Pattern.objects.filter(id=pattern_id, service_name=service).exists()


@pytest.mark.django_db
def test_lock_slots_bound_locks():
    services = [new_service() for _ in range(patterns.LOCK_SLOTS * 4)]
    assigner = PatternAssigner(max_per_service=10)
    with transaction.atomic():
        assigner._lock(sorted(services))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
            (held,) = cursor.fetchone()
    assert 0 < held <= patterns.LOCK_SLOTS


@pytest.mark.django_db
def test_many_new_services_get_patterns():
    services = [new_service() for _ in range(patterns.LOCK_SLOTS * 2)]
    ids = PatternAssigner(max_per_service=10).assign(
        [entry(service, "worker started on alpha") for service in services]
    )
    assert None not in ids
    assert len(set(ids)) == len(services)
    assert Pattern.objects.filter(service_name__in=services).count() == len(services)
