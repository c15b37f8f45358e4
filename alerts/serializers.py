import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from alerts.models import Alert, AlertRule, NotificationChannel, NotificationDelivery
from logs.levels import Level, parse_level

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY


@extend_schema_field(
    {
        "type": "string",
        "description": "DEBUG, INFO, WARNING, ERROR or CRITICAL; any alias is "
        "accepted when writing.",
    }
)
class LevelField(serializers.Field):
    """A level written and shown by name; any alias is accepted."""

    default_error_messages = {
        "invalid": "Unknown level {value!r}; use DEBUG, INFO, WARNING, ERROR or "
        "CRITICAL."
    }

    def to_representation(self, value):
        return Level(value).name

    def to_internal_value(self, data):
        if isinstance(data, int) and data in Level.values:
            return data
        level = parse_level(data) if isinstance(data, str) else None
        if level is None:
            self.fail("invalid", value=data)
        return int(level)


class ModelCleanMixin:
    """Run the model's clean() so the API checks what the admin checks."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        fields = {key: value for key, value in attrs.items() if key != "channels"}
        # A copy, so a rejected change leaves the stored object untouched.
        instance = copy.copy(self.instance) if self.instance else self.Meta.model()
        for key, value in fields.items():
            setattr(instance, key, value)
        try:
            instance.clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from error
        return attrs


class AlertRuleSerializer(ModelCleanMixin, serializers.ModelSerializer):
    min_level = LevelField(required=False, allow_null=True)
    open_alerts = serializers.SerializerMethodField()

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "description",
            "enabled",
            "kind",
            "service_name",
            "min_level",
            "message_contains",
            "message_regex",
            "metadata_key",
            "metadata_value",
            "per_service",
            "window",
            "threshold",
            "min_total",
            "severity",
            "channels",
            "reminder_interval",
            "resolve_after",
            "silenced_until",
            "created_at",
            "updated_at",
            "last_evaluated_at",
            "last_error",
            "open_alerts",
        ]
        read_only_fields = [
            "created_at",
            "updated_at",
            "last_evaluated_at",
            "last_error",
        ]

    def get_open_alerts(self, rule) -> int:
        # The list view annotates the count; a single saved rule is counted here.
        count = getattr(rule, "open_alert_count", None)
        if count is None:
            count = rule.alerts.filter(state__in=Alert.OPEN_STATES).count()
        return count


class NotificationChannelSerializer(ModelCleanMixin, serializers.ModelSerializer):
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="Webhook channels: left empty, a random one is made and "
        "returned once in the answer to the request that creates the channel.",
    )

    class Meta:
        model = NotificationChannel
        fields = ["id", "name", "kind", "enabled", "recipients", "url", "secret"]

    def create(self, validated_data):
        channel = super().create(validated_data)
        # Only the creating response shows the secret, so the receiver can be set up.
        self.created_secret = channel.secret
        return channel

    def to_representation(self, instance):
        data = super().to_representation(instance)
        created_secret = getattr(self, "created_secret", None)
        if created_secret:
            data["secret"] = created_secret
        data["has_secret"] = bool(instance.secret)
        return data


class AlertSerializer(serializers.ModelSerializer):
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "rule_name",
            "group",
            "state",
            "severity",
            "value",
            "last_value",
            "sample_log_ids",
            "pattern",
            "first_seen",
            "last_seen",
            "resolved_at",
            "acknowledged_at",
            "acknowledged_by",
            "silenced_until",
            "last_notified_at",
        ]
        read_only_fields = fields


class SilenceSerializer(serializers.Serializer):
    """Either a duration ("for": "1h") or an end time ("until"); null lifts it."""

    until = serializers.DateTimeField(required=False, allow_null=True)

    def to_internal_value(self, data):
        from django.utils import timezone

        from alerts.operations import parse_duration

        if not isinstance(data, dict):
            raise serializers.ValidationError({NON_FIELD: ["Send a JSON object."]})
        if "for" in data and "until" in data:
            raise serializers.ValidationError(
                {NON_FIELD: ["Send either 'for' or 'until', not both."]}
            )
        if "for" in data:
            try:
                return {"until": timezone.now() + parse_duration(str(data["for"]))}
            except ValueError as error:
                raise serializers.ValidationError({"for": [str(error)]}) from error
            except OverflowError as error:
                raise serializers.ValidationError(
                    {"for": [f"{data['for']!r} ends after the year 9999."]}
                ) from error
        if "until" not in data:
            raise serializers.ValidationError(
                {
                    NON_FIELD: [
                        "Send 'for' (like 1h or 1d) or 'until' (a time, or null "
                        "to lift it)."
                    ]
                }
            )
        return super().to_internal_value(data)


# SilenceSerializer reads "for" itself, so the schema of its body is written out.
SILENCE_REQUEST_SCHEMA = {
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "for": {"type": "string", "description": "30m, 1h, 1d, 2w..."}
            },
            "required": ["for"],
        },
        {
            "type": "object",
            "properties": {
                "until": {
                    "type": "string",
                    "format": "date-time",
                    "nullable": True,
                    "description": "End of the silence; null lifts it.",
                }
            },
            "required": ["until"],
        },
    ]
}


class NotificationDeliverySerializer(serializers.ModelSerializer):
    channel_name = serializers.CharField(source="channel.name", read_only=True)

    class Meta:
        model = NotificationDelivery
        fields = [
            "id",
            "channel",
            "channel_name",
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
        read_only_fields = fields
