import os
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from logs.parsing import FORMATS, read_entries
from logs.parsing.base import MAX_SERVICE_NAME_LENGTH
from logs.parsing.client import (
    DEFAULT_API_URL,
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    IntakeClient,
    IntakeError,
    send_entries,
)


class Command(BaseCommand):
    help = (
        "Parse a log file and send its entries to the intake API in batches. "
        "Each entry gets a UUID before it is sent, so a retried request never "
        "stores an entry twice. Gzip-compressed files are read as well."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Log file to read.")
        parser.add_argument(
            "--format",
            required=True,
            choices=FORMATS,
            help="Log format of the file.",
        )
        parser.add_argument(
            "--service",
            required=True,
            help="Service name of entries whose line names no component.",
        )
        parser.add_argument(
            "--url",
            help="Intake API URL (default: LOGPLATFORM_API_URL, else "
            f"{DEFAULT_API_URL}).",
        )
        parser.add_argument(
            "--api-key",
            help="API key (default: the LOGPLATFORM_API_KEY environment "
            "variable, which keeps the key out of the process list).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Maximum entries per request, 1 to {MAX_BATCH_SIZE} "
            f"(default: {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--year",
            type=int,
            help="Year of the first entry, for formats whose dates have no year "
            "(android, linux, openssh, rfc3164). Default: the current year.",
        )

    def handle(self, *args, **options):
        path = Path(options["path"])
        format_name = options["format"]
        service = options["service"].strip()
        batch_size = options["batch_size"]
        api_key = options["api_key"] or os.environ.get("LOGPLATFORM_API_KEY", "")
        self._validate(path, service, batch_size, api_key, options["year"])

        url = options["url"] or getattr(settings, "LOGPLATFORM_API_URL", None)
        url = url or os.environ.get("LOGPLATFORM_API_URL") or DEFAULT_API_URL
        if not url.startswith(("http://", "https://")):
            raise CommandError(
                f"The intake API URL {url!r} is invalid; use an http:// or "
                f"https:// URL such as {DEFAULT_API_URL}."
            )
        entries = read_entries(path, format_name, service, options["year"])
        client = IntakeClient(url, api_key)
        started = time.monotonic()
        progress = tqdm(desc=path.name, unit=" entries", file=sys.stderr, disable=None)
        sent = 0

        def count_sent(size: int) -> None:
            nonlocal sent
            sent += size
            progress.update(size)

        try:
            # Log lines about retries are printed above the bar, not into it.
            with logging_redirect_tqdm():
                send_entries(entries, client, batch_size, on_sent=count_sent)
        except IntakeError as exc:
            raise CommandError(
                f"{exc} {sent} entries from {path} were accepted before the failure."
            ) from exc
        except (OSError, EOFError) as exc:
            raise CommandError(
                f"Reading {path} failed after {sent} entries were accepted: {exc}"
            ) from exc
        except KeyboardInterrupt:
            raise CommandError(
                f"Interrupted after {sent} entries from {path} were accepted."
            ) from None
        finally:
            progress.close()
            client.close()

        elapsed = time.monotonic() - started
        self.stdout.write(
            f"ingested {sent} entries from {path} (format {format_name}) "
            f"in {elapsed:.1f} s"
        )

    @staticmethod
    def _validate(
        path: Path, service: str, batch_size: int, api_key: str, year: int | None
    ) -> None:
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        if not path.is_file():
            raise CommandError(f"{path} is not a regular file.")
        if not service:
            raise CommandError("--service must not be blank.")
        if len(service) > MAX_SERVICE_NAME_LENGTH:
            raise CommandError(
                f"--service is longer than {MAX_SERVICE_NAME_LENGTH} characters."
            )
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(
                f"--batch-size {batch_size} is out of range; use 1 to {MAX_BATCH_SIZE}."
            )
        if not api_key:
            raise CommandError(
                "No API key: pass --api-key or set LOGPLATFORM_API_KEY. "
                "Create one with `manage.py create_api_key NAME`."
            )
        if year is not None and not 1 <= year <= 9999:
            raise CommandError(f"--year {year} is out of range; use 1 to 9999.")
