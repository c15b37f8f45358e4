import json
from datetime import datetime
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.paginator import Paginator
from django.db import connection, models
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from logs.filters import MAX_BIGINT
from logs.models import ApiKey, Log, Pattern

# The changelist counts at most this many rows, so a filter over a large
# table still returns quickly. Beyond that the page count stops growing.
COUNT_LIMIT = 10_000


class CappedCountPaginator(Paginator):
    """A paginator whose count stops at COUNT_LIMIT + 1 rows."""

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: COUNT_LIMIT + 1].count()


class ServiceFilter(admin.SimpleListFilter):
    title = "service"
    parameter_name = "service_name"

    def lookups(self, request, model_admin):
        return [(name, name) for name in distinct_services()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(service_name=self.value())
        return queryset


def parse_pattern_id(value: str | None) -> int | None:
    """Return a valid pattern id from a query parameter, or None."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 1 <= number <= MAX_BIGINT else None


class PatternFilter(admin.SimpleListFilter):
    """Entries of one pattern, chosen by a link from the pattern admin.

    Only the chosen pattern is listed as a choice, so the page never loads
    the whole pattern table; without a choice the filter is hidden.
    """

    title = "pattern"
    parameter_name = "pattern"

    def lookups(self, request, model_admin):
        # Django applies a filter only while it has a choice to show, so an
        # invalid value is listed too and queryset() rejects it.
        value = self.value()
        if value is None:
            return []
        pattern_id = parse_pattern_id(value)
        pattern = None
        if pattern_id is not None:
            pattern = Pattern.objects.filter(pk=pattern_id).first()
        return [(value, str(pattern) if pattern else f"pattern {value}")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        pattern_id = parse_pattern_id(self.value())
        if pattern_id is None:
            raise IncorrectLookupParameters(
                f"Invalid pattern id {self.value()!r}: use a whole number."
            )
        return queryset.filter(pattern_id=pattern_id)


def pattern_entries_url(pattern_id: int) -> str:
    """Return the Log changelist filtered to one pattern's entries."""
    query = urlencode({PatternFilter.parameter_name: pattern_id})
    return f"{reverse('admin:logs_log_changelist')}?{query}"


def distinct_services(limit: int = 200) -> list[str]:
    """List service names by walking the service index one name at a time.

    A plain SELECT DISTINCT reads every row. This recursive query jumps from
    one name to the next through the index, so it costs one index lookup per
    service.
    """
    table = connection.ops.quote_name(Log._meta.db_table)
    sql = f"""
        WITH RECURSIVE names AS (
            (SELECT service_name FROM {table} ORDER BY service_name LIMIT 1)
            UNION ALL
            SELECT (SELECT service_name FROM {table}
                    WHERE service_name > names.service_name
                    ORDER BY service_name LIMIT 1)
            FROM names WHERE names.service_name IS NOT NULL
        )
        SELECT service_name FROM names WHERE service_name IS NOT NULL LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def next_period_start(start: datetime, kind: str) -> datetime | None:
    """Return the start of the year, month or day after the one at `start`.

    Return None after the last period that a datetime can hold, in year 9999.
    """
    try:
        return _next_period_start(start, kind)
    except (ValueError, OverflowError):
        return None


def _next_period_start(start: datetime, kind: str) -> datetime:
    if kind == "year":
        return start.replace(year=start.year + 1)
    if kind == "month":
        if start.month == 12:
            return start.replace(year=start.year + 1, month=1)
        return start.replace(month=start.month + 1)
    return timezone.make_aware(
        datetime.fromordinal(start.toordinal() + 1), start.tzinfo
    )


def period_start(moment: datetime, kind: str) -> datetime:
    local = timezone.localtime(moment)
    start = datetime(local.year, 1, 1)
    if kind in ("month", "day"):
        start = start.replace(month=local.month)
    if kind == "day":
        start = start.replace(day=local.day)
    return timezone.make_aware(start, local.tzinfo)


class LogAdminQuerySet(models.QuerySet):
    """Log rows for the admin, whose date hierarchy lists periods cheaply.

    The date hierarchy lists the distinct years, months or days of the
    listed rows. Django finds them with SELECT DISTINCT date_trunc(...), which
    reads every row: seconds on a table of millions. Here each period costs
    one ORDER BY timestamp LIMIT 1 query that starts at the end of the
    previous period, which a timestamp index answers in one step.

    NOTE: with a search term each lookup repeats the text search, so a month
    with entries on many days costs one search per such day.
    """

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        if field_name != "timestamp" or kind not in ("year", "month", "day"):
            return super().datetimes(field_name, kind, order, tzinfo)
        if tzinfo is not None or order != "ASC":
            return super().datetimes(field_name, kind, order, tzinfo)
        return list(self._period_starts(kind))

    def _period_starts(self, kind: str):
        times = self.order_by("timestamp").values_list("timestamp", flat=True)
        first = times.first()
        while first is not None:
            start = period_start(first, kind)
            yield start
            following = next_period_start(start, kind)
            if following is None:
                return
            first = times.filter(timestamp__gte=following).first()


class ReadOnlyAdminMixin:
    """An admin that shows rows but never adds, changes or deletes them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Log)
class LogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["timestamp", "level_label", "service_name", "short_message"]
    list_filter = ["level", ServiceFilter, PatternFilter]
    date_hierarchy = "timestamp"
    search_fields = ["message"]
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    fields = [
        "id",
        "timestamp",
        "received_at",
        "level_label",
        "service_name",
        "message",
        "metadata_json",
        "pattern_link",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return LogAdminQuerySet(model=Log, query=queryset.query, using=queryset.db)

    @admin.display(description="level", ordering="level")
    def level_label(self, obj: Log) -> str:
        return obj.level_name

    @admin.display(description="message")
    def short_message(self, obj: Log) -> str:
        first_line = obj.message.split("\n", 1)[0]
        return first_line[:200] + ("…" if len(first_line) > 200 else "")

    @admin.display(description="metadata")
    def metadata_json(self, obj: Log) -> str:
        text = json.dumps(obj.metadata, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)

    @admin.display(description="pattern")
    def pattern_link(self, obj: Log) -> str:
        if obj.pattern_id is None:
            return "-"
        url = reverse("admin:logs_pattern_change", args=[obj.pattern_id])
        return format_html(
            '<a href="{}">pattern {}</a> (<a href="{}">its entries</a>)',
            url,
            obj.pattern_id,
            pattern_entries_url(obj.pattern_id),
        )


@admin.register(Pattern)
class PatternAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Message templates, most entries first; sort by first seen for the newest."""

    list_display = [
        "template",
        "service_name",
        "count",
        "first_seen",
        "last_seen",
        "entries_link",
    ]
    list_display_links = ["template"]
    list_filter = ["service_name"]
    search_fields = ["template", "service_name"]
    ordering = ["-count", "id"]
    show_full_result_count = False
    list_per_page = 100
    fields = [
        "id",
        "service_name",
        "template",
        "count",
        "first_seen",
        "last_seen",
        "entries_link",
    ]
    readonly_fields = fields

    @admin.display(description="entries")
    def entries_link(self, obj: Pattern) -> str:
        return format_html('<a href="{}">entries</a>', pattern_entries_url(obj.pk))


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "kind",
        "services_label",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["kind"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    fields = [
        "name",
        "prefix",
        "kind",
        "services",
        "rate_limit",
        "rate_burst",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    search_fields = ["name", "prefix"]

    @admin.display(description="services")
    def services_label(self, obj: ApiKey) -> str:
        return ", ".join(obj.services) or "all"

    def has_add_permission(self, request) -> bool:
        # A key's secret is printed once by `manage.py create_api_key`.
        return False
