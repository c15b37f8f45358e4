"""Every Loghub sample through ingest_file, HTTP, Kafka, Celery and PostgreSQL."""

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from logs.models import Log
from tests.integration.conftest import wait_until
from tests.loghub import (
    LOGHUB_LEVELS,
    LOGHUB_SYSTEMS,
    LOGHUB_TIMES,
    YEAR,
    loghub_folder,
    loghub_rows,
)
from tests.processes import BIN, PROJECT_ROOT

# django_db makes pytest-django create the test database; reads inside the
# test transaction still see the rows that the worker commits.
pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# Every how many lines a row is compared field by field with the CSV.
CHECK_EVERY = 37


def expected_time(system: str, row: dict[str, str]) -> datetime:
    moment = LOGHUB_TIMES[system](row)
    # The samples carry no zone, and the API stores naive times as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ingest(pipeline, path: Path, fmt: str, service: str) -> subprocess.CompletedProcess:
    env = os.environ | {
        "LOGPLATFORM_API_URL": pipeline.url,
        "LOGPLATFORM_API_KEY": pipeline.api_key,
    }
    return subprocess.run(
        [
            str(BIN / "python"),
            "manage.py",
            "ingest_file",
            str(path),
            "--format",
            fmt,
            "--service",
            service,
            "--year",
            str(YEAR),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_loghub_sample_stored_exactly(pipeline, system):
    fmt, level_column = LOGHUB_SYSTEMS[system]
    log_file = loghub_folder(system) / f"{system}_2k.log"
    rows = loghub_rows(system)
    assert len(rows) == 2000

    result = ingest(pipeline, log_file, fmt, f"loghub-{system.lower()}")
    assert result.returncode == 0, result.stderr[-3000:]

    stored = Log.objects.filter(metadata__source__file=log_file.name)
    wait_until(lambda: stored.count() >= 2000, 120, f"2000 {system} rows")
    assert stored.count() == 2000
    lines = sorted(stored.values_list("metadata__source__line", flat=True))
    assert lines == list(range(1, 2001))

    for row in rows[::CHECK_EVERY]:
        line = int(row["LineId"])
        log = stored.get(metadata__source__line=line)
        assert log.message == row["Content"], f"{system} line {line}"
        if level_column:
            expected = LOGHUB_LEVELS[row[level_column].strip().upper()]
            assert log.level_name == expected, f"{system} line {line}"
        else:
            assert log.level_name == "INFO", f"{system} line {line}"
        assert log.timestamp == expected_time(system, row), f"{system} line {line}"
