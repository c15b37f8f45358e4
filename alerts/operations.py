"""Actions on alerts and rules, shared by the admin and the API."""

import logging
import re
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from alerts.evaluation import resolve
from alerts.models import Alert, AlertRule

logger = logging.getLogger(__name__)

# Durations people type for a silence: "30m", "1h", "1d", "2w".
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION_PATTERN = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$", re.IGNORECASE)


class OperationError(ValueError):
    """The operation does not apply to the alert in its current state."""


def parse_duration(text: str) -> timedelta:
    """Read "30m", "1h", "1d" or "2w"; raise ValueError for anything else."""
    match = DURATION_PATTERN.match(text or "")
    if not match:
        raise ValueError("Give a duration like 30m, 1h, 1d or 2w.")
    amount, unit = int(match.group(1)), match.group(2).lower()
    if amount == 0:
        raise ValueError("A silence must last longer than zero.")
    return timedelta(**{DURATION_UNITS[unit]: amount})


def acknowledge(alert: Alert, user=None) -> Alert:
    """Mark a firing alert as seen: it stays open but sends no reminders."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state != Alert.State.FIRING:
            raise OperationError(
                f"Only a firing alert can be acknowledged; it is {alert.state}."
            )
        alert.state = Alert.State.ACKNOWLEDGED
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = user if user and user.is_authenticated else None
        alert.save(update_fields=["state", "acknowledged_at", "acknowledged_by"])
    logger.info("Alert %s acknowledged by user %s", alert.pk, getattr(user, "pk", None))
    return alert


def resolve_by_hand(alert: Alert, user=None) -> Alert:
    """Resolve an open alert now. If its condition still holds, the next
    evaluation opens a new one."""
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update().select_related("rule").get(pk=alert.pk)
        )
        if not alert.is_open:
            raise OperationError("The alert is already resolved.")
        resolve(alert, reason="resolved by hand", user=user)
    return alert


def silence(obj: Alert | AlertRule, until: datetime | None) -> Alert | AlertRule:
    """Send nothing for an alert, or every alert of a rule, until the given time.

    None lifts the silence.
    """
    if until is not None and until <= timezone.now():
        raise OperationError("A silence must end in the future.")
    type(obj).objects.filter(pk=obj.pk).update(silenced_until=until)
    obj.silenced_until = until
    logger.info("%s %s silenced until %s", type(obj).__name__, obj.pk, until)
    return obj
