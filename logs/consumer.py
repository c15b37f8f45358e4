"""The Kafka consumer that turns the `logs` topic into Celery batches.

Each loop reads a batch bounded by count and time, sends undecodable or
invalid messages to the dead-letter topic, enqueues one `store_logs` task
for the rest and only then commits the batch's offsets. A crash between
the enqueue and the commit makes Kafka deliver the batch again, and the
insert ignores the ids already stored, so nothing is lost or doubled.
"""

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from django.conf import settings
from django.utils import timezone

from logs.kafka import producer_config
from logs.tasks import store_logs
from logs.validation import PIPELINE_FIELDS, EntryInvalid, normalize_entry
from ops.metrics import CONSUMER_LAG, ENTRIES_DEAD_LETTERED, mark_process_dead

logger = logging.getLogger(__name__)

# Namespace for ids derived from a message's position, for messages that
# arrive without an `id`: the same message read twice gets the same id.
MESSAGE_ID_NAMESPACE = uuid.UUID("5f0b3c39-8a51-4f27-9a43-7d1bb0c6f2a1")
# Waits between attempts to enqueue a batch while the broker is down.
ENQUEUE_RETRY_DELAYS = (0.5, 1, 2, 5, 10)
# Bytes of a message kept in the dead-letter topic when the whole message is
# too large for it.
DEAD_LETTER_KEPT_BYTES = 64 * 1024


class BatchAbandoned(Exception):
    """The consumer is stopping before a batch could be handed on.

    The batch's offsets stay uncommitted, so the group reads it again.
    """


@dataclass
class ConsumerStats:
    batches: int = 0
    entries: int = 0
    dead_lettered: int = 0
    since: float = field(default_factory=time.monotonic)

    def reset(self) -> None:
        self.batches = self.entries = self.dead_lettered = 0
        self.since = time.monotonic()


@dataclass
class DeadLetter:
    message: Message
    reason: str


def message_id(message: Message) -> str:
    position = f"{message.topic()}:{message.partition()}:{message.offset()}"
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, position))


def decode_message(message: Message, received_at) -> dict[str, Any]:
    """Return the normalized entry a message holds, or raise EntryInvalid."""
    value = message.value()
    if not value:
        raise EntryInvalid("message", "the Kafka message is empty.", code="empty")
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EntryInvalid(
            "message", f"not valid JSON: {exc}", code="not_json"
        ) from None
    return normalize_entry(
        raw,
        received_at,
        default_id=message_id(message),
        allowed_fields=PIPELINE_FIELDS,
    )


def enqueue_batch(entries: list[dict[str, Any]]) -> None:
    size = settings.CONSUMER_BATCH_SIZE
    for start in range(0, len(entries), size):
        store_logs.apply_async(args=[entries[start : start + size]])


class LogConsumer:
    def __init__(
        self,
        *,
        topic: str | None = None,
        dlq_topic: str | None = None,
        group_id: str | None = None,
        batch_size: int | None = None,
        batch_seconds: float | None = None,
        stats_seconds: float | None = None,
        enqueue: Callable[[list[dict[str, Any]]], None] = enqueue_batch,
    ):
        self.topic = topic or settings.KAFKA_TOPIC
        self.dlq_topic = dlq_topic or settings.KAFKA_DLQ_TOPIC
        self.group_id = group_id or settings.KAFKA_CONSUMER_GROUP
        self.batch_size = batch_size or settings.CONSUMER_BATCH_SIZE
        self.batch_seconds = batch_seconds or settings.CONSUMER_BATCH_SECONDS
        self.stats_seconds = stats_seconds or settings.CONSUMER_STATS_SECONDS
        self.enqueue = enqueue
        self.stopping = False
        self.stats = ConsumerStats()
        self._pending: list[Message] = []
        self._consumer: Consumer | None = None
        self._dlq: Producer | None = None

    def stop(self) -> None:
        self.stopping = True

    def run(self) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": self.group_id,
                "client.id": "logplatform-consumer",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "queued.max.messages.kbytes": settings.KAFKA_CONSUMER_QUEUE_MAX_KBYTES,
                # How long librdkafka waits to fetch again once the queue is
                # full. With its default, 1000 ms, a queue of 2 MiB ran empty
                # between fetches and the consumer read a third fewer entries
                # per second in a local measurement.
                "fetch.queue.backoff.ms": 100,
                "error_cb": self._on_error,
            }
        )
        self._dlq = Producer(producer_config("logplatform-consumer-dlq"))
        self._consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        logger.info(
            "Consumer started: topic %s, group %s, batches of up to %d entries "
            "or %.1fs",
            self.topic,
            self.group_id,
            self.batch_size,
            self.batch_seconds,
        )
        try:
            while not self.stopping:
                self._read_batch()
                self._finish_pending()
                self._log_stats_if_due()
            self._finish_pending()
        except BatchAbandoned as exc:
            logger.warning("Consumer stopping without committing a batch: %s", exc)
        finally:
            self._log_stats()
            self._consumer.close()
            self._dlq.flush(10)
            # Remove this process's share of the lag gauge.
            mark_process_dead(os.getpid())
            logger.info("Consumer stopped")

    # Reading

    def _read_batch(self) -> None:
        consumer = self._consumer
        deadline: float | None = None
        while len(self._pending) < self.batch_size and not self.stopping:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if deadline is None:
                # Wait for the first message alone: consume() returns only once
                # it has all it asked for or the timeout passes, and the batch
                # window must start when an entry arrives, not a second later.
                timeout, wanted = 1.0, 1
            else:
                timeout = deadline - now
                wanted = min(self.batch_size - len(self._pending), 10_000)
            for message in consumer.consume(num_messages=wanted, timeout=timeout):
                if message.error():
                    self._log_message_error(message)
                    continue
                self._pending.append(message)
            if self._pending and deadline is None:
                deadline = time.monotonic() + self.batch_seconds
            if not self._pending and deadline is None:
                # An idle second: return so the caller can log stats.
                return

    def _log_message_error(self, message: Message) -> None:
        error = message.error()
        if error.code() == KafkaError._PARTITION_EOF:
            return
        logger.error(
            "Consumer read error on %s [%s]: %s",
            message.topic(),
            message.partition(),
            error,
        )

    # Handling a batch

    def _finish_pending(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._handle(batch)

    def _handle(self, batch: list[Message]) -> None:
        received_at = timezone.now()
        entries: list[dict[str, Any]] = []
        dead: list[DeadLetter] = []
        for message in batch:
            try:
                entries.append(decode_message(message, received_at))
            except EntryInvalid as exc:
                dead.append(DeadLetter(message, f"{exc.field}: {exc.message}"))

        if dead:
            self._dead_letter(dead)
        if entries:
            self._enqueue_with_retry(entries)
        self._commit(batch)
        self.stats.batches += 1
        self.stats.entries += len(entries)
        self.stats.dead_lettered += len(dead)
        ENTRIES_DEAD_LETTERED.inc(len(dead))

    def _dead_letter(self, dead: list[DeadLetter]) -> None:
        for item in dead:
            message = item.message
            logger.warning(
                "Dead-lettering %s [%s] offset %s: %s",
                message.topic(),
                message.partition(),
                message.offset(),
                item.reason,
            )
            self._produce_dead_letter(message, item.reason)
        # The batch is committed only once the dead letters are durable.
        while True:
            remaining = self._dlq.flush(10)
            if remaining == 0:
                return
            if self.stopping:
                raise BatchAbandoned(f"{remaining} dead letters unconfirmed")
            logger.error(
                "Dead-letter topic %s has not confirmed %d messages; waiting",
                self.dlq_topic,
                remaining,
            )

    def _produce_dead_letter(self, message: Message, reason: str) -> None:
        value = message.value() or b""
        headers = [
            ("dlq.reason", reason.encode()),
            ("dlq.topic", message.topic().encode()),
            ("dlq.partition", str(message.partition()).encode()),
            ("dlq.offset", str(message.offset()).encode()),
            ("dlq.size", str(len(value)).encode()),
        ]
        try:
            self._dlq.produce(
                self.dlq_topic, value=value, key=message.key(), headers=headers
            )
        except KafkaException as exc:
            # A value larger than the producer's message.max.bytes would stop
            # the consumer on every restart, so its start is kept instead.
            # The dlq.truncated header tells the replay to leave it alone.
            logger.error(
                "Dead letter %s [%s] offset %s of %d bytes rejected (%s); "
                "keeping its first %d bytes",
                message.topic(),
                message.partition(),
                message.offset(),
                len(value),
                exc,
                DEAD_LETTER_KEPT_BYTES,
            )
            self._dlq.produce(
                self.dlq_topic,
                value=value[:DEAD_LETTER_KEPT_BYTES],
                key=message.key(),
                headers=headers + [("dlq.truncated", b"1")],
            )

    def _enqueue_with_retry(self, entries: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            try:
                self.enqueue(entries)
                return
            except Exception as exc:
                # Any broker error: keep the batch and try again, because
                # committing without enqueueing would lose it.
                if self.stopping:
                    raise BatchAbandoned(
                        f"{len(entries)} entries starting with {entries[0]['id']} "
                        f"not enqueued: {exc}"
                    ) from exc
                delay = ENQUEUE_RETRY_DELAYS[
                    min(attempt, len(ENQUEUE_RETRY_DELAYS) - 1)
                ]
                attempt += 1
                logger.error(
                    "Enqueueing a batch of %d entries starting with %s failed "
                    "(attempt %d), retrying in %.1fs: %s",
                    len(entries),
                    entries[0]["id"],
                    attempt,
                    delay,
                    exc,
                )
                time.sleep(delay)

    def _commit(self, batch: list[Message]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for message in batch:
            key = (message.topic(), message.partition())
            next_offsets[key] = max(next_offsets.get(key, 0), message.offset() + 1)
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in next_offsets.items()
        ]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The batch is already enqueued; whoever owns these partitions
            # now reads it again and the insert skips the stored ids.
            logger.warning("Offset commit failed for %s: %s", offsets, exc)

    # Group membership

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("Consumer assigned %s", _describe(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("Consumer revoked %s", _describe(partitions))
        # Finish the batch in hand while the partitions are still ours, so
        # the next owner starts after it.
        self._finish_pending()

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.warning("Consumer lost %s", _describe(partitions))
        lost = {(tp.topic, tp.partition) for tp in partitions}
        self._pending = [
            message
            for message in self._pending
            if (message.topic(), message.partition()) not in lost
        ]

    def _on_error(self, err: KafkaError) -> None:
        logger.error("Consumer Kafka error: %s", err)

    # Statistics

    def _log_stats_if_due(self) -> None:
        if time.monotonic() - self.stats.since >= self.stats_seconds:
            self._log_stats()

    def _log_stats(self) -> None:
        elapsed = time.monotonic() - self.stats.since
        lag = self.lag()
        if isinstance(lag, int):
            CONSUMER_LAG.set(lag)
        logger.info(
            "Consumer: %d batches, %d entries, %d dead-lettered in %.0fs; lag %s",
            self.stats.batches,
            self.stats.entries,
            self.stats.dead_lettered,
            elapsed,
            lag,
        )
        self.stats.reset()

    def lag(self) -> int | str:
        """Return the messages not yet read in the assigned partitions."""
        try:
            assignment = self._consumer.assignment()
            positions = self._consumer.position(assignment)
            total = 0
            for tp in positions:
                _low, high = self._consumer.get_watermark_offsets(tp, timeout=2)
                if tp.offset >= 0:
                    total += max(high - tp.offset, 0)
                else:
                    committed = self._consumer.committed([tp], timeout=2)[0].offset
                    total += high - committed if committed >= 0 else high
            return total
        except KafkaException as exc:
            logger.warning("Could not read the consumer lag: %s", exc)
            return "unknown"


def _describe(partitions: list[TopicPartition]) -> str:
    if not partitions:
        return "no partitions"
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
