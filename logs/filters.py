import json

import django_filters
from django import forms
from django.db.models import Q
from rest_framework.exceptions import ValidationError

from logs.levels import Level, parse_level
from logs.models import Log

# The largest value of a PostgreSQL bigint, the type of Pattern.id.
MAX_BIGINT = 2**63 - 1


class IdFilter(django_filters.Filter):
    """A whole-number id; anything else is a 400 for the parameter."""

    field_class = forms.IntegerField


class LogFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service_name")
    pattern = IdFilter(
        field_name="pattern_id",
        min_value=1,
        max_value=MAX_BIGINT,
        label="Pattern id, as listed by /api/patterns/",
    )
    level = django_filters.CharFilter(
        method="filter_min_level",
        label="Minimum level (DEBUG, INFO, WARNING, ERROR, CRITICAL or an alias)",
    )
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt")
    q = django_filters.CharFilter(
        field_name="message", lookup_expr="icontains", label="Text in the message"
    )
    metadata_key = django_filters.CharFilter(
        method="filter_metadata", label="Metadata key"
    )
    metadata_value = django_filters.CharFilter(
        method="filter_noop", label="Metadata value (with metadata_key)"
    )

    class Meta:
        model = Log
        fields = []

    def filter_min_level(self, queryset, name, value):
        level = parse_level(value)
        if level is None:
            choices = ", ".join(Level.names)
            raise ValidationError(
                {"level": f"{value!r} is not a known level; use one of {choices}."}
            )
        return queryset.filter(level__gte=level.value)

    def filter_metadata(self, queryset, name, key):
        raw_value = self.data.get("metadata_value")
        if raw_value is None:
            return queryset.filter(metadata__has_key=key)
        # A value such as 500 or true matches both the JSON number or boolean
        # and the string, because clients store either form. Both branches
        # use containment, which the GIN index on metadata serves.
        condition = Q(metadata__contains={key: raw_value})
        try:
            typed = json.loads(raw_value)
        except ValueError:
            typed = raw_value
        if typed != raw_value:
            condition |= Q(metadata__contains={key: typed})
        return queryset.filter(condition)

    def filter_noop(self, queryset, name, value):
        # Read by filter_metadata together with the key.
        return queryset
