"""Notification messages, the senders of each channel kind, and queueing.

`queue_notifications` and `send_test_notification` write pending
`NotificationDelivery` rows and enqueue the `alerts.send_notification` task
once the caller's transaction commits. That task calls `send_delivery`, which
raises `NotificationError` with a short text, safe to store and log, when a
send fails.
"""

import hashlib
import hmac
import json
import logging
import smtplib
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, AlertRule, NotificationChannel, NotificationDelivery
from logs.models import Pattern

logger = logging.getLogger(__name__)

Event = NotificationDelivery.Event

USER_AGENT = "logplatform-notifier/1"
# Headlines of the subject and the first line of each message, by event.
EVENT_HEADLINES = {
    Event.FIRED: "FIRED",
    Event.RESOLVED: "RESOLVED",
    Event.REMINDER: "STILL FIRING",
    Event.TEST: "TEST",
}
# Maximum sample log ids listed in an e-mail or Slack message. The webhook
# payload carries all of them.
MAX_LISTED_SAMPLES = 10
# Maximum characters of a failed response's body kept in the error text.
ERROR_BODY_CHARS = 200
# Error texts are cut to this length before they are stored and logged.
MAX_ERROR_CHARS = 500


class NotificationError(Exception):
    """A send that failed. The text contains no secret and no channel URL."""


# --- Message content ---


def alert_admin_url(alert: Alert) -> str:
    """Return the absolute address of the alert's page in the admin."""
    # Built from the admin's URL scheme rather than reversed by name, so a
    # message can be built whether or not the alert admin is registered.
    path = f"{reverse('admin:index')}alerts/alert/{alert.pk}/change/"
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def pattern_admin_url(pattern_id: int) -> str:
    """Return the absolute address of a pattern's page in the admin."""
    path = f"{reverse('admin:index')}logs/pattern/{pattern_id}/change/"
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


def alert_pattern(alert: Alert) -> Pattern | None:
    """Return the pattern a new-pattern alert is about, or None."""
    if alert.pattern_id is None:
        return None
    # The foreign key has no constraint, so the row may be gone.
    return Pattern.objects.filter(pk=alert.pattern_id).first()


# Templates are cut to this many characters in subjects.
SUBJECT_TEMPLATE_CHARS = 80


def group_label(alert: Alert) -> str:
    """Return what the alert is about: its service, or a service and template."""
    pattern = alert_pattern(alert)
    if pattern is None:
        return alert.group
    return f"{pattern.service_name}: {pattern.template[:SUBJECT_TEMPLATE_CHARS]}"


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_duration(duration: timedelta) -> str:
    """Format a duration as "1 h 30 min", "5 min" or "45 s"."""
    seconds = int(duration.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts) or "0 s"


def format_value(rule: AlertRule, value: float) -> str:
    """Format a measured value: a percentage for ratio rules, else a count."""
    if rule.kind == AlertRule.Kind.RATIO:
        return f"{value:.2%}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:g}"


def describe_condition(rule: AlertRule) -> str:
    """Describe in words which values fire the rule."""
    threshold = format_value(rule, rule.threshold)
    if rule.kind == AlertRule.Kind.THRESHOLD:
        return f"at least {threshold} matching entries"
    if rule.kind == AlertRule.Kind.ABSENCE:
        return f"fewer than {threshold} matching entries"
    if rule.kind == AlertRule.Kind.RATIO:
        return f"more than {threshold} of entries match"
    if rule.kind == AlertRule.Kind.NEW_PATTERN:
        return "a message template the service never logged before"
    return "any matching entry"


def _one_line(text: str) -> str:
    # Mail headers and Slack's bold markup both break on line breaks.
    return " ".join(text.split())


def build_subject(delivery: NotificationDelivery) -> str:
    """Build a subject such as "[CRITICAL] FIRED: rule name (service)"."""
    headline = EVENT_HEADLINES[delivery.event]
    alert = delivery.alert
    if alert is None:
        return f"[{headline}] Test notification from logplatform"
    label = group_label(alert)
    group = f" ({_one_line(label)})" if label else ""
    severity = alert.severity.upper()
    return f"[{severity}] {headline}: {_one_line(alert.rule.name)}{group}"


def alert_details(alert: Alert) -> list[tuple[str, str]]:
    """List the labelled facts about an alert that every message shows."""
    rule = alert.rule
    details = [("Rule", rule.name)]
    pattern = alert_pattern(alert)
    if pattern is not None:
        details += [
            ("Service", pattern.service_name),
            ("Template", pattern.template),
            ("Pattern", pattern_admin_url(pattern.pk)),
        ]
    elif alert.group:
        details.append(("Service", alert.group))
    details += [
        ("Severity", alert.get_severity_display()),
        ("State", alert.get_state_display()),
        ("Value when fired", format_value(rule, alert.value)),
        ("Latest value", format_value(rule, alert.last_value)),
        ("Fires on", describe_condition(rule)),
        ("Window", format_duration(rule.window)),
        ("First seen", format_time(alert.first_seen)),
        ("Last seen", format_time(alert.last_seen)),
    ]
    if alert.resolved_at is not None:
        details.append(("Resolved at", format_time(alert.resolved_at)))
    return details


def _listed_samples(alert: Alert) -> tuple[list[str], int]:
    """Return the sample ids to list and how many more there are."""
    ids = [str(log_id) for log_id in alert.sample_log_ids]
    return ids[:MAX_LISTED_SAMPLES], max(len(ids) - MAX_LISTED_SAMPLES, 0)


def build_test_text(channel: NotificationChannel) -> str:
    return (
        "This is a test notification from logplatform for the channel "
        f'"{channel.name}" ({channel.get_kind_display()}). It needs no action.'
    )


def build_text(delivery: NotificationDelivery) -> str:
    """Build the plain-text body of an e-mail."""
    alert = delivery.alert
    if alert is None:
        return build_test_text(delivery.channel) + "\n"

    label = group_label(alert)
    group = f" ({_one_line(label)})" if label else ""
    lines = [f"{EVENT_HEADLINES[delivery.event]}: {alert.rule.name}{group}", ""]
    details = alert_details(alert)
    width = max(len(label) for label, _ in details) + 2
    lines += [f"{label + ':':<{width}}{value}" for label, value in details]

    samples, more = _listed_samples(alert)
    if samples:
        lines += ["", "Sample log entries:"]
        lines += [f"  {log_id}" for log_id in samples]
        if more:
            lines.append(f"  and {more} more")

    lines += ["", f"Open the alert: {alert_admin_url(alert)}", ""]
    return "\n".join(lines)


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup, so text from rules must escape them.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_slack_text(delivery: NotificationDelivery) -> str:
    """Build a Slack message in its mrkdwn markup."""
    subject = f"*{_slack_escape(build_subject(delivery))}*"
    alert = delivery.alert
    if alert is None:
        return f"{subject}\n{_slack_escape(build_test_text(delivery.channel))}"

    lines = [subject]
    lines += [
        f"*{label}:* {_slack_escape(value)}" for label, value in alert_details(alert)
    ]
    samples, more = _listed_samples(alert)
    if samples:
        listed = ", ".join(f"`{log_id}`" for log_id in samples)
        lines.append(
            f"*Sample log entries:* {listed}" + (f" and {more} more" if more else "")
        )
    lines.append(f"<{alert_admin_url(alert)}|Open the alert>")
    return "\n".join(lines)


def build_payload(delivery: NotificationDelivery, sent_at: datetime) -> dict:
    """Build the JSON object a webhook receives."""
    alert = delivery.alert
    payload = {
        "event": delivery.event,
        "delivery_id": delivery.pk,
        "sent_at": format_time(sent_at),
        "alert": None,
        "text": build_subject(delivery),
    }
    if alert is not None:
        payload["alert"] = {
            "id": alert.pk,
            "rule_id": alert.rule_id,
            "rule_name": alert.rule.name,
            "group": alert.group,
            "state": alert.state,
            "severity": alert.severity,
            "value": alert.value,
            "last_value": alert.last_value,
            "first_seen": format_time(alert.first_seen),
            "last_seen": format_time(alert.last_seen),
            "resolved_at": format_time(alert.resolved_at) or None,
            "sample_log_ids": [str(log_id) for log_id in alert.sample_log_ids],
            "pattern": _pattern_payload(alert),
            "url": alert_admin_url(alert),
        }
    else:
        payload["text"] = build_test_text(delivery.channel)
    return payload


def _pattern_payload(alert: Alert) -> dict | None:
    pattern = alert_pattern(alert)
    if pattern is None:
        return None
    return {
        "id": pattern.pk,
        "service_name": pattern.service_name,
        "template": pattern.template,
        "url": pattern_admin_url(pattern.pk),
    }


def encode_json(payload: dict) -> bytes:
    """Encode compact UTF-8 JSON, the exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def sign(body: bytes, secret: str) -> str:
    """Return the X-Logplatform-Signature value: HMAC-SHA256 of the body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


# --- Senders ---


def redact(text: str, channel: NotificationChannel) -> str:
    """Remove the channel's URL, its path and its secret from an error text.

    A Slack incoming-webhook URL is itself a credential, and requests puts
    the URL path in its connection errors.
    """
    hidden = [channel.url, channel.secret]
    parts = urlsplit(channel.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(path) > 1:
        hidden.append(path)
    for value in sorted(filter(None, hidden), key=len, reverse=True):
        text = text.replace(value, "[redacted]")
    return text


def error_text(error: BaseException, channel: NotificationChannel) -> str:
    """Describe an unexpected exception for last_error, redacted and cut short."""
    text = f"{type(error).__name__}: {error}"
    return redact(text, channel)[:MAX_ERROR_CHARS]


def _body_excerpt(response: requests.Response) -> str:
    """Read at most a few hundred bytes of a streamed response body."""
    data = b""
    try:
        for chunk in response.iter_content(chunk_size=1024):
            data += chunk
            if len(data) >= ERROR_BODY_CHARS * 4:
                break
    except requests.RequestException:
        pass  # The status code alone still describes the failure.
    text = data.decode(response.encoding or "utf-8", errors="replace")
    return _one_line(text)[:ERROR_BODY_CHARS]


def post_json(channel: NotificationChannel, body: bytes, headers: dict) -> None:
    """POST a body to the channel's URL and raise NotificationError unless 2xx.

    Redirects are not followed, because requests resends a POST redirected
    by 301, 302 or 303 as a GET without its body.
    """
    timeout = settings.NOTIFICATION_TIMEOUT_SECONDS
    # NOTE: requests applies the timeout to the connect and to each socket
    # read, not to the whole exchange, so a server that trickles its response
    # can take longer. Only a few hundred bytes of the body are ever read.
    try:
        with requests.post(
            channel.url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            if 200 <= response.status_code < 300:
                return
            status = response.status_code
            excerpt = _body_excerpt(response)
    except requests.Timeout:
        raise NotificationError(f"timed out after {timeout:g} s") from None
    except requests.RequestException as error:
        raise NotificationError(
            f"request failed: {error_text(error, channel)}"
        ) from None

    message = (
        f"HTTP {status}: {redact(excerpt, channel)}" if excerpt else f"HTTP {status}"
    )
    raise NotificationError(message[:MAX_ERROR_CHARS])


def send_webhook(delivery: NotificationDelivery) -> None:
    channel = delivery.channel
    if not channel.secret:
        raise NotificationError(
            "the webhook channel has no secret. Save the channel to create one"
        )

    sent_at = timezone.now()
    body = encode_json(build_payload(delivery, sent_at))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Logplatform-Event": delivery.event,
        "X-Logplatform-Delivery": str(delivery.pk),
        "X-Logplatform-Timestamp": str(int(sent_at.timestamp())),
        "X-Logplatform-Signature": sign(body, channel.secret),
    }
    post_json(channel, body, headers)


def send_slack(delivery: NotificationDelivery) -> None:
    body = encode_json({"text": build_slack_text(delivery)})
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    post_json(delivery.channel, body, headers)


def send_email(delivery: NotificationDelivery) -> None:
    recipients = delivery.channel.recipient_list
    if not recipients:
        raise NotificationError("the e-mail channel has no recipients")

    connection = get_connection(timeout=settings.NOTIFICATION_TIMEOUT_SECONDS)
    message = EmailMessage(
        subject=build_subject(delivery),
        body=build_text(delivery),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        headers={
            "X-Logplatform-Event": delivery.event,
            "X-Logplatform-Delivery": str(delivery.pk),
        },
        connection=connection,
    )
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as error:
        # SMTPException is an OSError too; OSError covers refused
        # connections and socket timeouts.
        raise NotificationError(
            f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
        ) from None


SENDERS = {
    NotificationChannel.Kind.EMAIL: send_email,
    NotificationChannel.Kind.WEBHOOK: send_webhook,
    NotificationChannel.Kind.SLACK: send_slack,
}


def send_delivery(delivery: NotificationDelivery) -> None:
    """Send one delivery through its channel's sender, once, without retrying."""
    sender = SENDERS.get(delivery.channel.kind)
    if sender is None:
        raise NotificationError(f"unknown channel kind {delivery.channel.kind!r}")
    sender(delivery)


# --- Queueing ---


def enqueue_delivery(delivery_id: int) -> None:
    """Publish the send task of one delivery, logging a failure instead of raising.

    It runs after the caller's commit, when raising would only hide that the
    commit succeeded. A delivery left without a task is sent by the next
    redeliver_pending run after its grace period.
    """
    from alerts.tasks import send_notification  # The tasks module imports this one.

    try:
        send_notification.delay(delivery_id)
    except Exception:
        logger.exception(
            "Failed to enqueue notification delivery %s, so redeliver_pending "
            "will enqueue it after its grace period",
            delivery_id,
        )


def queue_notifications(alert: Alert, event: str) -> list[NotificationDelivery]:
    """Create a pending delivery of `event` for each enabled channel of the rule.

    Run it inside the transaction that changes the alert: the deliveries
    commit with that change, and their send tasks are enqueued only after
    the commit. It also sets alert.last_notified_at, in the row and on the
    instance, even when the rule has no enabled channel.
    """
    now = timezone.now()
    channels = alert.rule.channels.filter(enabled=True).order_by("pk")
    with transaction.atomic():
        deliveries = NotificationDelivery.objects.bulk_create(
            NotificationDelivery(
                channel=channel,
                alert=alert,
                event=event,
                created_at=now,
                next_attempt_at=now,
            )
            for channel in channels
        )
        Alert.objects.filter(pk=alert.pk).update(last_notified_at=now)
        alert.last_notified_at = now
        for delivery in deliveries:
            transaction.on_commit(partial(enqueue_delivery, delivery.pk))

    logger.info(
        "Queued %s notifications of alert %s (rule %s) as deliveries %s",
        event,
        alert.pk,
        alert.rule_id,
        [delivery.pk for delivery in deliveries],
    )
    return deliveries


def send_test_notification(channel: NotificationChannel) -> NotificationDelivery:
    """Create a test delivery for the channel and enqueue it after the commit.

    A test is sent even to a disabled channel, so a channel can be tried
    before it is enabled.
    """
    with transaction.atomic():
        delivery = NotificationDelivery.objects.create(
            channel=channel, alert=None, event=Event.TEST
        )
        transaction.on_commit(partial(enqueue_delivery, delivery.pk))
    logger.info(
        "Queued a test notification to channel %s (%s) as delivery %s",
        channel.pk,
        channel.name,
        delivery.pk,
    )
    return delivery
