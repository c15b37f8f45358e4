from datetime import UTC, datetime, time, timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import Alert
from analytics import charts
from analytics.queries import (
    BUCKET_SIZES,
    bucket_starts,
    busiest_services,
    floor_time,
    frequent_errors,
    top_patterns,
    volume_by_level,
    volume_series,
)
from analytics.serializers import (
    StatsQuerySerializer,
    StatsSerializer,
    default_bucket,
)
from logs.levels import Level
from logs.permissions import IsReader

_time_field = serializers.DateTimeField()


class StatsView(APIView):
    """Count stored log entries per time bucket, from the minute rollups.

    Query parameters: `service`, `level` (minimum level), `since` and `until`
    (ISO 8601, default the last hour) and `bucket` (minute, hour or day,
    chosen from the range when missing). Buckets without entries count 0.
    Counts lag the newest entries by up to a minute, until the next rollup.
    """

    permission_classes = [IsReader]

    @extend_schema(
        summary="Count entries per time bucket",
        parameters=[StatsQuerySerializer],
        responses={200: StatsSerializer},
    )
    def get(self, request):
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        level = params.get("level")
        series = volume_series(
            params["since"],
            params["until"],
            params["bucket"],
            service=params.get("service"),
            min_level=level.value if level is not None else None,
        )
        return Response(
            {
                "bucket": params["bucket"],
                "since": _time_field.to_representation(params["since"]),
                "until": _time_field.to_representation(params["until"]),
                "series": [
                    {"time": _time_field.to_representation(time), "count": count}
                    for time, count in series
                ],
            }
        )


# The overview's range choices: the length and the bucket of the charts.
OVERVIEW_RANGES = {
    "1h": (timedelta(hours=1), "minute"),
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "hour"),
}
DEFAULT_OVERVIEW_RANGE = "24h"


# The overview lists at most this many open alerts, the most recent first.
OPEN_ALERTS_SHOWN = 50


def _admin_url(name: str, *args) -> str | None:
    # The link is left out while that admin page is not registered.
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _top_patterns(since: datetime, until: datetime) -> list[dict]:
    rows = []
    for pattern in top_patterns(since, until):
        entries_url = _admin_url("admin:logs_log_changelist")
        rows.append(
            {
                "pattern": pattern,
                "change_url": _admin_url("admin:logs_pattern_change", pattern.pk),
                "entries_url": entries_url and f"{entries_url}?pattern={pattern.pk}",
            }
        )
    return rows


def _open_alerts() -> list[dict]:
    alerts = Alert.objects.filter(state__in=Alert.OPEN_STATES).select_related("rule")
    return [
        {
            "alert": alert,
            "change_url": _admin_url("admin:alerts_alert_change", alert.pk),
        }
        for alert in alerts.order_by("-first_seen")[:OPEN_ALERTS_SHOWN]
    ]


def overview_range(range_name: str, now: datetime) -> tuple[datetime, datetime, str]:
    """Return the (since, until, bucket) that the overview draws for a range."""
    span, bucket = OVERVIEW_RANGES[range_name]
    # The last bucket is the current, still incomplete one, so the range
    # ends now and starts where that many whole buckets back begin.
    return floor_time(now, bucket) + BUCKET_SIZES[bucket] - span, now, bucket


# A chosen range draws at most this many columns; a longer one is cut to
# its most recent part.
MAX_CUSTOM_COLUMNS = 400


def _parse_moment(text: str | None, end_of_day: bool = False) -> datetime | None:
    """Read an ISO 8601 time or date; a naive one is UTC. None if unreadable."""
    if not text:
        return None
    try:
        # A plain date first: parse_datetime would also take it, as midnight.
        day = parse_date(text)
        moment = parse_datetime(text) if day is None else None
    except ValueError:
        return None
    if day is not None:
        moment = datetime.combine(day, time.min)
        if end_of_day:
            try:
                moment += timedelta(days=1)
            except OverflowError:
                # The day after 9999-12-31 is beyond what a datetime holds.
                return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


def custom_range(
    since_text: str | None, until_text: str | None, now: datetime
) -> tuple[datetime, datetime, str] | None:
    """Return the (since, until, bucket) of a range given by the page's form.

    Either end may be left out: the range then runs from the start to now,
    or spans a day up to the end. None when neither end can be read or the
    range is empty, so the page falls back to its default range.
    """
    since = _parse_moment(since_text)
    until = _parse_moment(until_text, end_of_day=True)
    if since is None and until is None:
        return None
    until = until or now
    since = since or until - timedelta(days=1)
    if since >= until:
        return None
    bucket = default_bucket(until - since)
    columns = (until - since) / BUCKET_SIZES[bucket]
    if columns > MAX_CUSTOM_COLUMNS:
        since = until - MAX_CUSTOM_COLUMNS * BUCKET_SIZES[bucket]
    return since, until, bucket


@staff_member_required
def overview(request):
    """Draw log volume, busy services, frequent errors, top patterns and open alerts."""
    range_name = request.GET.get("range", DEFAULT_OVERVIEW_RANGE)
    now = timezone.now()
    since_text, until_text = request.GET.get("since"), request.GET.get("until")
    chosen = custom_range(since_text, until_text, now)
    range_error = ""
    if range_name not in OVERVIEW_RANGES:
        if chosen is None:
            range_error = (
                f"Invalid range {range_name!r}: choose one of "
                f"{', '.join(OVERVIEW_RANGES)}. Showing the last "
                f"{DEFAULT_OVERVIEW_RANGE} instead."
            )
        range_name = DEFAULT_OVERVIEW_RANGE
    if chosen is not None:
        range_name = "custom"
        since, until, bucket = chosen
    else:
        since, until, bucket = overview_range(range_name, now)
        if since_text or until_text:
            range_error = (
                f"Invalid range from {since_text or '-'!r} to {until_text or '-'!r}: "
                "give dates as YYYY-MM-DD, the first before the second. "
                f"Showing the last {range_name} instead."
            )

    starts = bucket_starts(since, until, bucket)
    by_level = volume_by_level(since, until, bucket)
    services = busiest_services(since, until)
    totals = {level: sum(counts) for level, counts in by_level.items()}
    context = {
        "range_name": range_name,
        "range_names": list(OVERVIEW_RANGES),
        "since": since,
        "until": until,
        "bucket": bucket,
        "volume_chart": charts.stacked_columns(starts, by_level, bucket),
        "services_chart": charts.stacked_rows(services),
        "errors": frequent_errors(since, until),
        "patterns": _top_patterns(since, until),
        "open_alerts": _open_alerts(),
        "open_alert_count": Alert.objects.filter(state__in=Alert.OPEN_STATES).count(),
        "legend": [(level.name, color) for level, color in charts.LEVEL_COLORS.items()],
        "total": sum(totals.values()),
        "error_total": sum(
            count for level, count in totals.items() if level >= Level.ERROR
        ),
    }
    context["range_error"] = range_error
    # A page still renders for an unreadable range, with 400 and the reason.
    status = 400 if range_error else 200
    return render(request, "analytics/overview.html", context, status=status)
