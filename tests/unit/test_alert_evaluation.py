"""Rule evaluation against rows in the real test database.

Each test places its entries around a fixed moment in 2020, far from the
rows that integration suites store at the current time, and passes that
moment to the evaluation as "now".
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from alerts.evaluation import RunSummary, evaluate_rule, evaluate_rules, send_reminders
from alerts.models import Alert, AlertRule, NotificationChannel, NotificationDelivery
from analytics.models import MinuteRollup
from logs.levels import Level
from logs.models import Log, Pattern

NOW = datetime(2020, 6, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def add_logs(service, count, *, level=Level.ERROR, message="boom", at=NOW, **extra):
    """Store `count` entries that arrived `at` (just before it)."""
    rows = [
        Log(
            id=uuid.uuid4(),
            timestamp=at - timedelta(seconds=1),
            received_at=at - timedelta(milliseconds=10 * (i + 1)),
            level=level,
            service_name=service,
            message=message,
            metadata=extra.get("metadata", {}),
        )
        for i in range(count)
    ]
    Log.objects.bulk_create(rows)
    return rows


def make_rule(**fields) -> AlertRule:
    defaults = {
        "name": f"rule {uuid.uuid4().hex[:8]}",
        "kind": AlertRule.Kind.THRESHOLD,
        "window": timedelta(minutes=5),
        "threshold": 10,
        "resolve_after": 2,
    }
    rule = AlertRule(**(defaults | fields))
    rule.full_clean()
    rule.save()
    return rule


@pytest.fixture
def channel():
    return NotificationChannel.objects.create(
        name=f"hook {uuid.uuid4().hex[:8]}",
        kind=NotificationChannel.Kind.WEBHOOK,
        url="http://127.0.0.1:9/hook",
    )


def run(rule, now=NOW) -> RunSummary:
    rule.refresh_from_db()
    summary = RunSummary()
    evaluate_rule(rule, now, summary)
    return summary


def open_alerts(rule):
    return list(Alert.objects.filter(rule=rule, state__in=Alert.OPEN_STATES))


def deliveries(rule, event):
    return NotificationDelivery.objects.filter(alert__rule=rule, event=event).count()


def test_threshold_fires_once_and_resolves_after_clear_runs(channel):
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(service_name=service, min_level=Level.ERROR)
    rule.channels.add(channel)
    add_logs(service, 9)
    assert run(rule).fired == []

    rows = add_logs(service, 3, at=NOW + timedelta(seconds=20))
    summary = run(rule, NOW + timedelta(seconds=30))
    assert len(summary.fired) == 1
    alert = Alert.objects.get(pk=summary.fired[0])
    assert alert.value == 12
    assert alert.state == Alert.State.FIRING
    assert set(alert.sample_log_ids) & {row.id for row in rows}
    assert deliveries(rule, NotificationDelivery.Event.FIRED) == 1

    # Still above the threshold: the same alert stays open, nothing new sent.
    assert run(rule, NOW + timedelta(seconds=60)).fired == []
    assert len(open_alerts(rule)) == 1
    assert deliveries(rule, NotificationDelivery.Event.FIRED) == 1

    # The window slides past the entries: two clear runs resolve it, once.
    later = NOW + timedelta(minutes=6)
    assert run(rule, later).resolved == []
    assert run(rule, later + timedelta(seconds=30)).resolved == [alert.pk]
    assert run(rule, later + timedelta(seconds=60)).resolved == []
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED
    assert deliveries(rule, NotificationDelivery.Event.RESOLVED) == 1


def test_threshold_ignores_unmatched_entries():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(service_name=service, min_level=Level.ERROR, threshold=5)
    add_logs(service, 20, level=Level.WARNING)
    add_logs(f"{service}-other", 20, level=Level.ERROR)
    assert run(rule).fired == []
    add_logs(service, 5, level=Level.CRITICAL)
    assert len(run(rule).fired) == 1


def test_flapping_condition_keeps_one_alert():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(service_name=service, threshold=3, window=timedelta(minutes=1))
    add_logs(service, 3)
    run(rule)
    # False once, true again: the clear count restarts and the alert stays.
    run(rule, NOW + timedelta(seconds=70))
    add_logs(service, 3, at=NOW + timedelta(seconds=100))
    run(rule, NOW + timedelta(seconds=100))
    alert = Alert.objects.get(rule=rule)
    assert alert.state == Alert.State.FIRING
    assert alert.clear_evaluations == 0


def test_late_entry_is_counted_by_the_next_run():
    """An entry received before a run but stored after it still counts."""
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(
        service_name=service, threshold=1, window=timedelta(seconds=10), resolve_after=1
    )
    assert run(rule).fired == []
    # Received 5 seconds before that run and stored only now. The next run
    # is 30 seconds later, so a plain 10 second window would miss it.
    add_logs(service, 1, at=NOW - timedelta(seconds=5))
    summary = run(rule, NOW + timedelta(seconds=30))
    assert len(summary.fired) == 1


def test_absence_fires_for_quiet_service():
    loud, quiet = (f"svc-{uuid.uuid4().hex[:6]}" for _ in range(2))
    for service in (loud, quiet):
        MinuteRollup.objects.create(
            minute=NOW - timedelta(hours=1), service_name=service, level=20, count=5
        )
    rule = make_rule(
        kind=AlertRule.Kind.ABSENCE,
        per_service=True,
        threshold=1,
        message_contains="heartbeat",
    )
    add_logs(loud, 2, level=Level.INFO, message="heartbeat ok")
    add_logs(quiet, 2, level=Level.INFO, message="something else")
    summary = run(rule)
    fired = Alert.objects.filter(pk__in=summary.fired)
    assert {alert.group for alert in fired} >= {quiet}
    assert loud not in {alert.group for alert in fired}
    assert Alert.objects.get(rule=rule, group=quiet).value == 0

    # The quiet service speaks again: its alert resolves after two runs.
    add_logs(
        quiet,
        1,
        level=Level.INFO,
        message="heartbeat ok",
        at=NOW + timedelta(seconds=30),
    )
    run(rule, NOW + timedelta(seconds=30))
    run(rule, NOW + timedelta(seconds=60))
    assert Alert.objects.get(rule=rule, group=quiet).state == Alert.State.RESOLVED


def test_absence_fires_without_entries():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(kind=AlertRule.Kind.ABSENCE, service_name=service, threshold=1)
    assert len(run(rule).fired) == 1
    assert Alert.objects.get(rule=rule).group == ""


def test_ratio_fires_above_the_fraction_only():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(
        kind=AlertRule.Kind.RATIO,
        service_name=service,
        min_level=Level.ERROR,
        threshold=0.05,
        min_total=50,
    )
    add_logs(service, 96, level=Level.INFO)
    add_logs(service, 4, level=Level.ERROR)
    assert run(rule).fired == []  # 4%
    add_logs(service, 3, level=Level.ERROR, at=NOW + timedelta(seconds=10))
    summary = run(rule, NOW + timedelta(seconds=10))  # 7 of 103
    assert len(summary.fired) == 1
    assert Alert.objects.get(rule=rule).value == pytest.approx(7 / 103)


def test_ratio_needs_enough_entries():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(
        kind=AlertRule.Kind.RATIO,
        service_name=service,
        min_level=Level.ERROR,
        threshold=0.05,
        min_total=50,
    )
    add_logs(service, 10, level=Level.ERROR)
    assert run(rule).fired == []


def test_pattern_rule_fires_on_one_matching_entry():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(
        kind=AlertRule.Kind.PATTERN,
        service_name=service,
        message_regex=r"disk (full|quota)",
    )
    add_logs(service, 50, message="disk almost full")
    assert run(rule).fired == []
    (row,) = add_logs(service, 1, message="write failed: disk quota exceeded")
    summary = run(rule, NOW + timedelta(seconds=1))
    alert = Alert.objects.get(pk=summary.fired[0])
    assert alert.sample_log_ids == [row.id]


def test_metadata_condition_matches_text_and_number_values():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(
        kind=AlertRule.Kind.PATTERN,
        service_name=service,
        metadata_key="status",
        metadata_value="503",
    )
    add_logs(service, 1, metadata={"status": 200})
    assert run(rule).fired == []
    add_logs(service, 1, metadata={"status": 503})
    assert len(run(rule).fired) == 1


def test_silenced_rule_sends_nothing_until_the_silence_ends(channel):
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(
        service_name=service, threshold=1, silenced_until=NOW + timedelta(hours=1)
    )
    rule.channels.add(channel)
    add_logs(service, 1)
    assert len(run(rule).fired) == 1
    assert deliveries(rule, NotificationDelivery.Event.FIRED) == 0
    assert send_reminders(NOW + timedelta(minutes=30)) == []
    assert deliveries(rule, NotificationDelivery.Event.FIRED) == 0
    # After the silence, the alert that is still firing is announced once.
    send_reminders(NOW + timedelta(hours=2))
    send_reminders(NOW + timedelta(hours=2, minutes=1))
    assert deliveries(rule, NotificationDelivery.Event.FIRED) == 1


def test_reminders_stop_when_acknowledged(channel):
    from alerts.operations import acknowledge

    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(
        service_name=service, threshold=1, reminder_interval=timedelta(minutes=10)
    )
    rule.channels.add(channel)
    add_logs(service, 1)
    (alert_id,) = run(rule).fired
    Alert.objects.filter(pk=alert_id).update(last_notified_at=NOW)

    assert send_reminders(NOW + timedelta(minutes=5)) == []
    assert alert_id in send_reminders(NOW + timedelta(minutes=11))
    assert deliveries(rule, NotificationDelivery.Event.REMINDER) == 1

    acknowledge(Alert.objects.get(pk=alert_id))
    assert alert_id not in send_reminders(NOW + timedelta(hours=3))
    assert deliveries(rule, NotificationDelivery.Event.REMINDER) == 1


def test_changed_grouping_resolves_the_old_alerts():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(
        service_name=service, threshold=1, per_service=True, resolve_after=1
    )
    add_logs(service, 2)
    run(rule)
    assert Alert.objects.get(rule=rule).group == service
    AlertRule.objects.filter(pk=rule.pk).update(per_service=False)
    run(rule, NOW + timedelta(seconds=30))
    states = dict(Alert.objects.filter(rule=rule).values_list("group", "state"))
    assert states == {service: Alert.State.RESOLVED, "": Alert.State.FIRING}


def test_evaluation_survives_broken_rule():
    service = f"svc-{uuid.uuid4().hex[:6]}"
    good = make_rule(service_name=service, threshold=1)
    # Saved without clean(), as a database edit could: PostgreSQL rejects it.
    broken = AlertRule.objects.create(
        name=f"broken {service}",
        kind=AlertRule.Kind.PATTERN,
        message_regex="(",
        service_name=service,
    )
    add_logs(service, 1)
    summary = evaluate_rules(NOW)
    assert summary.failed >= 1
    broken.refresh_from_db()
    assert "regular expression" in broken.last_error
    assert Alert.objects.filter(rule=good).count() == 1


def test_rule_validation_names_the_field():
    from django.core.exceptions import ValidationError

    cases = [
        ({"kind": AlertRule.Kind.RATIO, "threshold": 2, "min_level": 40}, "threshold"),
        ({"kind": AlertRule.Kind.RATIO, "threshold": 0.1}, "kind"),
        ({"threshold": 2.5}, "threshold"),
        ({"message_regex": "(unclosed"}, "message_regex"),
        ({"metadata_value": "x"}, "metadata_key"),
        ({"window": timedelta(0)}, "window"),
    ]
    for fields, field_name in cases:
        rule = AlertRule(name="invalid", kind=fields.pop("kind", "threshold"), **fields)
        with pytest.raises(ValidationError) as caught:
            rule.full_clean()
        assert field_name in caught.value.message_dict, fields


def test_concurrent_evaluation_of_a_rule_is_skipped():
    """A run that finds the rule's lock taken leaves the rule alone."""
    from alerts.evaluation import LOCK_NAMESPACE

    service = f"svc-{uuid.uuid4().hex[:6]}"
    rule = make_rule(service_name=service, threshold=1)
    add_logs(service, 1)
    from django.db import connections

    other = connections.create_connection("default")
    try:
        other.set_autocommit(True)
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_NAMESPACE, rule.pk])
        summary = run(rule)
        assert summary.skipped == 1
        assert summary.fired == []
    finally:
        other.close()
    assert connection.is_usable()


def add_pattern(service, template, first_seen) -> Pattern:
    pattern = Pattern.objects.create(
        service_name=service,
        template=template,
        first_seen=first_seen,
        last_seen=first_seen,
        count=1,
    )
    entry = add_logs(service, 1, message=template, at=first_seen)[0]
    Log.objects.filter(id=entry.id).update(pattern=pattern)
    return pattern


@pytest.fixture
def learned(settings):
    """A service "svc" whose first pattern is two hours old; learning is 60 min."""
    settings.PATTERN_LEARNING_MINUTES = 60
    return add_pattern("svc", "started <*>", NOW - timedelta(hours=2))


def test_new_pattern_fires_per_template(learned, channel):
    rule = make_rule(kind=AlertRule.Kind.NEW_PATTERN, threshold=1)
    rule.channels.add(channel)
    first = add_pattern("svc", "disk <*> full", NOW - timedelta(minutes=1))
    second = add_pattern("svc", "lost <*>", NOW - timedelta(minutes=2))

    summary = run(rule)

    alerts = {alert.pattern_id: alert for alert in open_alerts(rule)}
    assert set(alerts) == {first.pk, second.pk}
    assert len(summary.fired) == 2
    assert alerts[first.pk].group == f"pattern {first.pk}"
    assert len(alerts[first.pk].sample_log_ids) == 1
    assert deliveries(rule, NotificationDelivery.Event.FIRED) == 2


def test_new_pattern_skips_old_templates(learned):
    rule = make_rule(kind=AlertRule.Kind.NEW_PATTERN, threshold=1)
    add_pattern("svc", "old <*>", NOW - timedelta(minutes=30))

    assert run(rule).fired == []


def test_new_pattern_quiet_while_learning(settings):
    settings.PATTERN_LEARNING_MINUTES = 60
    rule = make_rule(kind=AlertRule.Kind.NEW_PATTERN, threshold=1)
    add_pattern("fresh", "boot <*>", NOW - timedelta(minutes=50))
    add_pattern("fresh", "listening on <*>", NOW - timedelta(minutes=1))

    assert run(rule).fired == []


def test_new_pattern_fires_once_learning_ends(settings):
    settings.PATTERN_LEARNING_MINUTES = 0
    rule = make_rule(kind=AlertRule.Kind.NEW_PATTERN, threshold=1)
    add_pattern("fresh", "listening on <*>", NOW - timedelta(minutes=1))

    assert len(run(rule).fired) == 1


def test_new_pattern_respects_service(learned):
    rule = make_rule(kind=AlertRule.Kind.NEW_PATTERN, threshold=1, service_name="other")
    add_pattern("svc", "disk <*> full", NOW - timedelta(minutes=1))

    assert run(rule).fired == []


def test_new_pattern_resolves_after_window(learned):
    rule = make_rule(kind=AlertRule.Kind.NEW_PATTERN, threshold=1, resolve_after=2)
    add_pattern("svc", "disk <*> full", NOW - timedelta(minutes=1))
    assert len(run(rule).fired) == 1

    # Still inside the 5-minute window: the same alert stays open.
    assert run(rule, NOW + timedelta(minutes=2)).fired == []
    assert len(open_alerts(rule)) == 1

    later = NOW + timedelta(minutes=10)
    assert run(rule, later).resolved == []
    assert len(run(rule, later + timedelta(minutes=1)).resolved) == 1
    assert open_alerts(rule) == []


def test_new_pattern_rule_rejects_filters():
    rule = AlertRule(
        name="new templates", kind=AlertRule.Kind.NEW_PATTERN, min_level=40
    )
    with pytest.raises(ValidationError) as raised:
        rule.full_clean()
    assert "kind" in raised.value.message_dict
