"""The admin pages of notification channels and deliveries."""

import pytest
from django.contrib.auth.models import User

from alerts.models import NotificationChannel, NotificationDelivery

SECRET = "admin-test-secret-abcdefghijklmnop"
SLACK_TOKEN = "T0001/B0002/slacktokenvalue"


@pytest.fixture
def staff_client(client, db):
    User.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    client.login(username="admin", password="admin-pass-123")
    return client


@pytest.fixture
def channels(db):
    webhook = NotificationChannel.objects.create(
        name="Ops webhook",
        kind=NotificationChannel.Kind.WEBHOOK,
        url="https://hooks.example.com/logplatform",
        secret=SECRET,
    )
    slack = NotificationChannel.objects.create(
        name="Ops Slack",
        kind=NotificationChannel.Kind.SLACK,
        url=f"https://hooks.slack.example.com/services/{SLACK_TOKEN}",
    )
    return webhook, slack


def test_channel_list_masks_secrets(staff_client, channels):
    response = staff_client.get("/admin/alerts/notificationchannel/")

    assert response.status_code == 200
    assert b"Ops webhook" in response.content
    assert SECRET.encode() not in response.content
    assert SLACK_TOKEN.encode() not in response.content
    assert "••••••••".encode() in response.content
    assert b"https://hooks.slack.example.com" in response.content


def test_test_action_queues_deliveries(
    staff_client, channels, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post(
            "/admin/alerts/notificationchannel/",
            {
                "action": "send_test",
                "_selected_action": [channel.pk for channel in channels],
            },
            follow=True,
        )

    assert response.status_code == 200
    deliveries = NotificationDelivery.objects.filter(event="test")
    assert sorted(deliveries.values_list("channel_id", flat=True)) == sorted(
        channel.pk for channel in channels
    )
    assert len(callbacks) == 2
    assert b"Queued 2 test notifications" in response.content


def test_delivery_list_and_filters(staff_client, channels):
    webhook, slack = channels
    NotificationDelivery.objects.create(
        channel=webhook,
        event="test",
        status="failed",
        attempts=8,
        last_error="HTTP 500: receiver down",
    )
    NotificationDelivery.objects.create(channel=slack, event="test", status="delivered")

    everything = staff_client.get("/admin/alerts/notificationdelivery/")
    failed = staff_client.get(
        "/admin/alerts/notificationdelivery/", {"status__exact": "failed"}
    )
    delivered = staff_client.get(
        "/admin/alerts/notificationdelivery/", {"status__exact": "delivered"}
    )

    assert everything.status_code == 200
    assert b"HTTP 500: receiver down" in everything.content
    assert b"HTTP 500: receiver down" in failed.content
    assert b"HTTP 500: receiver down" not in delivered.content


def test_delivery_read_only(staff_client, channels):
    delivery = NotificationDelivery.objects.create(channel=channels[0], event="test")

    page = staff_client.get(f"/admin/alerts/notificationdelivery/{delivery.pk}/change/")
    add = staff_client.get("/admin/alerts/notificationdelivery/add/")
    post = staff_client.post(
        f"/admin/alerts/notificationdelivery/{delivery.pk}/change/",
        {"status": "delivered"},
    )

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert add.status_code == 403
    assert post.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == "pending"
