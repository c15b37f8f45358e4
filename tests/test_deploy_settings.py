"""Production settings: `check --deploy` is clean and secrets have no default."""

import os
import secrets
import subprocess

import pytest

from tests.processes import BIN, PROJECT_ROOT

PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "logs.example.com",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


def manage(args: list[str], variables: dict[str, str]) -> subprocess.CompletedProcess:
    """Run manage.py with no DJANGO_ variable from this shell, then `variables`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DJANGO_")
    }
    return subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env | variables,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_passes():
    variables = PRODUCTION | {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}
    result = manage(["check", "--deploy", "--fail-level", "WARNING"], variables)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_flags_debug():
    """The check itself still runs, so a passing result above means something."""
    variables = {"DJANGO_DEBUG": "true", "DJANGO_ALLOWED_HOSTS": "logs.example.com"}
    result = manage(["check", "--deploy", "--fail-level", "WARNING"], variables)
    assert result.returncode != 0
    assert "security.W018" in result.stderr


@pytest.mark.parametrize(
    ("secret_key", "message"),
    [
        (None, "DJANGO_SECRET_KEY is missing or is the development key"),
        ("", "DJANGO_SECRET_KEY is missing or is the development key"),
        (
            "django-insecure-development-key-change-me-in-production",
            "DJANGO_SECRET_KEY is missing or is the development key",
        ),
        ("short-but-random-Xq3", "DJANGO_SECRET_KEY is too weak"),
        ("a" * 80, "DJANGO_SECRET_KEY is too weak"),
        ("django-insecure-" + secrets.token_urlsafe(50), "too weak"),
    ],
)
def test_production_needs_real_secret_key(secret_key, message):
    variables = dict(PRODUCTION)
    if secret_key is not None:
        variables["DJANGO_SECRET_KEY"] = secret_key
    result = manage(["check"], variables)
    assert result.returncode != 0
    assert message in result.stderr


def test_development_runs_without_secret_key():
    result = manage(["check"], {})
    assert result.returncode == 0, result.stderr


def test_plain_http_settings_apply():
    """The variables that docker-compose.yml sets turn the HTTPS parts off."""
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_SECONDS)"
    )
    variables = PRODUCTION | {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
    }
    result = manage(["shell", "--no-imports", "-c", code], variables)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed == "False False False ('HTTP_X_FORWARDED_PROTO', 'https') 31536000"


def test_bad_proxy_header_rejected():
    variables = PRODUCTION | {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https",
    }
    result = manage(["check"], variables)
    assert result.returncode != 0
    assert "is not a header name" in result.stderr
