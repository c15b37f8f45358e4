import logging
import multiprocessing
import os
import time
from argparse import BooleanOptionalAction
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from logs.models import Log
from logs.partitions import create_partitions
from logs.patterns import PatternAssigner
from logs.storage import add_pattern_counts
from logs.synthetic import (
    MAX_ARRIVAL_DELAY_SECONDS,
    GeneratedRow,
    RowGenerator,
    build_services,
    copy_unescape,
)

logger = logging.getLogger(__name__)

COLUMNS = "id, timestamp, received_at, level, service_name, message, metadata"


def templates_folder() -> Path | None:
    """Return the folder with the Loghub samples, or None when it is missing.

    A relative LOGPLATFORM_TEST_DATA is taken from the project root.
    """
    folder = Path(settings.LOGPLATFORM_TEST_DATA)
    if not folder.is_absolute():
        folder = (Path(settings.BASE_DIR) / folder).resolve()
    return folder if (folder / "loghub").is_dir() else None


def parse_end(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--end {value!r} is not an ISO 8601 time, such as 2026-03-01T12:00Z."
        ) from None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Add realistic synthetic log entries to the logs table with COPY, spread "
        "over the last --days days and --services services. Existing rows stay."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rows", type=positive, required=True, help="Number of entries to add."
        )
        parser.add_argument(
            "--days",
            type=positive,
            default=30,
            help="Length of the event time span, in days, ending at --end. "
            "Default: 30.",
        )
        parser.add_argument(
            "--end",
            type=parse_end,
            help="End of the event time span, ISO 8601 (naive times are UTC). "
            "Default: now.",
        )
        parser.add_argument(
            "--services",
            type=positive,
            default=40,
            help="Number of services. Default: 40.",
        )
        parser.add_argument(
            "--seed",
            type=int,
            help="Seed of the random content, so a run can be repeated. Event "
            "ids stay random, so a repeat adds new rows. Default: random.",
        )
        parser.add_argument(
            "--batch-size",
            type=positive,
            default=50_000,
            help="Entries per COPY and per transaction. Default: 50000.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=default_workers(),
            help="Processes that build rows while this one sends them; 0 builds "
            f"them here. Default: {default_workers()}, half the CPUs.",
        )
        parser.add_argument(
            "--patterns",
            action=BooleanOptionalAction,
            default=None,
            help="Give each row its pattern, mined in this process by the "
            "worker's code, and add the rows to their patterns' counts. "
            "Default: on when PATTERN_MINING_ENABLED is.",
        )
        parser.add_argument(
            "--roll-up",
            action="store_true",
            help="Afterwards, recompute the minute rollups over the span, so the "
            "overview page shows the new entries.",
        )

    def handle(self, *args, **options):
        rows = options["rows"]
        end = options["end"] or timezone.now()
        start = end - timedelta(days=options["days"])
        data_dir = templates_folder()
        if data_dir is None:
            self.stdout.write("Loghub samples not found; using built-in templates.")
        plan = BatchPlan(rows, _micros(start), _micros(end), options["batch_size"])
        if options["batch_size"] < 1:
            raise CommandError(f"--batch-size {options['batch_size']} is below 1.")
        if options["workers"] < 0:
            raise CommandError(f"--workers {options['workers']} is below 0.")

        logger.info(
            "generate_logs: started: %d rows from %s to %s, seed %s",
            rows,
            start.isoformat(),
            end.isoformat(),
            options["seed"],
        )
        setup = (options["services"], data_dir, options["seed"])
        # Each day of the span gets its partition first, so the generated
        # history can expire a day at a time like real arrivals.
        last_arrival = end + timedelta(seconds=MAX_ARRIVAL_DELAY_SECONDS)
        create_partitions(
            start.astimezone(UTC).date(), last_arrival.astimezone(UTC).date()
        )
        patterns = options["patterns"]
        if patterns is None:
            patterns = settings.PATTERN_MINING_ENABLED
        loader = PatternLoader() if patterns else None
        elapsed = self._load(plan, setup, options["workers"], loader)
        rate = rows / elapsed if elapsed else float(rows)
        logger.info(
            "generate_logs: finished: %d rows in %.1f s (%.0f rows/s)",
            rows,
            elapsed,
            rate,
        )
        self.stdout.write(f"Added {rows} rows in {elapsed:.1f} s ({rate:,.0f} rows/s).")
        if loader is not None:
            self.stdout.write(loader.summary())

        self._analyze()
        if options["roll_up"]:
            call_command(
                "roll_up",
                since=start.isoformat(),
                until=end.isoformat(),
                stdout=self.stdout,
            )

    def _load(
        self,
        plan: "BatchPlan",
        setup: tuple,
        workers: int,
        loader: "PatternLoader | None",
    ) -> float:
        """COPY the batches, one transaction each; return the seconds taken."""
        table = connection.ops.quote_name(Log._meta.db_table)
        columns = COLUMNS if loader is None else f"{COLUMNS}, pattern_id"
        sql = f"COPY {table} ({columns}) FROM STDIN"
        began = time.perf_counter()
        done = 0
        for batch, count in _batches(plan, setup, workers, loader is not None):
            counts = {}
            if loader is not None:
                batch, counts = loader.assign(batch)
            with transaction.atomic(), connection.cursor() as cursor:
                with cursor.copy(sql) as copy:
                    copy.write(batch)
                add_pattern_counts(counts)
            done += count
            elapsed = time.perf_counter() - began
            self.stdout.write(
                f"{done:,} / {plan.rows:,} rows, {done / elapsed:,.0f} rows/s",
                ending="\r",
            )
            self.stdout.flush()
        self.stdout.write("")
        return time.perf_counter() - began

    def _analyze(self) -> None:
        # Fresh statistics let the planner see the new rows before autovacuum
        # gets to them.
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(Log._meta.db_table)}")
        self.stdout.write(f"Analyzed the table in {time.perf_counter() - began:.1f} s.")


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def default_workers() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


class BatchPlan:
    """Split the rows into batches, each with its own slice of the time span."""

    def __init__(self, rows: int, start_us: int, end_us: int, batch_size: int):
        self.rows = rows
        self.start_us = start_us
        self.span = end_us - start_us
        self.batch_size = batch_size

    def __iter__(self):
        done = 0
        number = 0
        while done < self.rows:
            count = min(self.batch_size, self.rows - done)
            # Each slice is in proportion to its rows, so the rate stays even.
            slice_start = self.start_us + self.span * done // self.rows
            slice_end = self.start_us + self.span * (done + count) // self.rows
            yield number, slice_start, slice_end, count
            done += count
            number += 1


# The row generator of a worker process. Each process builds its own, so
# that each seeds its event id generator from the operating system.
_generator: RowGenerator | None = None


def _start_worker(services: int, data_dir: Path | None, seed: int | None) -> None:
    global _generator
    _generator = RowGenerator(build_services(services, data_dir, seed), seed)


def _build_batch(number: int, start_us: int, end_us: int, count: int, rows: bool):
    make = _generator.rows if rows else _generator.batch
    return make(number, start_us, end_us, count), count


def _batches(plan: BatchPlan, setup: tuple, workers: int, rows: bool = False):
    """Yield (batch, row count) for each batch of the plan, in order.

    A batch is COPY data, or with `rows` the list of its GeneratedRow.
    """
    if workers == 0:
        generator = RowGenerator(build_services(*setup), setup[2])
        make = generator.rows if rows else generator.batch
        for number, start_us, end_us, count in plan:
            yield make(number, start_us, end_us, count), count
        return

    # Forked workers need no Django set-up, and they touch no connection.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, context, _start_worker, setup) as pool:
        pending = deque()
        for batch in plan:
            pending.append(pool.submit(_build_batch, *batch, rows))
            # Keep every worker busy and one batch ready to send.
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class PatternLoader:
    """Assign generated rows their patterns as the worker assigns entries.

    The rows go through the worker's PatternAssigner in this process, so
    Pattern rows are created, and templates generalized, as the pipeline
    would for the same messages in the same order. Its cache of pattern ids
    by message text spares most rows the tokenizing and the tree lookup.
    Mining needs a database connection, so it runs here and not in the
    processes that build the rows.
    """

    def __init__(self) -> None:
        self.assigner = PatternAssigner(settings.PATTERN_MAX_PER_SERVICE)
        self.seconds = 0.0
        self.rows = 0
        self.unassigned = 0

    def assign(
        self, rows: list[GeneratedRow]
    ) -> tuple[bytes, dict[int, tuple[int, str, str]]]:
        """Mine the rows' patterns; return the COPY data and the counts.

        The COPY data ends each row with its pattern id. The counts map each
        pattern id to its rows, and their earliest and latest arrival times.
        """
        began = time.perf_counter()
        entries = [
            {
                "id": row.event_id,
                "service_name": row.service_name,
                "message": copy_unescape(row.message),
                "received_at": row.received_at,
            }
            for row in rows
        ]
        ids = self.assigner.assign(entries)
        self.seconds += time.perf_counter() - began
        self.rows += len(rows)

        lines = []
        counts: dict[int, tuple[int, str, str]] = {}
        for row, pattern_id in zip(rows, ids, strict=True):
            if pattern_id is None:
                self.unassigned += 1
                lines.append(f"{row.line}\t\\N\n")
                continue
            lines.append(f"{row.line}\t{pattern_id}\n")
            seen = counts.get(pattern_id)
            received = row.received_at
            if seen is None:
                counts[pattern_id] = (1, received, received)
            else:
                # Every time has the same fixed-width format, so text order
                # is time order.
                counts[pattern_id] = (
                    seen[0] + 1,
                    min(seen[1], received),
                    max(seen[2], received),
                )
        return "".join(lines).encode(), counts

    def summary(self) -> str:
        per_row = self.seconds / self.rows * 1e6 if self.rows else 0.0
        return (
            f"Assigned patterns in {self.seconds:.1f} s ({per_row:.1f} us per "
            f"row); {self.unassigned} rows fit no pattern."
        )
