"""The alerts API and admin: rules, channels, alerts, deliveries and actions."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import Alert, AlertRule, NotificationChannel, NotificationDelivery
from tests.rows import open_alert

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client


@pytest.fixture
def reader():
    user = User.objects.create_user(f"reader-{uuid.uuid4().hex[:6]}")
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def channel():
    return NotificationChannel.objects.create(
        name=f"hook {uuid.uuid4().hex[:6]}",
        kind=NotificationChannel.Kind.WEBHOOK,
        url="http://127.0.0.1:9/hook",
    )


@pytest.fixture
def alert(channel):
    alert = open_alert()
    alert.rule.channels.add(channel)
    return alert


def rule_body(**fields):
    return {
        "name": f"api rule {uuid.uuid4().hex[:6]}",
        "kind": "threshold",
        "service_name": "checkout",
        "min_level": "err",
        "window": "00:05:00",
        "threshold": 10,
    } | fields


def test_reading_needs_a_signed_in_user():
    client = APIClient()
    for name in ("alertrule-list", "channel-list", "alert-list", "delivery-list"):
        assert client.get(reverse(name)).status_code in (401, 403), name


def test_rule_created_by_staff(staff, channel):
    response = staff.post(
        reverse("alertrule-list"), rule_body(channels=[channel.pk]), format="json"
    )
    assert response.status_code == 201, response.data
    rule = AlertRule.objects.get(pk=response.data["id"])
    assert rule.min_level == 40
    assert rule.window == timedelta(minutes=5)
    assert list(rule.channels.all()) == [channel]
    assert response.data["min_level"] == "ERROR"


def test_rule_read_only_for_non_staff(reader):
    AlertRule.objects.create(name=f"r {uuid.uuid4().hex[:6]}", kind="pattern")
    assert reader.get(reverse("alertrule-list")).status_code == 200
    response = reader.post(reverse("alertrule-list"), rule_body(), format="json")
    assert response.status_code == 403
    assert "staff" in str(response.data["detail"])


@pytest.mark.parametrize(
    "fields, field_name",
    [
        ({"message_regex": "(open"}, "message_regex"),
        ({"kind": "ratio", "threshold": 1.5}, "threshold"),
        ({"threshold": 2.5}, "threshold"),
        ({"min_level": "loud"}, "min_level"),
        ({"window": "soon"}, "window"),
        ({"kind": "sometimes"}, "kind"),
        ({"metadata_value": "x"}, "metadata_key"),
    ],
)
def test_invalid_rules_are_refused_naming_the_field(staff, fields, field_name):
    response = staff.post(reverse("alertrule-list"), rule_body(**fields), format="json")
    assert response.status_code == 400
    assert field_name in response.data, response.data


def test_rule_unchanged_after_rejected_patch(staff):
    rule = AlertRule.objects.create(
        name=f"r {uuid.uuid4().hex[:6]}", kind="threshold", threshold=5
    )
    url = reverse("alertrule-detail", args=[rule.pk])
    response = staff.patch(url, {"threshold": -1}, format="json")
    assert response.status_code == 400
    rule.refresh_from_db()
    assert rule.threshold == 5


def test_webhook_secret_is_shown_once_on_creation(staff):
    response = staff.post(
        reverse("channel-list"),
        {"name": "ops hook", "kind": "webhook", "url": "http://127.0.0.1:9/x"},
        format="json",
    )
    assert response.status_code == 201, response.data
    secret = response.data["secret"]
    assert len(secret) >= 32
    assert NotificationChannel.objects.get(name="ops hook").secret == secret
    shown = staff.get(reverse("channel-detail", args=[response.data["id"]])).data
    assert "secret" not in shown
    assert shown["has_secret"] is True


def test_channel_test_action_queues_a_test_delivery(staff, channel):
    response = staff.post(reverse("channel-test", args=[channel.pk]))
    assert response.status_code == 202
    delivery = NotificationDelivery.objects.get(pk=response.data["id"])
    assert delivery.event == NotificationDelivery.Event.TEST
    assert delivery.alert is None


def test_email_channel_needs_addresses(staff):
    response = staff.post(
        reverse("channel-list"), {"name": "mail", "kind": "email"}, format="json"
    )
    assert response.status_code == 400
    assert "recipients" in response.data


def test_acknowledge_then_resolve_an_alert(reader, alert):
    ack = reader.post(reverse("alert-acknowledge", args=[alert.pk]))
    assert ack.status_code == 200
    assert ack.data["state"] == "acknowledged"
    assert reader.post(reverse("alert-acknowledge", args=[alert.pk])).status_code == 409

    resolved = reader.post(reverse("alert-resolve", args=[alert.pk]))
    assert resolved.status_code == 200
    assert resolved.data["state"] == "resolved"
    assert (
        NotificationDelivery.objects.filter(alert=alert, event="resolved").count() == 1
    )
    assert reader.post(reverse("alert-resolve", args=[alert.pk])).status_code == 409


def test_alert_silence_set_and_lifted(reader, alert):
    url = reverse("alert-silence", args=[alert.pk])
    response = reader.post(url, {"for": "1h"}, format="json")
    assert response.status_code == 200
    alert.refresh_from_db()
    left = alert.silenced_until - timezone.now()
    assert timedelta(minutes=59) < left <= timedelta(hours=1)

    until = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    assert (
        reader.post(url, {"until": until.isoformat()}, format="json").status_code == 200
    )
    alert.refresh_from_db()
    assert alert.silenced_until == until

    assert reader.post(url, {"until": None}, format="json").status_code == 200
    alert.refresh_from_db()
    assert alert.silenced_until is None


@pytest.mark.parametrize(
    "body",
    [
        {"for": "forever"},
        {"for": "0h"},
        {"for": "999999w"},
        {"until": "2001-01-01T00:00:00Z"},
        {},
        {"for": "1h", "until": None},
    ],
)
def test_bad_silences_are_refused(reader, alert, body):
    response = reader.post(
        reverse("alert-silence", args=[alert.pk]), body, format="json"
    )
    assert response.status_code == 400, response.data
    alert.refresh_from_db()
    assert alert.silenced_until is None


def test_rule_silence_through_the_api(staff, alert):
    url = reverse("alertrule-silence", args=[alert.rule.pk])
    assert staff.post(url, {"for": "1d"}, format="json").status_code == 200
    alert.refresh_from_db()
    assert alert.is_silenced()


def test_alerts_filter_by_open_and_rule(reader, alert):
    other = Alert.objects.create(
        rule=alert.rule,
        group="other",
        state=Alert.State.RESOLVED,
        severity="warning",
        value=1,
        last_value=1,
        first_seen=timezone.now(),
        last_seen=timezone.now(),
        resolved_at=timezone.now(),
    )
    base = {"rule": alert.rule.pk}
    open_ids = {
        a["id"]
        for a in reader.get(reverse("alert-list"), base | {"open": "true"}).data[
            "results"
        ]
    }
    closed_ids = {
        a["id"]
        for a in reader.get(reverse("alert-list"), base | {"open": "false"}).data[
            "results"
        ]
    }
    assert open_ids == {alert.pk}
    assert closed_ids == {other.pk}


def test_admin_actions_acknowledge_and_silence(alert):
    from django.test import Client

    admin_user = User.objects.create_superuser(f"admin-{uuid.uuid4().hex[:6]}")
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:alerts_alert_changelist")
    client.post(url, {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.state == Alert.State.ACKNOWLEDGED
    client.post(url, {"action": "silence_24h", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.silenced_until > timezone.now() + timedelta(hours=23)
    page = client.get(reverse("admin:alerts_alert_change", args=[alert.pk]))
    assert page.status_code == 200
    for name in ("alertrule", "notificationchannel", "notificationdelivery"):
        assert client.get(reverse(f"admin:alerts_{name}_changelist")).status_code == 200


def test_rule_list_counts_open_alerts(reader, alert):
    Alert.objects.create(
        rule=alert.rule,
        group="closed",
        state=Alert.State.RESOLVED,
        severity="warning",
        value=1,
        last_value=1,
        first_seen=timezone.now(),
        last_seen=timezone.now(),
        resolved_at=timezone.now(),
    )
    rows = reader.get(reverse("alertrule-list")).data["results"]
    (row,) = [row for row in rows if row["id"] == alert.rule.pk]
    assert row["open_alerts"] == 1
