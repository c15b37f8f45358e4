from datetime import timedelta
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from alerts import operations
from alerts.models import Alert, AlertRule, NotificationChannel, NotificationDelivery
from alerts.notifications import send_test_notification
from logs.admin import ReadOnlyAdminMixin


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "enabled", "target", "masked_secret", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "recipients", "url"]
    readonly_fields = ["created_at"]
    actions = ["send_test"]

    @admin.display(description="sends to")
    def target(self, obj: NotificationChannel) -> str:
        if obj.kind == NotificationChannel.Kind.EMAIL:
            return ", ".join(obj.recipient_list)
        # Only the host: a Slack webhook URL's path is its credential.
        parts = urlsplit(obj.url)
        return f"{parts.scheme}://{parts.hostname}" if parts.hostname else ""

    @admin.display(description="secret")
    def masked_secret(self, obj: NotificationChannel) -> str:
        return "••••••••" if obj.secret else "-"

    @admin.action(description="Send a test notification")
    def send_test(self, request, queryset) -> None:
        deliveries = [send_test_notification(channel) for channel in queryset]
        ids = ", ".join(str(delivery.pk) for delivery in deliveries)
        self.message_user(
            request,
            f"Queued {len(deliveries)} test notifications (deliveries {ids}). "
            "Their status shows under Notification deliveries.",
            messages.SUCCESS,
        )


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "event",
        "channel",
        "alert",
        "status",
        "attempts",
        "last_attempt_at",
        "next_attempt_at",
        "delivered_at",
        "short_error",
    ]
    list_filter = ["status", "event", "channel"]
    list_select_related = ["channel", "alert__rule"]
    date_hierarchy = "created_at"
    fields = [
        "channel",
        "alert",
        "event",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "delivered_at",
    ]
    readonly_fields = fields

    @admin.display(description="last error")
    def short_error(self, obj: NotificationDelivery) -> str:
        return obj.last_error[:120] + ("…" if len(obj.last_error) > 120 else "")


class OpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(state__in=Alert.OPEN_STATES)
        if self.value() == "no":
            return queryset.exclude(state__in=Alert.OPEN_STATES)
        return queryset


def _silence_action(hours: int, label: str):
    """Build an admin action that silences alerts or rules for a while."""

    def silence(modeladmin, request, queryset):
        until = timezone.now() + timedelta(hours=hours)
        for obj in queryset:
            operations.silence(obj, until)
        modeladmin.message_user(
            request, f"Silenced {queryset.count()} until {until:%Y-%m-%d %H:%M} UTC."
        )

    silence.__name__ = f"silence_{hours}h"
    silence.short_description = label
    return silence


@admin.action(description="Lift the silence")
def lift_silence(modeladmin, request, queryset):
    count = queryset.update(silenced_until=None)
    modeladmin.message_user(request, f"Lifted the silence of {count}.")


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "enabled",
        "kind",
        "service_name",
        "min_level",
        "per_service",
        "window",
        "threshold",
        "severity",
        "open_alert_count",
        "silenced_until",
        "last_evaluated_at",
    ]
    list_filter = ["enabled", "kind", "severity", "per_service"]
    search_fields = ["name", "service_name", "message_contains", "message_regex"]
    filter_horizontal = ["channels"]
    readonly_fields = ["created_at", "updated_at", "last_evaluated_at", "last_error"]
    actions = [
        "enable",
        "disable",
        _silence_action(1, "Silence for an hour"),
        _silence_action(24, "Silence for a day"),
        lift_silence,
    ]
    fieldsets = [
        (None, {"fields": ["name", "description", "enabled", "kind", "severity"]}),
        (
            "Which entries",
            {
                "fields": [
                    "service_name",
                    "min_level",
                    "message_contains",
                    "message_regex",
                    "metadata_key",
                    "metadata_value",
                ]
            },
        ),
        (
            "When it fires",
            {
                "fields": [
                    "per_service",
                    "window",
                    "threshold",
                    "min_total",
                    "resolve_after",
                ]
            },
        ),
        (
            "Notifications",
            {"fields": ["channels", "reminder_interval", "silenced_until"]},
        ),
        (
            "Evaluation",
            {"fields": ["created_at", "updated_at", "last_evaluated_at", "last_error"]},
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).with_open_alert_count()

    @admin.display(description="open alerts", ordering="open_alert_count")
    def open_alert_count(self, rule):
        return rule.open_alert_count

    @admin.action(description="Enable")
    def enable(self, request, queryset):
        self.message_user(request, f"Enabled {queryset.update(enabled=True)} rules.")

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        self.message_user(request, f"Disabled {queryset.update(enabled=False)} rules.")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "state",
        "severity",
        "group",
        "value",
        "last_value",
        "first_seen",
        "last_seen",
        "resolved_at",
        "silenced_until",
    ]
    list_filter = [OpenFilter, "state", "severity", "rule"]
    list_select_related = ["rule"]
    search_fields = ["rule__name", "group"]
    date_hierarchy = "first_seen"
    actions = [
        "acknowledge",
        "resolve",
        _silence_action(1, "Silence for an hour"),
        _silence_action(24, "Silence for a day"),
        lift_silence,
    ]
    # Only the silence is edited by hand, which is how "silence until a
    # given time" is done in the admin.
    fields = [
        "rule",
        "group",
        "state",
        "severity",
        "value",
        "last_value",
        "samples",
        "first_seen",
        "last_seen",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
        "last_notified_at",
        "clear_evaluations",
        "silenced_until",
    ]
    readonly_fields = [name for name in fields if name != "silenced_until"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="sample logs")
    def samples(self, alert):
        if not alert.sample_log_ids:
            return "-"
        return format_html_join(
            format_html("<br>"),
            '<a href="{}">{}</a>',
            (
                (reverse("admin:logs_log_change", args=[log_id]), log_id)
                for log_id in alert.sample_log_ids
            ),
        )

    @admin.action(description="Acknowledge")
    def acknowledge(self, request, queryset):
        self._apply(request, queryset, operations.acknowledge, "Acknowledged")

    @admin.action(description="Resolve")
    def resolve(self, request, queryset):
        self._apply(request, queryset, operations.resolve_by_hand, "Resolved")

    def _apply(self, request, queryset, operation, verb):
        done, skipped = 0, []
        for alert in queryset:
            try:
                operation(alert, request.user)
                done += 1
            except operations.OperationError as error:
                skipped.append(f"{alert}: {error}")
        self.message_user(request, f"{verb} {done} alerts.")
        for reason in skipped:
            self.message_user(request, reason, level=messages.WARNING)
