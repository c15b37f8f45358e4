from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response

from alerts import operations
from alerts.filters import AlertFilter, AlertRuleFilter, NotificationDeliveryFilter
from alerts.models import Alert, AlertRule, NotificationChannel, NotificationDelivery
from alerts.notifications import send_test_notification
from alerts.serializers import (
    SILENCE_REQUEST_SCHEMA,
    AlertRuleSerializer,
    AlertSerializer,
    NotificationChannelSerializer,
    NotificationDeliverySerializer,
    SilenceSerializer,
)
from logplatform.schema import error
from logs.permissions import IsReader, IsStaffToChange

CONFLICT = error("The alert's state does not allow this change.")


class AlertCursorPagination(CursorPagination):
    """Newest alert first, a page at a time by cursor."""

    ordering = ("-first_seen", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class SettingsPagination(PageNumberPagination):
    """Pages of rules or channels, which are few and listed by name."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class DeliveryCursorPagination(AlertCursorPagination):
    ordering = ("-created_at", "-id")


def _silence_until(request):
    serializer = SilenceSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["until"]


def _conflict(error: operations.OperationError) -> Response:
    return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)


class AlertRuleViewSet(viewsets.ModelViewSet):
    """Alert rules. Readers may read them; staff may change them.

    `POST /api/rules/<id>/silence/` with `{"for": "1h"}` or `{"until": TIME}`
    silences every alert of the rule; `{"until": null}` lifts the silence.
    """

    queryset = (
        AlertRule.objects.prefetch_related("channels")
        .with_open_alert_count()
        .order_by("name")
    )
    serializer_class = AlertRuleSerializer
    permission_classes = [IsStaffToChange]
    pagination_class = SettingsPagination
    filterset_class = AlertRuleFilter

    @extend_schema(
        summary="Silence every alert of the rule",
        request={"application/json": SILENCE_REQUEST_SCHEMA},
        responses={200: AlertRuleSerializer},
    )
    @action(detail=True, methods=["post"], serializer_class=SilenceSerializer)
    def silence(self, request, pk=None):
        rule = self.get_object()
        try:
            operations.silence(rule, _silence_until(request))
        except operations.OperationError as error:
            raise ValidationError({"until": [str(error)]}) from error
        return Response(AlertRuleSerializer(rule, context={"request": request}).data)


class NotificationChannelViewSet(viewsets.ModelViewSet):
    """Notification channels. Staff may change them and send a test."""

    queryset = NotificationChannel.objects.all()
    serializer_class = NotificationChannelSerializer
    permission_classes = [IsStaffToChange]
    pagination_class = SettingsPagination

    @extend_schema(
        summary="Send a test notification",
        request=None,
        responses={202: NotificationDeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Queue a test notification; its delivery shows how it went."""
        delivery = send_test_notification(self.get_object())
        data = NotificationDeliverySerializer(delivery).data
        return Response(data, status=status.HTTP_202_ACCEPTED)


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts, newest first, with actions to acknowledge, resolve and silence.

    Silence with `{"for": "1h"}` (or 30m, 1d, 2w) or `{"until": TIME}`;
    `{"until": null}` lifts it.
    """

    queryset = Alert.objects.select_related("rule", "acknowledged_by")
    serializer_class = AlertSerializer
    permission_classes = [IsReader]
    pagination_class = AlertCursorPagination
    filterset_class = AlertFilter

    def _respond(self, alert):
        alert.refresh_from_db()
        return Response(self.get_serializer(alert).data)

    @extend_schema(
        summary="Acknowledge a firing alert",
        request=None,
        responses={200: AlertSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        try:
            alert = operations.acknowledge(self.get_object(), request.user)
        except operations.OperationError as error:
            return _conflict(error)
        return self._respond(alert)

    @extend_schema(
        summary="Resolve an open alert by hand",
        request=None,
        responses={200: AlertSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        try:
            alert = operations.resolve_by_hand(self.get_object(), request.user)
        except operations.OperationError as error:
            return _conflict(error)
        return self._respond(alert)

    @extend_schema(
        summary="Silence an alert",
        request={"application/json": SILENCE_REQUEST_SCHEMA},
        responses={200: AlertSerializer},
    )
    @action(detail=True, methods=["post"], serializer_class=SilenceSerializer)
    def silence(self, request, pk=None):
        alert = self.get_object()
        try:
            operations.silence(alert, _silence_until(request))
        except operations.OperationError as error:
            raise ValidationError({"until": [str(error)]}) from error
        return Response(AlertSerializer(alert).data)


class NotificationDeliveryViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Every notification sent or being sent, with its attempts and last error."""

    queryset = NotificationDelivery.objects.select_related("channel")
    serializer_class = NotificationDeliverySerializer
    permission_classes = [IsReader]
    pagination_class = DeliveryCursorPagination
    filterset_class = NotificationDeliveryFilter
