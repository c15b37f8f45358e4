"""Read the rollup tables for the stats API and the overview page.

Every function takes a range of event times and counts the rollup minutes
that start within it, so times are effectively rounded to whole minutes.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Max, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Trunc

from analytics.models import (
    ErrorMessageRollup,
    MinuteRollup,
    PatternHourRollup,
    PatternMinuteRollup,
)
from logs.levels import Level
from logs.models import Pattern

BUCKET_SIZES = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}


def floor_time(moment: datetime, bucket: str) -> datetime:
    """Round a time down to the start of its minute, hour or day in UTC."""
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if bucket in ("hour", "day"):
        moment = moment.replace(minute=0)
    if bucket == "day":
        moment = moment.replace(hour=0)
    return moment


def bucket_starts(since: datetime, until: datetime, bucket: str) -> list[datetime]:
    """List the starts of the buckets that overlap [since, until)."""
    step = BUCKET_SIZES[bucket]
    start = floor_time(since, bucket)
    starts = []
    while start < until:
        starts.append(start)
        start += step
    return starts


def bucket_count(since: datetime, until: datetime, bucket: str) -> int:
    """Return how many buckets `bucket_starts` would list, without listing them."""
    start = floor_time(since, bucket)
    if start >= until:
        return 0
    return -(-(until - start) // BUCKET_SIZES[bucket])


def minute_rows(
    since: datetime,
    until: datetime,
    service: str | None = None,
    min_level: int | None = None,
) -> QuerySet[MinuteRollup]:
    rows = MinuteRollup.objects.filter(minute__gte=since, minute__lt=until)
    if service:
        rows = rows.filter(service_name=service)
    if min_level is not None:
        rows = rows.filter(level__gte=min_level)
    return rows


def _bucketed(rows: QuerySet, bucket: str) -> QuerySet:
    # Trunc with a UTC tzinfo makes PostgreSQL truncate in UTC whatever the
    # session time zone, so a day starts at midnight UTC.
    return rows.annotate(time=Trunc("minute", bucket, tzinfo=UTC))


def volume_series(
    since: datetime,
    until: datetime,
    bucket: str,
    service: str | None = None,
    min_level: int | None = None,
) -> list[tuple[datetime, int]]:
    """Count entries per bucket, with a zero for every bucket without any."""
    rows = _bucketed(minute_rows(since, until, service, min_level), bucket)
    totals = dict(
        rows.values("time").annotate(total=Sum("count")).values_list("time", "total")
    )
    return [
        (start, totals.get(start, 0)) for start in bucket_starts(since, until, bucket)
    ]


def volume_by_level(
    since: datetime, until: datetime, bucket: str
) -> dict[Level, list[int]]:
    """Count entries per level and bucket, zero-filled, for levels seen in the range.

    Each list is aligned with `bucket_starts(since, until, bucket)`.
    """
    starts = bucket_starts(since, until, bucket)
    position = {start: index for index, start in enumerate(starts)}
    rows = (
        _bucketed(minute_rows(since, until), bucket)
        .values("time", "level")
        .annotate(total=Sum("count"))
        .values_list("time", "level", "total")
    )
    series: dict[Level, list[int]] = {}
    for time, level, total in rows:
        counts = series.setdefault(Level(level), [0] * len(starts))
        counts[position[time]] += total
    return dict(sorted(series.items()))


@dataclass
class ServiceVolume:
    service_name: str
    total: int = 0
    by_level: dict[Level, int] = field(default_factory=dict)


def busiest_services(
    since: datetime, until: datetime, limit: int = 10
) -> list[ServiceVolume]:
    """Return the services with the most entries in the range, most first."""
    rows = (
        minute_rows(since, until)
        .values("service_name", "level")
        .annotate(total=Sum("count"))
        .values_list("service_name", "level", "total")
    )
    services: dict[str, ServiceVolume] = defaultdict(lambda: ServiceVolume(""))
    for service_name, level, total in rows:
        volume = services[service_name]
        volume.service_name = service_name
        volume.total += total
        volume.by_level[Level(level)] = total
    ranked = sorted(services.values(), key=lambda v: (-v.total, v.service_name))
    return ranked[:limit]


def frequent_errors(since: datetime, until: datetime, limit: int = 10) -> list[dict]:
    """Return the most frequent ERROR and CRITICAL messages per service.

    Each row has service_name, fingerprint, count, max_level (a Level),
    example_message and last_minute, the last minute the message was seen.
    """
    rows = (
        ErrorMessageRollup.objects.filter(minute__gte=since, minute__lt=until)
        .values("service_name", "fingerprint")
        .annotate(
            count=Sum("count"),
            max_level=Max("max_level"),
            example_message=Max("example_message"),
            last_minute=Max("minute"),
        )
        .order_by("-count", "service_name", "fingerprint")[:limit]
    )
    return [row | {"max_level": Level(row["max_level"])} for row in rows]


@dataclass
class PatternRangeParts:
    """A range split into the whole hours it covers and the minutes at its ends.

    A minute row counts in [since, until) when its minute is in that range.
    The whole hours [first_hour, last_hour) come from the hour rollup, and
    the minutes [since, first_hour) and [last_hour, until) from the minute
    rollup. Without a whole hour, first_hour equals last_hour.
    """

    since: datetime
    until: datetime
    first_hour: datetime
    last_hour: datetime

    @classmethod
    def split(cls, since: datetime, until: datetime) -> "PatternRangeParts":
        first_hour = floor_time(since, "hour")
        last_hour = floor_time(until, "hour")
        if first_hour < since:
            # A range that starts within the last hour of year 9999 contains
            # no whole hour.
            try:
                first_hour += timedelta(hours=1)
            except OverflowError:
                first_hour = last_hour
        if last_hour <= first_hour:
            first_hour = last_hour = until
        return cls(since, until, first_hour, last_hour)

    def querysets(self, pattern_filter: dict) -> list[QuerySet]:
        """Return the rollup rows of the range, each with `pattern` and `count`."""
        parts = [
            PatternMinuteRollup.objects.filter(
                minute__gte=self.since, minute__lt=self.first_hour, **pattern_filter
            ),
            PatternMinuteRollup.objects.filter(
                minute__gte=self.last_hour, minute__lt=self.until, **pattern_filter
            ),
        ]
        if self.first_hour < self.last_hour:
            parts.append(
                PatternHourRollup.objects.filter(
                    hour__gte=self.first_hour, hour__lt=self.last_hour, **pattern_filter
                )
            )
        return parts


def count_in_range(since: datetime, until: datetime) -> Coalesce:
    """Build an annotation for Pattern rows: their entries in the range, or 0.

    Each subquery reads one pattern's rows from a (pattern, time) index
    alone. Whole hours come from the hour rollup, so a range of days reads
    about 24 rows per pattern and day instead of up to 1,440.
    """
    total = None
    for rows in PatternRangeParts.split(since, until).querysets(
        {"pattern": OuterRef("pk")}
    ):
        part_sum = (
            rows.order_by()
            .values("pattern")
            .annotate(total=Sum("count"))
            .values("total")
        )
        part = Coalesce(Subquery(part_sum), Value(0))
        total = part if total is None else total + part
    return total


def top_patterns(since: datetime, until: datetime, limit: int = 10) -> list[Pattern]:
    """Return the patterns with the most entries in the range, most first.

    Each pattern carries `count_in_range`. Patterns without entries in the
    range are left out.
    """
    totals: dict[int, int] = defaultdict(int)
    for rows in PatternRangeParts.split(since, until).querysets({}):
        sums = rows.order_by().values("pattern").annotate(total=Sum("count"))
        for row in sums:
            totals[row["pattern"]] += row["total"]
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
    patterns = Pattern.objects.in_bulk([pattern_id for pattern_id, _ in ranked])
    listed = []
    for pattern_id, total in ranked:
        pattern = patterns.get(pattern_id)
        # A pattern row removed since the rollup ran is skipped.
        if pattern is not None:
            pattern.count_in_range = total
            listed.append(pattern)
    return listed
