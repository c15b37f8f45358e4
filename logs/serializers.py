from datetime import timedelta
from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.serializers import TimeRangeQuerySerializer
from logs.models import Log, Pattern
from logs.validation import MAX_SERVICE_NAME_LENGTH


class LogSerializer(serializers.ModelSerializer):
    level = serializers.CharField(source="level_name", read_only=True)

    class Meta:
        model = Log
        fields = [
            "id",
            "timestamp",
            "received_at",
            "level",
            "service_name",
            "message",
            "metadata",
            "pattern",
        ]
        read_only_fields = fields


class PatternQuerySerializer(TimeRangeQuerySerializer):
    """Query parameters of GET /api/patterns/ and /api/patterns/<id>/."""

    default_range = timedelta(hours=24)
    # Values of `ordering`, each with the fields it sorts by.
    ORDERINGS = {
        "-count_in_range": ["-count_in_range", "-count", "id"],
        "-count": ["-count", "id"],
        "-first_seen": ["-first_seen", "-id"],
        "-last_seen": ["-last_seen", "-id"],
    }

    service = serializers.CharField(
        required=False, max_length=200, help_text="Patterns of one service only."
    )
    since = serializers.DateTimeField(
        required=False,
        help_text="Start of the range that count_in_range covers, ISO 8601. "
        "Default: 24 hours before until.",
    )
    ordering = serializers.ChoiceField(
        choices=list(ORDERINGS),
        required=False,
        default="-count_in_range",
        help_text="-count_in_range (most entries in the range first, the "
        "default), -count (most entries ever), -first_seen (newest patterns "
        "first) or -last_seen.",
    )


class PatternSerializer(serializers.ModelSerializer):
    count_in_range = serializers.IntegerField(
        read_only=True,
        help_text="Entries of the range given by since and until, by event "
        "time, from the minute rollups.",
    )
    entries = serializers.SerializerMethodField(
        help_text="The pattern's entries: /api/logs/ filtered by this pattern."
    )

    class Meta:
        model = Pattern
        fields = [
            "id",
            "service_name",
            "template",
            "first_seen",
            "last_seen",
            "count",
            "count_in_range",
            "entries",
        ]
        read_only_fields = fields

    def get_entries(self, pattern: Pattern) -> str:
        # The router's optional trailing slash reverses to none; the listing's
        # own links end in one.
        path = reverse("log-list").rstrip("/") + "/?"
        path += urlencode({"pattern": pattern.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


# The serializers below describe the intake API in the OpenAPI schema. The
# view validates entries with logs.validation, which is faster on large
# batches and reports every bad entry by index.


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
            {"type": "number"},
        ]
    }
)
class TimestampField(serializers.Field):
    """An ISO 8601 date-time, or epoch seconds, milliseconds, micro- or nanoseconds."""


class LogEntryInputSerializer(serializers.Serializer):
    service_name = serializers.CharField(max_length=MAX_SERVICE_NAME_LENGTH)
    message = serializers.CharField(
        allow_blank=True, help_text="At most INTAKE_MAX_MESSAGE_LENGTH characters."
    )
    level = serializers.CharField(
        required=False,
        help_text="DEBUG, INFO, WARNING, ERROR or CRITICAL, any case, or an alias "
        "such as warn, err or fatal. Default: INFO.",
    )
    timestamp = TimestampField(
        required=False,
        help_text="Event time. Naive times are UTC. Default: the intake time.",
    )
    metadata = serializers.DictField(
        required=False,
        help_text="A JSON object, nested at most INTAKE_MAX_METADATA_DEPTH levels.",
    )
    id = serializers.UUIDField(
        required=False,
        help_text="Event id. An id that is already stored is ignored, which "
        "makes a resend safe. Default: a new UUIDv7.",
    )


class IntakeAcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Entries accepted.")
    ids = serializers.ListField(
        child=serializers.UUIDField(), help_text="Event ids, in request order."
    )


class EntryErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the entry in the request.")
    field = serializers.CharField()
    message = serializers.CharField()
    code = serializers.CharField()


class IntakeRejectedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = EntryErrorSerializer(
        many=True,
        required=False,
        help_text="Every invalid entry and field, up to 100; missing when the "
        "body as a whole is unusable.",
    )


class IntakeUnavailableSerializer(serializers.Serializer):
    detail = serializers.CharField()
    ids = serializers.ListField(
        child=serializers.UUIDField(),
        help_text="Ids assigned to the entries; send them again with these ids.",
    )
