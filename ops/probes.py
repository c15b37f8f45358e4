"""Bounded probes of the services the platform depends on.

Each probe takes a timeout in seconds and raises ProbeFailed with a short
reason that names no host, port or password; the full error goes to the
log instead, because /readyz shows the reason to anyone who requests it.
"""

import logging
import os
import threading
import time

import psycopg
import redis
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec
from django.conf import settings

from logplatform.celery import app as celery_app

logger = logging.getLogger(__name__)

# kombu's Redis transport keeps a queue's messages of priority 0 under the
# queue's name and those of the other default steps (3, 6, 9) under the
# name, this separator and the step (kombu 5.7, `redis.Channel._q_for_pri`).
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


class ProbeFailed(Exception):
    """A dependency probe failed. The message is the reason, safe to show anyone."""


def probe_database(timeout: float) -> None:
    """Open a new connection to PostgreSQL and run SELECT 1."""
    db = settings.DATABASES["default"]
    try:
        # libpq counts connect_timeout in whole seconds, at least 2.
        with psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"],
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            connect_timeout=max(2, round(timeout)),
            options=f"-c statement_timeout={int(timeout * 1000)}",
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        logger.warning("Database probe failed: %s", exc)
        raise ProbeFailed(f"connection or query failed ({type(exc).__name__})") from exc


def _broker_client(timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )


def probe_broker(timeout: float) -> None:
    """PING the Redis server that is the Celery broker."""
    client = _broker_client(timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        logger.warning("Celery broker probe failed: %s", exc)
        raise ProbeFailed(f"PING failed ({type(exc).__name__})") from exc
    finally:
        client.close()


def queued_tasks(timeout: float, queue: str | None = None) -> int:
    """Return how many tasks wait in a Celery queue in Redis (the default queue).

    Tasks that a worker has taken but not yet acknowledged are not counted.
    """
    name = queue or celery_app.conf.task_default_queue
    keys = [
        name if step == 0 else f"{name}{_PRIORITY_SEPARATOR}{step}"
        for step in _PRIORITY_STEPS
    ]
    client = _broker_client(timeout)
    try:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key)
        return sum(pipe.execute())
    except redis.RedisError as exc:
        logger.warning("Reading the length of Celery queue %s failed: %s", name, exc)
        raise ProbeFailed(f"queue length unreadable ({type(exc).__name__})") from exc
    finally:
        client.close()


_admin_clients: dict[tuple[int, str], AdminClient] = {}
_admin_lock = threading.Lock()


def _admin_client() -> AdminClient:
    """Return this process's admin client for the configured brokers."""
    key = (os.getpid(), settings.KAFKA_BOOTSTRAP_SERVERS)
    with _admin_lock:
        client = _admin_clients.get(key)
        if client is None:
            client = AdminClient(
                {
                    "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                    "client.id": f"logplatform-probe-{os.getpid()}",
                    "socket.connection.setup.timeout.ms": 2000,
                    "reconnect.backoff.max.ms": 2000,
                }
            )
            _admin_clients[key] = client
        return client


def _kafka_reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.name() if isinstance(error, KafkaError) else type(exc).__name__


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProbeFailed("timed out")
    return left


def _topic_partitions(topic: str, deadline: float) -> list[int]:
    try:
        metadata = _admin_client().list_topics(topic, timeout=_remaining(deadline))
    except KafkaException as exc:
        logger.warning("Kafka probe failed: %s", exc)
        raise ProbeFailed(f"metadata request failed ({_kafka_reason(exc)})") from exc
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        raise ProbeFailed(f"topic {topic} not found")
    return sorted(described.partitions)


def probe_kafka(timeout: float) -> None:
    """Fetch the metadata of the logs topic and check it has partitions."""
    _topic_partitions(settings.KAFKA_TOPIC, time.monotonic() + timeout)


def _list_offsets(
    topic: str, partitions: list[int], spec: OffsetSpec, deadline: float
) -> dict[int, int]:
    request = {TopicPartition(topic, partition): spec for partition in partitions}
    futures = _admin_client().list_offsets(
        request, request_timeout=_remaining(deadline)
    )
    return {
        tp.partition: future.result(timeout=_remaining(deadline)).offset
        for tp, future in futures.items()
    }


def consumer_group_lag(timeout: float) -> int:
    """Return the messages of the logs topic the consumer group has not committed.

    A partition without a committed offset counts from its earliest offset,
    where the consumer (auto.offset.reset=earliest) would start.
    """
    deadline = time.monotonic() + timeout
    topic, group = settings.KAFKA_TOPIC, settings.KAFKA_CONSUMER_GROUP
    partitions = _topic_partitions(topic, deadline)
    try:
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, partition) for partition in partitions]
        )
        future = _admin_client().list_consumer_group_offsets(
            [request], request_timeout=_remaining(deadline)
        )[group]
        committed = {
            tp.partition: tp.offset
            for tp in future.result(timeout=_remaining(deadline)).topic_partitions
        }
        latest = _list_offsets(topic, partitions, OffsetSpec.latest(), deadline)
        unread = [p for p in partitions if committed.get(p, -1) < 0]
        if unread:
            earliest = _list_offsets(topic, unread, OffsetSpec.earliest(), deadline)
            committed.update(earliest)
    except (KafkaException, TimeoutError) as exc:
        logger.warning("Reading the lag of consumer group %s failed: %s", group, exc)
        raise ProbeFailed(f"offsets unreadable ({type(exc).__name__})") from exc
    return sum(max(latest[p] - committed[p], 0) for p in partitions)
