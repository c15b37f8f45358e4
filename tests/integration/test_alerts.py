"""Alert rules against the running pipeline, worker and beat.

Entries go in through the API; beat runs the stored schedule (evaluation,
reminders, rollups, redelivery) and the worker sends notifications to a
webhook receiver on loopback. The tests never call the evaluation
themselves. Rows are written with autocommit, so every process can read them,
and each test removes its rules and channels at the end.

The threshold scenario needs its five-minute window to pass before the
"resolved" notification. It starts in a module fixture and is checked by
the first and the last test, so the other tests run while it waits.
"""

import json
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from alerts.models import Alert, AlertRule, NotificationChannel, NotificationDelivery
from alerts.operations import acknowledge, silence
from analytics.models import MinuteRollup
from logs.levels import Level
from tests.integration.conftest import stored_count, wait_until
from tests.receiver import Receiver

pytestmark = [pytest.mark.integration]

RUN = uuid.uuid4().hex[:6]


def events(receiver: Receiver, alert_id=None) -> list[str]:
    """The events of the requests the receiver accepted, in order."""
    payloads = [json.loads(request.body) for request in receiver.accepted]
    return [
        payload["event"]
        for payload in payloads
        if alert_id is None or payload["alert"]["id"] == alert_id
    ]


def make_channel(receiver: Receiver) -> NotificationChannel:
    return NotificationChannel.objects.create(
        name=f"hook {RUN} {uuid.uuid4().hex[:6]}",
        kind=NotificationChannel.Kind.WEBHOOK,
        url=receiver.url,
        secret=receiver.secret,
    )


def make_rule(channels=(), **fields) -> AlertRule:
    defaults = {"name": f"rule {RUN} {uuid.uuid4().hex[:6]}", "resolve_after": 2}
    rule = AlertRule(**(defaults | fields))
    rule.full_clean()
    rule.save()
    rule.channels.set(channels)
    return rule


def send(pipeline, service: str, count: int, level="INFO", message="ok") -> None:
    entries = [
        {"service_name": service, "level": level, "message": f"{message} {i}"}
        for i in range(count)
    ]
    response = pipeline.post(entries)
    assert response.status_code == 202, response.text


def wait_stored(service: str, count: int) -> None:
    wait_until(
        lambda: stored_count(service_name=service) >= count,
        60,
        f"{count} entries of {service} to be stored",
    )


def wait_for_evaluation(rule: AlertRule, after) -> None:
    """Wait until beat has had the rule evaluated with data up to `after`."""

    def evaluated() -> bool:
        rule.refresh_from_db()
        return rule.last_evaluated_at is not None and rule.last_evaluated_at > after

    wait_until(evaluated, 60, f"an evaluation of {rule.name}")


def alerts_of(rule: AlertRule):
    return Alert.objects.filter(rule=rule)


def cleanup(*objects) -> None:
    for obj in objects:
        obj.delete()


@pytest.fixture(scope="module")
def threshold_scenario(pipeline, beat):
    """50 ERROR entries against a rule of 10 in 5 minutes, with a webhook."""
    receiver = Receiver(secret=f"secret-{RUN}").__enter__()
    channel = make_channel(receiver)
    service = f"checkout-{RUN}"
    rule = make_rule(
        [channel],
        kind=AlertRule.Kind.THRESHOLD,
        service_name=service,
        min_level=Level.ERROR,
        threshold=10,
        window=timedelta(minutes=5),
    )
    send(pipeline, service, 50, level="ERROR", message="payment failed")
    wait_stored(service, 50)
    yield {"rule": rule, "receiver": receiver, "service": service}
    receiver.__exit__(None, None, None)
    cleanup(rule, channel)


def test_threshold_rule_fires_once_with_a_signed_webhook(threshold_scenario):
    rule, receiver = threshold_scenario["rule"], threshold_scenario["receiver"]
    wait_until(lambda: events(receiver), 60, "the fired notification")
    (alert,) = alerts_of(rule)
    assert alert.state == Alert.State.FIRING
    # The count that fired it may be taken before every batch is stored.
    assert 10 <= alert.value <= 50
    assert len(alert.sample_log_ids) == 5
    # Further evaluations keep the one alert and send nothing more.
    wait_for_evaluation(rule, alert.first_seen + timedelta(seconds=6))
    assert alerts_of(rule).count() == 1
    assert events(receiver) == ["fired"]
    (request,) = receiver.requests
    assert request.signature_valid
    payload = json.loads(request.body)
    assert payload["alert"]["id"] == alert.pk
    assert payload["alert"]["value"] == alert.value
    alert.refresh_from_db()
    assert alert.last_value == 50


def test_absence_rule_fires_only_for_the_quiet_service(pipeline, beat):
    loud, quiet = f"loud-{RUN}", f"quiet-{RUN}"
    send(pipeline, loud, 5)
    send(pipeline, quiet, 5)
    wait_stored(loud, 5)
    wait_stored(quiet, 5)
    # Beat's rollup task is what makes both services known to the rule.
    wait_until(
        lambda: (
            MinuteRollup.objects.filter(service_name__in=[loud, quiet])
            .values("service_name")
            .distinct()
            .count()
            == 2
        ),
        90,
        "the rollup of both services",
    )
    rule = make_rule(
        kind=AlertRule.Kind.ABSENCE,
        per_service=True,
        threshold=1,
        window=timedelta(seconds=15),
    )
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            send(pipeline, loud, 2)
            if alerts_of(rule).filter(group=quiet).exists():
                break
            time.sleep(2)
        assert alerts_of(rule).filter(group=quiet).count() == 1
        started = alerts_of(rule).get(group=quiet).first_seen
        # The loud service kept logging: it has no alert after more runs.
        send(pipeline, loud, 2)
        wait_for_evaluation(rule, started + timedelta(seconds=5))
        assert not alerts_of(rule).filter(group=loud).exists()
    finally:
        cleanup(rule)


def test_ratio_rule_fires_above_fraction(pipeline, beat):
    calm, failing = f"calm-{RUN}", f"failing-{RUN}"
    rules = {
        service: make_rule(
            kind=AlertRule.Kind.RATIO,
            service_name=service,
            min_level=Level.ERROR,
            threshold=0.2,
            min_total=10,
            window=timedelta(minutes=2),
        )
        for service in (calm, failing)
    }
    try:
        send(pipeline, calm, 27)
        send(pipeline, calm, 3, level="ERROR")  # 10%
        send(pipeline, failing, 10)
        send(pipeline, failing, 10, level="ERROR")  # 50%
        wait_stored(calm, 30)
        wait_stored(failing, 20)
        wait_until(lambda: alerts_of(rules[failing]).exists(), 60, "the ratio alert")
        assert alerts_of(rules[failing]).get().value == pytest.approx(0.5)
        stored_at = alerts_of(rules[failing]).get().first_seen
        wait_for_evaluation(rules[calm], stored_at)
        assert not alerts_of(rules[calm]).exists()
    finally:
        cleanup(*rules.values())


def test_pattern_rule_fires_on_a_matching_entry_only(pipeline, beat):
    service = f"jvm-{RUN}"
    rule = make_rule(
        kind=AlertRule.Kind.PATTERN,
        service_name=service,
        message_regex=r"OutOfMemoryError|StackOverflowError",
        window=timedelta(minutes=1),
    )
    try:
        send(pipeline, service, 20, level="ERROR", message="GC overhead warning")
        wait_stored(service, 20)
        wait_for_evaluation(rule, timezone.now())
        assert not alerts_of(rule).exists()

        send(pipeline, service, 1, level="ERROR", message="java.lang.OutOfMemoryError")
        wait_until(lambda: alerts_of(rule).exists(), 60, "the pattern alert")
        alert = alerts_of(rule).get()
        assert alert.value == 1
        assert len(alert.sample_log_ids) == 1
    finally:
        cleanup(rule)


def test_beat_runs_the_evaluation_from_the_stored_schedule(pipeline, beat):
    task = PeriodicTask.objects.get(task="alerts.evaluate_rules")
    assert task.enabled
    rule = make_rule(
        kind=AlertRule.Kind.THRESHOLD, service_name=f"idle-{RUN}", threshold=1
    )
    try:
        rule.refresh_from_db()
        first = None
        for _ in range(2):
            wait_for_evaluation(rule, first or rule.created_at)
            first = rule.last_evaluated_at
        assert f"Sending due task {task.name} (alerts.evaluate_rules)" in beat.output()
    finally:
        cleanup(rule)


def test_flaky_webhook_delivered_once(pipeline, beat):
    receiver = Receiver([(500, b"down"), (500, b"down")], secret=f"flaky-{RUN}")
    receiver.__enter__()
    channel = make_channel(receiver)
    service = f"flaky-{RUN}"
    rule = make_rule(
        [channel],
        kind=AlertRule.Kind.PATTERN,
        service_name=service,
        message_contains="panic",
    )
    try:
        send(pipeline, service, 1, level="CRITICAL", message="kernel panic")
        wait_until(lambda: events(receiver), 90, "the accepted webhook")
        (delivery,) = NotificationDelivery.objects.filter(channel=channel)
        assert delivery.status == NotificationDelivery.Status.DELIVERED
        assert delivery.attempts == 3
        assert len(receiver.requests) == 3
        assert all(request.signature_valid for request in receiver.requests)
        # Every attempt carried the same delivery id, so receivers can dedupe.
        sent = {
            json.loads(request.body)["delivery_id"] for request in receiver.requests
        }
        assert sent == {delivery.pk}
        assert events(receiver) == ["fired"]
    finally:
        receiver.__exit__(None, None, None)
        cleanup(rule, channel)


def test_silenced_and_acknowledged_alerts_send_no_reminders(pipeline, beat):
    receiver = Receiver(secret=f"remind-{RUN}").__enter__()
    channel = make_channel(receiver)
    services = {name: f"remind-{name}-{RUN}" for name in ("plain", "acked", "silenced")}
    rules = {
        name: make_rule(
            [channel],
            kind=AlertRule.Kind.PATTERN,
            service_name=service,
            window=timedelta(minutes=5),
            reminder_interval=timedelta(seconds=3),
        )
        for name, service in services.items()
    }
    try:
        for service in services.values():
            send(pipeline, service, 1, level="ERROR", message="disk failure")
        wait_until(
            lambda: Alert.objects.filter(rule__in=rules.values()).count() == 3,
            60,
            "three alerts",
        )
        alert = {name: alerts_of(rule).get() for name, rule in rules.items()}
        acknowledge(alert["acked"])
        silence(alert["silenced"], timezone.now() + timedelta(hours=1))
        # A reminder decided in the instant before the mute may still go out.
        muted = timezone.now() + timedelta(seconds=1)

        def reminders(name):
            return NotificationDelivery.objects.filter(
                alert=alert[name],
                event=NotificationDelivery.Event.REMINDER,
                created_at__gt=muted,
            ).count()

        # The plain alert is reminded twice after the mute; the others never.
        wait_until(lambda: reminders("plain") >= 2, 60, "reminders after the mute")
        assert reminders("acked") == 0
        assert reminders("silenced") == 0
        assert events(receiver, alert["plain"].pk).count("reminder") >= 1
    finally:
        receiver.__exit__(None, None, None)
        cleanup(*rules.values(), channel)


def test_threshold_alert_resolves_once_after_the_window_passes(threshold_scenario):
    rule, receiver = threshold_scenario["rule"], threshold_scenario["receiver"]
    alert = alerts_of(rule).get()
    # The window is five minutes from the last entry, then two clear runs.
    wait_until(
        lambda: "resolved" in events(receiver),
        5 * 60 + 90,
        "the resolved notification",
        interval=2,
    )
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED
    assert alert.resolved_at - alert.first_seen >= timedelta(minutes=4)
    wait_for_evaluation(rule, alert.resolved_at + timedelta(seconds=5))
    assert events(receiver) == ["fired", "resolved"]
    assert all(request.signature_valid for request in receiver.requests)
    assert alerts_of(rule).count() == 1
