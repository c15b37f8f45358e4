"""Celery tasks of the alerts app.

Rules: `evaluate_rules` and `send_reminders` run on beat's stored schedule.

Notifications: `send_notification` sends one delivery and retries it with
exponential backoff, and `redeliver_pending` enqueues again the deliveries
whose task was lost. A delivery is sent at least once: a worker that dies after
the send but before its commit sends it again, and the receiver can drop
the repeat by its delivery id.
"""

import logging
from datetime import datetime, timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    transaction,
)
from django.utils import timezone

from alerts import evaluation
from alerts.models import NotificationDelivery
from alerts.notifications import (
    NotificationError,
    enqueue_delivery,
    error_text,
    send_delivery,
)

logger = logging.getLogger(__name__)

Status = NotificationDelivery.Status

# A send task that starts this little before its delivery's next_attempt_at
# still counts as due, in case the broker's timer fires a moment early.
# Any earlier, the task is a duplicate of one scheduled later and it stops.
DUE_TOLERANCE = timedelta(milliseconds=500)
# Maximum deliveries that one redeliver_pending run enqueues again.
REDELIVER_BATCH_SIZE = 500
# Maximum seconds before retrying a send task that could not reach the database.
MAX_DATABASE_RETRY_SECONDS = 60


def retry_delay(attempts: int) -> float:
    """Return the seconds to wait after `attempts` failed attempts."""
    exponent = min(attempts - 1, 32)
    delay = settings.NOTIFICATION_RETRY_BASE_SECONDS * 2**exponent
    return min(delay, settings.NOTIFICATION_RETRY_MAX_SECONDS)


def attempt_delivery(delivery_id: int) -> float | None:
    """Send a due, pending delivery once and record the attempt.

    The row stays locked from the check to the recorded result, so two
    workers never send it at the same time: the second one finds it locked
    and stops. Returns the seconds until the next attempt when this one
    failed and attempts remain, else None.
    """
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            NotificationDelivery.objects.select_for_update(
                skip_locked=True, of=("self",)
            )
            .select_related("channel", "alert__rule")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            _log_unavailable(delivery_id)
            return None
        if not _ready_to_send(delivery, now):
            return None

        error = _send(delivery)
        return _record_attempt(delivery, now, error)


def _log_unavailable(delivery_id: int) -> None:
    if NotificationDelivery.objects.filter(pk=delivery_id).exists():
        logger.info("Delivery %s skipped: locked by another worker", delivery_id)
    else:
        logger.info("Delivery %s skipped: not found", delivery_id)


def _ready_to_send(delivery: NotificationDelivery, now: datetime) -> bool:
    """Return whether to send now, and mark the delivery failed if it never can be."""
    if delivery.status != Status.PENDING:
        logger.info("Delivery %s skipped: already %s", delivery.pk, delivery.status)
        return False
    if delivery.next_attempt_at > now + DUE_TOLERANCE:
        logger.info(
            "Delivery %s skipped: not due until %s, so this task is an extra copy",
            delivery.pk,
            delivery.next_attempt_at.isoformat(),
        )
        return False

    reason = ""
    if (
        not delivery.channel.enabled
        and delivery.event != NotificationDelivery.Event.TEST
    ):
        reason = "the channel was disabled before the notification was sent"
    elif delivery.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        reason = f"no attempts left after {delivery.attempts}"
    if reason:
        delivery.status = Status.FAILED
        delivery.last_error = reason
        delivery.save(update_fields=["status", "last_error"])
        logger.warning(
            "Delivery %s to channel %s marked failed without sending: %s",
            delivery.pk,
            delivery.channel_id,
            reason,
        )
        return False
    return True


def _send(delivery: NotificationDelivery) -> str:
    """Send the delivery once and return the error text, empty on success."""
    try:
        send_delivery(delivery)
    except NotificationError as error:
        return str(error)
    except Exception as error:
        # A failure that no sender expects, a bug included, still counts as
        # a failed attempt, so the delivery ends failed instead of looping.
        logger.exception(
            "Sending delivery %s to channel %s raised an unexpected error",
            delivery.pk,
            delivery.channel_id,
        )
        return error_text(error, delivery.channel)
    return ""


def _record_attempt(
    delivery: NotificationDelivery, started: datetime, error: str
) -> float | None:
    """Store the attempt's outcome and return the retry delay if one is due.

    last_error keeps the text of the latest failed attempt, also once a
    later attempt succeeds.
    """
    finished = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = started
    fields = ["attempts", "last_attempt_at", "status"]
    max_attempts = settings.NOTIFICATION_MAX_ATTEMPTS
    delay = None

    if not error:
        delivery.status = Status.DELIVERED
        delivery.delivered_at = finished
        fields.append("delivered_at")
        logger.info(
            "Delivery %s (%s, alert %s) to channel %s sent on attempt %d",
            delivery.pk,
            delivery.event,
            delivery.alert_id,
            delivery.channel_id,
            delivery.attempts,
        )
    elif delivery.attempts >= max_attempts:
        delivery.status = Status.FAILED
        delivery.last_error = error
        fields.append("last_error")
        logger.error(
            "Delivery %s (%s, alert %s) to channel %s failed permanently after %d "
            "attempts: %s",
            delivery.pk,
            delivery.event,
            delivery.alert_id,
            delivery.channel_id,
            delivery.attempts,
            error,
        )
    else:
        delay = retry_delay(delivery.attempts)
        delivery.last_error = error
        delivery.next_attempt_at = finished + timedelta(seconds=delay)
        fields += ["last_error", "next_attempt_at"]
        logger.warning(
            "Delivery %s (%s, alert %s) to channel %s: attempt %d of %d failed, "
            "retry in %g s: %s",
            delivery.pk,
            delivery.event,
            delivery.alert_id,
            delivery.channel_id,
            delivery.attempts,
            max_attempts,
            delay,
            error,
        )

    delivery.save(update_fields=fields)
    return delay


@shared_task(
    bind=True, name="alerts.send_notification", acks_late=True, max_retries=None
)
def send_notification(self, delivery_id: int) -> None:
    """Send one notification delivery, retrying with backoff until it succeeds.

    The delivery row, not the task, counts the attempts: each one is
    committed before the retry is scheduled, and the row's
    NOTIFICATION_MAX_ATTEMPTS limit ends the retries.
    """
    try:
        delay = attempt_delivery(delivery_id)
    except (OperationalError, InterfaceError) as error:
        # Nothing was recorded, so this is not an attempt. If the send went
        # out before the commit failed, the retry sends it a second time.
        close_old_connections()
        wait = min(2**self.request.retries, MAX_DATABASE_RETRY_SECONDS)
        logger.warning(
            "Delivery %s: database unavailable, retry %d in %d s: %s",
            delivery_id,
            self.request.retries + 1,
            wait,
            error,
        )
        raise self.retry(exc=error, countdown=wait) from error

    if delay is not None:
        raise self.retry(countdown=delay)


@shared_task(name="alerts.redeliver_pending")
def redeliver_pending() -> int:
    """Enqueue again the pending deliveries overdue by the grace period.

    Such a delivery lost its task: the process died between the commit and
    the enqueue, or the broker lost the message. The sweep moves each one's
    next_attempt_at to now, so the next sweep waits another grace period
    before it enqueues the same delivery again. Returns how many it enqueued.
    """
    now = timezone.now()
    grace = timedelta(seconds=settings.NOTIFICATION_REDELIVER_GRACE_SECONDS)
    with transaction.atomic():
        # Rows locked by a sending worker are skipped, because that worker
        # records the outcome itself.
        overdue = (
            NotificationDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lt=now - grace)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)
        )
        delivery_ids = list(overdue[:REDELIVER_BATCH_SIZE])
        if delivery_ids:
            NotificationDelivery.objects.filter(pk__in=delivery_ids).update(
                next_attempt_at=now
            )
        for delivery_id in delivery_ids:
            transaction.on_commit(partial(enqueue_delivery, delivery_id))

    if delivery_ids:
        logger.warning(
            "Enqueued again %d overdue notification deliveries: %s",
            len(delivery_ids),
            delivery_ids,
        )
    return len(delivery_ids)


# --- Rule evaluation and reminders, run by beat ---


@shared_task(name="alerts.evaluate_rules")
def evaluate_rules() -> dict:
    """Evaluate every enabled rule once; beat runs this on the stored schedule."""
    summary = evaluation.evaluate_rules()
    level = (
        logging.INFO
        if summary.fired or summary.resolved or summary.failed
        else logging.DEBUG
    )
    logger.log(
        level,
        "Evaluated %d rules: %d alerts fired %s, %d resolved %s, %d rules failed, "
        "%d skipped",
        summary.rules,
        len(summary.fired),
        summary.fired,
        len(summary.resolved),
        summary.resolved,
        summary.failed,
        summary.skipped,
    )
    return {
        "rules": summary.rules,
        "fired": summary.fired,
        "resolved": summary.resolved,
        "failed": summary.failed,
    }


@shared_task(name="alerts.send_reminders")
def send_reminders() -> list[int]:
    """Remind the channels of firing alerts that are not acknowledged."""
    return evaluation.send_reminders()
