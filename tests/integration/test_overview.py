"""The overview page in Debian's Chromium, served by gunicorn from the test database.

The rows are committed (the `db_access` fixture, not a test transaction) so
that gunicorn sees them, and are deleted again at the end. Service and rule
names carry a random suffix, so the checks ignore rows of other tests.
"""

import base64
import os
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone
from playwright.sync_api import sync_playwright

from alerts.models import Alert, AlertRule
from analytics.charts import LEVEL_COLORS
from analytics.models import ErrorMessageRollup, MinuteRollup
from analytics.queries import busiest_services, frequent_errors
from analytics.rollup import roll_up_range
from analytics.views import overview_range
from logs.levels import Level
from logs.models import Log
from logs.storage import insert_entries
from tests.integration.conftest import wait_until
from tests.processes import (
    PROJECT_ROOT,
    ManagedProcess,
    database_url,
    free_port,
    gunicorn_command,
    plain_http_environment,
)

pytestmark = [pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "overview-s3cret-pass"

# Counts each pixel of the screenshot whose color is within a small distance
# of one of the given colors, after drawing the PNG on a canvas.
COUNT_COLORS_JS = """
async ([png, colors]) => {
    const image = new Image();
    image.src = "data:image/png;base64," + png;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, image.width, image.height).data;
    const counts = {};
    const distinct = new Set();
    const near = (a, b) => Math.abs(a - b) <= 6;
    for (const name of Object.keys(colors)) counts[name] = 0;
    for (let i = 0; i < pixels.length; i += 4) {
        const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
        if (distinct.size < 1000) distinct.add((r << 16) | (g << 8) | b);
        for (const [name, [cr, cg, cb]] of Object.entries(colors)) {
            if (near(r, cr) && near(g, cg) && near(b, cb)) {
                counts[name] += 1;
            }
        }
    }
    return {counts, distinct: distinct.size};
}
"""


@dataclass
class Dataset:
    run: str
    hours: dict[str, datetime]
    services: dict[str, str]
    volume: dict[tuple[str, datetime], int]
    service_totals: dict[str, int]
    alert: Alert
    username: str


@pytest.fixture(scope="module")
def chromium() -> Path:
    # A no-op when Chromium is installed; `make test` runs it before pytest.
    subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "browser.sh")], check=True, timeout=900
    )
    return CHROMIUM


@pytest.fixture(scope="module")
def server(db_access, tmp_path_factory) -> Iterator[str]:
    db = connection.settings_dict
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": database_url(db),
        **plain_http_environment(),
        "PYTHONUNBUFFERED": "1",
    }
    api = ManagedProcess(
        "overview-api",
        gunicorn_command(port, "--workers", "1", "--threads", "4"),
        env,
        tmp_path_factory.mktemp("overview"),
    )
    base_url = f"http://127.0.0.1:{port}"
    api.start()
    try:
        wait_until(lambda: _redirects(f"{base_url}/overview/"), 60, "gunicorn")
        yield base_url
    finally:
        api.stop()


def _redirects(url: str) -> bool:
    try:
        return requests.get(url, timeout=5, allow_redirects=False).status_code == 302
    except requests.RequestException:
        return False


def _entries(service, hour, level, count, message="ok", offset=0) -> list[dict]:
    return [
        {
            "id": str(uuid.uuid4()),
            "timestamp": hour + timedelta(minutes=(offset + i) % 60, seconds=7),
            "received_at": timezone.now(),
            "level": level,
            "service_name": service,
            "message": message.format(i=i),
            "metadata": {},
        }
        for i in range(count)
    ]


@pytest.fixture
def dataset(db_access) -> Iterator[Dataset]:
    run = uuid.uuid4().hex[:8]
    this_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    hours = {
        "early": this_hour - timedelta(hours=20),
        "middle": this_hour - timedelta(hours=12),
        "late": this_hour - timedelta(hours=3),
    }
    services = {name: f"{name}-{run}" for name in ("checkout", "search", "mailer")}
    checkout, search, mailer = services.values()
    batches = [
        (checkout, "early", "INFO", 30, "order {i} paid"),
        (checkout, "early", "WARNING", 5, "slow payment"),
        (checkout, "early", "ERROR", 4, "payment timeout after 3{i} ms"),
        (checkout, "late", "INFO", 10, "order {i} paid"),
        (checkout, "late", "CRITICAL", 1, "database 10.0.0.{i} unreachable"),
        (search, "middle", "DEBUG", 20, "query {i} planned"),
        (search, "middle", "INFO", 15, "query {i} served"),
        (search, "middle", "ERROR", 2, "index shard {i} missing"),
        (mailer, "middle", "INFO", 6, "mail {i} sent"),
    ]
    entries = []
    volume: Counter = Counter()
    for offset, (service, hour, level, count, message) in enumerate(batches):
        entries += _entries(service, hours[hour], level, count, message, offset * 5)
        volume[(level, hours[hour])] += count
    insert_entries(entries)
    roll_up_range(hours["early"], hours["late"] + timedelta(hours=1))

    rule = AlertRule.objects.create(
        name=f"checkout errors {run}", kind=AlertRule.Kind.THRESHOLD, threshold=3
    )
    alert = Alert.objects.create(
        rule=rule,
        group=checkout,
        severity="critical",
        value=4,
        last_value=4,
        first_seen=hours["early"] + timedelta(minutes=30),
        last_seen=hours["early"] + timedelta(minutes=40),
    )
    username = f"staff-{run}"
    User.objects.create_user(username, password=PASSWORD, is_staff=True)
    try:
        yield Dataset(
            run=run,
            hours=hours,
            services=services,
            volume=dict(volume),
            service_totals={checkout: 50, search: 37, mailer: 6},
            alert=alert,
            username=username,
        )
    finally:
        names = list(services.values())
        Log.objects.filter(service_name__in=names).delete()
        MinuteRollup.objects.filter(service_name__in=names).delete()
        ErrorMessageRollup.objects.filter(service_name__in=names).delete()
        rule.delete()
        User.objects.filter(username=username).delete()


def _levels_in_window(since: datetime) -> set[str]:
    """Name the levels of every rollup row the page's 24 hours include."""
    levels = MinuteRollup.objects.filter(minute__gte=since).values_list(
        "level", flat=True
    )
    return {Level(level).name for level in levels.distinct()}


def _rgb(color: str) -> list[int]:
    return [int(color[i : i + 2], 16) for i in (1, 3, 5)]


def test_overview_in_chromium(server, chromium, dataset, tmp_path):
    # Playwright's sync API runs an event loop, and Django raises
    # SynchronousOnlyOperation for queries inside one, so every expected
    # value is read before it starts.
    expected_levels = _levels_in_window(dataset.hours["early"] - timedelta(hours=3))
    since, until, _ = overview_range("24h", timezone.now())
    busiest = busiest_services(since, until + timedelta(minutes=5))
    frequent = frequent_errors(since, until + timedelta(minutes=5))
    console_errors: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            _log_in(page, server, dataset.username)

            page.on(
                "console",
                lambda message: (
                    message.type == "error"
                    and console_errors.append(f"{message.text} at {message.location}")
                ),
            )
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            response = page.goto(f"{server}/overview/")
            assert response is not None
            assert response.status == 200
            assert page.title() == "Overview | logplatform"

            _check_volume_chart(page, dataset, expected_levels)
            _check_services_chart(page, dataset, busiest)
            _check_errors_table(page, dataset, frequent)
            _check_alert_row(page, dataset)

            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
            # The legend shows every color too, so the color check looks at
            # the volume chart alone.
            chart_png = tmp_path / "volume-chart.png"
            page.locator("svg#volume-chart").screenshot(path=str(chart_png))
            _check_chart_colors(context, chart_png, _bar_areas(page))

            _check_range_selector(page, server, dataset, tmp_path)
        finally:
            context.close()

    assert console_errors == []


def _log_in(page, server: str, username: str) -> None:
    page.goto(f"{server}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server}/admin/")
    # The admin index links to the overview.
    assert page.locator('#overview-link a[href="/overview/"]').count() == 1


def _check_volume_chart(page, dataset: Dataset, expected_levels: set[str]) -> None:
    chart = page.locator("svg#volume-chart")
    assert chart.count() == 1
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 800
    assert box["height"] > 150

    drawn = set(
        chart.locator("g.series").evaluate_all("gs => gs.map(g => g.dataset.level)")
    )
    assert drawn == expected_levels
    for (level, hour), count in dataset.volume.items():
        bars = chart.locator(
            f'g.series[data-level="{level}"] rect[data-key="{hour.isoformat()}"]'
        )
        assert bars.count() == 1, f"no {level} bar at {hour}"
        assert int(bars.get_attribute("data-count")) >= count
        assert float(bars.get_attribute("height")) > 0


def _check_services_chart(page, dataset: Dataset, busiest) -> None:
    """The chart draws the busiest services of the database, with their totals.

    Other suites store entries too, so the expected list is read from the
    rollups; this test's own services are checked wherever they rank.
    """
    chart = page.locator("svg#services-chart")
    assert chart.count() == 1
    drawn = chart.locator("rect[data-key]").evaluate_all(
        "rects => rects.map(r => [r.dataset.key, Number(r.dataset.count)])"
    )
    totals: Counter = Counter()
    for service, count in drawn:
        totals[service] += count
    assert dict(totals) == {volume.service_name: volume.total for volume in busiest}
    shown = [name for name in dataset.services.values() if name in totals]
    for service in shown:
        assert totals[service] == dataset.service_totals[service], service
    checkout = dataset.services["checkout"]
    if checkout in totals:
        levels = chart.locator(f'rect[data-key="{checkout}"]').evaluate_all(
            "rects => rects.map(r => r.parentNode.dataset.level)"
        )
        assert levels == ["INFO", "WARNING", "ERROR", "CRITICAL"]


def _check_errors_table(page, dataset: Dataset, frequent) -> None:
    rows = page.locator("#errors tbody tr").evaluate_all(
        "trs => trs.map(tr => Array.from(tr.cells, td => td.textContent.trim()))"
    )
    assert [(int(row[0]), row[1]) for row in rows] == [
        (error["count"], error["service_name"]) for error in frequent
    ]
    mine = sorted(
        (int(row[0]), row[1], row[2]) for row in rows if dataset.run in row[1]
    )
    checkout, search = dataset.services["checkout"], dataset.services["search"]
    expected = [
        (1, checkout, "CRITICAL"),
        (2, search, "ERROR"),
        (4, checkout, "ERROR"),
    ]
    listed = {(error["count"], error["service_name"]) for error in frequent}
    assert mine == [row for row in expected if row[:2] in listed]


def _check_alert_row(page, dataset: Dataset) -> None:
    row = page.locator(f'tr[data-alert="{dataset.alert.pk}"]')
    assert row.count() == 1
    cells = row.locator("td").all_text_contents()
    assert cells[0] == dataset.alert.rule.name
    assert cells[1] == dataset.services["checkout"]
    assert cells[2].strip() == "Critical"
    assert cells[3].strip() == "Firing"
    assert cells[4] == "4"
    first_seen = dataset.alert.first_seen
    assert cells[5] == first_seen.strftime("%Y-%m-%d %H:%M:%S")
    if admin.site.is_registered(Alert):
        link = row.locator("a").get_attribute("href")
        assert link == f"/admin/alerts/alert/{dataset.alert.pk}/change/"


def _check_range_selector(page, server: str, dataset: Dataset, tmp_path) -> None:
    page.click(".ranges >> text=7d")
    page.wait_for_url(f"{server}/overview/?range=7d")
    assert page.locator(".ranges a.selected").inner_text() == "7d"
    # A week is drawn in hours too, so the same columns are there.
    chart = page.locator("svg#volume-chart")
    for level, hour in dataset.volume:
        key = hour.isoformat()
        bars = chart.locator(f'g.series[data-level="{level}"] rect[data-key="{key}"]')
        assert bars.count() == 1, f"no {level} bar at {hour} in the 7d range"
    assert (
        chart.locator("text.tick", has_text=re.compile(r"^[A-Z][a-z]{2} \d\d$")).count()
        >= 6
    )
    page.screenshot(path=str(tmp_path / "overview-7d.png"), full_page=True)

    page.click(".ranges >> text=1h")
    page.wait_for_url(f"{server}/overview/?range=1h")
    assert page.locator(".ranges a.selected").inner_text() == "1h"
    assert page.locator("svg#volume-chart").count() == 1
    page.screenshot(path=str(tmp_path / "overview-1h.png"), full_page=True)


def _bar_areas(page) -> dict[str, float]:
    """The area in pixels of each level's largest bar, as the SVG draws it."""
    return page.locator("svg#volume-chart g.series").evaluate_all(
        """gs => Object.fromEntries(gs.map(g => [
            g.dataset.level,
            Math.max(0, ...Array.from(g.querySelectorAll('rect'), r =>
                r.getBBox().width * r.getBBox().height)),
        ]))"""
    )


def _check_chart_colors(context, screenshot: Path, areas: dict[str, float]) -> None:
    colors = {level.name: _rgb(color) for level, color in LEVEL_COLORS.items()}
    png = base64.b64encode(screenshot.read_bytes()).decode()
    blank = context.new_page()
    result = blank.evaluate(COUNT_COLORS_JS, [png, colors])
    blank.close()

    assert result["distinct"] > 20, "the chart is almost one color"
    # Other suites' entries share the axis, so a level's bars may be too thin
    # to see. Every bar of at least 60 square pixels must show.
    visible = {level: area for level, area in areas.items() if area >= 60}
    assert "INFO" in visible, areas
    for level, area in visible.items():
        pixels = result["counts"][level]
        assert pixels > area / 2, f"no {level} bar in the chart's screenshot"
