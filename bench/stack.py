"""The platform processes the benchmark starts, their CPU time, and topics."""

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

from bench import measure
from tests.processes import (
    BIN,
    PROJECT_ROOT,
    ManagedProcess,
    free_port,
    wait_until,
    worker_command,
)

logger = logging.getLogger("bench")

SERVICES = PROJECT_ROOT / ".services"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


@dataclass
class Stack:
    """The platform processes of the run and the services' process ids."""

    env: dict[str, str]
    log_dir: Path
    args: argparse.Namespace
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    url: str = ""

    def service_pids(self) -> dict[str, int | None]:
        return {
            "kafka": read_pid(SERVICES / "kafka" / "kafka.pid"),
            "postgres": read_pid(SERVICES / "postgres" / "data" / "postmaster.pid"),
            "redis": read_pid(SERVICES / "redis" / "redis.pid"),
        }

    def pids(self) -> dict[str, int | None]:
        pids = {
            name: process.process.pid
            for name, process in self.processes.items()
            if process.process is not None and process.process.poll() is None
        }
        return pids | self.service_pids()

    def cpu_snapshot(self) -> dict[str, float]:
        """Return the CPU seconds of each process tree so far.

        PostgreSQL counts as one tree, the postmaster with every backend, so
        it includes the work of other databases on the same server.
        """
        stats = measure.all_stats()
        snapshot = {}
        for name, pid in self.pids().items():
            seconds = None if pid is None else measure.tree_cpu_seconds(pid, stats)
            if seconds is not None:
                snapshot[name] = seconds
        return snapshot

    def start(
        self, topic: str, names: list[str], overrides: dict[str, str] | None = None
    ) -> None:
        """Start the named processes on `topic`, adding `overrides` to their env."""
        env = self.env | {
            "KAFKA_TOPIC": topic,
            "KAFKA_DLQ_TOPIC": f"{topic}.dlq",
            "KAFKA_CONSUMER_GROUP": f"{topic}-consumer",
            **(overrides or {}),
        }
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/api/logs/"
        commands = {
            "api": [
                str(BIN / "gunicorn"),
                "logplatform.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(self.args.api_workers),
                "--threads",
                str(self.args.api_threads),
            ],
            "consumer": [str(BIN / "python"), "manage.py", "consume_logs"],
            "worker": worker_command(
                self.args.worker_concurrency, "--include", "bench.tasks"
            ),
        }
        for name in names:
            process = ManagedProcess(name, commands[name], env, self.log_dir)
            self.processes[name] = process
            process.start()
        logger.info("Started %s on topic %s", ", ".join(names), topic)
        if "api" in names:
            api = self.processes["api"]
            wait_until(lambda: api_answers(self.url) or exited(api), 60, "the API")
            if exited(api):
                raise RuntimeError(f"The API exited:\n{api.output()[-3000:]}")
        if "worker" in names:
            self.processes["worker"].wait_for_output(r"ready\.", timeout=60)
        if "consumer" in names:
            self.processes["consumer"].wait_for_output(
                r"Consumer assigned " + topic, timeout=60
            )

    def stop(self) -> None:
        for name, process in reversed(list(self.processes.items())):
            code = process.stop()
            logger.info("Stopped %s (exit code %s)", name, code)
        self.processes.clear()


def exited(process: ManagedProcess) -> bool:
    return process.process is not None and process.process.poll() is not None


def api_answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=5).status_code in (401, 403)
    except requests.RequestException:
        return False


def cpu_per_thousand(
    before: dict[str, float], after: dict[str, float], entries: int
) -> dict[str, float]:
    """Return the CPU seconds per 1,000 entries of each process in both snapshots."""
    if entries <= 0:
        return {}
    return {
        name: (after[name] - before[name]) * 1000 / entries
        for name in after
        if name in before
    }


# Kafka topics


def create_topics(names: list[str], partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    from django.conf import settings

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    futures = admin.create_topics(
        [
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name in names
        ],
        operation_timeout=30,
    )
    for future in futures.values():
        future.result(timeout=60)


def delete_topics(names: list[str]) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from django.conf import settings

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    for name, future in admin.delete_topics(names, operation_timeout=30).items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            logger.warning("Could not delete Kafka topic %s: %s", name, exc)
