"""Typed readers for settings that come from environment variables.

Each reader raises ImproperlyConfigured with the variable's name when its
value cannot be parsed, so a typo fails at start-up instead of at the first
request.
"""

import os
import re
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean; use 1/0 or true/false."
    )


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {minimum}.")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Build a Django DATABASES entry from a postgres:// URL."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(
            "DATABASE_URL must start with postgres:// or postgresql://, "
            f"got {parsed.scheme!r}."
        )
    name = parsed.path.lstrip("/")
    if not name:
        raise ImproperlyConfigured("DATABASE_URL has no database name after the host.")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(name),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
    }


def env_day_overrides(name: str) -> dict[str, int]:
    """Read "name=days,other=days" into a dict; raise on a malformed item."""
    overrides: dict[str, int] = {}
    for item in env_list(name, []):
        key, sep, days = item.rpartition("=")
        key = key.strip()
        if not sep or not key:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not service=days, as in 'audit=365,debug=3'."
            )
        try:
            overrides[key] = int(days)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} has {days.strip()!r} days, not a whole number."
            ) from None
        if overrides[key] < 0:
            raise ImproperlyConfigured(f"{name}: {item!r} has negative days.")
    return overrides


# Django's own check (security.W009) requires at least this many
# characters, of which at least this many different ones.
MIN_SECRET_KEY_LENGTH = 50
MIN_SECRET_KEY_UNIQUE_CHARACTERS = 5


def check_production_secret_key(key: str, development_key: str) -> None:
    """Raise ImproperlyConfigured unless `key` is fit for a server with DEBUG off."""
    if not key or key == development_key:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is missing or is the development key, and "
            "DJANGO_DEBUG is false. Set DJANGO_SECRET_KEY to a long random "
            "string, for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    if (
        key.startswith("django-insecure")
        or len(key) < MIN_SECRET_KEY_LENGTH
        or len(set(key)) < MIN_SECRET_KEY_UNIQUE_CHARACTERS
    ):
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is too weak for DJANGO_DEBUG=false: use at "
            f"least {MIN_SECRET_KEY_LENGTH} random characters, not starting "
            "with 'django-insecure'."
        )


def proxy_ssl_header(header: str) -> tuple[str, str] | None:
    """Turn a header name such as X-Forwarded-Proto into SECURE_PROXY_SSL_HEADER."""
    header = header.strip()
    if not header:
        return None
    if not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise ImproperlyConfigured(
            f"DJANGO_SECURE_PROXY_SSL_HEADER={header!r} is not a header name; "
            "use letters, digits and dashes, as in X-Forwarded-Proto."
        )
    meta_name = "HTTP_" + header.upper().replace("-", "_")
    return meta_name, "https"
