"""Rule evaluation: count what each rule watches and open or resolve alerts.

Every run counts each enabled rule's entries over a window by arrival time
(`received_at`), recounting the whole window from the logs table instead of
adding to a running total. A count is therefore never doubled, and an entry
that reached the database after the previous run is counted by the next
one, because each window reaches back past the previous run's end by at
least ALERTS_LATE_ARRIVAL_SECONDS.

A rule's decisions for one run are made in one transaction that holds an
advisory lock on the rule, so two evaluations running at once cannot open
the same alert twice. The partial unique constraint on open alerts backs
that up.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone

from alerts.matching import match_filter, scope_filter
from alerts.models import Alert, AlertRule, NotificationDelivery
from alerts.notifications import queue_notifications
from logs.models import Log, Pattern

logger = logging.getLogger(__name__)

SAMPLE_SIZE = 5

# The advisory lock namespace for rule evaluation (the first key of the pair).
LOCK_NAMESPACE = 7301

# New-pattern rules keep one alert per pattern, in the group "pattern <id>".
PATTERN_GROUP_PREFIX = "pattern "


@dataclass
class Measurement:
    """The count, value and verdict of one run for one group of one rule."""

    value: float
    firing: bool
    matched: int = 0
    total: int = 0
    # New-pattern rules: the pattern that the group stands for.
    pattern_id: int | None = None


@dataclass
class RunSummary:
    rules: int = 0
    skipped: int = 0
    failed: int = 0
    fired: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)


def window_for(rule: AlertRule, now: datetime) -> tuple[datetime, datetime]:
    """Return the (start, end] arrival-time span this run of the rule counts."""
    start = now - rule.window
    if rule.last_evaluated_at is not None:
        # Reach back past the previous run so that entries stored after it,
        # but received before it, are still seen, and so that no span goes
        # unexamined when the window is shorter than the schedule.
        late = timedelta(seconds=settings.ALERTS_LATE_ARRIVAL_SECONDS)
        start = min(start, rule.last_evaluated_at - late)
    return start, now


def measure(rule: AlertRule, start: datetime, end: datetime) -> dict[str, Measurement]:
    """Count the rule's entries in the window, per group, and judge each group."""
    if rule.kind == AlertRule.Kind.NEW_PATTERN:
        return {
            f"{PATTERN_GROUP_PREFIX}{pattern.pk}": Measurement(
                value=1.0, firing=True, matched=1, total=1, pattern_id=pattern.pk
            )
            for pattern in new_patterns(rule, start, end)
        }
    in_window = Log.objects.filter(received_at__gt=start, received_at__lte=end)
    kind = rule.kind

    if kind == AlertRule.Kind.RATIO:
        query = in_window.filter(scope_filter(rule))
        counters = {
            "matched": Count("id", filter=match_filter(rule)),
            "total": Count("id"),
        }
    else:
        query = in_window.filter(match_filter(rule))
        counters = {"matched": Count("id")}

    if rule.per_service:
        rows = query.values("service_name").annotate(**counters).order_by()
    else:
        rows = [query.aggregate(**counters)]

    counts: dict[str, tuple[int, int]] = {}
    for row in rows:
        group = row["service_name"] if rule.per_service else ""
        counts[group] = (row["matched"], row.get("total", row["matched"]))

    if kind == AlertRule.Kind.ABSENCE:
        for group in absence_groups(rule, end):
            counts.setdefault(group, (0, 0))

    measurements = {}
    for group, (matched, total) in counts.items():
        measurements[group] = judge(rule, matched, total)
    return measurements


def judge(rule: AlertRule, matched: int, total: int) -> Measurement:
    kind = rule.kind
    if kind == AlertRule.Kind.THRESHOLD:
        firing = matched >= rule.threshold
        value = float(matched)
    elif kind == AlertRule.Kind.ABSENCE:
        firing = matched < rule.threshold or (rule.threshold == 0 and matched == 0)
        value = float(matched)
    elif kind == AlertRule.Kind.RATIO:
        value = matched / total if total else 0.0
        firing = total >= rule.min_total and value > rule.threshold
    else:  # pattern: one matching entry is enough
        firing = matched >= 1
        value = float(matched)
    return Measurement(value=value, firing=firing, matched=matched, total=total)


def new_patterns(rule: AlertRule, start: datetime, end: datetime) -> list[Pattern]:
    """Return the patterns first seen in the window, past their service's learning.

    A service's learning period is the first PATTERN_LEARNING_MINUTES after
    its first pattern was seen: every template it logs then is new, so none
    of them fires.

    NOTE: every new pattern opens its own alert, so a service that starts
    logging many new templates at once sends as many notifications.
    """
    found = Pattern.objects.filter(first_seen__gt=start, first_seen__lte=end)
    if rule.service_name:
        found = found.filter(service_name=rule.service_name)
    found = list(found.order_by("first_seen", "id"))
    if not found:
        return []

    services = {pattern.service_name for pattern in found}
    learning_starts = dict(
        Pattern.objects.filter(service_name__in=services)
        .values("service_name")
        .annotate(first=Min("first_seen"))
        .values_list("service_name", "first")
    )
    learning = timedelta(minutes=settings.PATTERN_LEARNING_MINUTES)
    return [
        pattern
        for pattern in found
        if pattern.first_seen >= learning_starts[pattern.service_name] + learning
    ]


def absence_groups(rule: AlertRule, now: datetime) -> list[str]:
    """Return the groups whose silence an absence rule notices.

    A rule for one service, or for all services taken together, has one
    group whether or not anything was logged. A per-service rule watches
    each service that logged within ALERTS_ABSENCE_LOOKBACK_HOURS, read from
    the minute rollups so that no large scan of the logs table is needed.
    """
    if not rule.per_service:
        return [""]
    if rule.service_name:
        return [rule.service_name]
    from analytics.models import MinuteRollup

    since = now - timedelta(hours=settings.ALERTS_ABSENCE_LOOKBACK_HOURS)
    return list(
        MinuteRollup.objects.filter(minute__gte=since)
        .values_list("service_name", flat=True)
        .distinct()
        .order_by()
    )


def sample_ids(
    rule: AlertRule, group: str, start, end, pattern_id: int | None = None
) -> list[UUID]:
    query = Log.objects.filter(received_at__gt=start, received_at__lte=end)
    if pattern_id is not None:
        query = query.filter(pattern_id=pattern_id)
    else:
        query = query.filter(match_filter(rule))
        if rule.per_service:
            query = query.filter(service_name=group)
    return list(
        query.order_by("-received_at").values_list("id", flat=True)[:SAMPLE_SIZE]
    )


def _try_lock(rule_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, rule_id]
        )
        return cursor.fetchone()[0]


def evaluate_rule(rule: AlertRule, now: datetime, summary: RunSummary) -> None:
    """Run one evaluation of one rule and apply what it found."""
    start, end = window_for(rule, now)
    with transaction.atomic():
        if not _try_lock(rule.pk):
            logger.info("Rule %s is being evaluated elsewhere; skipped", rule.pk)
            summary.skipped += 1
            return
        measurements = measure(rule, start, end)
        open_alerts = {
            alert.group: alert
            for alert in Alert.objects.select_for_update()
            .select_related("rule")
            .filter(rule=rule, state__in=Alert.OPEN_STATES)
        }
        for group in set(measurements) | set(open_alerts):
            measurement = measurements.get(group)
            if measurement is not None and not _group_fits(rule, group):
                measurement = None
            alert = open_alerts.get(group)
            if measurement is not None and measurement.firing:
                if alert is None:
                    alert = _open(rule, group, measurement, start, end, now)
                    summary.fired.append(alert.pk)
                else:
                    _still_firing(alert, measurement, start, end, now)
            elif alert is not None:
                value = measurement.value if measurement else 0.0
                if _clearing(alert, value, now):
                    summary.resolved.append(alert.pk)
        AlertRule.objects.filter(pk=rule.pk).update(
            last_evaluated_at=end, last_error=""
        )


def _group_fits(rule: AlertRule, group: str) -> bool:
    """False for the groups of alerts opened before the rule's grouping changed."""
    if rule.kind == AlertRule.Kind.NEW_PATTERN:
        return group.startswith(PATTERN_GROUP_PREFIX)
    return bool(group) == rule.per_service


def _open(rule, group, measurement, start, end, now) -> Alert:
    alert = Alert.objects.create(
        rule=rule,
        group=group,
        state=Alert.State.FIRING,
        severity=rule.severity,
        value=measurement.value,
        last_value=measurement.value,
        sample_log_ids=(
            []
            if rule.kind == AlertRule.Kind.ABSENCE
            else sample_ids(rule, group, start, end, measurement.pattern_id)
        ),
        pattern_id=measurement.pattern_id,
        first_seen=now,
        last_seen=now,
    )
    logger.info(
        "Alert %s fired: rule %s (%s) group %r value %s",
        alert.pk,
        rule.pk,
        rule.name,
        group,
        measurement.value,
    )
    if alert.is_silenced(now):
        logger.info("Alert %s fired while silenced; no notification", alert.pk)
    else:
        queue_notifications(alert, NotificationDelivery.Event.FIRED)
    return alert


def _still_firing(alert: Alert, measurement, start, end, now) -> None:
    alert.last_seen = now
    alert.last_value = measurement.value
    alert.clear_evaluations = 0
    fields = ["last_seen", "last_value", "clear_evaluations"]
    if alert.rule.kind != AlertRule.Kind.ABSENCE and len(alert.sample_log_ids) < (
        SAMPLE_SIZE
    ):
        known = set(alert.sample_log_ids)
        samples = sample_ids(alert.rule, alert.group, start, end, alert.pattern_id)
        for log_id in samples:
            if log_id not in known and len(alert.sample_log_ids) < SAMPLE_SIZE:
                alert.sample_log_ids.append(log_id)
                known.add(log_id)
        fields.append("sample_log_ids")
    alert.save(update_fields=fields)


def _clearing(alert: Alert, value: float, now) -> bool:
    """Count one false evaluation; resolve the alert after enough. True if resolved."""
    alert.clear_evaluations += 1
    alert.last_value = value
    if alert.clear_evaluations < alert.rule.resolve_after:
        alert.save(update_fields=["clear_evaluations", "last_value"])
        return False
    resolve(alert, now=now, reason="its condition cleared")
    return True


def resolve(alert: Alert, now=None, reason: str = "", user=None) -> None:
    """Resolve an open alert and tell its channels, unless it is silenced.

    The caller runs this inside a transaction, so the new state and its
    notifications commit together.
    """
    now = now or timezone.now()
    alert.state = Alert.State.RESOLVED
    alert.resolved_at = now
    alert.save(
        update_fields=["state", "resolved_at", "clear_evaluations", "last_value"]
    )
    who = f" by user {user.pk}" if user is not None else ""
    logger.info("Alert %s resolved%s: %s", alert.pk, who, reason)
    if alert.is_silenced(now):
        return
    queue_notifications(alert, NotificationDelivery.Event.RESOLVED)


def evaluate_rules(now: datetime | None = None) -> RunSummary:
    """Evaluate every enabled rule once. A failing rule does not stop the rest."""
    now = now or timezone.now()
    summary = RunSummary()
    for rule in AlertRule.objects.filter(enabled=True).order_by("pk"):
        summary.rules += 1
        try:
            evaluate_rule(rule, now, summary)
        except Exception as error:  # noqa: BLE001 - one bad rule must not stop others
            summary.failed += 1
            logger.exception("Evaluating rule %s (%s) failed", rule.pk, rule.name)
            AlertRule.objects.filter(pk=rule.pk).update(last_error=str(error)[:2000])
    return summary


def send_reminders(now: datetime | None = None) -> list[int]:
    """Queue reminders for firing alerts that are not acknowledged.

    An alert that fired while silenced was never announced; once the silence
    ends it is announced as fired, with or without a reminder interval.
    Acknowledged, resolved and silenced alerts get nothing.
    """
    now = now or timezone.now()
    reminded = []
    with transaction.atomic():
        firing = (
            Alert.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("rule")
            .filter(state=Alert.State.FIRING)
        )
        for alert in firing:
            if alert.is_silenced(now) or not alert.rule.channels.exists():
                continue
            if alert.last_notified_at is None:
                queue_notifications(alert, NotificationDelivery.Event.FIRED)
                reminded.append(alert.pk)
                continue
            interval = alert.rule.reminder_interval
            if interval is not None and alert.last_notified_at + interval <= now:
                queue_notifications(alert, NotificationDelivery.Event.REMINDER)
                reminded.append(alert.pk)
    if reminded:
        logger.info("Queued notifications for %d alerts: %s", len(reminded), reminded)
    return reminded
