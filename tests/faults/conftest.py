"""A private service stack for the fault tests.

The fault tests stop PostgreSQL, Redis and Kafka, so they cannot use the
shared services on the default ports. This session fixture runs
scripts/services.sh on free ports with LOGPLATFORM_SERVICES_DIR in a
temporary folder, migrates that database, starts the API, the consumer and
a Celery worker against it, and stops and deletes everything at the end.
"""

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.processes import (
    BIN,
    PROJECT_ROOT,
    ManagedProcess,
    api_answers,
    free_port,
    gunicorn_command,
    plain_http_environment,
    run_services,
    wait_until,
    worker_command,
)

# Kombu delivers a batch again once it has been unacknowledged this long;
# 60 s is the smallest value settings.py allows.
VISIBILITY_TIMEOUT_SECONDS = 60

# The part of store_logs's log line that counts the ids it found stored.
SKIPPED = re.compile(r"\((\d+) already stored\)")


@dataclass
class Stack:
    url: str
    api_key: str
    dsn: str
    services_env: dict[str, str]
    api: ManagedProcess
    consumer: ManagedProcess
    worker: ManagedProcess

    def stop_service(self, name: str) -> None:
        run_services("stop", name, env=self.services_env)

    def start_service(self, name: str) -> None:
        run_services("start", name, env=self.services_env)

    def start_services(self) -> None:
        """Start whichever service is down, so one fault's failed restart
        does not turn the next fault into two at once."""
        run_services("up", env=self.services_env)

    def start_api(self) -> None:
        self.api.start()
        wait_until(lambda: api_answers(self.url), 60, "the API to answer")

    def start_worker(self) -> None:
        self.worker.start()
        self.worker.wait_for_output(r"ready\.", timeout=60)

    def start_consumer(self) -> None:
        self.consumer.start()
        self.consumer.wait_for_output(r"Consumer started", timeout=60)

    def kafka_pid(self) -> int:
        folder = Path(self.services_env["LOGPLATFORM_SERVICES_DIR"])
        return int((folder / "kafka" / "kafka.pid").read_text())

    def skipped_copies(self, offset: int) -> int:
        """Add up the entries that store_logs found already stored, as the
        worker's log reports them from byte `offset` on."""
        with self.worker.log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        return sum(int(count) for count in SKIPPED.findall(text))

    @staticmethod
    def wait_for_exit(pid: int, timeout: float = 30) -> None:
        """Wait until no process has the id `pid`."""

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return False

        wait_until(gone, timeout, f"process {pid} to exit")

    def log_tails(self, lines: int = 60) -> str:
        """Return the last `lines` lines of each process's and service's log."""
        folder = Path(self.services_env["LOGPLATFORM_SERVICES_DIR"])
        paths = [process.log_path for process in (self.api, self.consumer, self.worker)]
        paths += sorted((folder / "logs").glob("*.log"))
        parts = []
        for path in paths:
            try:
                text = path.read_text(errors="replace")
            except OSError as exc:
                text = f"(unreadable: {exc})"
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"----- {path.name} -----\n{tail}")
        return "\n".join(parts)

    def stored_copies(self, service_name: str) -> dict[str, int]:
        """Return how many rows each event id of `service_name` has."""
        with psycopg.connect(self.dsn, connect_timeout=5) as connection:
            rows = connection.execute(
                "SELECT id::text, count(*) FROM logs_log "
                "WHERE service_name = %s GROUP BY id",
                [service_name],
            ).fetchall()
        return dict(rows)


def _services_environment(folder: Path) -> dict[str, str]:
    return os.environ | {
        "LOGPLATFORM_SERVICES_DIR": str(folder),
        "POSTGRES_PORT": str(free_port()),
        "REDIS_PORT": str(free_port()),
        "KAFKA_PORT": str(free_port()),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        # A restart on a busy machine can take longer than the default 90 s.
        "KAFKA_READY_TIMEOUT_SECONDS": "180",
    }


def _platform_environment(services: dict[str, str], api_port: int) -> dict[str, str]:
    return services | {
        "DATABASE_URL": "postgres://logplatform:logplatform@127.0.0.1:"
        f"{services['POSTGRES_PORT']}/logplatform",
        "REDIS_URL": f"redis://127.0.0.1:{services['REDIS_PORT']}/0",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{services['KAFKA_PORT']}",
        "KAFKA_TOPIC": "logs",
        "KAFKA_DLQ_TOPIC": "logs.dlq",
        "KAFKA_CONSUMER_GROUP": "logplatform-faults",
        "KAFKA_DELIVERY_TIMEOUT_MS": "3000",
        "KAFKA_RETRY_AFTER_FAILURE_SECONDS": "2",
        "CONSUMER_BATCH_SECONDS": "0.2",
        "CONSUMER_STATS_SECONDS": "5",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_SECONDS),
        "INTAKE_RATE_LIMIT": "0",
        "INTAKE_RETRY_AFTER_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **plain_http_environment(),
    }


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return result.stdout


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[Stack]:
    # Not under pytest's basetemp, which is private to root, because the
    # script runs PostgreSQL as the postgres user when it runs as root.
    folder = Path(tempfile.mkdtemp(prefix="logplatform-faults-"))
    folder.chmod(0o755)
    services_env = _services_environment(folder / "services")
    api_port = free_port()
    env = _platform_environment(services_env, api_port)
    log_dir = folder / "processes"
    log_dir.mkdir()
    processes = [
        ManagedProcess("api", gunicorn_command(api_port), env, log_dir),
        ManagedProcess(
            "consumer", [str(BIN / "python"), "manage.py", "consume_logs"], env, log_dir
        ),
        ManagedProcess(
            "worker",
            worker_command(2, "--without-gossip", "--without-mingle"),
            env,
            log_dir,
        ),
    ]
    try:
        run_services("up", env=services_env)
        _manage(env, "migrate", "--noinput")
        api_key = _manage(env, "create_api_key", "fault tests").strip().splitlines()
        stack = Stack(
            url=f"http://127.0.0.1:{api_port}/api/logs/",
            api_key=api_key[-1],
            dsn=env["DATABASE_URL"].replace("postgres://", "postgresql://", 1),
            services_env=services_env,
            api=processes[0],
            consumer=processes[1],
            worker=processes[2],
        )
        stack.start_api()
        stack.start_worker()
        stack.start_consumer()
        stack.consumer.wait_for_output(r"Consumer assigned logs", timeout=60)
        yield stack
    finally:
        for process in reversed(processes):
            process.stop()
        try:
            run_services("down", env=services_env)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
