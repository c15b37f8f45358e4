import logging

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.response import Response

from analytics.queries import count_in_range
from logplatform.schema import AutoSchema, ErrorSerializer
from logs import ratelimit
from logs.backpressure import overload_reason
from logs.filters import LogFilter
from logs.intake import IntakeUnavailable, accept_entries, encode_entry
from logs.models import Log, Pattern
from logs.pagination import LogCursorPagination, PatternPagination
from logs.parsers import RequestTooLarge
from logs.permissions import IsIntakeClient, IsReader
from logs.serializers import (
    IntakeAcceptedSerializer,
    IntakeRejectedSerializer,
    IntakeUnavailableSerializer,
    LogEntryInputSerializer,
    LogSerializer,
    PatternQuerySerializer,
    PatternSerializer,
)
from logs.validation import BatchInvalid, EntryError, normalize_batch
from ops.metrics import ENTRIES_REJECTED

logger = logging.getLogger(__name__)


class IntakeSchema(AutoSchema):
    """Describe the intake body as one entry or a non-empty array of entries."""

    def _get_request_for_media_type(self, serializer, direction="request"):
        if self.view.action != "create":
            return super()._get_request_for_media_type(serializer, direction)
        entry = self.resolve_serializer(LogEntryInputSerializer, direction).ref
        batch = {
            "type": "array",
            "items": entry,
            "minItems": 1,
            "maxItems": settings.INTAKE_MAX_BATCH,
        }
        return {"oneOf": [entry, batch]}, True


INTAKE_RESPONSES = {
    202: IntakeAcceptedSerializer,
    400: OpenApiResponse(
        IntakeRejectedSerializer,
        description="Invalid JSON or an invalid entry; nothing was accepted.",
    ),
    429: OpenApiResponse(
        ErrorSerializer,
        description="The API key is over its rate; nothing was accepted. "
        "Retry after Retry-After seconds with the same ids.",
    ),
    503: OpenApiResponse(
        IntakeUnavailableSerializer,
        description="Neither Kafka nor Redis took the entries; nothing was "
        "accepted. Retry after Retry-After seconds with the same ids.",
    ),
}
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429, 503],
    description="Seconds to wait before sending again.",
)


@extend_schema_view(
    create=extend_schema(
        summary="Send log entries",
        request=LogEntryInputSerializer,
        responses=INTAKE_RESPONSES,
        parameters=[RETRY_AFTER],
    ),
    list=extend_schema(summary="List stored entries, newest first"),
    retrieve=extend_schema(summary="Read one stored entry"),
)
class LogViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Send log entries (POST, with an API key) and browse stored ones.

    POST takes one entry or a JSON array of entries, each with
    `service_name`, `message`, and optionally `level`, `timestamp`,
    `metadata` and `id` (a UUID that makes resending safe).
    """

    queryset = Log.objects.all()
    serializer_class = LogSerializer
    pagination_class = LogCursorPagination
    filterset_class = LogFilter
    schema = IntakeSchema()

    def get_permissions(self):
        if self.action == "create":
            return [IsIntakeClient()]
        if self.action is None:
            # No action serves this method (PUT, DELETE...): let the view
            # answer 405 rather than a misleading 403.
            return []
        return [IsReader()]

    def create(self, request, *args, **kwargs):
        items = self._entries_from(self._body_of(request))
        overloaded = overload_reason()
        if overloaded:
            ENTRIES_REJECTED.labels("overloaded").inc(len(items))
            return self._unavailable_response(
                f"Intake is overloaded ({overloaded}); nothing was accepted. "
                "Send the entries again after the delay."
            )

        try:
            entries = normalize_batch(items, timezone.now())
        except BatchInvalid as exc:
            ENTRIES_REJECTED.labels("invalid").inc(len(items))
            return self._invalid_response(exc.errors)

        rejection = self._out_of_scope(request.user, entries) or self._over_limit(
            request.user, len(entries)
        )
        if rejection:
            return rejection

        payloads = [encode_entry(entry) for entry in entries]
        oversized = self._oversized(payloads)
        if oversized:
            ENTRIES_REJECTED.labels("too_large").inc(len(items))
            return self._invalid_response(oversized)

        ids = [entry["id"] for entry in entries]
        try:
            accept_entries(entries, payloads)
        except IntakeUnavailable:
            ENTRIES_REJECTED.labels("unavailable").inc(len(items))
            return self._unavailable_response(
                "Log storage is unavailable; nothing was accepted. "
                "Send the same entries again with these ids after the delay.",
                ids=ids,
            )
        return Response(
            {"accepted": len(entries), "ids": ids}, status=status.HTTP_202_ACCEPTED
        )

    @staticmethod
    def _body_of(request):
        try:
            return request.data
        except UnsupportedMediaType:
            content_type = request.content_type or "(none)"
            raise UnsupportedMediaType(
                content_type,
                f"Content-Type {content_type[:100]} is not supported; send JSON "
                "with Content-Type: application/json.",
            ) from None

    @staticmethod
    def _entries_from(data) -> list:
        if isinstance(data, dict):
            if not data:
                raise ParseError(
                    "The request body is empty; send a JSON object or array."
                )
            return [data]
        if not isinstance(data, list):
            raise ParseError("Send a JSON object or an array of JSON objects.")
        if not data:
            raise ParseError("The array is empty; send at least one entry.")
        if len(data) > settings.INTAKE_MAX_BATCH:
            ENTRIES_REJECTED.labels("batch_too_large").inc(len(data))
            raise RequestTooLarge(
                f"The array holds {len(data)} entries; the limit is "
                f"{settings.INTAKE_MAX_BATCH} per request."
            )
        return data

    @staticmethod
    def _out_of_scope(user, entries: list[dict]) -> Response | None:
        """Return a 403 if the key may not send entries for one of the services."""
        if not user.services:
            return None
        forbidden = sorted({entry["service_name"] for entry in entries} - user.services)
        if not forbidden:
            return None
        logger.warning(
            "Rejected entries for services %s from API key %s, limited to %s",
            forbidden,
            user.key_id,
            sorted(user.services),
        )
        return Response(
            {
                "detail": f"This API key may not send entries for the service "
                f"{forbidden[0]!r}; it is limited to "
                f"{', '.join(sorted(user.services))}. "
                "Nothing from this request was accepted.",
                "services": forbidden,
            },
            status=status.HTTP_403_FORBIDDEN,
        )

    @staticmethod
    def _over_limit(user, count: int) -> Response | None:
        """Take the entries from the key's rate limit; a 429 or 413 if over it."""
        limit = ratelimit.limit_for(user.rate_limit, user.rate_burst)
        if limit is None:
            return None
        if count > limit.burst:
            return Response(
                {
                    "detail": f"The request has {count} entries; this API key may "
                    f"send at most {limit.burst} at once. Split the request. "
                    "Nothing from this request was accepted."
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        decision = ratelimit.take(user.key_id, limit, count)
        if decision.allowed:
            return None
        logger.info(
            "Rate limited API key %s: %d entries over %d per second",
            user.key_id,
            count,
            limit.rate,
        )
        return Response(
            {
                "detail": f"This API key may send {limit.rate} entries per second "
                f"(bursts of up to {limit.burst}). Nothing from this request was "
                f"accepted; send it again in {decision.retry_after} seconds."
            },
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(decision.retry_after)},
        )

    @staticmethod
    def _oversized(payloads: list[bytes]) -> list[EntryError]:
        limit = settings.KAFKA_MAX_MESSAGE_BYTES
        errors = []
        for index, payload in enumerate(payloads):
            size = len(payload)
            if size > limit:
                errors.append(
                    EntryError(
                        index,
                        "non_field_errors",
                        f"The entry is {size} bytes once encoded; "
                        f"the limit is {limit}.",
                        "too_large",
                    )
                )
        return errors

    @staticmethod
    def _unavailable_response(detail: str, **extra) -> Response:
        return Response(
            {"detail": detail, **extra},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(settings.INTAKE_RETRY_AFTER_SECONDS)},
        )

    @staticmethod
    def _invalid_response(errors: list[EntryError]) -> Response:
        first = errors[0]
        return Response(
            {
                "detail": f"Entry {first.index}, field {first.field}: {first.message} "
                "Nothing from this request was accepted.",
                "errors": [error.as_dict() for error in errors],
            },
            status=status.HTTP_400_BAD_REQUEST,
        )


@extend_schema_view(
    list=extend_schema(
        summary="List message patterns, most entries in the range first",
        parameters=[PatternQuerySerializer],
    ),
    retrieve=extend_schema(
        summary="Read one message pattern",
        parameters=[PatternQuerySerializer],
    ),
)
class PatternViewSet(viewsets.ReadOnlyModelViewSet):
    """Message templates learned per service, with their entry counts.

    `count_in_range` counts the entries of the range given by `since` and
    `until` (by event time, default the last 24 hours) from the minute
    rollups, so it lags the newest entries by up to a minute.
    """

    serializer_class = PatternSerializer
    pagination_class = PatternPagination
    permission_classes = [IsReader]
    # Query parameters are read by PatternQuerySerializer instead.
    filter_backends = []
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        query = PatternQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        patterns = Pattern.objects.annotate(
            count_in_range=count_in_range(params["since"], params["until"])
        )
        if params.get("service"):
            patterns = patterns.filter(service_name=params["service"])
        return patterns.order_by(*PatternQuerySerializer.ORDERINGS[params["ordering"]])
