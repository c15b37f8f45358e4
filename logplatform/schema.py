"""OpenAPI schema generation: the API-key scheme and the errors every view returns.

drf-spectacular describes each view's success response from its serializer.
The error responses that come from DRF itself rather than from the view
(authentication, permissions, the body parser, filters and cursors) are
added here, so each view's annotation lists only what it returns itself.
"""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    """The body of every error response that DRF builds from an exception."""

    detail = serializers.CharField()


# The body of a 400 for invalid fields: each field name (or
# "non_field_errors") maps to a list of messages.
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}

BAD_REQUEST = OpenApiResponse(
    {
        "oneOf": [
            {"$ref": "#/components/schemas/Error"},
            FIELD_ERRORS_SCHEMA,
        ]
    },
    description="Invalid JSON, or invalid fields or query parameters.",
)
BODY_METHODS = {"POST", "PUT", "PATCH"}


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "logs.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py create_api_key`.",
        }


class AutoSchema(openapi.AutoSchema):
    """Add the error responses that DRF returns before or around a view."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        # ErrorSerializer has to be registered before BAD_REQUEST refers to it.
        self.resolve_serializer(ErrorSerializer, direction)
        for code, response in self._framework_errors().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    response, code, direction=direction
                )
        return responses

    def _framework_errors(self) -> dict[str, OpenApiResponse]:
        errors: dict[str, OpenApiResponse] = {}
        has_body = self.method in BODY_METHODS
        if has_body or self._has_query_filters():
            errors["400"] = BAD_REQUEST
        if self._needs_login():
            errors["401"] = error("Missing or invalid credentials.")
            errors["403"] = error("These credentials may not do this.")
        if "{" in self.path or self._is_paginated_list():
            errors["404"] = error("No such object, or an invalid page or cursor.")
        if has_body:
            errors["413"] = error("The request body is larger than allowed.")
            errors["415"] = error("The body is not application/json.")
        # gunicorn answers this itself, in HTML, before Django sees the request.
        errors["414"] = OpenApiResponse(
            description="The request line, path and query string together, is "
            "longer than the server accepts (4,094 bytes under gunicorn)."
        )
        return errors

    def _needs_login(self) -> bool:
        permissions = self.view.get_permissions()
        return not all(isinstance(permission, AllowAny) for permission in permissions)

    def _has_query_filters(self) -> bool:
        if self.method != "GET":
            return False
        if getattr(self.view, "filterset_class", None) is not None:
            return True
        # Query parameters declared with extend_schema, as OpenApiParameter
        # objects or a serializer, are validated by the view.
        return bool(self.get_override_parameters())

    def _is_paginated_list(self) -> bool:
        # An unknown page number or cursor raises NotFound.
        return (
            self.method == "GET"
            and self._is_list_view()
            and getattr(self.view, "pagination_class", None) is not None
        )
