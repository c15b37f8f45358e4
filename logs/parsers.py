"""Request body parsing for the API, with a size limit and a fast decoder."""

import orjson
from django.conf import settings
from rest_framework import exceptions, parsers, status


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class JSONBodyParser(parsers.BaseParser):
    """Parse JSON with orjson, rejecting bodies over INTAKE_MAX_BODY_BYTES."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.INTAKE_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and length.isdigit() and int(length) > limit:
            raise RequestTooLarge(
                f"The request body is {int(length)} bytes; the limit is {limit} bytes."
            )
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestTooLarge(
                f"The request body exceeds the limit of {limit} bytes."
            )
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(
                f"The request body is not valid JSON: {exc}"
            ) from None
