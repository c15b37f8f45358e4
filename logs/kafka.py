"""The intake side of Kafka: one idempotent producer per process.

`IntakeProducer.publish` returns once Kafka's delivery reports have
confirmed each entry or the delivery timeout has passed. The caller sends
whatever was not confirmed to the Celery fallback.

One thread per process serves the producer's delivery reports, and each
request waits on an event that its last report sets. When request threads
served the reports themselves, a thread whose report another thread had
served slept until its own poll timed out, which put a floor of that
timeout under every small request.
"""

import logging
import os
import threading
import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException, Producer
from django.conf import settings

logger = logging.getLogger(__name__)

# Maximum seconds the report thread blocks in one poll. A report wakes it
# at once, so the bound only sets how soon it notices a replaced producer.
POLL_INTERVAL = 0.1
# How long the probe that decides whether to try Kafka again may take.
PROBE_TIMEOUT = 1.0


def producer_config(client_id: str) -> dict:
    """Return the librdkafka settings for a durable, idempotent producer."""
    return {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "message.timeout.ms": settings.KAFKA_DELIVERY_TIMEOUT_MS,
        "message.max.bytes": settings.KAFKA_MAX_MESSAGE_BYTES + 4096,
        "socket.connection.setup.timeout.ms": 2000,
        "reconnect.backoff.max.ms": 2000,
    }


class _Delivery:
    """Collects the delivery reports of one request's messages."""

    def __init__(self, count: int):
        self.confirmed = bytearray(count)
        self.pending = count
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        if count == 0:
            self.done.set()

    def callback_for(self, index: int):
        def report(err, _msg) -> None:
            with self.lock:
                if err is None:
                    self.confirmed[index] = 1
                elif len(self.errors) < 3:
                    self.errors.append(str(err))
                self._settle(1)

        return report

    def give_up_on(self, count: int) -> None:
        """Stop waiting for messages that never entered the producer queue."""
        with self.lock:
            self._settle(count)

    def _settle(self, count: int) -> None:
        self.pending -= count
        if self.pending <= 0:
            self.done.set()

    def missing(self) -> list[int]:
        with self.lock:
            return [i for i, ok in enumerate(self.confirmed) if not ok]


class IntakeProducer:
    """A process-wide producer, created lazily and again after a fork.

    After a failure the producer stops trying Kafka for
    KAFKA_RETRY_AFTER_FAILURE_SECONDS, so requests go to the fallback
    without waiting for a broker that is down. The next request after that
    pause probes the broker before it produces.
    """

    def __init__(self, topic: str | None = None):
        self.topic = topic or settings.KAFKA_TOPIC
        self._producer: Producer | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._needs_probe = False

    def _client(self) -> Producer:
        with self._lock:
            if self._producer is None or self._pid != os.getpid():
                # After a fork the parent's producer and its report thread
                # are unusable here, so the child makes its own.
                self._pid = os.getpid()
                producer = Producer(
                    producer_config(f"logplatform-api-{self._pid}")
                    | {"error_cb": self._on_error}
                )
                self._producer = producer
                threading.Thread(
                    target=self._serve_reports,
                    args=(producer,),
                    name="kafka-delivery-reports",
                    daemon=True,
                ).start()
                logger.info("Kafka producer created in process %s", self._pid)
            return self._producer

    def _serve_reports(self, producer: Producer) -> None:
        """Run the delivery callbacks of this producer until it is replaced."""
        while self._producer is producer:
            try:
                producer.poll(POLL_INTERVAL)
            except Exception:
                # A failing callback must not end the thread, or every later
                # request would wait out its whole delivery timeout.
                logger.exception("Kafka delivery report handling failed")
        logger.info("Kafka delivery report thread of a replaced producer stopped")

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            logger.warning("Kafka producer: all brokers are down: %s", err)
            self._mark_failed()
        elif err.fatal():
            logger.error("Kafka producer hit a fatal error, recreating it: %s", err)
            self._mark_failed()
            with self._lock:
                self._producer = None
        else:
            logger.info("Kafka producer: %s", err)

    def _mark_failed(self) -> None:
        self._skip_until = time.monotonic() + settings.KAFKA_RETRY_AFTER_FAILURE_SECONDS
        self._needs_probe = True

    def available(self) -> bool:
        """Return whether Kafka should be tried for the next request."""
        if time.monotonic() < self._skip_until:
            return False
        if not self._needs_probe:
            return True
        try:
            self._client().list_topics(self.topic, timeout=PROBE_TIMEOUT)
        except KafkaException as exc:
            logger.warning("Kafka is still unreachable: %s", exc)
            self._mark_failed()
            return False
        self._needs_probe = False
        logger.info("Kafka is reachable again; intake uses it again")
        return True

    def publish(self, payloads: Sequence[bytes]) -> list[int]:
        """Produce each payload and wait for its delivery report.

        Returns the indexes of the payloads that Kafka did not confirm in
        time; an empty list means the brokers stored every one. A message
        whose report comes too late counts as missing: if Kafka stores it
        after all, the database insert ignores the second copy.
        """
        if not payloads:
            return []
        if not self.available():
            return list(range(len(payloads)))

        producer = self._client()
        delivery = _Delivery(len(payloads))
        deadline = time.monotonic() + settings.KAFKA_DELIVERY_TIMEOUT_MS / 1000 + 1
        self._produce_all(producer, payloads, delivery, deadline)
        delivery.done.wait(max(0.0, deadline - time.monotonic()))

        missing = delivery.missing()
        if missing:
            logger.warning(
                "Kafka did not confirm %d of %d entries: %s",
                len(missing),
                len(payloads),
                "; ".join(delivery.errors) or "delivery timed out",
            )
            self._mark_failed()
        return missing

    def _produce_all(
        self,
        producer: Producer,
        payloads: Sequence[bytes],
        delivery: _Delivery,
        deadline: float,
    ) -> None:
        for index, payload in enumerate(payloads):
            while True:
                try:
                    producer.produce(
                        self.topic, payload, on_delivery=delivery.callback_for(index)
                    )
                    break
                except BufferError:
                    # The local queue is full until the report thread has
                    # served more reports.
                    if time.monotonic() >= deadline:
                        delivery.give_up_on(1)
                        break
                    time.sleep(0.01)
                except KafkaException as exc:
                    logger.error("Kafka rejected entry %d of a request: %s", index, exc)
                    delivery.give_up_on(1)
                    break

    def flush(self, timeout: float = 10.0) -> int:
        if self._producer is None:
            return 0
        return self._producer.flush(timeout)


_intake_producer: IntakeProducer | None = None
_intake_lock = threading.Lock()


def get_intake_producer() -> IntakeProducer:
    global _intake_producer
    with _intake_lock:
        if _intake_producer is None:
            _intake_producer = IntakeProducer()
        return _intake_producer
