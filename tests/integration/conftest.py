"""The running pipeline for integration tests.

One session starts gunicorn, the consumer and a Celery worker against the
real PostgreSQL (pytest-django's test database), Redis (database 15) and
Kafka (topics named for this session), so tests never touch the data of a
platform running from `make run` on the same machine.
"""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import requests
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings
from django.db import connection

from logs.models import ApiKey, Log
from tests.processes import (
    BIN,
    PROJECT_ROOT,
    ManagedProcess,
    api_answers,
    database_url,
    free_port,
    gunicorn_command,
    plain_http_environment,
    wait_until,
    worker_command,
)

# Tests run their Celery queues in this Redis database, flushed at the start.
REDIS_TEST_DB = int(os.environ.get("TEST_REDIS_DB", "15"))


@dataclass
class Pipeline:
    url: str
    api_key: str
    topic: str
    dlq_topic: str
    group_id: str
    api: ManagedProcess
    consumer: ManagedProcess
    worker: ManagedProcess
    env: dict[str, str]
    log_dir: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def post(self, body, timeout: float = 60) -> requests.Response:
        return requests.post(self.url, json=body, headers=self.headers, timeout=timeout)


def stored_count(**filters) -> int:
    return Log.objects.filter(**filters).count()


def _create_topics(topic: str, dlq_topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    futures = admin.create_topics(
        [
            NewTopic(topic, num_partitions=4, replication_factor=1),
            NewTopic(dlq_topic, num_partitions=1, replication_factor=1),
        ],
        operation_timeout=30,
    )
    for future in futures.values():
        future.result(timeout=60)


def _delete_topics(*topics: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    for future in admin.delete_topics(list(topics), operation_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception:  # noqa: BLE001 - cleanup only; the broker may be gone
            pass


def _with_database(redis_url: str, number: int) -> str:
    """Return the Redis URL with its database number replaced."""
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{number}"))


@pytest.fixture(scope="session")
def pipeline(db_access, tmp_path_factory) -> Iterator[Pipeline]:
    run = uuid.uuid4().hex[:8]
    topic, dlq_topic = f"test-logs-{run}", f"test-logs-{run}.dlq"
    group_id = f"test-consumer-{run}"
    _create_topics(topic, dlq_topic)

    db = connection.settings_dict
    redis_url = _with_database(settings.CELERY_BROKER_URL, REDIS_TEST_DB)
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    metrics_dir = tmp_path_factory.mktemp("metrics")
    env = os.environ | {
        "DATABASE_URL": database_url(db),
        "REDIS_URL": redis_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
        "KAFKA_TOPIC": topic,
        "KAFKA_DLQ_TOPIC": dlq_topic,
        "KAFKA_CONSUMER_GROUP": group_id,
        "KAFKA_DELIVERY_TIMEOUT_MS": "3000",
        "KAFKA_RETRY_AFTER_FAILURE_SECONDS": "2",
        "CONSUMER_BATCH_SECONDS": "0.2",
        "CONSUMER_STATS_SECONDS": "5",
        "LOGPLATFORM_API_URL": f"http://127.0.0.1:{port}/api/logs/",
        **plain_http_environment(),
        "PYTHONUNBUFFERED": "1",
        # The key that a test makes sets its own limit where it needs one.
        "INTAKE_RATE_LIMIT": "0",
        # Notification retries wait 1, 2, 4... seconds instead of 5, 10, 20...
        "NOTIFICATION_RETRY_BASE_SECONDS": "1",
        # The API's /metrics adds up the counts of every process, as in `make run`.
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    log_dir = tmp_path_factory.mktemp("pipeline")
    api = ManagedProcess(
        "api",
        gunicorn_command(port, "--graceful-timeout", "10"),
        env,
        log_dir,
    )
    consumer = ManagedProcess(
        "consumer", [str(BIN / "python"), "manage.py", "consume_logs"], env, log_dir
    )
    worker = ManagedProcess(
        "worker",
        worker_command(2, "--without-gossip", "--without-mingle"),
        env,
        log_dir,
    )
    _api_key, secret = ApiKey.generate(f"integration tests {run}")
    processes = [api, consumer, worker]
    try:
        for process in processes:
            process.start()
        wait_until(
            lambda: api_answers(env["LOGPLATFORM_API_URL"]), 60, "the API to answer"
        )
        worker.wait_for_output(r"ready\.", timeout=60)
        consumer.wait_for_output(r"Consumer assigned test-logs", timeout=60)
        yield Pipeline(
            url=env["LOGPLATFORM_API_URL"],
            api_key=secret,
            topic=topic,
            dlq_topic=dlq_topic,
            group_id=group_id,
            api=api,
            consumer=consumer,
            worker=worker,
            env=env,
            log_dir=log_dir,
        )
    finally:
        for process in reversed(processes):
            process.stop()
        _delete_topics(topic, dlq_topic)


# How often beat runs each stored periodic task during the tests, in seconds.
TEST_SCHEDULE_SECONDS = 2


@pytest.fixture(scope="module")
def beat(pipeline) -> Iterator[ManagedProcess]:
    """Celery beat with the database scheduler, reading the stored schedule.

    The schedule rows come from the alerts migration; the tests only make
    their intervals short, as a person could in the admin. Beat stops after
    each module that uses it, so its rollups and sweeps do not run under
    tests that expect the database to stay still.
    """
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=TEST_SCHEDULE_SECONDS, period=IntervalSchedule.SECONDS
    )
    tasks = PeriodicTask.objects.filter(task__startswith="alerts.") | (
        PeriodicTask.objects.filter(task__startswith="analytics.")
    )
    names = sorted(tasks.values_list("name", flat=True))
    assert names, "the migrations created no periodic tasks"
    for task in tasks:
        task.interval = interval
        task.expire_seconds = TEST_SCHEDULE_SECONDS
        task.save()

    process = ManagedProcess(
        "beat",
        [
            str(BIN / "celery"),
            "-A",
            "logplatform",
            "beat",
            "--loglevel",
            "DEBUG",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--schedule",
            str(pipeline.log_dir / "beat-schedule"),
        ],
        pipeline.env,
        pipeline.log_dir,
    )
    process.start()
    try:
        process.wait_for_output(r"beat: Starting", timeout=60)
        yield process
    finally:
        process.stop()


__all__ = ["PROJECT_ROOT", "Pipeline", "stored_count", "wait_until"]
