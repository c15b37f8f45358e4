import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property
from django.utils.html import format_html

from logs.models import ApiKey, Log

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
    list_filter = ["level", ServiceFilter]
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
    ]
    readonly_fields = fields

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


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["name", "prefix"]

    def has_add_permission(self, request) -> bool:
        # A key's secret is printed once by `manage.py create_api_key`.
        return False
