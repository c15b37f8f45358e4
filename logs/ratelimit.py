"""Per-key intake rate limits, kept in Redis so every API process shares them.

Each ingest key has a token bucket that holds up to `burst` entries and
refills at `rate` entries per second. A request takes as many tokens as it
has entries, all or none, so a request over the limit is rejected whole.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from redis.commands.core import Script

logger = logging.getLogger(__name__)

KEY_PREFIX = "logplatform:ratelimit:"

# Atomic in Redis, so two API processes never spend the same tokens. The
# clock is Redis's own, so API hosts with skewed clocks agree. It returns
# {1, 0} when the entries are taken, or {0, ms} with the milliseconds until
# the bucket holds enough of them.
_TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local taken = 0
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  taken = 1
else
  wait_ms = math.ceil((cost - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {taken, wait_ms}
"""


@dataclass(frozen=True)
class Limit:
    """Entries per second, and the maximum entries taken at once after a pause."""

    rate: int
    burst: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # Whole seconds until the same request can succeed, when not allowed.
    retry_after: int = 0


# One client and registered script per Redis URL, shared by the threads of
# an API process. Tests switch REDIS_URL to their own database.
_clients: dict[str, tuple[redis.Redis, Script]] = {}
_clients_lock = threading.Lock()

# While Redis is failing, the failure is logged at most this often.
FAILURE_LOG_SECONDS = 60.0
_last_failure_log = -math.inf
_failures_unlogged = 0


def _script() -> Script:
    url = settings.REDIS_URL
    with _clients_lock:
        if url not in _clients:
            # Short timeouts: a slow Redis must not hold up intake for long.
            client = redis.Redis.from_url(
                url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            _clients[url] = (client, client.register_script(_TAKE_SCRIPT))
        return _clients[url][1]


def limit_for(rate_limit: int | None, rate_burst: int | None) -> Limit | None:
    """Return a key's limit from its own fields and the settings; None if none."""
    rate = settings.INTAKE_RATE_LIMIT if rate_limit is None else rate_limit
    if rate <= 0:
        return None
    burst = settings.INTAKE_RATE_BURST if rate_burst is None else rate_burst
    return Limit(rate=rate, burst=max(burst, 1))


def take(key_id: int, limit: Limit, entries: int) -> Decision:
    """Take `entries` from the key's bucket, or none if it contains too few.

    When Redis cannot be reached the request is allowed and the error
    logged, because intake itself does not need Redis while Kafka works.
    """
    script = _script()
    try:
        taken, wait_ms = script(
            keys=[f"{KEY_PREFIX}{key_id}"], args=[limit.rate, limit.burst, entries]
        )
    except redis.RedisError as error:
        _log_failure(key_id, error)
        return Decision(allowed=True)
    if taken:
        return Decision(allowed=True)
    return Decision(allowed=False, retry_after=max(1, math.ceil(wait_ms / 1000)))


def _log_failure(key_id: int, error: Exception) -> None:
    global _last_failure_log, _failures_unlogged
    now = time.monotonic()
    with _clients_lock:
        if now - _last_failure_log < FAILURE_LOG_SECONDS:
            _failures_unlogged += 1
            return
        skipped, _failures_unlogged = _failures_unlogged, 0
        _last_failure_log = now
    logger.warning(
        "Rate limit of API key %s not checked because Redis failed (%d more "
        "such failures since the last report): %s",
        key_id,
        skipped,
        error,
    )
