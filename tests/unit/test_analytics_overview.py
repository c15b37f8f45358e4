"""The overview page and the geometry of its charts."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from alerts.models import Alert, AlertRule
from analytics import charts
from analytics.models import ErrorMessageRollup, MinuteRollup
from analytics.queries import ServiceVolume
from logs.levels import Level

URL = "/overview/"


@pytest.fixture
def staff(db):
    client = Client()
    user = User.objects.create_user("staff", password="s3cret-pass-w0rd", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def recent(db):
    """Rollups in the last hours, one error kind and one open alert."""
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for hours_back, service, level, count in [
        (1, "api", Level.INFO, 40),
        (1, "api", Level.ERROR, 3),
        (2, "billing", Level.WARNING, 12),
        (3, "billing", Level.INFO, 8),
    ]:
        MinuteRollup.objects.create(
            minute=hour - timedelta(hours=hours_back),
            service_name=service,
            level=level,
            count=count,
        )
    ErrorMessageRollup.objects.create(
        minute=hour - timedelta(hours=1),
        service_name="api",
        fingerprint="0" * 32,
        count=3,
        max_level=Level.ERROR,
        example_message="timeout after 31 ms <script>",
    )
    rule = AlertRule.objects.create(name="api errors", kind=AlertRule.Kind.THRESHOLD)
    return Alert.objects.create(
        rule=rule,
        group="api",
        severity="critical",
        value=3,
        last_value=3,
        first_seen=hour,
        last_seen=hour,
    )


def series_rects(html: str, chart_id: str) -> dict[str, int]:
    """Count the rects of each level's series in one chart of the page."""
    chart = re.search(rf'<svg class="chart" id="{chart_id}".*?</svg>', html, re.S)
    assert chart, f"no SVG with id {chart_id}"
    groups = re.findall(
        r'<g class="series" data-level="(\w+)"[^>]*>(.*?)</g>', chart.group(0), re.S
    )
    return {level: body.count("<rect") for level, body in groups}


def test_overview_needs_staff(db):
    anonymous = Client().get(URL)
    member = Client()
    member.force_login(User.objects.create_user("member", password="s3cret-pass-w0rd"))

    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]
    assert member.get(URL).status_code == 302


def test_overview_draws_rollups(staff, recent):
    response = staff.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert series_rects(html, "volume-chart") == {
        "INFO": 2,
        "WARNING": 1,
        "ERROR": 1,
    }
    assert series_rects(html, "services-chart") == {
        "INFO": 2,
        "WARNING": 1,
        "ERROR": 1,
    }
    assert 'id="total-entries">63<' in html
    assert 'id="total-errors">3<' in html


def test_overview_lists_errors_escaped(staff, recent):
    html = staff.get(URL).content.decode()

    assert "timeout after 31 ms &lt;script&gt;" in html
    assert "<script>" not in html


def test_overview_lists_open_alerts(staff, recent):
    resolved_rule = AlertRule.objects.create(name="old", kind=AlertRule.Kind.PATTERN)
    Alert.objects.create(
        rule=resolved_rule,
        state=Alert.State.RESOLVED,
        severity="info",
        value=1,
        last_value=0,
        first_seen=timezone.now(),
        last_seen=timezone.now(),
    )

    html = staff.get(URL).content.decode()

    assert f'data-alert="{recent.pk}"' in html
    assert "api errors" in html
    assert ">old<" not in html
    assert 'id="total-alerts">1<' in html
    if admin.site.is_registered(Alert):
        assert f"/admin/alerts/alert/{recent.pk}/change/" in html


def test_overview_range_selector(staff, recent):
    last_hour = staff.get(URL, {"range": "1h"}).content.decode()
    week = staff.get(URL, {"range": "7d"}).content.decode()
    unknown = staff.get(URL, {"range": "1y"}).content.decode()

    assert series_rects(last_hour, "volume-chart") == {}
    assert "No entries in this range." in last_hour
    assert 'class="selected" aria-current="page">7d<' in week
    assert sum(series_rects(week, "volume-chart").values()) == 4
    assert 'class="selected" aria-current="page">24h<' in unknown


def test_admin_index_links_overview(db):
    client = Client()
    user = User.objects.create_superuser("root", password="s3cret-pass-w0rd")
    client.force_login(user)

    response = client.get("/admin/")

    assert response.status_code == 200
    assert 'href="/overview/"' in response.content.decode()


def test_columns_stack_without_overlap():
    starts = [datetime(2031, 1, 1, hour, tzinfo=UTC) for hour in range(3)]
    counts = {Level.INFO: [10, 0, 4], Level.ERROR: [5, 2, 0]}

    chart = charts.stacked_columns(starts, counts, "hour")

    info, error = chart.series
    assert [bar.count for bar in info.bars] == [10, 4]
    assert [bar.count for bar in error.bars] == [5, 2]
    # The ERROR bar of the first column sits on top of its INFO bar.
    assert error.bars[0].y + error.bars[0].height == pytest.approx(info.bars[0].y)
    # Heights are proportional to counts, on an axis that tops out at 20.
    plot_height = chart.plot_bottom - chart.plot_top
    assert info.bars[0].height == pytest.approx(plot_height * 10 / 20, abs=0.01)
    assert [tick.label for tick in chart.y_ticks] == ["0", "5", "10", "15", "20"]
    assert not chart.empty


def test_columns_without_data_are_empty():
    starts = [datetime(2031, 1, 1, hour, tzinfo=UTC) for hour in range(3)]

    chart = charts.stacked_columns(starts, {}, "hour")

    assert chart.empty
    assert chart.bar_count == 0
    assert len(chart.x_ticks) == 3


def test_rows_order_and_totals():
    services = [
        ServiceVolume("api", 30, {Level.INFO: 20, Level.ERROR: 10}),
        ServiceVolume("billing", 5, {Level.WARNING: 5}),
    ]

    chart = charts.stacked_rows(services)

    assert [tick.label for tick in chart.y_ticks] == ["api", "billing"]
    assert [note.text for note in chart.notes] == ["30", "5"]
    assert {series.name: len(series.bars) for series in chart.series} == {
        "INFO": 1,
        "WARNING": 1,
        "ERROR": 1,
    }
    info = chart.series[0].bars[0]
    error = chart.series[2].bars[0]
    assert error.x == pytest.approx(info.x + info.width, abs=0.01)


@pytest.mark.parametrize(
    ("value", "maximum"),
    [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (20, 20), (21, 50), (999, 1000)],
)
def test_nice_maximum(value, maximum):
    assert charts.nice_maximum(value) == maximum


def test_overview_caps_open_alerts(staff, db):
    rule = AlertRule.objects.create(name="per service", kind=AlertRule.Kind.PATTERN)
    now = timezone.now()
    for number in range(52):
        Alert.objects.create(
            rule=rule,
            group=f"service-{number}",
            severity="warning",
            value=1,
            last_value=1,
            first_seen=now - timedelta(minutes=number),
            last_seen=now,
        )

    html = staff.get(URL).content.decode()

    assert html.count("<tr data-alert=") == 50
    assert 'id="total-alerts">52<' in html
    assert "The 50 most recent of 52 open alerts." in html
    assert ">service-0<" in html
    assert ">service-51<" not in html


def test_overview_chosen_dates_show_old_entries(staff):
    """Imported files carry old timestamps; a chosen range draws them."""
    for day, level, count in [(3, Level.INFO, 7), (5, Level.ERROR, 2)]:
        MinuteRollup.objects.create(
            minute=datetime(2008, 11, day, 10, 0, tzinfo=UTC),
            service_name="hdfs-import",
            level=level,
            count=count,
        )
    page = staff.get(
        URL, {"since": "2008-11-01", "until": "2008-11-09"}
    ).content.decode()

    assert series_rects(page, "volume-chart") == {"INFO": 1, "ERROR": 1}
    assert "one bar per day" in page
    assert 'value="2008-11-01"' in page
    assert "2008-11-01 00:00 to 2008-11-10 00:00 UTC" in page


@pytest.mark.parametrize(
    "params, bucket",
    [
        ({"since": "2008-01-01", "until": "2008-12-31"}, "day"),
        ({"since": "2008-11-03T10:00:00Z", "until": "2008-11-03T11:00:00Z"}, "minute"),
    ],
)
def test_overview_chosen_range_picks_bucket(staff, params, bucket):
    page = staff.get(URL, params).content.decode()

    assert f"one bar per {bucket}" in page


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"since": "2008-11-09", "until": "2008-11-01"},
        {"since": "2008-13-45"},
        {"range": "2w"},
        {"since": "9999-12-30", "until": "9999-12-31"},
    ],
)
def test_overview_unreadable_range_falls_back(staff, params):
    response = staff.get(URL, params)
    page = response.content.decode()

    assert 'class="selected" aria-current="page">24h<' in page
    assert response.status_code == 400
    assert "Invalid range" in page


def test_overview_long_range_is_cut_to_recent_columns(staff):
    page = staff.get(
        URL, {"since": "1990-01-01", "until": "2008-12-31"}
    ).content.decode()

    assert "one bar per day" in page
    assert "2007-11-28 00:00 to 2009-01-01 00:00 UTC" in page


def test_overview_lists_top_patterns(staff, db):
    from analytics.models import PatternHourRollup, PatternMinuteRollup
    from tests.rows import store_pattern

    now = timezone.now()
    minute = now.replace(second=0, microsecond=0) - timedelta(hours=1)
    busy = store_pattern("api", "GET <*> took <*> ms", now - timedelta(days=3))
    quiet = store_pattern("api", "cache <b> <*> evicted", now - timedelta(days=3))
    out_of_range = store_pattern("api", "old <*>", now - timedelta(days=3))
    for pattern, count, at in [
        (busy, 30, minute),
        (quiet, 4, minute),
        (out_of_range, 99, minute - timedelta(days=2)),
    ]:
        PatternMinuteRollup.objects.create(minute=at, pattern=pattern, count=count)
        # The hour row that a recompute of the minute writes.
        hour = at.replace(minute=0)
        PatternHourRollup.objects.create(hour=hour, pattern=pattern, count=count)

    html = staff.get(URL, {"range": "24h"}).content.decode()

    section = html[html.index('id="patterns"') : html.index('id="alerts"')]
    rows = re.findall(r'data-pattern="(\d+)"', section)
    assert rows == [str(busy.pk), str(quiet.pk)]
    assert "cache &lt;b&gt; &lt;*&gt; evicted" in section
    assert f"/admin/logs/log/?pattern={busy.pk}" in section
    assert f"/admin/logs/pattern/{busy.pk}/change/" in section
