import django_filters

from alerts.models import Alert, AlertRule, NotificationDelivery


class AlertRuleFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service_name")

    class Meta:
        model = AlertRule
        fields = ["enabled", "kind", "severity", "service"]


class AlertFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(
        method="filter_open", label="Open (not resolved)"
    )
    since = django_filters.IsoDateTimeFilter(field_name="first_seen", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="first_seen", lookup_expr="lt")

    class Meta:
        model = Alert
        fields = ["rule", "state", "severity", "group", "open", "since", "until"]

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        if value:
            return queryset.filter(state__in=Alert.OPEN_STATES)
        return queryset.exclude(state__in=Alert.OPEN_STATES)


class NotificationDeliveryFilter(django_filters.FilterSet):
    class Meta:
        model = NotificationDelivery
        fields = ["channel", "alert", "event", "status"]
