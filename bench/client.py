"""The HTTP load client: several processes, each with several threads.

Every thread keeps one HTTP/1.1 connection open and posts batches of fresh
entries, either as fast as the API responds or at a fixed share of a target
rate. The processes start together on a signal, so process start-up is not
timed, and report their own CPU time, so the client's cost is visible.
"""

import http.client
import multiprocessing
import multiprocessing.queues
import queue
import random
import resource
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from bench.entries import data_folder, load_lines, make_batch

# Spawned rather than forked, because the parent runs threads and has
# database connections open, which a forked child must not share.
_CONTEXT = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class LoadSpec:
    url: str
    api_key: str
    batch_size: int
    seconds: float
    processes: int
    threads: int
    # Stop after this many entries in all, or None for the whole duration.
    max_entries: int | None = None
    # Entries per second over all threads, or None for as fast as possible.
    rate: float | None = None
    # Whether to report the first event id of each accepted request.
    sample_ids: bool = False


@dataclass
class LoadResult:
    requests: int = 0
    accepted: int = 0
    failed_requests: int = 0
    started: float = 0.0
    finished: float = 0.0
    client_cpu_seconds: float = 0.0
    request_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def merge(self, other: dict) -> None:
        self.requests += other["requests"]
        self.accepted += other["accepted"]
        self.failed_requests += other["failed_requests"]
        self.client_cpu_seconds += other["cpu_seconds"]
        self.request_seconds.extend(other["request_seconds"])
        self.finished = max(self.finished, other["finished"])
        for error in other["errors"]:
            if len(self.errors) < 5:
                self.errors.append(error)


def run_load(
    spec: LoadSpec, samples: multiprocessing.queues.Queue | None
) -> LoadResult:
    """Run the load described by `spec` and return the merged figures.

    With `spec.sample_ids`, the first event id of every accepted request is
    put on `samples` as soon as the response arrives.
    """
    ready = _CONTEXT.Queue()
    results = _CONTEXT.Queue()
    go = _CONTEXT.Event()
    workers = [
        _CONTEXT.Process(
            target=_client_process,
            args=(spec, index, ready, go, samples, results),
            name=f"bench-client-{index}",
        )
        for index in range(spec.processes)
    ]
    for worker in workers:
        worker.start()
    result = LoadResult()
    try:
        for _ in workers:
            ready.get(timeout=120)
        result.started = time.time()
        go.set()
        for _ in workers:
            result.merge(results.get(timeout=spec.seconds + 300))
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
    return result


def _client_process(spec, index, ready, go, samples, results) -> None:
    lines = load_lines(data_folder())
    state = _ProcessState(spec, index, lines)
    threads = [
        threading.Thread(target=state.run_thread, args=(number, samples))
        for number in range(spec.threads)
    ]
    cpu_before = _cpu_seconds()
    ready.put(index)
    go.wait()
    state.deadline = time.monotonic() + spec.seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(
        {
            "requests": state.requests,
            "accepted": state.accepted,
            "failed_requests": state.failed_requests,
            "cpu_seconds": _cpu_seconds() - cpu_before,
            "request_seconds": state.request_seconds,
            "finished": time.time(),
            "errors": state.errors,
        }
    )
    if samples is not None:
        # Let the queue's feeder thread hand over every sample before exit.
        samples.close()
        samples.join_thread()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _ProcessState:
    """Counters and the entry budget shared by the threads of one process."""

    def __init__(self, spec: LoadSpec, index: int, lines):
        self.spec = spec
        self.index = index
        self.lines = lines
        self.lock = threading.Lock()
        self.deadline = 0.0
        self.next_seq = 0
        self.remaining = (
            None
            if spec.max_entries is None
            else spec.max_entries // spec.processes
            + (1 if index < spec.max_entries % spec.processes else 0)
        )
        self.requests = 0
        self.accepted = 0
        self.failed_requests = 0
        self.request_seconds: list[float] = []
        self.errors: list[str] = []
        target = urlsplit(spec.url)
        self.host = target.hostname
        self.port = target.port
        self.path = target.path
        self.headers = {
            "Authorization": f"Bearer {spec.api_key}",
            "Content-Type": "application/json",
        }

    def claim(self) -> range | None:
        """Take the sequence numbers of the next batch, or None when done.

        Process `index` of P uses the numbers index, index + P, ... so the
        numbers stay unique across processes.
        """
        with self.lock:
            count = self.spec.batch_size
            if self.remaining is not None:
                count = min(count, self.remaining)
                self.remaining -= count
            if count <= 0:
                return None
            first = self.next_seq
            self.next_seq += count
        step = self.spec.processes
        return range(first * step + self.index, (first + count) * step, step)

    def run_thread(self, number: int, samples) -> None:
        rng = random.Random(self.index * 1000 + number)
        interval = None
        if self.spec.rate:
            threads = self.spec.processes * self.spec.threads
            interval = self.spec.batch_size * threads / self.spec.rate
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        # Spread the paced threads over one interval instead of posting at once.
        next_at = time.monotonic() + (rng.random() * interval if interval else 0)
        while time.monotonic() < self.deadline:
            if interval:
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                next_at += interval
            seqs = self.claim()
            if seqs is None:
                break
            body = orjson.dumps(make_batch(self.lines, seqs, rng))
            connection = self._post(connection, body, len(seqs), samples)
        connection.close()

    def _post(self, connection, body: bytes, count: int, samples):
        started = time.perf_counter()
        try:
            connection.request("POST", self.path, body, self.headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._record_failure(f"{type(exc).__name__}: {exc}")
            connection.close()
            time.sleep(0.1)
            return http.client.HTTPConnection(self.host, self.port, timeout=60)
        elapsed = time.perf_counter() - started
        if response.status != 202:
            self._record_failure(f"HTTP {response.status}: {payload[:200]!r}")
            return connection
        first_id = orjson.loads(payload)["ids"][0] if self.spec.sample_ids else None
        with self.lock:
            self.requests += 1
            self.accepted += count
            self.request_seconds.append(elapsed)
        if first_id is not None and samples is not None:
            samples.put(first_id)
        return connection

    def _record_failure(self, message: str) -> None:
        with self.lock:
            self.requests += 1
            self.failed_requests += 1
            if len(self.errors) < 5:
                self.errors.append(message)


def new_sample_queue() -> multiprocessing.queues.Queue:
    return _CONTEXT.Queue()


def drain(samples: multiprocessing.queues.Queue) -> list[str]:
    """Return every id waiting on `samples` without blocking."""
    ids = []
    while True:
        try:
            ids.append(samples.get_nowait())
        except queue.Empty:
            return ids
