"""Read the dead-letter topic and send its messages back to the logs topic.

The consumer moves every message it cannot use to the dead-letter topic
with a `dlq.reason` header. Once the cause is fixed, `replay` produces the
messages to the logs topic again. Replay reads with a consumer group of its
own and commits each partition's progress after the replayed messages are
confirmed by Kafka, so a message is replayed at most once per group: a later
replay starts after it. A message that fails again comes back to the
dead-letter topic at a new offset.
"""

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    Message,
    Producer,
    TopicPartition,
)
from django.conf import settings

from logs.kafka import producer_config

logger = logging.getLogger(__name__)

# Seconds to wait for one read before the topic counts as read to its end.
READ_TIMEOUT = 5.0
PREVIEW_CHARACTERS = 80


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    reason: str
    size: int
    truncated: bool
    value: bytes
    key: bytes | None

    @property
    def preview(self) -> str:
        text = self.value[: PREVIEW_CHARACTERS * 4].decode("utf-8", errors="replace")
        text = text[:PREVIEW_CHARACTERS]
        # repr() shows control characters and NULs as escapes on one line.
        return repr(text)[1:-1]


def _dead_letter(message: Message) -> DeadLetter:
    headers = {name: value for name, value in message.headers() or []}
    value = message.value() or b""
    size = headers.get("dlq.size")
    return DeadLetter(
        partition=message.partition(),
        offset=message.offset(),
        reason=(headers.get("dlq.reason") or b"unknown").decode(errors="replace"),
        size=int(size) if size and size.isdigit() else len(value),
        truncated=headers.get("dlq.truncated") == b"1",
        value=value,
        key=message.key(),
    )


def _consumer(group_id: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": group_id,
            "client.id": "logplatform-dead-letters",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def _read(
    consumer: Consumer,
    starts: list[TopicPartition],
    first: int | None,
    last: int | None,
) -> Iterator[Message]:
    """Yield the messages of the given partitions from their start offsets up
    to the end the topic had when the read began, within [first, last]."""
    ends: dict[int, int] = {}
    assigned = []
    for start in starts:
        _low, high = consumer.get_watermark_offsets(start, timeout=10)
        end = high if last is None else min(high, last + 1)
        offset = start.offset
        if first is not None and (offset < 0 or offset < first):
            offset = first
        if offset < 0:
            offset = OFFSET_BEGINNING
        if end > max(offset, 0):
            ends[start.partition] = end
            assigned.append(TopicPartition(start.topic, start.partition, offset))
    if not assigned:
        return
    consumer.assign(assigned)
    while ends:
        message = consumer.poll(READ_TIMEOUT)
        if message is None:
            logger.warning(
                "Dead letters: no message within %ss, stopping", READ_TIMEOUT
            )
            return
        if message.error():
            logger.error("Dead letters: read error: %s", message.error())
            continue
        partition = message.partition()
        if partition not in ends:
            continue
        if message.offset() < ends[partition]:
            yield message
        if message.offset() + 1 >= ends[partition]:
            del ends[partition]


def _partitions(consumer: Consumer, topic: str) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        raise ValueError(f"Topic {topic!r} cannot be read: {metadata.error}")
    return [TopicPartition(topic, number) for number in sorted(metadata.partitions)]


def list_dead_letters(
    topic: str, first: int | None = None, last: int | None = None
) -> Iterator[DeadLetter]:
    """Yield the dead letters in `topic`, without committing anything."""
    # The group is never committed; it only names the reader.
    consumer = _consumer(f"logplatform-dead-letters-list-{uuid.uuid4().hex}")
    try:
        starts = [
            TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING)
            for tp in _partitions(consumer, topic)
        ]
        for message in _read(consumer, starts, first, last):
            yield _dead_letter(message)
    finally:
        consumer.close()


@dataclass
class ReplayResult:
    replayed: int = 0
    skipped_truncated: int = 0


def replay_dead_letters(
    dlq_topic: str,
    topic: str,
    group_id: str,
    first: int | None = None,
    last: int | None = None,
) -> ReplayResult:
    """Produce the dead letters not yet replayed by `group_id` to `topic`.

    Offsets below `first` are passed over and count as done, so a later
    replay of the same group does not send them either. Truncated messages
    are skipped, because only their start was kept.
    """
    consumer = _consumer(group_id)
    producer = Producer(producer_config("logplatform-dead-letters-replay"))
    result = ReplayResult()
    try:
        partitions = _partitions(consumer, dlq_topic)
        starts = consumer.committed(partitions, timeout=10)
        done: dict[int, int] = {}
        for message in _read(consumer, starts, first, last):
            letter = _dead_letter(message)
            if letter.truncated:
                logger.warning(
                    "Dead letters: skipping [%s] offset %s, truncated from %d bytes",
                    letter.partition,
                    letter.offset,
                    letter.size,
                )
                result.skipped_truncated += 1
            else:
                producer.produce(topic, value=letter.value, key=letter.key)
                result.replayed += 1
            done[letter.partition] = letter.offset + 1
        _commit(consumer, producer, dlq_topic, done)
    finally:
        consumer.close()
    logger.info(
        "Dead letters: replayed %d from %s to %s as group %s, skipped %d truncated",
        result.replayed,
        dlq_topic,
        topic,
        group_id,
        result.skipped_truncated,
    )
    return result


def _commit(
    consumer: Consumer, producer: Producer, dlq_topic: str, done: dict[int, int]
) -> None:
    # Commit only after Kafka confirmed every replayed message: a crash
    # before the commit replays them again, and the insert ignores the
    # event ids already stored.
    remaining = producer.flush(30)
    if remaining:
        raise RuntimeError(
            f"Kafka did not confirm {remaining} replayed messages; nothing was "
            "committed, so the next replay sends them again."
        )
    if done:
        offsets = [
            TopicPartition(dlq_topic, partition, offset)
            for partition, offset in done.items()
        ]
        consumer.commit(offsets=offsets, asynchronous=False)
