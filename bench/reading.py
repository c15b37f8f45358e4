"""Measure how fast people find entries in a large logs table.

The script works on its own database (logplatform_scale by default, on the
server of DATABASE_URL), which it creates and migrates when missing and
fills with `manage.py generate_logs --roll-up` up to --rows entries, with
patterns when PATTERN_MINING_ENABLED is on (the default). It then sends
each request many times through the real Django views, with the test client
signed in as a staff user, and prints the median and 95th percentile times.
Last come the SQL and the EXPLAIN (ANALYZE, BUFFERS) plan of every query
that reads the logs table, the patterns or their rollups.

    .venv/bin/python -m bench.reading --rows 10000000
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://logplatform:logplatform@127.0.0.1:5432/logplatform"


@dataclass
class Case:
    """One request to time, with the target its 95th percentile must meet."""

    key: str
    title: str
    url: str
    target_ms: float | None
    times_ms: list[float] = field(default_factory=list)
    rows: int | None = None

    def percentile(self, share: float) -> float:
        # Nearest-rank percentile: the smallest time that at least `share`
        # of the runs did not exceed.
        ordered = sorted(self.times_ms)
        rank = max(1, round(share * len(ordered) + 0.4999))
        return ordered[min(rank, len(ordered)) - 1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=10_000_000,
        help="Entries the database must hold; generate_logs adds what is "
        "missing. Default: 10000000.",
    )
    parser.add_argument(
        "--database",
        default="logplatform_scale",
        help="Database to measure, on the server of DATABASE_URL. It is "
        "created when missing. Default: logplatform_scale.",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=40,
        help="Timed runs of each request, after 3 untimed ones. Default: 40.",
    )
    parser.add_argument(
        "--no-migrate",
        action="store_true",
        help="Measure the schema as it is, without applying new migrations.",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="Seconds after which a slow request stops repeating, once it has "
        "5 timed runs. Default: 60.",
    )
    parser.add_argument(
        "--no-plans",
        action="store_true",
        help="Skip the SQL and EXPLAIN output.",
    )
    return parser.parse_args()


def database_url(name: str) -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL", DEFAULT_URL))
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(name: str) -> None:
    """Create the database unless it exists, through the `postgres` database."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if found is None:
            print(f"Creating database {name}.")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def set_up_django(name: str) -> None:
    os.environ["DATABASE_URL"] = database_url(name)
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.processes import plain_http_environment

    # Debug mode keeps every query in memory and adds work per query.
    os.environ.update(plain_http_environment())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logplatform.settings")
    import django

    django.setup()


def fill(rows: int, migrate: bool) -> int:
    """Migrate, then add entries until the table contains `rows`; return the count."""
    from django.core.management import call_command

    from logs.models import Log

    if migrate:
        call_command("migrate", verbosity=0)
    stored = Log.objects.count()
    if stored < rows:
        print(f"The table holds {stored:,} rows; generating {rows - stored:,}.")
        call_command("generate_logs", rows=rows - stored, roll_up=True)
        stored = Log.objects.count()
    return stored


def signed_in_client():
    from django.contrib.auth.models import User
    from django.test import Client

    user, _ = User.objects.get_or_create(
        username="bench-reader", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT="application/json")
    client.force_login(user)
    return client


def build_cases(client) -> list[Case]:
    """Build the requests, with times relative to the newest stored entry."""
    from django.db.models import Max

    from logs.models import Log

    latest = Log.objects.aggregate(latest=Max("timestamp"))["latest"]
    day = {"since": _iso(latest - timedelta(days=1)), "until": _iso(latest)}
    week = {"since": _iso(latest - timedelta(days=7)), "until": _iso(latest)}
    newest = Log.objects.filter(service_name="checkout").order_by("-timestamp")
    sample = newest.values_list("metadata", flat=True).first() or {}
    request_id = sample.get("request_id", "none")

    api = "/api/logs/?"
    cases = [
        Case(
            "a",
            "busy service, level >= WARNING, last 24 h",
            api + urlencode({"service": "checkout", "level": "warning", **day}),
            30,
        ),
        Case(
            "a",
            "quiet service, level >= ERROR, last 7 days",
            api + urlencode({"service": "tax", "level": "error", **week}),
            30,
        ),
        Case(
            "b",
            "q=timed out, last 24 h",
            api + urlencode({"q": "timed out", **day}),
            300,
        ),
        Case("b", "q=blk_, last 24 h", api + urlencode({"q": "blk_", **day}), 300),
        Case(
            "b",
            "q with no match, last 24 h",
            api + urlencode({"q": "no such text", **day}),
            300,
        ),
        Case(
            "c",
            "metadata status = 503",
            api + urlencode({"metadata_key": "status", "metadata_value": "503"}),
            300,
        ),
        Case(
            "c",
            "metadata user_id = 4242",
            api + urlencode({"metadata_key": "user_id", "metadata_value": "4242"}),
            300,
        ),
        Case(
            "c",
            "metadata request_id = one entry's",
            api
            + urlencode({"metadata_key": "request_id", "metadata_value": request_id}),
            300,
        ),
        Case("d", "admin changelist", "/admin/logs/log/", 500),
        Case(
            "d",
            "admin changelist, level ERROR",
            "/admin/logs/log/?level__exact=40",
            500,
        ),
        Case(
            "d",
            "admin changelist, one service",
            "/admin/logs/log/?service_name=checkout",
            500,
        ),
        Case("d", "admin search q=timed out", "/admin/logs/log/?q=timed+out", 500),
        Case("e", "first page, no filter", api, None),
        Case("e", "page 50, no filter", later_page(client, api, 50), None),
        Case(
            "e",
            "first page, one service",
            api + urlencode({"service": "checkout"}),
            None,
        ),
        Case(
            "e",
            "page 50, one service",
            later_page(client, api + urlencode({"service": "checkout"}), 50),
            None,
        ),
    ]
    return cases + pattern_cases(client, day, week)


def pattern_cases(client, day: dict, week: dict) -> list[Case]:
    """Build the requests on patterns: their list, their entries, their pages."""
    from logs.models import Pattern

    counted = Pattern.objects.filter(count__gt=0)
    common = counted.order_by("-count", "id").first()
    rare = counted.order_by("count", "id").first()
    if common is None:
        print("No pattern has entries; skipping the pattern requests.")
        return []
    patterns = "/api/patterns/?"
    logs = "/api/logs/?"
    common_entries = logs + urlencode({"pattern": common.pk})
    # Page 50 like the other later pages, or the last full one on less data.
    page = max(2, min(50, common.count // 100))
    return [
        Case("f", "patterns, last 24 h", patterns + urlencode(day), 300),
        Case("f", "patterns, last 7 days", patterns + urlencode(week), 300),
        Case(
            "f",
            "patterns, last 24 h, newest first",
            patterns + urlencode({**day, "ordering": "-first_seen"}),
            300,
        ),
        Case(
            "f",
            "patterns, last 7 days, newest first",
            patterns + urlencode({**week, "ordering": "-first_seen"}),
            300,
        ),
        Case(
            "f",
            "patterns of one service, last 24 h",
            patterns + urlencode({"service": "checkout", **day}),
            300,
        ),
        Case(
            "g",
            f"entries of the commonest pattern ({common.count:,})",
            common_entries,
            300,
        ),
        Case(
            "g",
            f"entries of a rare pattern ({rare.count:,})",
            logs + urlencode({"pattern": rare.pk}),
            300,
        ),
        Case(
            "g",
            f"page {page} of the commonest pattern's entries",
            later_page(client, common_entries, page),
            300,
        ),
        Case("h", "pattern admin changelist", "/admin/logs/pattern/", 500),
        Case(
            "h",
            "log admin changelist, commonest pattern",
            "/admin/logs/log/?" + urlencode({"pattern": common.pk}),
            500,
        ),
        Case("h", "overview, last 24 h, with top patterns", "/overview/", 500),
    ]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def later_page(client, url: str, number: int) -> str:
    """Follow `next` links from `url` to page `number`; return its address."""
    page_url = url
    for _ in range(number - 1):
        page_url = client.get(page_url).json()["next"]
        if page_url is None:
            raise SystemExit(f"Fewer than {number} pages for {url}.")
    return page_url


def measure(client, case: Case, repeat: int, budget_seconds: float) -> None:
    """Time the request `repeat` times, or fewer (at least 5) past the budget."""
    deadline = time.perf_counter() + budget_seconds
    for run in range(repeat + 3):
        if len(case.times_ms) >= 5 and time.perf_counter() > deadline:
            break
        began = time.perf_counter()
        response = client.get(case.url)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            body = response.content[:300]
            raise SystemExit(f"{case.url} returned {response.status_code}: {body!r}")
        if run >= 3:
            case.times_ms.append(elapsed)
    if response.headers["Content-Type"].startswith("application/json"):
        case.rows = len(response.json()["results"])


def print_table(cases: list[Case], repeat: int) -> None:
    print("\n| | request | rows | runs | p50 ms | p95 ms | max ms | target p95 |")
    print("|---|---|---|---|---|---|---|---|")
    for case in cases:
        target = f"< {case.target_ms:.0f} ms" if case.target_ms else "as page 1"
        rows = "" if case.rows is None else str(case.rows)
        print(
            f"| {case.key} | {case.title} | {rows} | {len(case.times_ms)} "
            f"| {case.percentile(0.5):.1f} "
            f"| {case.percentile(0.95):.1f} | {max(case.times_ms):.1f} | {target} |"
        )
    print(f"\nUp to {repeat} timed runs per request after 3 untimed ones.")


def print_plans(client, cases: list[Case]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from analytics.models import PatternHourRollup, PatternMinuteRollup
    from logs.models import Log, Pattern

    models = (Log, Pattern, PatternMinuteRollup, PatternHourRollup)
    tables = [model._meta.db_table for model in models]
    for case in cases:
        with CaptureQueriesContext(connection) as captured:
            client.get(case.url)
        print(f"\n### ({case.key}) {case.title}\n\nGET {case.url}\n")
        for query in captured.captured_queries:
            if not any(f'"{table}"' in query["sql"] for table in tables):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
            print(f"```sql\n{query['sql']}\n```\n```\n{plan}\n```")


def main() -> None:
    args = parse_args()
    create_database(args.database)
    set_up_django(args.database)
    stored = fill(args.rows, migrate=not args.no_migrate)

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0]
        # A partitioned table has no storage of its own: add up its parts.
        cursor.execute(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(relid))) "
            "FROM pg_partition_tree('logs_log')"
        )
        size = cursor.fetchone()[0]
    print(f"{stored:,} rows in {args.database}, {size} with indexes; {version}")

    client = signed_in_client()
    cases = build_cases(client)
    for case in cases:
        measure(client, case, args.repeat, args.budget)
        print(
            f"({case.key}) {case.title}: p50 {case.percentile(0.5):.1f} ms, "
            f"p95 {case.percentile(0.95):.1f} ms",
            flush=True,
        )
    print_table(cases, args.repeat)
    if not args.no_plans:
        print_plans(client, cases)


if __name__ == "__main__":
    main()
