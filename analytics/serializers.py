from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from analytics.queries import BUCKET_SIZES, bucket_count, floor_time
from logs.levels import Level, parse_level

DEFAULT_RANGE = timedelta(hours=1)
# A series longer than this is rejected with 400, which bounds the size of
# the response and the zero-filling work: a week of minutes is 10,080.
MAX_BUCKETS = 10_080


def default_bucket(span: timedelta) -> str:
    """Pick the bucket that gives a readable number of points for a range.

    Up to 3 hours gives at most 180 minutes, up to 7 days at most 168 hours,
    and anything longer gives days.
    """
    if span <= timedelta(hours=3):
        return "minute"
    if span <= timedelta(days=7):
        return "hour"
    return "day"


class TimeRangeQuerySerializer(serializers.Serializer):
    """The `since` and `until` query parameters, rounded down to the minute.

    The validated `since` and `until` are always set: a missing `until` is
    now, and a missing `since` is `default_range` before `until`.
    """

    default_range = DEFAULT_RANGE

    since = serializers.DateTimeField(
        required=False, help_text="Start, ISO 8601. Default: one hour before until."
    )
    until = serializers.DateTimeField(
        required=False, help_text="End, exclusive, ISO 8601. Default: now."
    )

    def validate(self, attrs: dict) -> dict:
        # The rollups count whole minutes, so both ends are rounded down to
        # the minute and the response reports the rounded range.
        until = floor_time(attrs.get("until") or timezone.now(), "minute")
        since = floor_time(attrs.get("since") or until - self.default_range, "minute")
        if since >= until:
            raise serializers.ValidationError(
                {
                    "since": f"since ({since.isoformat()}) must be before until "
                    f"({until.isoformat()}), both rounded down to the minute."
                },
                code="empty_range",
            )
        return attrs | {"since": since, "until": until}


class StatsQuerySerializer(TimeRangeQuerySerializer):
    """Query parameters of GET /api/stats/."""

    service = serializers.CharField(
        required=False, max_length=200, help_text="Count one service only."
    )
    level = serializers.CharField(
        required=False,
        help_text="Minimum level: DEBUG, INFO, WARNING, ERROR, CRITICAL or an alias.",
    )
    bucket = serializers.ChoiceField(
        choices=list(BUCKET_SIZES),
        required=False,
        help_text="minute, hour or day. Default: chosen from the range.",
    )

    def validate_level(self, value: str) -> Level:
        level = parse_level(value)
        if level is None:
            choices = ", ".join(Level.names)
            raise serializers.ValidationError(
                f"{value!r} is not a known level. Use one of {choices}.",
                code="invalid_level",
            )
        return level

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        since, until = attrs["since"], attrs["until"]
        bucket = attrs.get("bucket") or default_bucket(until - since)
        buckets = bucket_count(since, until, bucket)
        if buckets > MAX_BUCKETS:
            raise serializers.ValidationError(
                {
                    "bucket": f"A {bucket} bucket over this range gives {buckets} "
                    f"points; the limit is {MAX_BUCKETS}. Choose a larger bucket "
                    "or a shorter range."
                },
                code="too_many_buckets",
            )
        return attrs | {"since": since, "until": until, "bucket": bucket}


class StatsPointSerializer(serializers.Serializer):
    time = serializers.DateTimeField(help_text="Start of the bucket.")
    count = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    """The body of GET /api/stats/: a count for every bucket of the range."""

    bucket = serializers.ChoiceField(choices=list(BUCKET_SIZES))
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    series = StatsPointSerializer(many=True)
