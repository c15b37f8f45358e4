import logging
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics.rollup import roll_up_range, stored_range

logger = logging.getLogger(__name__)


def parse_time(option: str, value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(
            f"{option} {value!r} is not an ISO 8601 time, such as 2026-03-01T12:00Z."
        )
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


class Command(BaseCommand):
    help = (
        "Recompute the minute rollups over a range of event times, for entries "
        "stored before the periodic analytics.roll_up task ran or that it missed. "
        "Without options, the range spans every stored entry."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            help="Start of the range, ISO 8601 (naive times are UTC), rounded "
            "down to the minute. Default: the earliest stored entry.",
        )
        parser.add_argument(
            "--until",
            help="End of the range, exclusive, ISO 8601. Default: just after the "
            "latest stored entry.",
        )

    def handle(self, *args, since=None, until=None, **options):
        since_time = parse_time("--since", since) if since else None
        until_time = parse_time("--until", until) if until else None
        if since_time is None or until_time is None:
            bounds = stored_range()
            if bounds is None:
                self.stdout.write("No stored entries; give --since and --until.")
                return
            since_time = since_time or bounds[0]
            until_time = until_time or bounds[1]
        if since_time >= until_time:
            raise CommandError(
                f"--since {since_time.isoformat()} is not before "
                f"--until {until_time.isoformat()}."
            )

        logger.info(
            "roll_up: backfill started for %s to %s",
            since_time.isoformat(),
            until_time.isoformat(),
        )
        result = roll_up_range(since_time, until_time)
        logger.info(
            "roll_up: backfill finished: %d minutes, %d rows written, %d removed",
            result.minutes,
            result.rows_written,
            result.rows_removed,
        )
        self.stdout.write(
            f"Recomputed {result.minutes} minutes from {since_time.isoformat()} "
            f"to {until_time.isoformat()}: {result.rows_written} rows written, "
            f"{result.rows_removed} removed."
        )
