"""Notification messages, senders, queueing and the send task's states.

The HTTP senders talk to a real server on 127.0.0.1 (tests/receiver.py);
e-mail goes through Django's locmem backend, or SMTP to a closed port.
"""

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from celery.exceptions import Retry
from django.core import mail
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from alerts import notifications, tasks
from alerts.models import (
    Alert,
    AlertRule,
    NotificationChannel,
    NotificationDelivery,
    Severity,
)
from alerts.notifications import (
    NotificationError,
    build_payload,
    build_slack_text,
    build_subject,
    build_text,
    encode_json,
    enqueue_delivery,
    queue_notifications,
    redact,
    send_delivery,
    send_test_notification,
    sign,
)
from alerts.tasks import redeliver_pending, retry_delay, send_notification
from tests.processes import free_port
from tests.receiver import Receiver

Event = NotificationDelivery.Event
Status = NotificationDelivery.Status

SECRET = "unit-test-secret-0123456789"
FIRST_SEEN = datetime(2026, 4, 5, 6, 7, 8, tzinfo=UTC)
LAST_SEEN = datetime(2026, 4, 5, 6, 12, 8, tzinfo=UTC)
SAMPLES = [uuid.UUID(int=n) for n in range(1, 13)]


@pytest.fixture
def rule(db):
    return AlertRule.objects.create(
        name="Checkout errors",
        kind=AlertRule.Kind.THRESHOLD,
        service_name="checkout",
        per_service=True,
        threshold=10,
        window=timedelta(minutes=5),
        severity=Severity.CRITICAL,
    )


@pytest.fixture
def alert(rule):
    return Alert.objects.create(
        rule=rule,
        group="checkout",
        severity=Severity.CRITICAL,
        value=42,
        last_value=40,
        sample_log_ids=SAMPLES,
        first_seen=FIRST_SEEN,
        last_seen=LAST_SEEN,
    )


def make_channel(kind: str, url: str = "", name: str = "", **fields):
    return NotificationChannel.objects.create(
        name=name or f"{kind}-{uuid.uuid4().hex[:8]}", kind=kind, url=url, **fields
    )


def make_delivery(channel, alert=None, event=Event.FIRED, **fields):
    return NotificationDelivery.objects.create(
        channel=channel, alert=alert, event=event, **fields
    )


@pytest.fixture
def fast_timeout(settings):
    settings.NOTIFICATION_TIMEOUT_SECONDS = 0.5


# --- Signatures and message content ---


def test_signature_verifies_exact_body():
    body = encode_json({"event": "fired", "alert": {"group": "café"}})
    header = sign(body, SECRET)
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    assert header.startswith("sha256=")
    assert hmac.compare_digest(header, f"sha256={expected}")


def test_signature_changes_with_body():
    body = encode_json({"event": "fired"})
    tampered = body.replace(b"fired", b"fire ")

    assert not hmac.compare_digest(sign(body, SECRET), sign(tampered, SECRET))
    assert not hmac.compare_digest(sign(body, SECRET), sign(body, SECRET + "x"))


def test_json_is_compact_utf8():
    body = encode_json({"group": "café", "n": [1, 2]})

    assert body == '{"group":"café","n":[1,2]}'.encode()


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (Event.FIRED, "[CRITICAL] FIRED: Checkout errors (checkout)"),
        (Event.RESOLVED, "[CRITICAL] RESOLVED: Checkout errors (checkout)"),
        (Event.REMINDER, "[CRITICAL] STILL FIRING: Checkout errors (checkout)"),
    ],
)
def test_subject_per_event(alert, event, expected):
    channel = make_channel("email", recipients="ops@example.com")
    delivery = make_delivery(channel, alert, event)

    assert build_subject(delivery) == expected


def test_subject_without_group(alert):
    alert.group = ""
    channel = make_channel("email", recipients="ops@example.com")

    assert build_subject(make_delivery(channel, alert)) == (
        "[CRITICAL] FIRED: Checkout errors"
    )


def test_subject_joins_lines(alert):
    alert.rule.name = "Checkout\nerrors"
    channel = make_channel("email", recipients="ops@example.com")

    assert "\n" not in build_subject(make_delivery(channel, alert))


def test_text_lists_alert_facts(alert, settings):
    settings.PUBLIC_BASE_URL = "https://logs.example.com/"
    channel = make_channel("email", recipients="ops@example.com")
    text = build_text(make_delivery(channel, alert))

    assert text.startswith("FIRED: Checkout errors (checkout)\n")
    assert "Rule:" in text
    assert "Service:          checkout" in text
    assert "Severity:         Critical" in text
    assert "Value when fired: 42" in text
    assert "Latest value:     40" in text
    assert "at least 10 matching entries" in text
    assert "Window:           5 min" in text
    assert "First seen:       2026-04-05T06:07:08Z" in text
    assert "Last seen:        2026-04-05T06:12:08Z" in text
    assert "Resolved at" not in text
    assert str(SAMPLES[0]) in text
    assert str(SAMPLES[9]) in text
    assert str(SAMPLES[10]) not in text
    assert "and 2 more" in text
    assert (
        f"Open the alert: https://logs.example.com/admin/alerts/alert/{alert.pk}/change/"
        in text
    )


def test_text_of_resolved_alert(alert):
    alert.state = Alert.State.RESOLVED
    alert.resolved_at = LAST_SEEN + timedelta(minutes=1)
    channel = make_channel("email", recipients="ops@example.com")
    text = build_text(make_delivery(channel, alert, Event.RESOLVED))

    assert text.startswith("RESOLVED: Checkout errors")
    assert "State:            Resolved" in text
    assert "Resolved at:      2026-04-05T06:13:08Z" in text


def test_ratio_value_as_percent(alert):
    rule = alert.rule
    rule.kind = AlertRule.Kind.RATIO
    rule.threshold = 0.05
    alert.value = 0.0731
    alert.last_value = 0.06
    channel = make_channel("email", recipients="ops@example.com")
    text = build_text(make_delivery(channel, alert))

    assert "Value when fired: 7.31%" in text
    assert "more than 5.00% of entries match" in text


def test_test_event_text(db):
    channel = make_channel("email", name="On-call mail", recipients="ops@example.com")
    delivery = make_delivery(channel, None, Event.TEST)

    assert build_subject(delivery) == "[TEST] Test notification from logplatform"
    assert "test notification from logplatform" in build_text(delivery)
    assert '"On-call mail"' in build_text(delivery)


def test_payload_of_fired_alert(alert):
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    delivery = make_delivery(channel, alert)
    sent_at = datetime(2026, 4, 5, 6, 15, tzinfo=UTC)
    payload = build_payload(delivery, sent_at)

    assert payload["event"] == "fired"
    assert payload["delivery_id"] == delivery.pk
    assert payload["sent_at"] == "2026-04-05T06:15:00Z"
    body = payload["alert"]
    assert body["id"] == alert.pk
    assert body["rule_id"] == alert.rule.pk
    assert body["rule_name"] == "Checkout errors"
    assert body["group"] == "checkout"
    assert body["state"] == "firing"
    assert body["severity"] == "critical"
    assert body["value"] == 42
    assert body["first_seen"] == "2026-04-05T06:07:08Z"
    assert body["last_seen"] == "2026-04-05T06:12:08Z"
    assert body["resolved_at"] is None
    assert body["sample_log_ids"] == [str(log_id) for log_id in SAMPLES]
    assert body["url"].endswith(f"/admin/alerts/alert/{alert.pk}/change/")


@pytest.fixture
def pattern_alert(db):
    from tests.rows import store_pattern

    pattern = store_pattern("checkout", "card <*> declined", FIRST_SEEN)
    rule = AlertRule.objects.create(
        name="New templates", kind=AlertRule.Kind.NEW_PATTERN
    )
    return Alert.objects.create(
        rule=rule,
        group=f"pattern {pattern.pk}",
        pattern=pattern,
        severity=Severity.WARNING,
        value=1,
        last_value=1,
        first_seen=FIRST_SEEN,
        last_seen=FIRST_SEEN,
    )


def test_new_pattern_subject_names_template(pattern_alert):
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    subject = build_subject(make_delivery(channel, pattern_alert))
    assert subject == "[WARNING] FIRED: New templates (checkout: card <*> declined)"


def test_new_pattern_text_links_pattern(pattern_alert):
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    text = build_text(make_delivery(channel, pattern_alert))
    pattern_id = pattern_alert.pattern_id
    lines = text.splitlines()
    assert "Service:          checkout" in lines
    assert "Template:         card <*> declined" in lines
    assert f"/admin/logs/pattern/{pattern_id}/change/" in text
    assert "a message template the service never logged before" in text


def test_new_pattern_payload(pattern_alert):
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    delivery = make_delivery(channel, pattern_alert)
    body = build_payload(delivery, FIRST_SEEN)["alert"]
    assert body["pattern"]["id"] == pattern_alert.pattern_id
    assert body["pattern"]["service_name"] == "checkout"
    assert body["pattern"]["template"] == "card <*> declined"
    assert body["pattern"]["url"].endswith(
        f"/admin/logs/pattern/{pattern_alert.pattern_id}/change/"
    )


def test_payload_without_pattern(alert):
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    body = build_payload(make_delivery(channel, alert), FIRST_SEEN)["alert"]
    assert body["pattern"] is None


def test_payload_of_test_event(db):
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    delivery = make_delivery(channel, None, Event.TEST)
    payload = build_payload(delivery, timezone.now())

    assert payload["event"] == "test"
    assert payload["alert"] is None
    assert "test notification" in payload["text"]


def test_slack_text_escapes_markup(alert):
    alert.rule.name = "5xx <critical> & more"
    channel = make_channel("slack", url="http://127.0.0.1:9/hook")
    text = build_slack_text(make_delivery(channel, alert))

    assert "5xx &lt;critical&gt; &amp; more" in text
    assert "<critical>" not in text
    assert f"/admin/alerts/alert/{alert.pk}/change/|Open the alert>" in text


def test_redact_hides_url_path_and_secret(db):
    channel = make_channel(
        "slack", url="https://hooks.example.com/services/T1/B2/token?x=1"
    )
    channel.secret = SECRET
    text = (
        "Max retries exceeded with url: /services/T1/B2/token?x=1 "
        f"https://hooks.example.com/services/T1/B2/token?x=1 {SECRET}"
    )
    redacted = redact(text, channel)

    assert "token" not in redacted
    assert SECRET not in redacted
    assert "Max retries exceeded" in redacted


# --- Senders ---


def test_email_through_locmem(alert, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "alerts@example.com"
    channel = make_channel("email", recipients="a@example.com,\nb@example.com")
    delivery = make_delivery(channel, alert)

    send_delivery(delivery)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "[CRITICAL] FIRED: Checkout errors (checkout)"
    assert message.to == ["a@example.com", "b@example.com"]
    assert message.from_email == "alerts@example.com"
    assert "Value when fired: 42" in message.body
    assert message.extra_headers["X-Logplatform-Delivery"] == str(delivery.pk)


def test_email_connection_refused(alert, settings, fast_timeout):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    channel = make_channel("email", recipients="ops@example.com")

    with pytest.raises(NotificationError, match="ConnectionRefusedError"):
        send_delivery(make_delivery(channel, alert))


def test_email_without_recipients(alert):
    channel = make_channel("email", recipients=" , ")

    with pytest.raises(NotificationError, match="no recipients"):
        send_delivery(make_delivery(channel, alert))


def test_webhook_sends_signed_json(alert):
    with Receiver(secret=SECRET) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        delivery = make_delivery(channel, alert)
        before = int(timezone.now().timestamp())
        send_delivery(delivery)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.status == 200
    assert request.signature_valid is True
    assert request.path == "/hooks/logplatform"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Logplatform-Event"] == "fired"
    assert request.headers["X-Logplatform-Delivery"] == str(delivery.pk)
    assert int(request.headers["X-Logplatform-Timestamp"]) >= before
    payload = json.loads(request.body)
    assert payload["delivery_id"] == delivery.pk
    assert payload["alert"]["id"] == alert.pk
    assert request.body == encode_json(payload)


def test_webhook_error_status(alert):
    long_body = ("x" * 150 + " " + "y" * 150).encode()
    with Receiver(answers=[(503, long_body)]) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        with pytest.raises(NotificationError) as caught:
            send_delivery(make_delivery(channel, alert))

    text = str(caught.value)
    assert text.startswith("HTTP 503: xxx")
    assert text == "HTTP 503: " + ("x" * 150 + " " + "y" * 150)[:200]
    assert SECRET not in text


def test_webhook_error_without_body(alert):
    with Receiver(answers=[(500, b"")]) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        with pytest.raises(NotificationError) as caught:
            send_delivery(make_delivery(channel, alert))

    assert str(caught.value) == "HTTP 500"


def test_webhook_redirect_not_followed(alert):
    with Receiver(
        answers=[(302, b"")], extra_headers={"Location": "/elsewhere"}
    ) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        with pytest.raises(NotificationError, match="HTTP 302"):
            send_delivery(make_delivery(channel, alert))

    assert len(receiver.requests) == 1


def test_webhook_timeout(alert, fast_timeout):
    with Receiver(hang=True) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        with pytest.raises(NotificationError, match="timed out after 0.5 s"):
            send_delivery(make_delivery(channel, alert))

    assert len(receiver.requests) == 1


def test_webhook_refused_hides_url(alert, fast_timeout):
    url = f"http://127.0.0.1:{free_port()}/hooks/{SECRET}"
    channel = make_channel("webhook", url=url, secret=SECRET)

    with pytest.raises(NotificationError) as caught:
        send_delivery(make_delivery(channel, alert))

    text = str(caught.value)
    assert text.startswith("request failed: ConnectionError")
    assert SECRET not in text


def test_webhook_without_secret(alert):
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    NotificationChannel.objects.filter(pk=channel.pk).update(secret="")
    channel.refresh_from_db()

    with pytest.raises(NotificationError, match="no secret"):
        send_delivery(make_delivery(channel, alert))


def test_slack_posts_text(alert):
    with Receiver() as receiver:
        channel = make_channel("slack", url=receiver.url)
        send_delivery(make_delivery(channel, alert))

    payload = json.loads(receiver.requests[0].body)
    assert list(payload) == ["text"]
    assert payload["text"].startswith("*[CRITICAL] FIRED: Checkout errors (checkout)*")
    assert "X-Logplatform-Signature" not in receiver.requests[0].headers


def test_slack_error_status(alert):
    with Receiver(answers=[(404, b"no_service")]) as receiver:
        channel = make_channel("slack", url=receiver.url)
        with pytest.raises(NotificationError) as caught:
            send_delivery(make_delivery(channel, alert))

    assert str(caught.value) == "HTTP 404: no_service"


def test_unknown_kind_fails(alert):
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    channel.kind = "pager"

    with pytest.raises(NotificationError, match="unknown channel kind 'pager'"):
        send_delivery(make_delivery(channel, alert))


# --- Queueing ---


def test_queue_one_per_enabled_channel(alert, django_capture_on_commit_callbacks):
    first = make_channel("webhook", url="http://127.0.0.1:9/a")
    second = make_channel("email", recipients="ops@example.com")
    disabled = make_channel("slack", url="http://127.0.0.1:9/b", enabled=False)
    make_channel("webhook", url="http://127.0.0.1:9/other-rule")
    alert.rule.channels.set([first, second, disabled])

    with django_capture_on_commit_callbacks() as callbacks:
        deliveries = queue_notifications(alert, Event.FIRED)

    assert {delivery.channel_id for delivery in deliveries} == {first.pk, second.pk}
    stored = NotificationDelivery.objects.filter(alert=alert)
    assert stored.count() == 2
    assert set(stored.values_list("status", flat=True)) == {Status.PENDING}
    assert set(stored.values_list("event", flat=True)) == {Event.FIRED}
    assert len(callbacks) == 2
    assert {callback.args for callback in callbacks} == {
        (delivery.pk,) for delivery in deliveries
    }
    assert all(callback.func is enqueue_delivery for callback in callbacks)


def test_queue_sets_last_notified(alert, django_capture_on_commit_callbacks):
    before = timezone.now()
    with django_capture_on_commit_callbacks():
        queue_notifications(alert, Event.REMINDER)

    assert alert.last_notified_at >= before
    alert.refresh_from_db()
    assert alert.last_notified_at >= before


def test_queue_enqueues_nothing_before_commit(alert):
    channel = make_channel("webhook", url="http://127.0.0.1:9/a")
    alert.rule.channels.set([channel])

    # The test transaction never commits, so no task may be published.
    queue_notifications(alert, Event.FIRED)

    delivery = NotificationDelivery.objects.get(alert=alert)
    assert delivery.attempts == 0
    assert delivery.status == Status.PENDING


def test_send_test_notification(db, django_capture_on_commit_callbacks):
    channel = make_channel("webhook", url="http://127.0.0.1:9/a", enabled=False)

    with django_capture_on_commit_callbacks() as callbacks:
        delivery = send_test_notification(channel)

    assert delivery.event == Event.TEST
    assert delivery.alert is None
    assert delivery.status == Status.PENDING
    assert [callback.args for callback in callbacks] == [(delivery.pk,)]


def test_enqueue_publishes_task(monkeypatch):
    published = []
    monkeypatch.setattr(send_notification, "delay", published.append)

    enqueue_delivery(17)

    assert published == [17]


def test_enqueue_failure_is_logged(monkeypatch, caplog):
    def publish_fails(delivery_id):
        raise BrokerError("connection refused")

    monkeypatch.setattr(send_notification, "delay", publish_fails)
    with caplog.at_level(logging.ERROR, logger="alerts.notifications"):
        enqueue_delivery(17)

    assert "delivery 17" in caplog.text


# --- The send task ---


@pytest.fixture
def retry_settings(settings):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 5
    settings.NOTIFICATION_RETRY_MAX_SECONDS = 600
    settings.NOTIFICATION_MAX_ATTEMPTS = 8
    return settings


@pytest.mark.parametrize(
    ("attempts", "delay"), [(1, 5), (2, 10), (3, 20), (7, 320), (8, 600), (500, 600)]
)
def test_retry_delay_doubles_to_cap(retry_settings, attempts, delay):
    assert retry_delay(attempts) == delay


def test_send_success_records_delivery(alert):
    with Receiver(secret=SECRET) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        delivery = make_delivery(channel, alert)
        before = timezone.now()
        send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED
    assert delivery.attempts == 1
    assert delivery.last_error == ""
    assert delivery.last_attempt_at >= before
    assert delivery.delivered_at >= delivery.last_attempt_at
    assert len(receiver.accepted) == 1


def test_send_failure_schedules_retry(alert, retry_settings):
    with Receiver(answers=[(500, b"down")]) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        delivery = make_delivery(channel, alert)
        before = timezone.now()
        with pytest.raises(Retry):
            send_notification(delivery.pk)
        after = timezone.now()

    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.attempts == 1
    assert delivery.last_error == "HTTP 500: down"
    assert delivery.delivered_at is None
    assert before <= delivery.last_attempt_at <= after
    assert delivery.next_attempt_at >= before + timedelta(seconds=5)
    assert delivery.next_attempt_at <= after + timedelta(seconds=5)


def test_early_copy_is_skipped(alert, retry_settings):
    with Receiver(answers=[(500, b"down")]) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        delivery = make_delivery(channel, alert)
        with pytest.raises(Retry):
            send_notification(delivery.pk)
        # A second task for the same delivery, before its retry is due.
        send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert receiver.count() == 1
    assert delivery.attempts == 1


def test_second_failure_doubles_wait(alert, retry_settings):
    with Receiver(answers=[(500, b"one"), (502, b"two")]) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        delivery = make_delivery(channel, alert)
        with pytest.raises(Retry):
            send_notification(delivery.pk)
        NotificationDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now()
        )
        with pytest.raises(Retry):
            send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert receiver.count() == 2
    assert delivery.attempts == 2
    assert delivery.last_error == "HTTP 502: two"
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert wait >= timedelta(seconds=10)


def test_success_after_failure_keeps_error(alert, retry_settings):
    with Receiver(answers=[(500, b"down")]) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        delivery = make_delivery(channel, alert)
        with pytest.raises(Retry):
            send_notification(delivery.pk)
        NotificationDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now()
        )
        send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED
    assert delivery.attempts == 2
    assert delivery.last_error == "HTTP 500: down"
    assert len(receiver.accepted) == 1


def test_last_attempt_marks_failed(alert, retry_settings):
    retry_settings.NOTIFICATION_MAX_ATTEMPTS = 2
    with Receiver(answers=[(500, b"one"), (500, b"two")]) as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        delivery = make_delivery(channel, alert, attempts=1)
        send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert receiver.count() == 1
    assert delivery.status == Status.FAILED
    assert delivery.attempts == 2
    assert delivery.last_error == "HTTP 500: one"


@pytest.mark.parametrize("status", [Status.DELIVERED, Status.FAILED])
def test_finished_delivery_not_sent(alert, status):
    with Receiver() as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        delivery = make_delivery(channel, alert, status=status, attempts=1)
        send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert receiver.count() == 0
    assert delivery.status == status
    assert delivery.attempts == 1


def test_missing_delivery_ignored(db):
    assert send_notification(987654321) is None


def test_disabled_channel_fails_alert_event(alert):
    with Receiver() as receiver:
        channel = make_channel(
            "webhook", url=receiver.url, secret=SECRET, enabled=False
        )
        delivery = make_delivery(channel, alert)
        send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert receiver.count() == 0
    assert delivery.status == Status.FAILED
    assert delivery.attempts == 0
    assert "disabled" in delivery.last_error


def test_disabled_channel_gets_test_event(db):
    with Receiver() as receiver:
        channel = make_channel(
            "webhook", url=receiver.url, secret=SECRET, enabled=False
        )
        delivery = make_delivery(channel, None, Event.TEST)
        send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert len(receiver.accepted) == 1
    assert delivery.status == Status.DELIVERED
    assert json.loads(receiver.requests[0].body)["event"] == "test"


def test_unexpected_error_counts_as_attempt(alert, retry_settings, monkeypatch):
    def broken(delivery):
        raise RuntimeError(f"bug near {SECRET}")

    monkeypatch.setitem(notifications.SENDERS, NotificationChannel.Kind.WEBHOOK, broken)
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook", secret=SECRET)
    delivery = make_delivery(channel, alert)

    with pytest.raises(Retry):
        send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.last_error.startswith("RuntimeError: bug near")
    assert SECRET not in delivery.last_error


def test_locked_delivery_skipped(db_access):
    """A delivery locked by another worker's transaction is left to that worker.

    The rows are committed (db_access) so that the other connection can read
    them, and deleted at the end.
    """
    rule = AlertRule.objects.create(
        name=f"Locked delivery {secrets.token_hex(4)}", kind=AlertRule.Kind.THRESHOLD
    )
    try:
        alert = Alert.objects.create(
            rule=rule,
            severity=Severity.CRITICAL,
            value=1,
            last_value=1,
            first_seen=FIRST_SEEN,
            last_seen=LAST_SEEN,
        )
        with Receiver() as receiver:
            channel = make_channel("webhook", url=receiver.url, secret=SECRET)
            try:
                delivery = make_delivery(channel, alert)
                db = connection.settings_dict
                with psycopg.connect(
                    host=db["HOST"],
                    port=db["PORT"],
                    dbname=db["NAME"],
                    user=db["USER"],
                    password=db["PASSWORD"],
                ) as other:
                    table = NotificationDelivery._meta.db_table
                    other.execute(
                        f"SELECT id FROM {table} WHERE id = %s FOR UPDATE",
                        [delivery.pk],
                    )
                    send_notification(delivery.pk)
                    other.rollback()
                delivery.refresh_from_db()
            finally:
                channel.delete()
        assert receiver.count() == 0
        assert delivery.attempts == 0
        assert delivery.status == Status.PENDING
    finally:
        rule.delete()


# --- Redelivery ---


def test_redeliver_overdue_pending(alert, settings, django_capture_on_commit_callbacks):
    settings.NOTIFICATION_REDELIVER_GRACE_SECONDS = 120
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    now = timezone.now()
    overdue = make_delivery(channel, alert, next_attempt_at=now - timedelta(minutes=5))
    recent = make_delivery(channel, alert, next_attempt_at=now - timedelta(seconds=30))
    future = make_delivery(channel, alert, next_attempt_at=now + timedelta(minutes=5))
    delivered = make_delivery(
        channel,
        alert,
        status=Status.DELIVERED,
        next_attempt_at=now - timedelta(hours=1),
    )
    failed = make_delivery(
        channel, alert, status=Status.FAILED, next_attempt_at=now - timedelta(hours=1)
    )

    with django_capture_on_commit_callbacks() as callbacks:
        count = redeliver_pending()

    assert count == 1
    assert [callback.args for callback in callbacks] == [(overdue.pk,)]
    overdue.refresh_from_db()
    assert overdue.next_attempt_at >= now
    for untouched in (recent, future, delivered, failed):
        before = untouched.next_attempt_at
        untouched.refresh_from_db()
        assert untouched.next_attempt_at == before


def test_redeliver_does_not_double_queue(
    alert, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_REDELIVER_GRACE_SECONDS = 120
    channel = make_channel("webhook", url="http://127.0.0.1:9/hook")
    make_delivery(channel, alert, next_attempt_at=timezone.now() - timedelta(hours=1))

    with django_capture_on_commit_callbacks() as first:
        redeliver_pending()
    with django_capture_on_commit_callbacks() as second:
        redeliver_pending()

    assert len(first) == 1
    assert second == []


def test_redelivered_task_sends(alert, settings, django_capture_on_commit_callbacks):
    """The task that a sweep enqueues is due, so it sends."""
    settings.NOTIFICATION_REDELIVER_GRACE_SECONDS = 120
    with Receiver() as receiver:
        channel = make_channel("webhook", url=receiver.url, secret=SECRET)
        delivery = make_delivery(
            channel, alert, next_attempt_at=timezone.now() - timedelta(hours=1)
        )
        with django_capture_on_commit_callbacks():
            redeliver_pending()
        send_notification(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED
    assert len(receiver.accepted) == 1


def test_tasks_registered_by_name():
    assert send_notification.name == "alerts.send_notification"
    assert send_notification.acks_late is True
    assert redeliver_pending.name == "alerts.redeliver_pending"
    assert tasks.send_notification is send_notification
