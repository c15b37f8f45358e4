from rest_framework.permissions import SAFE_METHODS, BasePermission

from logs.authentication import ApiKeyUser


class IsIntakeClient(BasePermission):
    """Allow requests that carry a valid API key."""

    message = "Sending logs needs an API key: send 'Authorization: Bearer <key>'."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ApiKeyUser)


class IsLoggedInUser(BasePermission):
    """Allow requests from a signed-in Django user."""

    message = "Reading logs needs a signed-in user."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not isinstance(user, ApiKeyUser))


class IsStaffToChange(IsLoggedInUser):
    """Let signed-in users read; only staff may create, change or delete."""

    message = "Changing this needs a staff account."

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request.method in SAFE_METHODS:
            return True
        return bool(request.user.is_staff)
