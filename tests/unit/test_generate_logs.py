"""generate_logs: row count, time span, ids, variety, seeds, patterns and rollups."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Min, Sum

from analytics.models import MinuteRollup, PatternMinuteRollup
from logs.levels import Level
from logs.mining import tokenize
from logs.models import Log, Pattern
from logs.patterns import template_tokens
from logs.storage import insert_entries
from logs.synthetic import _COPY_ESCAPES, SERVICES, WEB_TEMPLATES, copy_unescape
from tests.datafiles import data_dir

# Event times far from any other suite's rows, which may be committed in the
# shared test database. Every query below stays within the generated span.
END = datetime(2019, 6, 1, tzinfo=UTC)
START = END - timedelta(days=30)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CONTENT = ("timestamp", "received_at", "level", "service_name", "message", "metadata")


def generate(rows: int, **options) -> str:
    out = StringIO()
    options.setdefault("end", END)
    options.setdefault("seed", 11)
    call_command("generate_logs", rows=rows, stdout=out, **options)
    return out.getvalue()


def in_span():
    return Log.objects.filter(timestamp__gte=START, timestamp__lt=END)


def content_of(ids) -> list[tuple]:
    rows = Log.objects.filter(id__in=ids).order_by("timestamp", "message")
    return list(rows.values_list(*CONTENT))


def new_ids(before: set) -> set:
    return set(in_span().values_list("id", flat=True)) - before


@pytest.mark.django_db
def test_adds_exactly_the_rows_requested():
    output = generate(1234, batch_size=500)

    assert in_span().count() == 1234
    assert "Added 1234 rows" in output


@pytest.mark.django_db
def test_rows_stay_within_the_span():
    generate(3000, days=30, batch_size=700)

    times = list(in_span().values_list("timestamp", "received_at"))
    assert len(times) == 3000
    # Other suites store rows at the current time, so only the day after the
    # span is checked.
    after = Log.objects.filter(
        timestamp__gte=END, timestamp__lt=END + timedelta(days=1)
    )
    assert after.count() == 0
    assert (
        Log.objects.filter(
            timestamp__lt=START, timestamp__gte=START - timedelta(days=1)
        ).count()
        == 0
    )
    for timestamp, received_at in times:
        assert timestamp <= received_at
        assert received_at - timestamp <= timedelta(seconds=5)
    earliest = min(timestamp for timestamp, _ in times)
    latest = max(timestamp for timestamp, _ in times)
    # Spread over the whole span, not bunched at one end.
    assert earliest < START + timedelta(days=1)
    assert latest > END - timedelta(days=1)


@pytest.mark.django_db
def test_days_option_shortens_the_span():
    generate(500, days=2)

    assert in_span().count() == 500
    assert in_span().filter(timestamp__lt=END - timedelta(days=2)).count() == 0


@pytest.mark.django_db
def test_ids_are_unique_uuid7_of_the_event_time():
    generate(2000, batch_size=300)

    rows = list(in_span().values_list("id", "timestamp"))
    ids = [row_id for row_id, _ in rows]
    assert len(set(ids)) == len(rows) == 2000
    for row_id, timestamp in rows:
        assert row_id.version == 7
        assert row_id.variant == uuid.RFC_4122
        millis = int.from_bytes(row_id.bytes[:6], "big")
        assert millis == (timestamp - EPOCH) // timedelta(milliseconds=1)


@pytest.mark.django_db
def test_levels_follow_a_realistic_mix():
    generate(20_000)

    levels = Counter(in_span().values_list("level", flat=True))
    assert set(levels) == {level.value for level in Level}
    assert levels[Level.INFO] > levels[Level.DEBUG] > levels[Level.WARNING]
    assert levels[Level.WARNING] > levels[Level.ERROR] > levels[Level.CRITICAL]
    assert 0.02 < levels[Level.WARNING] / 20_000 < 0.08
    assert 0.004 < levels[Level.ERROR] / 20_000 < 0.02
    assert levels[Level.CRITICAL] / 20_000 < 0.005


@pytest.mark.django_db
def test_services_have_skewed_volume():
    generate(20_000)

    volume = Counter(in_span().values_list("service_name", flat=True))
    assert len(volume) == 40
    ranked = [name for name, _ in volume.most_common()]
    busiest = SERVICES[0][0]
    quietest = SERVICES[-1][0]
    assert ranked[0] == busiest
    assert volume[busiest] > 10 * volume[quietest]
    assert volume[quietest] > 0


@pytest.mark.django_db
def test_services_option_beyond_the_named_ones():
    generate(5000, services=45)

    names = set(in_span().values_list("service_name", flat=True))
    assert "service-41" in names
    assert len(names) > 40


@pytest.mark.django_db
def test_metadata_has_filterable_keys():
    generate(3000)

    web = in_span().filter(service_name="api-gateway")
    assert web.exists()
    for metadata in web.values_list("metadata", flat=True):
        assert set(metadata) >= {"host", "request_id", "status", "duration_ms"}
        assert isinstance(metadata["status"], int)
    assert web.filter(metadata__has_key="user_id").exists()
    assert web.filter(metadata__contains={"status": 200}).exists()
    errors = web.filter(level=Level.ERROR)
    for status in errors.values_list("metadata__status", flat=True):
        assert status >= 500


@pytest.mark.django_db
def test_same_seed_repeats_content_with_new_ids():
    first = generate(1500, seed=5, batch_size=400)
    first_ids = new_ids(set())
    generate(1500, seed=5, batch_size=400)
    second_ids = new_ids(first_ids)

    assert "Added 1500 rows" in first
    assert len(first_ids) == len(second_ids) == 1500
    assert not first_ids & second_ids
    assert content_of(first_ids) == content_of(second_ids)


@pytest.mark.django_db
def test_workers_keep_seeded_content():
    generate(1200, seed=9, batch_size=250, workers=0)
    in_process = new_ids(set())
    generate(1200, seed=9, batch_size=250, workers=2)
    in_workers = new_ids(in_process)

    assert len(in_workers) == 1200
    assert content_of(in_process) == content_of(in_workers)


@pytest.mark.django_db
def test_other_seed_gives_other_content():
    generate(800, seed=1)
    first = new_ids(set())
    generate(800, seed=2)
    second = new_ids(first)

    assert content_of(first) != content_of(second)


@pytest.mark.django_db
def test_existing_rows_are_kept():
    kept = {
        "id": str(uuid.uuid4()),
        "timestamp": (END - timedelta(days=3)).isoformat(),
        "received_at": (END - timedelta(days=3)).isoformat(),
        "level": "ERROR",
        "service_name": "checkout",
        "message": "kept row",
        "metadata": {},
    }
    assert insert_entries([kept]) == 1

    generate(1000)

    assert Log.objects.filter(id=kept["id"]).exists()
    assert in_span().count() == 1001


@pytest.mark.django_db
def test_messages_come_from_loghub_templates():
    data_dir()  # Ends the test when the samples are missing.

    generate(20_000)

    hdfs = in_span().filter(service_name="hdfs-datanode", level__lte=Level.INFO)
    messages = list(hdfs.values_list("message", flat=True))
    assert messages
    assert any("blk_" in message for message in messages)


@pytest.mark.django_db
def test_builtin_templates_without_samples(settings, tmp_path):
    settings.LOGPLATFORM_TEST_DATA = str(tmp_path / "missing")

    output = generate(2000)

    assert "using built-in templates" in output
    hdfs = in_span().filter(service_name="hdfs-datanode", level=Level.INFO)
    firsts = {text.split("{")[0] for text in WEB_TEMPLATES[Level.INFO]}
    for message in hdfs.values_list("message", flat=True):
        assert any(message.startswith(first) for first in firsts)


@pytest.mark.django_db
def test_roll_up_option_counts_every_row():
    generate(2500, days=1, roll_up=True)

    counted = MinuteRollup.objects.filter(minute__gte=END - timedelta(days=1))
    counted = counted.filter(minute__lt=END)
    assert counted.aggregate(total=Sum("count"))["total"] == 2500


@pytest.mark.django_db
def test_patterns_count_exactly_their_rows():
    before = dict(Pattern.objects.values_list("id", "count"))

    output = generate(3000, batch_size=700, patterns=True)

    assert "Assigned patterns" in output
    assert not in_span().filter(pattern__isnull=True).exists()
    rows = (
        in_span()
        .values("pattern")
        .annotate(
            entries=Count("id"), first=Min("received_at"), last=Max("received_at")
        )
    )
    assert sum(row["entries"] for row in rows) == 3000
    patterns = Pattern.objects.in_bulk([row["pattern"] for row in rows])
    assert len(patterns) == len(rows)
    for row in rows:
        pattern = patterns[row["pattern"]]
        assert pattern.count - before.get(pattern.pk, 0) == row["entries"]
        if pattern.pk not in before:
            # The entry that created a pattern is one of its rows.
            assert pattern.first_seen == row["first"]
            assert pattern.last_seen == row["last"]


@pytest.mark.django_db
def test_each_message_fits_its_pattern_template():
    generate(2000, batch_size=500, patterns=True)

    templates = dict(Pattern.objects.values_list("id", "template"))
    rows = in_span().values_list("service_name", "message", "pattern")
    services = dict(Pattern.objects.values_list("id", "service_name"))
    for service, message, pattern_id in rows:
        assert services[pattern_id] == service
        tokens = tokenize(message)
        template = template_tokens(templates[pattern_id])
        assert len(tokens) == len(template)
        for token, expected in zip(tokens, template, strict=True):
            assert expected in (token, "<*>")


@pytest.mark.django_db
def test_no_patterns_option_leaves_rows_without_one():
    patterns_before = Pattern.objects.count()

    output = generate(1000, patterns=False)

    assert "Assigned patterns" not in output
    assert in_span().count() == 1000
    assert not in_span().filter(pattern__isnull=False).exists()
    assert Pattern.objects.count() == patterns_before


@pytest.mark.django_db
def test_patterns_follow_the_mining_setting(settings):
    settings.PATTERN_MINING_ENABLED = False

    generate(500)

    assert not in_span().filter(pattern__isnull=False).exists()


@pytest.mark.django_db
def test_roll_up_option_counts_every_row_by_pattern():
    generate(2500, days=1, roll_up=True, patterns=True)

    minutes = PatternMinuteRollup.objects.filter(
        minute__gte=END - timedelta(days=1), minute__lt=END
    )
    by_pattern = dict(
        minutes.values("pattern")
        .annotate(total=Sum("count"))
        .values_list("pattern", "total")
    )
    rows = in_span().values("pattern").annotate(entries=Count("id"))
    assert by_pattern == {row["pattern"]: row["entries"] for row in rows}
    assert sum(by_pattern.values()) == 2500


def test_copy_unescape_reverses_the_escapes():
    assert copy_unescape("plain text") == "plain text"
    assert copy_unescape("a\\tb\\\\c\\nd\\re") == "a\tb\\c\nd\re"
    assert copy_unescape("C:\\\\temp\\tnew") == "C:\\temp\tnew"
    original = "tab\there, back\\slash\\n, new\nline\r"
    assert copy_unescape(original.translate(_COPY_ESCAPES)) == original


def test_rejects_zero_rows():
    with pytest.raises(CommandError):
        call_command("generate_logs", rows=0, stdout=StringIO())
