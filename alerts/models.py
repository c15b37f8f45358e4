"""Alert rules, the alerts they raise, and where notifications go.

A rule names the logs to watch and the condition that means trouble. Each periodic
evaluation turns a rule's condition into open or resolved `Alert` rows, one
open alert per rule and group. Every change that someone must hear about
becomes a `NotificationDelivery` row, written in the same transaction, and a
Celery task sends it; the row is what makes a crash lead to a resend.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from logs.levels import Level


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class NotificationChannel(models.Model):
    """A place that hears about alerts: e-mail, a webhook or Slack."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook (signed JSON)"
        SLACK = "slack", "Slack incoming webhook"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    recipients = models.TextField(
        blank=True,
        help_text="E-mail channels: addresses separated by commas or new lines.",
    )
    url = models.URLField(
        max_length=2000,
        blank=True,
        help_text="Webhook and Slack channels: the address to POST to.",
    )
    secret = models.CharField(
        max_length=200,
        blank=True,
        help_text=(
            "Webhook channels: the key of the HMAC-SHA256 signature header. "
            "Left empty, a random one is created on save."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def save(self, *args, **kwargs) -> None:
        if self.kind == self.Kind.WEBHOOK and not self.secret:
            self.secret = secrets.token_urlsafe(32)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.kind == self.Kind.EMAIL and not self.recipient_list:
            raise ValidationError({"recipients": "An e-mail channel needs addresses."})
        if self.kind in (self.Kind.WEBHOOK, self.Kind.SLACK) and not self.url:
            raise ValidationError({"url": "This kind of channel needs a URL."})

    @property
    def recipient_list(self) -> list[str]:
        parts = self.recipients.replace("\n", ",").split(",")
        return [part.strip() for part in parts if part.strip()]


class AlertRuleQuerySet(models.QuerySet):
    def with_open_alert_count(self):
        """Annotate each rule with `open_alert_count` in the same query."""
        return self.annotate(
            open_alert_count=models.Count(
                "alerts", filter=Q(alerts__state__in=Alert.OPEN_STATES)
            )
        )


class AlertRule(models.Model):
    """A filter over stored logs and the condition on them that raises an alert."""

    class Kind(models.TextChoices):
        THRESHOLD = "threshold", "Threshold: at least N matching entries"
        ABSENCE = "absence", "Absence: fewer than N matching entries"
        RATIO = "ratio", "Ratio: matching share of all entries above a fraction"
        PATTERN = "pattern", "Pattern: any matching entry"
        NEW_PATTERN = (
            "new_pattern",
            "New pattern: a service logs a message template it never logged before",
        )

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)

    # Which entries match. Empty fields match everything.
    service_name = models.CharField(
        max_length=200, blank=True, help_text="Empty: every service."
    )
    min_level = models.PositiveSmallIntegerField(
        choices=Level.choices,
        null=True,
        blank=True,
        help_text="Entries at this level or above. Empty: every level.",
    )
    message_contains = models.CharField(
        max_length=1000, blank=True, help_text="Case-insensitive text in the message."
    )
    message_regex = models.CharField(
        max_length=1000,
        blank=True,
        help_text="A PostgreSQL regular expression the message must match.",
    )
    metadata_key = models.CharField(max_length=200, blank=True)
    metadata_value = models.CharField(
        max_length=1000,
        blank=True,
        help_text="With a metadata key: the value it must have (as text).",
    )

    per_service = models.BooleanField(
        default=False,
        help_text="Keep one alert per service instead of one for the whole rule.",
    )
    window = models.DurationField(
        default=timedelta(minutes=5),
        help_text="How far back each evaluation counts, by arrival time.",
    )
    threshold = models.FloatField(
        default=1,
        help_text=(
            "Threshold: the count that fires. Absence: the count below which it "
            "fires. Ratio: the fraction (0.05 for 5%) above which it fires. "
            "Pattern and new pattern: unused."
        ),
    )
    min_total = models.PositiveIntegerField(
        default=1,
        help_text="Ratio rules: fewer entries than this in a window never fire.",
    )
    severity = models.CharField(
        max_length=20, choices=Severity.choices, default=Severity.WARNING
    )
    channels = models.ManyToManyField(
        NotificationChannel, blank=True, related_name="rules"
    )
    reminder_interval = models.DurationField(
        null=True,
        blank=True,
        help_text="Remind while an alert stays unacknowledged. Empty: never.",
    )
    resolve_after = models.PositiveSmallIntegerField(
        default=2,
        help_text="Resolve after this many evaluations in a row find it false.",
    )
    silenced_until = models.DateTimeField(
        null=True, blank=True, help_text="Send nothing for this rule until then."
    )

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(
        blank=True, editable=False, help_text="Why the last evaluation failed."
    )

    objects = AlertRuleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.metadata_value and not self.metadata_key:
            errors["metadata_key"] = "A metadata value needs a key."
        if self.kind == self.Kind.RATIO and not 0 <= self.threshold < 1:
            errors["threshold"] = "A ratio threshold is a fraction from 0 up to 1."
        if self.kind in (self.Kind.THRESHOLD, self.Kind.ABSENCE) and (
            self.threshold < 0 or self.threshold != int(self.threshold)
        ):
            errors["threshold"] = "A count threshold is a whole number, 0 or more."
        if self.kind == self.Kind.THRESHOLD and self.threshold < 1:
            errors["threshold"] = "A threshold rule fires on at least 1 entry."
        if self.kind == self.Kind.RATIO and not (
            self.min_level is not None
            or self.message_contains
            or self.message_regex
            or self.metadata_key
        ):
            errors["kind"] = (
                "A ratio rule needs a level, message or metadata condition, "
                "or every entry would match."
            )
        if self.kind == self.Kind.NEW_PATTERN and (
            self.min_level is not None
            or self.message_contains
            or self.message_regex
            or self.metadata_key
        ):
            errors["kind"] = (
                "A new-pattern rule watches the templates of a service or of "
                "all services; leave the level, message and metadata empty."
            )
        if self.window <= timedelta(0):
            errors["window"] = "The window must be longer than zero."
        if self.reminder_interval is not None and self.reminder_interval <= timedelta(
            0
        ):
            errors["reminder_interval"] = "A reminder interval must be positive."
        if self.message_regex:
            from alerts.matching import regex_error

            problem = regex_error(self.message_regex)
            if problem:
                errors["message_regex"] = problem
        if errors:
            raise ValidationError(errors)

    def is_silenced(self, now=None) -> bool:
        now = now or timezone.now()
        return self.silenced_until is not None and self.silenced_until > now


class Alert(models.Model):
    """A rule's condition holding for one group (a service, or the whole rule)."""

    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    OPEN_STATES = (State.FIRING, State.ACKNOWLEDGED)

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    group = models.CharField(
        max_length=200,
        blank=True,
        help_text="The service for per-service rules; empty for the whole rule.",
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.FIRING)
    severity = models.CharField(max_length=20, choices=Severity.choices)
    value = models.FloatField(help_text="The count or ratio that fired the alert.")
    last_value = models.FloatField(help_text="The value at the last evaluation.")
    sample_log_ids = ArrayField(models.UUIDField(), default=list, blank=True)
    pattern = models.ForeignKey(
        "logs.Pattern",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        # No database constraint, like Log.pattern: patterns are never
        # deleted, so the check would only slow down the writes.
        db_constraint=False,
        related_name="+",
        help_text="New-pattern rules: the message template that fired the alert.",
    )

    first_seen = models.DateTimeField(help_text="When the alert fired.")
    last_seen = models.DateTimeField(help_text="When its condition last held.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    silenced_until = models.DateTimeField(null=True, blank=True)
    clear_evaluations = models.PositiveSmallIntegerField(
        default=0,
        help_text="Evaluations in a row that found the condition false.",
    )
    last_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-first_seen"]
        constraints = [
            # While an alert is open, its rule and group cannot open another.
            models.UniqueConstraint(
                fields=["rule", "group"],
                condition=~Q(state="resolved"),
                name="alert_one_open_per_group",
            )
        ]
        indexes = [
            models.Index(
                fields=["state", "-first_seen"], name="alert_state_first_seen_idx"
            )
        ]

    def __str__(self) -> str:
        group = f" [{self.group}]" if self.group else ""
        return f"{self.rule.name}{group}: {self.state}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    def is_silenced(self, now=None) -> bool:
        now = now or timezone.now()
        own = self.silenced_until is not None and self.silenced_until > now
        return own or self.rule.is_silenced(now)


class NotificationDelivery(models.Model):
    """One notification for one channel, and every attempt to send it."""

    class Event(models.TextChoices):
        FIRED = "fired", "Fired"
        RESOLVED = "resolved", "Resolved"
        REMINDER = "reminder", "Reminder"
        TEST = "test", "Test"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="deliveries"
    )
    alert = models.ForeignKey(
        Alert,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        help_text="Empty for test notifications.",
    )
    event = models.CharField(max_length=20, choices=Event.choices)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        default=timezone.now,
        help_text="A pending delivery not sent by then is picked up again.",
    )
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "notification deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx")
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.channel.name}: {self.status}"
