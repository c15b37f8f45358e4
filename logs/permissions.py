from rest_framework.permissions import SAFE_METHODS, BasePermission

from logs.authentication import ApiKeyUser


class IsIntakeClient(BasePermission):
    """Allow requests that carry a valid ingest API key."""

    message = (
        "Sending logs needs an ingest API key: send 'Authorization: Bearer <key>'."
    )

    def has_permission(self, request, view) -> bool:
        user = request.user
        return isinstance(user, ApiKeyUser) and user.is_ingest_key


class IsReader(BasePermission):
    """Allow a signed-in Django user, or a read API key for GET, HEAD and OPTIONS.

    A read key cannot change anything, because actions such as acknowledging
    an alert record the user who took them.
    """

    message = "Reading needs a signed-in user or a read API key."
    read_only_message = "A read API key can only read. Sign in to make changes."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if isinstance(user, ApiKeyUser):
            if user.is_read_key and request.method not in SAFE_METHODS:
                # DRF reads the message after the check, from this instance.
                self.message = self.read_only_message
                return False
            return user.is_read_key
        return bool(user and user.is_authenticated)


class IsStaffToChange(IsReader):
    """Let readers read; only staff users may create, change or delete."""

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if request.method in SAFE_METHODS:
            return True
        self.message = "Changing this needs a staff account."
        return bool(request.user.is_staff)
