"""Liveness, readiness and Prometheus metrics, outside the API's authentication."""

import hmac
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops import metrics
from ops.probes import (
    ProbeFailed,
    consumer_group_lag,
    probe_broker,
    probe_database,
    probe_kafka,
)

logger = logging.getLogger(__name__)

# A /readyz result is reused for this many seconds, so a burst of probes
# does not open a burst of connections to every dependency.
READY_REUSE_SECONDS = 1.0


@require_GET
@never_cache
def healthz(request):
    """Return 200 while the process serves requests; touches no dependency."""
    return JsonResponse({"status": "ok"})


def check_consumer_lag(timeout: float) -> None:
    lag = consumer_group_lag(timeout)
    limit = settings.READY_MAX_CONSUMER_LAG
    if lag > limit:
        raise ProbeFailed(f"lag {lag} is above READY_MAX_CONSUMER_LAG={limit}")


READY_CHECKS: dict[str, Callable[[float], None]] = {
    "database": probe_database,
    "broker": probe_broker,
    "kafka": probe_kafka,
    "consumer_lag": check_consumer_lag,
}


def run_checks(timeout: float) -> dict[str, dict[str, str]]:
    """Run every readiness check at once, each in a thread, for up to `timeout`.

    A check still running at the deadline counts as failed; its thread ends
    when the client library's own timeout (about `timeout`) passes.
    """
    results: dict[str, dict[str, str]] = {}

    def run(name: str, check: Callable[[float], None]) -> None:
        try:
            check(timeout)
            results[name] = {"status": "ok"}
        except ProbeFailed as exc:
            results[name] = {"status": "failed", "reason": str(exc)}
        except Exception as exc:
            logger.exception("Readiness check %s raised", name)
            results[name] = {"status": "failed", "reason": type(exc).__name__}

    threads = [
        threading.Thread(target=run, args=item, name=f"ready-{item[0]}", daemon=True)
        for item in READY_CHECKS.items()
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {
        name: results.get(name, {"status": "failed", "reason": "timed out"})
        for name in READY_CHECKS
    }


class _ReadyCache:
    def __init__(self):
        self.lock = threading.Lock()
        self.checked_at: float | None = None
        self.checks: dict[str, dict[str, str]] = {}

    def current(self) -> dict[str, dict[str, str]]:
        with self.lock:
            now = time.monotonic()
            if self.checked_at is None or now - self.checked_at >= READY_REUSE_SECONDS:
                self.checks = run_checks(settings.DEPENDENCY_TIMEOUT_SECONDS)
                self.checked_at = time.monotonic()
            return self.checks


_ready_cache = _ReadyCache()


@require_GET
@never_cache
def readyz(request):
    """Return 200 when every dependency responds and the consumer keeps up, else 503."""
    checks = _ready_cache.current()
    ready = all(check["status"] == "ok" for check in checks.values())
    if not ready:
        failed = ", ".join(
            f"{name}: {check['reason']}"
            for name, check in checks.items()
            if check["status"] != "ok"
        )
        logger.warning("Not ready: %s", failed)
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


def _authorized(request) -> bool:
    token = settings.METRICS_BEARER_TOKEN
    if not token:
        return True
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


@require_GET
@never_cache
def metrics_view(request):
    """Return every process's metrics in the Prometheus text format."""
    if not _authorized(request):
        response = HttpResponse(
            "Send the METRICS_BEARER_TOKEN as 'Authorization: Bearer <token>'.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
