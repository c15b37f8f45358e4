"""API-key authentication: ingest keys send logs, read keys read them."""

import hmac
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from rest_framework import authentication, exceptions, status

from logs.models import ApiKey, hash_api_key

logger = logging.getLogger(__name__)

# A verified key is trusted for this many seconds before it is looked up
# again, so intake does not query the database on every request. A revoked
# key therefore keeps working for up to this long in a running process.
CACHE_SECONDS = 30.0
# last_used_at is written at most this often per key.
LAST_USED_RESOLUTION_SECONDS = 60.0


@dataclass(frozen=True)
class ApiKeyUser:
    """The request.user of a request authenticated by an API key.

    `services` is empty when the key may send entries for any service.
    `rate_limit` and `rate_burst` are the key's own limits, None where the
    INTAKE_RATE_LIMIT and INTAKE_RATE_BURST settings apply.
    """

    key_id: int
    name: str
    kind: str = ApiKey.Kind.INGEST
    services: frozenset[str] = frozenset()
    rate_limit: int | None = None
    rate_burst: int | None = None
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False

    def __str__(self) -> str:
        return f"api key {self.name}"

    @property
    def is_read_key(self) -> bool:
        return self.kind == ApiKey.Kind.READ

    @property
    def is_ingest_key(self) -> bool:
        return self.kind == ApiKey.Kind.INGEST


class KeyStoreUnavailable(exceptions.APIException):
    """The database that holds the API keys cannot be reached."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = (
        "The API key could not be checked because the database is unavailable. "
        "Nothing was accepted; send the request again after Retry-After seconds."
    )
    default_code = "key_store_unavailable"

    def __init__(self):
        super().__init__()
        # DRF's exception handler turns `wait` into a Retry-After header.
        self.wait = settings.INTAKE_RETRY_AFTER_SECONDS


@dataclass
class _CachedKey:
    user: ApiKeyUser
    key_hash: str
    checked_at: float


_cache: dict[str, _CachedKey] = {}
_cache_lock = threading.Lock()


def _lookup(token: str) -> _CachedKey | None:
    digest = hash_api_key(token)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(digest)
    if cached and now - cached.checked_at < CACHE_SECONDS:
        return cached

    try:
        return _check(token, digest, now)
    except (OperationalError, InterfaceError) as exc:
        if cached is None:
            logger.warning(
                "API key %s… could not be checked, the database is unavailable: %s",
                token[:12],
                exc,
            )
            raise KeyStoreUnavailable() from exc
        # Intake needs no database, so a key verified before the outage
        # keeps working until the database is back.
        logger.warning(
            "API key %s… checked %.0f s ago is used again while the database "
            "is unavailable: %s",
            token[:12],
            now - cached.checked_at,
            exc,
        )
        return cached


def _check(token: str, digest: str, now: float) -> _CachedKey | None:
    """Look the key up in the database and cache the result."""
    api_key = (
        ApiKey.objects.filter(prefix=token[:12], revoked_at__isnull=True)
        .only(
            "id",
            "name",
            "kind",
            "services",
            "rate_limit",
            "rate_burst",
            "key_hash",
            "last_used_at",
        )
        .first()
    )
    # Compare digests in constant time, so response timing does not reveal
    # how much of a guessed key was right.
    if api_key is None or not hmac.compare_digest(api_key.key_hash, digest):
        with _cache_lock:
            _cache.pop(digest, None)
        return None

    _touch(api_key)
    user = ApiKeyUser(
        api_key.id,
        api_key.name,
        kind=api_key.kind,
        services=frozenset(api_key.services),
        rate_limit=api_key.rate_limit,
        rate_burst=api_key.rate_burst,
    )
    entry = _CachedKey(user, digest, now)
    with _cache_lock:
        _cache[digest] = entry
    return entry


def _touch(api_key: ApiKey) -> None:
    now = timezone.now()
    last = api_key.last_used_at
    if last is None or (now - last).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate `Authorization: Bearer <key>` against stored key hashes."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: use 'Bearer <api key>'."
            )
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None

        found = _lookup(token)
        if found is None:
            logger.warning(
                "Rejected an unknown or revoked API key from %s",
                request.META.get("REMOTE_ADDR"),
            )
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return found.user, found

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="api"'
