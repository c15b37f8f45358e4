"""Exact accounting of entries through the pipeline while one part fails.

Each test streams entries with their own ids into the private stack of
conftest.py, injects one fault, lets the client resend whatever got a 5xx or
no response, waits for the pipeline to settle and then compares the stored
rows with the acknowledged ids. It prints one line per fault with the counts
and the latency the fault caused.
"""

import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest
from celery import Celery

from tests.faults.client import Attempt, EntryStream, StreamResult
from tests.faults.conftest import VISIBILITY_TIMEOUT_SECONDS, Stack
from tests.processes import ManagedProcess, wait_until

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 20
# Intake runs this long before the fault starts and after it ends.
LEAD_SECONDS = 3
# How long the pipeline may take to store every acknowledged entry after
# the fault ended. A consumer's partitions move to its replacement only
# after the group's 45 s session timeout, and a batch of a killed worker
# is delivered again after the visibility timeout.
SETTLE_SECONDS = 150
SLOW_ANSWER_SECONDS = 1.0
# How often the Redis restart test restarts Redis under a stream of tasks.
RESTARTS_UNDER_LOAD = 5
# The worker's log line when it takes a batch from the queue.
STORE_RECEIVED = r"Task logs\.store_logs\[\S+\] received"


@dataclass
class FaultReport:
    name: str
    result: StreamResult
    copies: dict[str, int]
    fault_seconds: float
    stored_after: float
    redelivered_skipped: int

    @property
    def missing(self) -> set[str]:
        return self.result.acknowledged - self.copies.keys()

    @property
    def duplicated(self) -> set[str]:
        return {event_id for event_id, count in self.copies.items() if count > 1}

    @property
    def unknown(self) -> set[str]:
        return self.copies.keys() - self.result.sent

    def line(self) -> str:
        attempts = self.result.attempts
        failed = [a for a in attempts if a.status is None or a.status >= 500]
        slow = [a for a in attempts if a.seconds >= SLOW_ANSWER_SECONDS]
        window = 0.0
        if failed:
            last_end = max(a.started + a.seconds for a in failed)
            window = last_end - min(a.started for a in failed)
        return (
            f"{self.name}: sent {len(self.result.sent)}, "
            f"acknowledged {len(self.result.acknowledged)}, "
            f"stored {len(self.copies)}, missing {len(self.missing)}, "
            f"duplicated {len(self.duplicated)}; "
            f"{len(failed)} of {len(attempts)} requests got a 5xx or no response "
            f"({self._statuses(failed)}) over {window:.1f}s, "
            f"{len(slow)} took over {SLOW_ANSWER_SECONDS:.0f}s "
            f"(slowest {max(a.seconds for a in attempts):.1f}s); "
            f"the fault lasted {self.fault_seconds:.1f}s, all stored "
            f"{self.stored_after:.1f}s after it ended; the insert skipped "
            f"{self.redelivered_skipped} copies already stored"
        )

    @staticmethod
    def _statuses(attempts: list[Attempt]) -> str:
        counts = Counter(attempt.status or "none" for attempt in attempts)
        return ", ".join(f"{status}: {count}" for status, count in counts.items())


def _read_copies(stack: Stack, service_name: str) -> dict[str, int] | None:
    try:
        return stack.stored_copies(service_name)
    except psycopg.OperationalError:
        return None


def _wait_until_stored(
    stack: Stack, service_name: str, acknowledged: set[str]
) -> dict[str, int]:
    deadline = time.monotonic() + SETTLE_SECONDS
    copies: dict[str, int] = {}
    while time.monotonic() < deadline:
        copies = _read_copies(stack, service_name) or copies
        if acknowledged <= copies.keys():
            return copies
        time.sleep(1)
    return copies


def run_fault(stack: Stack, name: str, inject: Callable[[], None]) -> FaultReport:
    """Stream entries, inject the fault, settle and count what is stored."""
    service_name = f"fault-{name}"
    stack.start_services()
    worker_log_offset = stack.worker.log_path.stat().st_size
    stream = EntryStream(stack.url, stack.api_key, service_name).start()
    time.sleep(LEAD_SECONDS)
    began = time.monotonic()
    inject()
    ended = time.monotonic()
    time.sleep(LEAD_SECONDS)
    result = stream.stop()

    _wait_until_stored(stack, service_name, result.acknowledged)
    stored_after = time.monotonic() - ended
    # A redelivered batch could still be on its way; give it time to land,
    # so that a second copy would be counted.
    time.sleep(3)
    copies = stack.stored_copies(service_name)
    skipped = stack.skipped_copies(worker_log_offset)
    return FaultReport(name, result, copies, ended - began, stored_after, skipped)


def check(report: FaultReport, capsys, stack: Stack) -> None:
    with capsys.disabled():
        print(f"\n{report.line()}")
        if report.missing or report.duplicated:
            # The processes' last log lines are all that a CI run leaves behind.
            print(stack.log_tails())
    assert not report.result.rejections, report.result.rejections[:3]
    assert not report.result.abandoned, (
        f"{len(report.result.abandoned)} entries still unaccepted after every resend"
    )
    assert not report.missing, (
        f"acknowledged but not stored: {sorted(report.missing)[:5]}"
    )
    assert not report.duplicated, f"stored twice: {sorted(report.duplicated)[:5]}"
    assert not report.unknown, f"stored but never sent: {sorted(report.unknown)[:5]}"
    assert report.result.sent == report.result.acknowledged


def wait_for_new_output(process: ManagedProcess, pattern: str, timeout: float) -> None:
    """Wait until `process` prints a line matching `pattern` from now on."""
    seen = len(process.output())
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if regex.search(process.output(), seen):
            return
        time.sleep(0.05)
    raise AssertionError(f"{process.name} printed no {pattern!r} within {timeout}s")


def backends_waiting_on(stack: Stack, table: str) -> list[int]:
    """Return the ids of the database sessions that wait for a lock on `table`."""
    with psycopg.connect(stack.dsn, autocommit=True, connect_timeout=5) as db:
        rows = db.execute(
            "SELECT DISTINCT pid FROM pg_locks "
            "WHERE relation = %s::regclass AND NOT granted",
            [table],
        ).fetchall()
    return [pid for (pid,) in rows]


def kill_worker_inside_insert(stack: Stack) -> int:
    """SIGKILL the worker while its insert of a batch is under way.

    A lock on the event id table holds the worker's insert. Once an insert
    waits for it, the worker gets SIGKILL and its database sessions are ended
    before the lock goes, so the batch is neither stored nor acknowledged.
    Returns how many inserts were cut off.
    """
    waiting: list[int] = []

    def insert_waits() -> bool:
        waiting[:] = backends_waiting_on(stack, "logs_eventid")
        return bool(waiting)

    with psycopg.connect(stack.dsn, connect_timeout=5) as locker:
        locker.execute("LOCK TABLE logs_eventid IN SHARE MODE")
        wait_until(insert_waits, 30, "an insert waiting for the event id table")
        stack.worker.stop(signal.SIGKILL)
        with psycopg.connect(stack.dsn, autocommit=True, connect_timeout=5) as db:
            for pid in waiting:
                db.execute("SELECT pg_terminate_backend(%s)", [pid])
        locker.rollback()
    return len(waiting)


def test_worker_killed_mid_batch(fault_stack, capsys):
    cut_off = []

    def inject() -> None:
        cut_off.append(kill_worker_inside_insert(fault_stack))
        # A restarted worker delivers again the batches that were
        # unacknowledged for longer than the visibility timeout.
        time.sleep(VISIBILITY_TIMEOUT_SECONDS + 2)
        fault_stack.start_worker()

    report = run_fault(fault_stack, "worker-sigkill", inject)
    check(report, capsys, fault_stack)
    assert cut_off[0] >= 1


def kill_consumer_before_commit(stack: Stack, attempts=5) -> None:
    """SIGKILL the consumer after it enqueued a batch but before its commit.

    The broker is paused with SIGSTOP just after the consumer started a new
    batch. The consumer still enqueues the messages it already fetched, and
    then waits for a commit that the paused broker does not read. The
    consumer gets SIGKILL, and so does the paused broker, which drops the
    unread commit with it. Then both start again. Each pause is shorter than
    KAFKA_DELIVERY_TIMEOUT_MS, so intake only slows down until the broker is
    killed, and then goes through the Celery fallback until it is back.
    """
    kafka = stack.kafka_pid()
    for _attempt in range(attempts):
        wait_for_new_output(stack.worker, STORE_RECEIVED, 30)
        time.sleep(0.1)
        os.kill(kafka, signal.SIGSTOP)
        try:
            wait_for_new_output(stack.worker, STORE_RECEIVED, 2)
        except AssertionError:
            # The consumer held no message when the broker paused.
            os.kill(kafka, signal.SIGCONT)
            continue
        try:
            time.sleep(0.3)
            stack.consumer.stop(signal.SIGKILL)
        finally:
            os.kill(kafka, signal.SIGKILL)
        stack.wait_for_exit(kafka)
        stack.start_service("kafka")
        return
    raise AssertionError(f"the consumer enqueued nothing in {attempts} pauses")


def test_consumer_killed_before_commit(fault_stack, capsys):
    def inject() -> None:
        kill_consumer_before_commit(fault_stack)
        fault_stack.start_consumer()
        fault_stack.consumer.wait_for_output(r"Consumer assigned logs", timeout=90)

    report = run_fault(fault_stack, "consumer-sigkill", inject)
    check(report, capsys, fault_stack)
    # The batch enqueued before the kill came again from Kafka, and the
    # insert found its entries already stored.
    assert report.redelivered_skipped > 0


@pytest.mark.parametrize("service", ["kafka", "postgres", "redis"])
def test_service_stopped(fault_stack, capsys, service):
    def inject() -> None:
        fault_stack.stop_service(service)
        try:
            time.sleep(OUTAGE_SECONDS)
        finally:
            fault_stack.start_service(service)

    check(run_fault(fault_stack, f"{service}-stopped", inject), capsys, fault_stack)


def test_api_restarted(fault_stack, capsys):
    def inject() -> None:
        fault_stack.api.stop()
        fault_stack.start_api()

    check(run_fault(fault_stack, "api-restarted", inject), capsys, fault_stack)


def test_worker_survives_redis_restarts_under_load(fault_stack):
    """The worker keeps consuming after Redis restarts with tasks in flight.

    Small tasks arrive without pause, so at each restart the worker has
    some that it has received and not yet acknowledged. Closing such a
    channel once the broker is gone used to end the worker ("Unrecoverable
    error") in one Celery release, which lost every later batch.
    """
    broker = Celery(
        broker=f"redis://127.0.0.1:{fault_stack.services_env['REDIS_PORT']}/0",
        set_as_current=False,
    )
    broker.conf.broker_transport_options = {"socket_connect_timeout": 1}
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            try:
                broker.send_task("logs.store_logs", args=[[]])
            except Exception:
                time.sleep(0.2)

    fault_stack.start_services()
    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        for restart in range(RESTARTS_UNDER_LOAD):
            wait_for_new_output(fault_stack.worker, STORE_RECEIVED, 30)
            fault_stack.stop_service("redis")
            time.sleep(2)
            fault_stack.start_service("redis")
            assert fault_stack.worker.process.poll() is None, (
                f"the worker exited after restart {restart + 1} of Redis:\n"
                f"{fault_stack.worker.output()[-3000:]}"
            )
            wait_for_new_output(fault_stack.worker, STORE_RECEIVED, 60)
    finally:
        stop.set()
        publisher.join(10)
        broker.close()
