"""A client that sends a stream of entries and resends what was not accepted.

Every entry carries its own event id. A batch that gets a 5xx, a 429 or no
response is sent again with the same ids, up to MAX_ATTEMPTS times, after an
exponential backoff that is never shorter than the API's Retry-After. Any
other status is recorded as a rejection and not resent. The client records
every attempt, so a test can compare what the API acknowledged with what the
database stores.
"""

import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

BATCH_SIZE = 20
MAX_ATTEMPTS = 15
MAX_BACKOFF_SECONDS = 8.0
REQUEST_TIMEOUT_SECONDS = 15.0
# Statuses after which the same batch is sent again: too many requests and
# every server error.
RETRIED = {429, *range(500, 600)}


@dataclass
class Attempt:
    """One request: when it started (seconds since the stream began), how
    long it took and its status, or None when no response came."""

    started: float
    seconds: float
    status: int | None


@dataclass
class StreamResult:
    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    abandoned: set[str] = field(default_factory=set)
    rejections: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)


def retry_delay(response: requests.Response | None, attempt: int) -> float:
    """Return the seconds to wait before the next attempt of a batch.

    The delay doubles from 0.25 s up to MAX_BACKOFF_SECONDS, and is never
    shorter than the Retry-After header when the API sends one.
    """
    backoff = min(0.25 * 2**attempt, MAX_BACKOFF_SECONDS)
    if response is not None:
        header = response.headers.get("Retry-After", "")
        if header.isdigit():
            return max(float(header), backoff)
    return backoff


class EntryStream:
    """Sends batches of new entries from a few threads until stopped.

    Each thread sends a batch, waits `interval` seconds and sends the next,
    so the rate is about threads * BATCH_SIZE / interval entries per second
    while the API responds quickly.
    """

    def __init__(
        self, url: str, api_key: str, service_name: str, threads=4, interval=0.2
    ):
        self.url = url
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.service_name = service_name
        self.interval = interval
        self.result = StreamResult()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._began = time.monotonic()
        self._threads = [
            threading.Thread(target=self._run, name=f"sender-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> "EntryStream":
        self._began = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 180) -> StreamResult:
        """Stop sending new batches and wait for the resends to finish."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                raise AssertionError(f"{thread.name} still runs after {timeout}s")
        return self.result

    def _run(self) -> None:
        session = requests.Session()
        number = 0
        while not self._stopping.is_set():
            batch = self._new_batch(number)
            number += 1
            self._deliver(session, batch)
            self._stopping.wait(self.interval)

    def _new_batch(self, number: int) -> list[dict]:
        batch = [
            {
                "id": str(uuid.uuid4()),
                "service_name": self.service_name,
                "level": "info",
                "message": f"{threading.current_thread().name} batch {number}",
                "metadata": {"entry": index},
            }
            for index in range(BATCH_SIZE)
        ]
        with self._lock:
            self.result.sent.update(entry["id"] for entry in batch)
        return batch

    def _deliver(self, session: requests.Session, batch: list[dict]) -> None:
        ids = [entry["id"] for entry in batch]
        for attempt in range(MAX_ATTEMPTS):
            response = self._post(session, batch)
            if response is not None and 200 <= response.status_code < 300:
                with self._lock:
                    self.result.acknowledged.update(ids)
                return
            if response is not None and response.status_code not in RETRIED:
                with self._lock:
                    self.result.rejections.append(
                        f"{response.status_code}: {response.text[:300]}"
                    )
                return
            time.sleep(retry_delay(response, attempt))
        with self._lock:
            self.result.abandoned.update(ids)

    def _post(
        self, session: requests.Session, batch: list[dict]
    ) -> requests.Response | None:
        started = time.monotonic()
        response = None
        try:
            response = session.post(
                self.url,
                json=batch,
                headers=self.headers,
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except requests.RequestException:
            # A refused connection, a reset or a timeout: resend.
            pass
        attempt = Attempt(
            started=started - self._began,
            seconds=time.monotonic() - started,
            status=response.status_code if response is not None else None,
        )
        with self._lock:
            self.result.attempts.append(attempt)
        return response
