from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from logs.models import Log
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
        ]
        read_only_fields = fields


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
