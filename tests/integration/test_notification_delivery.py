"""Notification deliveries sent by a real Celery worker to a loopback webhook.

The session's pipeline worker runs against the test database and the Redis
database of TEST_REDIS_DB, with retries 1, 2, 4... seconds apart. The tests
publish tasks to that Redis database over their own connection, because
this process's Celery app points at the default broker, and beat runs the
redelivery sweep from the stored schedule. Rows are created with
autocommit (`db_access`), so the worker can read them, and deleted at
the end.
"""

import json
import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.utils import timezone

from alerts.models import (
    Alert,
    AlertRule,
    NotificationChannel,
    NotificationDelivery,
    Severity,
)
from logplatform.celery import app as celery_app
from tests.integration.conftest import REDIS_TEST_DB, wait_until
from tests.processes import ManagedProcess
from tests.receiver import Receiver

pytestmark = [pytest.mark.integration]

Status = NotificationDelivery.Status

SECRET = secrets.token_urlsafe(32)


def redis_test_url() -> str:
    parts = urlsplit(settings.CELERY_BROKER_URL)
    return urlunsplit(parts._replace(path=f"/{REDIS_TEST_DB}"))


@pytest.fixture(scope="module")
def worker(pipeline) -> ManagedProcess:
    """The session's pipeline worker, whose retries are 1, 2, 4... seconds apart."""
    return pipeline.worker


def publish(task_name: str, *args) -> None:
    """Send a task to the test Redis database, where the worker listens."""
    with celery_app.connection_for_write(redis_test_url()) as broker:
        celery_app.send_task(task_name, args=list(args), connection=broker)


@pytest.fixture
def firing_alert(db_access) -> Iterator[Alert]:
    """A firing alert of a disabled rule, so no evaluation or reminder touches it."""
    now = timezone.now()
    rule = AlertRule.objects.create(
        name=f"Notification delivery test {secrets.token_hex(4)}",
        kind=AlertRule.Kind.THRESHOLD,
        enabled=False,
        threshold=1,
        severity=Severity.CRITICAL,
    )
    alert = Alert.objects.create(
        rule=rule,
        group="checkout",
        severity=Severity.CRITICAL,
        value=3,
        last_value=3,
        first_seen=now,
        last_seen=now,
        last_notified_at=now,
    )
    yield alert
    rule.delete()


@pytest.fixture
def webhook_channel(db_access) -> Iterator[Callable[[str], NotificationChannel]]:
    created = []

    def create(url: str) -> NotificationChannel:
        channel = NotificationChannel.objects.create(
            name=f"Integration webhook {secrets.token_hex(4)}",
            kind=NotificationChannel.Kind.WEBHOOK,
            url=url,
            secret=SECRET,
        )
        created.append(channel)
        return channel

    yield create
    for channel in created:
        channel.delete()


def delivery_state(delivery_id: int) -> str:
    return NotificationDelivery.objects.get(pk=delivery_id).status


def test_worker_registers_tasks(worker):
    worker.wait_for_output(r"\. alerts\.redeliver_pending", timeout=10)

    assert ". alerts.send_notification" in worker.output()


def test_retries_until_accepted(worker, firing_alert, webhook_channel):
    answers = [(500, b"receiver failure 1"), (500, b"receiver failure 2")]
    with Receiver(answers=answers, secret=SECRET) as receiver:
        channel = webhook_channel(receiver.url)
        delivery = NotificationDelivery.objects.create(
            channel=channel, alert=firing_alert, event=NotificationDelivery.Event.FIRED
        )
        publish("alerts.send_notification", delivery.pk)

        wait_until(
            lambda: delivery_state(delivery.pk) != Status.PENDING,
            90,
            f"delivery {delivery.pk} to leave pending",
        )

    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED
    assert delivery.attempts == 3
    assert delivery.last_error == "HTTP 500: receiver failure 2"
    assert delivery.delivered_at is not None
    assert [request.status for request in receiver.requests] == [500, 500, 200]
    assert len(receiver.accepted) == 1
    assert all(request.signature_valid for request in receiver.requests)
    delivery_headers = {
        request.headers["X-Logplatform-Delivery"] for request in receiver.requests
    }
    assert delivery_headers == {str(delivery.pk)}
    payloads = [json.loads(request.body) for request in receiver.requests]
    assert {payload["delivery_id"] for payload in payloads} == {delivery.pk}
    assert {payload["alert"]["id"] for payload in payloads} == {firing_alert.pk}


def test_lost_task_sent_after_sweep(worker, beat, firing_alert, webhook_channel):
    with Receiver(secret=SECRET) as receiver:
        channel = webhook_channel(receiver.url)
        # Committed but never enqueued, as after a crash between the two.
        grace = timedelta(seconds=settings.NOTIFICATION_REDELIVER_GRACE_SECONDS)
        delivery = NotificationDelivery.objects.create(
            channel=channel,
            alert=firing_alert,
            event=NotificationDelivery.Event.FIRED,
            next_attempt_at=timezone.now() - grace - timedelta(seconds=5),
        )
        # Nothing is published here: beat runs the sweep from its schedule.

        wait_until(
            lambda: delivery_state(delivery.pk) != Status.PENDING,
            90,
            f"delivery {delivery.pk} to be sent after the sweep",
        )

    delivery.refresh_from_db()
    assert delivery.status == Status.DELIVERED
    assert delivery.attempts == 1
    assert len(receiver.requests) == 1
    assert receiver.requests[0].signature_valid is True
    assert receiver.requests[0].headers["X-Logplatform-Delivery"] == str(delivery.pk)
