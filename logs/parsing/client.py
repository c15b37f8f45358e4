"""Send entries to the intake API in batches, with retries that cannot duplicate.

Each entry gets a client-side UUID before its first attempt, and the intake
API ignores ids that it has already stored, so sending a batch again after
a lost response stores every entry once.
"""

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson
import requests

from logs.ids import uuid7
from logs.parsing.base import Entry

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "http://127.0.0.1:8000/api/logs/"
DEFAULT_BATCH_SIZE = 1000
# The intake API's default INTAKE_MAX_BATCH.
MAX_BATCH_SIZE = 10_000
# A batch closes early at this many bytes of JSON, half of the intake API's
# default INTAKE_MAX_BODY_BYTES (32 MiB), so long stack traces do not make a
# request too large.
MAX_BATCH_BYTES = 16 * 1024 * 1024
# Attempts per batch, counting the first, across all kinds of retry.
MAX_ATTEMPTS = 10
# Without Retry-After the wait starts at this many seconds and doubles
# after each failed attempt.
FIRST_BACKOFF_SECONDS = 1.0
# Upper bounds on one wait, in seconds.
MAX_RETRY_AFTER_SECONDS = 300.0
MAX_BACKOFF_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 60.0
# Statuses that mean "try again later": the intake API sends 503 with
# Retry-After when storage is down, and proxies send 502 and 504.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class IntakeError(Exception):
    """The intake API rejected a batch, or no attempt to send it succeeded."""


@dataclass(frozen=True)
class Batch:
    """Entries encoded as one JSON array, with their ids in order."""

    index: int
    ids: list[str]
    body: bytes

    @property
    def first_id(self) -> str:
        return self.ids[0]


def iter_batches(
    entries: Iterable[Entry],
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[Batch]:
    """Assign each entry an id and group the entries into encoded batches.

    A batch closes at `batch_size` entries or before it grows past
    `max_bytes`. A single entry larger than `max_bytes` forms a batch alone.

    NOTE: entries are not checked against the intake API's other limits
    (INTAKE_MAX_MESSAGE_LENGTH, KAFKA_MAX_MESSAGE_BYTES, metadata depth), so
    one oversized entry, such as a very long joined stack trace, makes the
    API reject its whole batch with 400.
    """
    index = 0
    ids: list[str] = []
    encoded: list[bytes] = []
    size = 2
    for entry in entries:
        event_id = str(uuid7())
        payload = _encode({"id": event_id, **entry})
        if encoded and size + len(payload) + 1 > max_bytes:
            yield _batch(index, ids, encoded)
            index, ids, encoded, size = index + 1, [], [], 2
        ids.append(event_id)
        encoded.append(payload)
        size += len(payload) + 1
        if len(encoded) >= batch_size:
            yield _batch(index, ids, encoded)
            index, ids, encoded, size = index + 1, [], [], 2
    if encoded:
        yield _batch(index, ids, encoded)


def _batch(index: int, ids: list[str], encoded: list[bytes]) -> Batch:
    return Batch(index, ids, b"[" + b",".join(encoded) + b"]")


def _encode(entry: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(entry)
    except TypeError:
        # orjson rejects integers beyond 64 bits, which JSON allows and which
        # JSON-lines metadata can contain.
        text = json.dumps(entry, ensure_ascii=False, separators=(",", ":"))
        return text.encode()


class IntakeClient:
    """POST batches to the intake API, waiting and retrying when it is busy.

    After a 429, 502, 503 or 504 response the client waits for the
    Retry-After seconds, or backs off exponentially without that header.
    Connection errors and timeouts back off too. Every batch gets at most
    `max_attempts` attempts. Other statuses, such as 400 for an invalid
    entry, raise IntakeError at once.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.sleep = sleep
        self.session = session or requests.Session()
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        }

    def send(self, batch: Batch) -> None:
        """Send one batch until the API accepts all of it, or raise IntakeError."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.session.post(
                    self.url,
                    data=batch.body,
                    headers=self._headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except TRANSIENT_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}"
                delay = _backoff(attempt)
            except requests.RequestException as exc:
                self._fail(batch, f"Sending batch {batch.index} failed: {exc}")
            else:
                if 200 <= response.status_code < 300:
                    _check_accepted(response, batch)
                    return
                if response.status_code not in RETRY_STATUSES:
                    self._fail(batch, _describe_rejection(response, batch))
                reason = f"HTTP {response.status_code}"
                delay = _retry_after(response)
                if delay is None:
                    delay = _backoff(attempt)

            if attempt == self.max_attempts:
                self._fail(
                    batch,
                    f"Batch {batch.index} (first id {batch.first_id}) failed after "
                    f"{attempt} attempts; the last error was {reason}.",
                )
            logger.warning(
                "Batch %d (first id %s) attempt %d of %d failed with %s; "
                "retrying in %.1f s",
                batch.index,
                batch.first_id,
                attempt,
                self.max_attempts,
                reason,
                delay,
            )
            self.sleep(delay)

    def close(self) -> None:
        self.session.close()

    @staticmethod
    def _fail(batch: Batch, message: str) -> NoReturn:
        logger.error(
            "Giving up batch %d (first id %s): %s", batch.index, batch.first_id, message
        )
        raise IntakeError(message)


def send_entries(
    entries: Iterable[Entry],
    client: IntakeClient,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Send all entries in batches, in order, and return how many were accepted.

    `on_sent` receives the size of each accepted batch. Raises IntakeError
    when a batch fails, after the batches before it were accepted.
    """
    total = 0
    for batch in iter_batches(entries, batch_size):
        client.send(batch)
        total += len(batch.ids)
        if on_sent is not None:
            on_sent(len(batch.ids))
    return total


def _backoff(attempt: int) -> float:
    return min(FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)


def _retry_after(response: requests.Response) -> float | None:
    """Return the Retry-After delay in seconds, or None when absent or a date."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _check_accepted(response: requests.Response, batch: Batch) -> None:
    try:
        accepted = response.json().get("accepted")
    except (ValueError, AttributeError):
        accepted = None
    if accepted != len(batch.ids):
        raise IntakeError(
            f"Batch {batch.index} (first id {batch.first_id}): the API responded "
            f"with HTTP {response.status_code} but accepted {accepted!r} of "
            f"{len(batch.ids)} entries."
        )


def _describe_rejection(response: requests.Response, batch: Batch) -> str:
    """Return an error message with the API's own explanation of a rejection."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if not detail:
        detail = response.text.strip()[:500] or response.reason
    message = (
        f"The API rejected batch {batch.index} (first id {batch.first_id}) with "
        f"HTTP {response.status_code}: {detail}"
    )
    if 300 <= response.status_code < 400:
        location = response.headers.get("Location", "another URL")
        message += f" The URL redirects to {location}; pass that URL instead."
    elif response.status_code in (401, 403):
        message += " Check the API key."
    elif response.status_code == 413:
        message += " Send fewer entries per request."
    return message
