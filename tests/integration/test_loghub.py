"""Every Loghub sample through ingest_file, HTTP, Kafka, Celery and PostgreSQL."""

import csv
import gzip
import io
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from logs.models import Log
from tests.datafiles import data_dir
from tests.integration.conftest import wait_until
from tests.processes import BIN, PROJECT_ROOT

# django_db makes pytest-django create the test database; reads inside the
# test transaction still see the rows that the worker commits.
pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# System folder, --format value, the CSV column with the level (None when the
# format has none) and a function giving the CSV row's date-time text.
SYSTEMS = {
    "Android": ("android", "Level"),
    "Apache": ("apache", "Level"),
    "BGL": ("bgl", "Level"),
    "HDFS": ("hdfs", "Level"),
    "HPC": ("hpc", None),
    "Hadoop": ("hadoop", "Level"),
    "HealthApp": ("healthapp", None),
    "Linux": ("linux", None),
    "OpenSSH": ("openssh", None),
    "Spark": ("spark", "Level"),
    "Windows": ("windows", "Level"),
    "Zookeeper": ("zookeeper", "Level"),
}
EXPECTED_LEVEL = {
    "V": "DEBUG",
    "D": "DEBUG",
    "I": "INFO",
    "W": "WARNING",
    "E": "ERROR",
    "NOTICE": "INFO",
    "INFO": "INFO",
    "WARN": "WARNING",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "SEVERE": "ERROR",
    "FATAL": "CRITICAL",
}
YEAR = 2016  # passed as --year for the formats whose lines carry none


def _local(text: str, pattern: str) -> datetime:
    # The samples carry no zone; the API stores naive times as UTC.
    return datetime.strptime(text, pattern).replace(tzinfo=UTC)


def _healthapp(text: str) -> datetime:
    # The milliseconds after the last colon are not zero-padded.
    stamp, millis = text.rsplit(":", 1)
    return _local(f"{stamp}.{int(millis):03d}", "%Y%m%d-%H:%M:%S.%f")


# The event time of a structured CSV row, read independently of the parsers.
EXPECTED_TIME = {
    "Android": lambda r: _local(
        f"{YEAR}-{r['Date']} {r['Time']}", "%Y-%m-%d %H:%M:%S.%f"
    ),
    "Apache": lambda r: _local(r["Time"], "%a %b %d %H:%M:%S %Y"),
    "BGL": lambda r: datetime.fromtimestamp(int(r["Timestamp"]), UTC),
    "HDFS": lambda r: _local(
        f"{int(r['Date']):06d} {int(r['Time']):06d}", "%y%m%d %H%M%S"
    ),
    "HPC": lambda r: datetime.fromtimestamp(int(r["Time"]), UTC),
    "Hadoop": lambda r: _local(f"{r['Date']} {r['Time']}", "%Y-%m-%d %H:%M:%S,%f"),
    "HealthApp": lambda r: _healthapp(r["Time"]),
    "Linux": lambda r: _local(
        f"{YEAR} {r['Month']} {r['Date']} {r['Time']}", "%Y %b %d %H:%M:%S"
    ),
    "OpenSSH": lambda r: _local(
        f"{YEAR} {r['Date']} {r['Day']} {r['Time']}", "%Y %b %d %H:%M:%S"
    ),
    "Spark": lambda r: _local(f"{r['Date']} {r['Time']}", "%y/%m/%d %H:%M:%S"),
    "Windows": lambda r: _local(f"{r['Date']} {r['Time']}", "%Y-%m-%d %H:%M:%S"),
    "Zookeeper": lambda r: _local(f"{r['Date']} {r['Time']}", "%Y-%m-%d %H:%M:%S,%f"),
}
# Every how many lines a row is compared field by field with the CSV.
CHECK_EVERY = 37


def read_structured(folder: Path, system: str) -> list[dict[str, str]]:
    plain = folder / f"{system}_2k.log_structured.csv"
    if plain.exists():
        text = plain.read_text(encoding="utf-8", errors="replace")
    else:
        with gzip.open(plain.with_suffix(".csv.gz"), "rt", errors="replace") as handle:
            text = handle.read()
    return list(csv.DictReader(io.StringIO(text)))


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


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_loghub_sample_stored_exactly(pipeline, system):
    fmt, level_column = SYSTEMS[system]
    folder = data_dir() / "loghub" / system
    log_file = folder / f"{system}_2k.log"
    rows = read_structured(folder, system)
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
            expected = EXPECTED_LEVEL[row[level_column].strip().upper()]
            assert log.level_name == expected, f"{system} line {line}"
        else:
            assert log.level_name == "INFO", f"{system} line {line}"
        expected_time = EXPECTED_TIME[system](row)
        assert log.timestamp == expected_time, f"{system} line {line}"
