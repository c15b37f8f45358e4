"""Measure the throughput of each hop of the pipeline and of the whole.

Run with `make bench`, or `.venv/bin/python -m bench.pipeline --help`. The
benchmark uses its own PostgreSQL database (created and migrated when
missing), its own Redis database and Kafka topics named for the run. It
starts and stops its own API, consumer and Celery worker, so it leaves the
data of a running platform alone. The phases:

  A  copy      COPY of N entries into a scratch copy of the logs table
  B  kafka     N entries produced to a scratch topic and consumed back
  C  intake    HTTP intake alone (API to Kafka acknowledgement), per batch size
  D  pipeline  API, Kafka, consumer, Celery and PostgreSQL for --seconds
     steady    a steady --steady-rate through the same pipeline
  E  naive     one Celery task and one commit per entry, for --naive-entries
     soak      a steady --soak-rate for --soak-seconds on freshly started
               processes, sampling their resident size; only on request
  F  mining    phase D twice, the worker started with PATTERN_MINING_ENABLED
               false and then true, and the ratio of the two rates; only on
               request
"""

import argparse
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from bench import measure
from bench.client import LoadResult, LoadSpec, drain, new_sample_queue, run_load
from bench.entries import data_folder, load_lines, make_batch
from bench.report import format_report, summarize
from bench.soak import MemorySampler, memory_figures, memory_series
from bench.stack import Stack, cpu_per_thousand, create_topics, delete_topics
from tests.processes import BIN, PROJECT_ROOT, plain_http_environment

logger = logging.getLogger("bench")

DEFAULT_PHASES = ("copy", "kafka", "intake", "pipeline", "steady", "naive")
PHASES = (*DEFAULT_PHASES, "soak", "mining")
PHASE_LETTERS = {
    "A": "copy",
    "B": "kafka",
    "C": "intake",
    "D": "pipeline",
    "E": "naive",
    "F": "mining",
}
DEFAULT_DATABASE_URL = "postgres://logplatform:logplatform@127.0.0.1:5432/logplatform"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description="Benchmark the log pipeline against the local services.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--entries", type=int, default=200_000, help="N, entries of phases A and B"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=60,
        help="duration of the load of phase D and of each run of F",
    )
    parser.add_argument(
        "--intake-seconds",
        type=float,
        default=10,
        help="maximum seconds of load in phase C per batch size, which also "
        "stops at N entries",
    )
    parser.add_argument(
        "--intake-batches",
        default="1,100,1000",
        help="comma-separated entries per request of phase C",
    )
    parser.add_argument(
        "--pipeline-batch", type=int, default=1000, help="entries per request in D"
    )
    parser.add_argument(
        "--steady-rate", type=float, default=1000, help="entries per second, steady"
    )
    parser.add_argument(
        "--steady-seconds", type=float, default=30, help="duration of the steady load"
    )
    parser.add_argument(
        "--steady-batch", type=int, default=10, help="entries per request, steady"
    )
    parser.add_argument(
        "--naive-entries", type=int, default=5000, help="entries of phase E"
    )
    parser.add_argument(
        "--soak-rate", type=float, default=2000, help="entries per second, soak"
    )
    parser.add_argument(
        "--soak-seconds", type=float, default=600, help="duration of the soak load"
    )
    parser.add_argument(
        "--soak-batch", type=int, default=100, help="entries per request, soak"
    )
    parser.add_argument(
        "--soak-sample-seconds",
        type=float,
        default=10,
        help="seconds between two readings of each process's resident size",
    )
    parser.add_argument(
        "--soak-warmup-seconds",
        type=float,
        default=60,
        help="seconds of soak load after which memory growth is measured",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=300,
        help="seconds to wait for the last row after a load ends",
    )
    parser.add_argument(
        "--phases",
        default=",".join(DEFAULT_PHASES),
        help="comma-separated phases to run: names or the letters A to F; "
        "soak and mining run only when named",
    )
    parser.add_argument(
        "--client-processes", type=int, default=2, help="load client processes"
    )
    parser.add_argument(
        "--client-threads",
        type=int,
        default=4,
        help="connections per client process, each one thread",
    )
    parser.add_argument(
        "--api-workers", type=int, default=2, help="gunicorn worker processes"
    )
    parser.add_argument("--api-threads", type=int, default=4, help="per API worker")
    parser.add_argument(
        "--worker-concurrency", type=int, default=2, help="Celery worker processes"
    )
    parser.add_argument(
        "--partitions", type=int, default=4, help="partitions of each Kafka topic"
    )
    parser.add_argument(
        "--database", default="logplatform_bench", help="PostgreSQL database name"
    )
    parser.add_argument("--redis-db", type=int, default=11, help="Redis database")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    args.phases = parse_phases(args.phases)
    args.intake_batches = [int(size) for size in args.intake_batches.split(",")]
    return args


def parse_phases(text: str) -> list[str]:
    """Return the phase names of a comma-separated list of names or letters."""
    phases = []
    for item in text.split(","):
        name = PHASE_LETTERS.get(item.strip().upper(), item.strip().lower())
        if name not in PHASES:
            raise SystemExit(
                f"Unknown phase {item!r}; use {', '.join(PHASES)} or A to F."
            )
        phases.append(name)
    return [phase for phase in PHASES if phase in phases]


# Environment and services


def with_path(url: str, path: str) -> str:
    """Return `url` with its path (database name or number) replaced."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{path}"))


def configure(args: argparse.Namespace) -> dict[str, str]:
    """Point this process at the bench database and Redis, and set up Django.

    Returns the environment for the processes the benchmark starts.
    """
    database_url = with_path(
        os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL), args.database
    )
    redis_url = with_path(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), str(args.redis_db)
    )
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "logplatform.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            **plain_http_environment(),
            "PYTHONUNBUFFERED": "1",
            # Phase C runs the API without a consumer, so everything it
            # produces counts as consumer lag. The benchmark measures how
            # much the pipeline takes, so intake backpressure stays off.
            "INTAKE_MAX_CONSUMER_LAG": str(10**15),
            "INTAKE_MAX_QUEUED_TASKS": str(10**15),
            # The benchmark measures the ceiling, with no per-key limit.
            "INTAKE_RATE_LIMIT": "0",
        }
    )
    ensure_database(database_url)
    migrate(dict(os.environ))

    import django

    django.setup()
    # Django's LOGGING sets the root logger to WARNING, which would hide the
    # benchmark's progress lines.
    logger.setLevel(logging.INFO)
    return dict(os.environ)


def ensure_database(database_url: str) -> None:
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(with_path(database_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            logger.info("Creating database %s", name)
            conn.execute(f'CREATE DATABASE "{name}"')


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
    )


def connect():
    """Return an autocommit psycopg connection to the bench database."""
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)


# Entries in the form the pipeline carries


def pipeline_entries(count: int) -> list[dict[str, Any]]:
    """Return `count` normalized entries, as the API hands them to Kafka."""
    import random

    from django.utils import timezone

    from logs.validation import normalize_batch

    lines = load_lines(data_folder())
    raw = make_batch(lines, range(count), random.Random(1))
    return normalize_batch(raw, timezone.now())


def copy_line(entry: dict[str, Any]) -> bytes:
    """Return one row of COPY's text format for a normalized entry."""
    from logs.levels import Level

    values = [
        entry["id"],
        entry["timestamp"],
        entry["received_at"],
        str(Level[entry["level"]].value),
        entry["service_name"],
        entry["message"],
        orjson.dumps(entry["metadata"]).decode(),
    ]
    return ("\t".join(escape_copy(value) for value in values) + "\n").encode()


def escape_copy(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


# Phases


def phase_copy(stack: Stack, entries: list[dict[str, Any]], batch: int) -> dict:
    """A: COPY into a scratch table with the logs table's columns and indexes."""
    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    rows = [copy_line(entry) for entry in entries]
    with connect() as conn:
        conn.execute(f"CREATE TABLE {table} (LIKE logs_log INCLUDING ALL)")
        try:
            conn.autocommit = False
            before = stack.cpu_snapshot() | {"client": self_cpu_seconds()}
            started = time.perf_counter()
            for start in range(0, len(rows), batch):
                with conn.cursor() as cursor:
                    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                        copy.write(b"".join(rows[start : start + batch]))
                conn.commit()
            elapsed = time.perf_counter() - started
            after = stack.cpu_snapshot() | {"client": self_cpu_seconds()}
        finally:
            conn.rollback()
            conn.autocommit = True
            conn.execute(f"DROP TABLE {table}")
    return {
        "entries": len(rows),
        "seconds": elapsed,
        "per_second": len(rows) / elapsed,
        "commit_every": batch,
        "cpu_per_1000": cpu_per_thousand(before, after, len(rows)),
    }


def phase_kafka(stack: Stack, entries: list[dict[str, Any]], topic: str) -> dict:
    """B: produce N entries with the API's producer settings, then consume them."""
    from confluent_kafka import Consumer, Producer

    from logs.kafka import producer_config

    payloads = [orjson.dumps(entry) for entry in entries]
    producer = Producer(producer_config("bench-producer"))
    delivered = [0, 0]

    def report(err, _message) -> None:
        delivered[0 if err is None else 1] += 1

    before = stack.cpu_snapshot()
    client_before = self_cpu_seconds()
    started = time.perf_counter()
    for payload in payloads:
        while True:
            try:
                producer.produce(topic, payload, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    produced = time.perf_counter()

    consumer = Consumer(
        {
            "bootstrap.servers": os.environ.get(
                "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"
            ),
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received = 0
    deadline = time.monotonic() + 120
    while received < len(payloads) and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=10_000, timeout=1):
            if message.error() is None:
                received += 1
    consumed = time.perf_counter()
    consumer.close()
    after = stack.cpu_snapshot()
    after["client"] = self_cpu_seconds()
    before["client"] = client_before
    return {
        "entries": len(payloads),
        "delivered": delivered[0],
        "delivery_errors": delivered[1],
        "consumed": received,
        "produce_per_second": len(payloads) / (produced - started),
        "consume_per_second": received / (consumed - produced),
        "seconds": consumed - started,
        "per_second": received / (consumed - started),
        "cpu_per_1000": cpu_per_thousand(before, after, len(payloads)),
    }


def self_cpu_seconds() -> float:
    """Return the CPU seconds of this process, which acts as the client."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_spec(stack: Stack, api_key: str, **overrides) -> LoadSpec:
    values = {
        "url": stack.url,
        "api_key": api_key,
        "processes": stack.args.client_processes,
        "threads": stack.args.client_threads,
    }
    return LoadSpec(**(values | overrides))


def load_figures(result: LoadResult, entries_cpu: dict[str, float]) -> dict:
    elapsed = result.finished - result.started
    figures = {
        "entries": result.accepted,
        "requests": result.requests,
        "failed_requests": result.failed_requests,
        "seconds": elapsed,
        "per_second": result.accepted / elapsed if elapsed > 0 else 0.0,
        "client_cpu_seconds": result.client_cpu_seconds,
        "cpu_per_1000": entries_cpu,
        "errors": result.errors,
    }
    if result.request_seconds:
        figures["request_median_ms"] = (
            measure.percentile(result.request_seconds, 0.5) * 1000
        )
        figures["request_p99_ms"] = (
            measure.percentile(result.request_seconds, 0.99) * 1000
        )
    return figures


def phase_intake(stack: Stack, api_key: str, args: argparse.Namespace) -> dict:
    """C: the API alone, from the request to Kafka's acknowledgement."""
    results = {}
    for batch in args.intake_batches:
        spec = load_spec(
            stack,
            api_key,
            batch_size=batch,
            seconds=args.intake_seconds,
            max_entries=args.entries,
        )
        before = stack.cpu_snapshot()
        result = run_load(spec, None)
        after = stack.cpu_snapshot()
        cpu = cpu_per_thousand(before, after, result.accepted)
        if result.accepted:
            cpu["client"] = result.client_cpu_seconds * 1000 / result.accepted
        results[str(batch)] = load_figures(result, cpu)
        logger.info(
            "Intake, batches of %d: %.0f entries/s",
            batch,
            results[str(batch)]["per_second"],
        )
    return results


class VisibilitySampler(threading.Thread):
    """Polls the logs table for sampled event ids and times their arrival.

    The latency of a sample is the moment its row was first seen minus its
    `received_at`, the moment the API accepted it. Both times come from this
    machine's clock. Polling adds up to POLL_SECONDS to each figure.
    """

    POLL_SECONDS = 0.05

    def __init__(self, samples):
        super().__init__(name="visibility-sampler", daemon=True)
        self.samples = samples
        self.pending: set[str] = set()
        self.latencies: list[float] = []
        self.finishing = threading.Event()
        self.deadline = float("inf")

    def run(self) -> None:
        with connect() as conn:
            while True:
                self.pending.update(drain(self.samples))
                if self.pending:
                    self._poll(conn)
                finishing = self.finishing.is_set()
                if finishing and not self.pending:
                    return
                if finishing and time.monotonic() > self.deadline:
                    return
                time.sleep(self.POLL_SECONDS)

    def _poll(self, conn) -> None:
        rows = conn.execute(
            "SELECT id::text, extract(epoch FROM received_at)::float8 "
            "FROM logs_log WHERE id = ANY(%s::uuid[])",
            [list(self.pending)],
        ).fetchall()
        now = time.time()
        for event_id, received in rows:
            self.latencies.append(now - received)
            self.pending.discard(event_id)

    def finish(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.finishing.set()
        self.join(timeout + 5)

    def figures(self) -> dict:
        if not self.latencies:
            return {"samples": 0, "unseen_samples": len(self.pending)}
        return {
            "samples": len(self.latencies),
            "unseen_samples": len(self.pending),
            "latency_median_s": measure.percentile(self.latencies, 0.5),
            "latency_p99_s": measure.percentile(self.latencies, 0.99),
            "latency_max_s": max(self.latencies),
        }


def logs_indexes() -> list[str]:
    """Return the definition of each index of the logs table, as migrated."""
    with connect() as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'logs_log' "
            "ORDER BY indexname"
        ).fetchall()
    return [row[0] for row in rows]


def stored_rows() -> int:
    with connect() as conn:
        return conn.execute("SELECT count(*) FROM logs_log").fetchone()[0]


def truncate_logs() -> None:
    with connect() as conn:
        conn.execute("TRUNCATE logs_log, logs_eventid")


def wait_for_rows(expected: int, timeout: float) -> tuple[int, float]:
    """Wait until the logs table contains `expected` rows or more.

    Returns the last count and the wall-clock time at which it was read.
    """
    deadline = time.monotonic() + timeout
    while True:
        count = stored_rows()
        seen = time.time()
        if count >= expected or time.monotonic() >= deadline:
            return count, seen
        time.sleep(0.2)


def check_rows(accepted: int) -> dict:
    """Count duplicate and missing entries by the `seq` each entry carries."""
    with connect() as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (metadata->>'seq')::bigint) FROM logs_log"
        ).fetchone()
    return {
        "rows": rows,
        "duplicate_rows": rows - distinct,
        "missing_rows": max(accepted - distinct, 0),
    }


def run_pipeline_load(stack: Stack, spec: LoadSpec, drain_timeout: float) -> dict:
    """Run a load through the whole pipeline and wait for its last row."""
    truncate_logs()
    samples = new_sample_queue()
    sampler = VisibilitySampler(samples)
    sampler.start()
    before = stack.cpu_snapshot()
    result = run_load(spec, samples)
    count, visible_at = wait_for_rows(result.accepted, drain_timeout)
    after = stack.cpu_snapshot()
    sampler.finish(timeout=10)
    rss_end = sample_rss(stack)

    elapsed = visible_at - result.started
    cpu = cpu_per_thousand(before, after, result.accepted)
    if result.accepted:
        cpu["client"] = result.client_cpu_seconds * 1000 / result.accepted
    figures = load_figures(result, cpu)
    figures.update(
        {
            "load_seconds": result.finished - result.started,
            "seconds": elapsed,
            "per_second": count / elapsed if elapsed > 0 else 0.0,
            "started_at": result.started,
            "complete": count >= result.accepted,
            "peak_rss_kib": rss_end,
        }
    )
    figures.update(sampler.figures())
    figures.update(check_rows(result.accepted))
    return figures


def sample_rss(stack: Stack) -> dict[str, int | None]:
    """Return the peak resident size so far of the API, consumer and worker."""
    return {
        name: measure.peak_rss_kib(stack.processes[name].process.pid)
        for name in ("api", "consumer", "worker")
        if name in stack.processes
    }


def phase_soak(stack: Stack, api_key: str, args: argparse.Namespace) -> dict:
    """Soak: the steady load for --soak-seconds, sampling each process's RSS."""
    spec = load_spec(
        stack,
        api_key,
        batch_size=args.soak_batch,
        seconds=args.soak_seconds,
        rate=args.soak_rate,
        sample_ids=True,
    )
    pids = {
        name: stack.processes[name].process.pid
        for name in ("api", "consumer", "worker")
    }
    sampler = MemorySampler(pids, args.soak_sample_seconds)
    sampler.start()
    try:
        figures = run_pipeline_load(stack, spec, args.drain_timeout)
    finally:
        sampler.finish()
    series = memory_series(sampler.samples, figures["started_at"])
    figures["memory"] = {
        "source": "VmRSS of /proc/<pid>/status",
        "sample_seconds": args.soak_sample_seconds,
        "warmup_seconds": args.soak_warmup_seconds,
        "processes": memory_figures(series, args.soak_warmup_seconds),
        "samples": series,
    }
    return figures


def phase_naive(stack: Stack, count: int) -> dict:
    """E: one Celery task per entry, each writing one row in its own commit."""
    from bench.tasks import store_one

    entries = pipeline_entries(count)
    truncate_logs()
    before = stack.cpu_snapshot()
    client_before = self_cpu_seconds()
    started = time.time()
    for entry in entries:
        store_one.apply_async(args=[entry])
    enqueued = time.time()
    rows, visible_at = wait_for_rows(count, timeout=max(300.0, count / 20))
    after = stack.cpu_snapshot()
    before["client"] = client_before
    after["client"] = self_cpu_seconds()
    elapsed = visible_at - started
    return {
        "entries": count,
        "rows": rows,
        "enqueue_seconds": enqueued - started,
        "seconds": elapsed,
        "per_second": rows / elapsed,
        "cpu_per_1000": cpu_per_thousand(before, after, count),
    }


# The run


@contextmanager
def scratch_topics(names: list[str], partitions: int) -> Iterator[None]:
    create_topics(names, partitions)
    try:
        yield
    finally:
        delete_topics(names)


def run(args: argparse.Namespace) -> dict:
    env = configure(args)
    import redis
    from django.conf import settings

    from logs.models import ApiKey

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    run_id = uuid.uuid4().hex[:8]
    topics = {
        "kafka": f"bench-{run_id}-kafka",
        "intake": f"bench-{run_id}-intake",
        "pipeline": f"bench-{run_id}-pipeline",
        "soak": f"bench-{run_id}-soak",
        "mining-off": f"bench-{run_id}-mining-off",
        "mining-on": f"bench-{run_id}-mining-on",
    }
    all_topics = list(topics.values()) + [
        f"{topics[name]}.dlq"
        for name in ("pipeline", "soak", "mining-off", "mining-on")
    ]
    log_dir = Path(tempfile.mkdtemp(prefix="logplatform-bench-"))
    logger.info("Run %s: process logs in %s", run_id, log_dir)
    _key, secret = ApiKey.generate(f"benchmark {run_id}")
    stack = Stack(env=env, log_dir=log_dir, args=args)
    report: dict[str, Any] = {
        "run": run_id,
        "machine": machine_info(),
        "configuration": configuration(args, settings),
        "logs_indexes": logs_indexes(),
        "phases": {},
    }
    phases = report["phases"]
    with scratch_topics(all_topics, args.partitions):
        try:
            if "copy" in args.phases or "kafka" in args.phases:
                entries = pipeline_entries(args.entries)
            if "copy" in args.phases:
                phases["copy"] = phase_copy(
                    stack, entries, settings.CONSUMER_BATCH_SIZE
                )
                logger.info("A copy: %.0f entries/s", phases["copy"]["per_second"])
            if "kafka" in args.phases:
                phases["kafka"] = phase_kafka(stack, entries, topics["kafka"])
                logger.info("B kafka: %.0f entries/s", phases["kafka"]["per_second"])
                entries = []
            if "intake" in args.phases:
                stack.start(topics["intake"], ["api"])
                phases["intake"] = phase_intake(stack, secret, args)
                stack.stop()
            run_pipeline_phases(stack, secret, topics["pipeline"], args, phases)
            if "soak" in args.phases:
                run_soak_phase(stack, secret, topics["soak"], args, phases)
            if "mining" in args.phases:
                phases["mining"] = phase_mining(stack, secret, topics, args)
        finally:
            stack.stop()
            truncate_logs()
            redis.Redis.from_url(env["REDIS_URL"]).flushdb()
            ApiKey.objects.filter(name=f"benchmark {run_id}").delete()
    report["summary"] = summarize(phases)
    return report


def run_pipeline_phases(
    stack: Stack, secret: str, topic: str, args: argparse.Namespace, phases: dict
) -> None:
    selected = {"pipeline", "steady", "naive"} & set(args.phases)
    if not selected:
        return
    stack.start(topic, ["api", "consumer", "worker"])
    if "pipeline" in selected:
        spec = pipeline_spec(stack, secret, args)
        phases["pipeline"] = run_pipeline_load(stack, spec, args.drain_timeout)
        logger.info("D pipeline: %.0f entries/s", phases["pipeline"]["per_second"])
    if "steady" in selected:
        spec = load_spec(
            stack,
            secret,
            batch_size=args.steady_batch,
            seconds=args.steady_seconds,
            rate=args.steady_rate,
            sample_ids=True,
        )
        phases["steady"] = run_pipeline_load(stack, spec, args.drain_timeout)
        logger.info(
            "Steady: median latency %.3fs",
            phases["steady"].get("latency_median_s", float("nan")),
        )
    if "naive" in selected:
        phases["naive"] = phase_naive(stack, args.naive_entries)
        logger.info("E naive: %.0f entries/s", phases["naive"]["per_second"])
    stack.stop()


def pipeline_spec(stack: Stack, secret: str, args: argparse.Namespace) -> LoadSpec:
    """Return the load of phase D: requests as fast as the API takes them."""
    return load_spec(
        stack,
        secret,
        batch_size=args.pipeline_batch,
        seconds=args.seconds,
        sample_ids=True,
    )


def run_soak_phase(
    stack: Stack, secret: str, topic: str, args: argparse.Namespace, phases: dict
) -> None:
    # Fresh processes on a topic of their own, so that what earlier phases
    # left in the processes' memory neither hides nor inflates the growth.
    stack.start(topic, ["api", "consumer", "worker"])
    phases["soak"] = phase_soak(stack, secret, args)
    logger.info(
        "Soak: %.0f entries/s, median latency %.3fs",
        phases["soak"]["per_second"],
        phases["soak"].get("latency_median_s", float("nan")),
    )
    stack.stop()


def phase_mining(
    stack: Stack, secret: str, topics: dict[str, str], args: argparse.Namespace
) -> dict:
    """F: phase D with pattern mining off, then on, each on fresh processes.

    Both runs send the same stream of entries, since the client draws them
    from the same seeds. The patterns table is emptied before the run with
    mining on, so it includes learning every template from the start.
    """
    figures = {}
    for label, enabled in (("off", "false"), ("on", "true")):
        truncate_patterns()
        stack.start(
            topics[f"mining-{label}"],
            ["api", "consumer", "worker"],
            {"PATTERN_MINING_ENABLED": enabled},
        )
        spec = pipeline_spec(stack, secret, args)
        figures[label] = run_pipeline_load(stack, spec, args.drain_timeout)
        figures[label].update(pattern_figures())
        stack.stop()
        logger.info("F mining %s: %.0f entries/s", label, figures[label]["per_second"])
    figures["ratio"] = figures["on"]["per_second"] / figures["off"]["per_second"]
    return figures


def truncate_patterns() -> None:
    with connect() as conn:
        conn.execute("TRUNCATE logs_pattern")


def pattern_figures() -> dict:
    """Return the patterns stored and the rows stored without one."""
    with connect() as conn:
        patterns, services = conn.execute(
            "SELECT count(*), count(DISTINCT service_name) FROM logs_pattern"
        ).fetchone()
        unassigned = conn.execute(
            "SELECT count(*) FROM logs_log WHERE pattern_id IS NULL"
        ).fetchone()[0]
    return {
        "patterns": patterns,
        "pattern_services": services,
        "rows_without_pattern": unassigned,
    }


def machine_info() -> dict:
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.partition(":")[2].strip()
            break
    memory_kib = measure.parse_status_kib(Path("/proc/meminfo").read_text(), "MemTotal")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_mib": (memory_kib or 0) // 1024,
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
    }


def configuration(args: argparse.Namespace, settings) -> dict:
    return {
        "entries": args.entries,
        "seconds": args.seconds,
        "intake_seconds": args.intake_seconds,
        "intake_batches": args.intake_batches,
        "pipeline_batch": args.pipeline_batch,
        "steady_rate": args.steady_rate,
        "steady_seconds": args.steady_seconds,
        "steady_batch": args.steady_batch,
        "naive_entries": args.naive_entries,
        "soak_rate": args.soak_rate,
        "soak_seconds": args.soak_seconds,
        "soak_batch": args.soak_batch,
        "soak_sample_seconds": args.soak_sample_seconds,
        "soak_warmup_seconds": args.soak_warmup_seconds,
        "client_processes": args.client_processes,
        "client_threads": args.client_threads,
        "api_workers": args.api_workers,
        "api_threads": args.api_threads,
        "worker_concurrency": args.worker_concurrency,
        "partitions": args.partitions,
        "consumer_batch_size": settings.CONSUMER_BATCH_SIZE,
        "consumer_batch_seconds": settings.CONSUMER_BATCH_SECONDS,
        "consumer_queue_max_kbytes": settings.KAFKA_CONSUMER_QUEUE_MAX_KBYTES,
        "phases": args.phases,
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = parse_args(argv)
    report = run(args)
    print(format_report(report))
    if args.json:
        args.json.write_bytes(
            orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        )
        logger.info("Wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
