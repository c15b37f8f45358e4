"""The Loghub 2k samples and their ground truth, for parser and pipeline tests.

Loghub's structured CSV beside each sample gives, for every line, the
content, the level and the date-time columns that a correct parser must
reproduce. The helpers here read them without using the project's parsers.
"""

import csv
import functools
import gzip
from datetime import UTC, datetime
from pathlib import Path

from tests.datafiles import data_dir

# The year given to parsers of formats whose dates have none.
YEAR = 2016

# --format value of each Loghub system, and the CSV column with its level
# (None where the system logs no level).
LOGHUB_SYSTEMS = {
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
# The Loghub level words, upper-cased, and the level each must become.
LOGHUB_LEVELS = {
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


def _naive(text: str, pattern: str) -> datetime:
    return datetime.strptime(text, pattern)


def _healthapp_time(text: str) -> datetime:
    # No part is zero-padded, so "22:16:0:11" is 22:16:00 and 11 ms.
    day, hour, minute, second, millis = text.replace("-", ":").split(":")
    start = datetime.strptime(day, "%Y%m%d")
    return start.replace(
        hour=int(hour),
        minute=int(minute),
        second=int(second),
        microsecond=int(millis) * 1000,
    )


# The event time of a structured CSV row, computed without the parsers.
LOGHUB_TIMES = {
    "Android": lambda r: _naive(
        f"{YEAR}-{r['Date']} {r['Time']}", "%Y-%m-%d %H:%M:%S.%f"
    ),
    "Apache": lambda r: _naive(r["Time"], "%a %b %d %H:%M:%S %Y"),
    "BGL": lambda r: datetime.fromtimestamp(int(r["Timestamp"]), UTC),
    "HDFS": lambda r: _naive(f"{r['Date']} {r['Time']}", "%y%m%d %H%M%S"),
    "HPC": lambda r: datetime.fromtimestamp(int(r["Time"]), UTC),
    "Hadoop": lambda r: _naive(f"{r['Date']} {r['Time']}", "%Y-%m-%d %H:%M:%S,%f"),
    "HealthApp": lambda r: _healthapp_time(r["Time"]),
    "Linux": lambda r: _naive(
        f"{YEAR} {r['Month']} {r['Date']} {r['Time']}", "%Y %b %d %H:%M:%S"
    ),
    "OpenSSH": lambda r: _naive(
        f"{YEAR} {r['Date']} {r['Day']} {r['Time']}", "%Y %b %d %H:%M:%S"
    ),
    "Spark": lambda r: _naive(f"{r['Date']} {r['Time']}", "%y/%m/%d %H:%M:%S"),
    "Windows": lambda r: _naive(f"{r['Date']} {r['Time']}", "%Y-%m-%d %H:%M:%S"),
    "Zookeeper": lambda r: _naive(f"{r['Date']} {r['Time']}", "%Y-%m-%d %H:%M:%S,%f"),
}


def loghub_folder(system: str) -> Path:
    return data_dir() / "loghub" / system


@functools.cache
def loghub_rows(system: str) -> list[dict[str, str]]:
    path = loghub_folder(system) / f"{system}_2k.log_structured.csv"
    if path.exists():
        handle = path.open(encoding="utf-8", newline="")
    else:
        handle = gzip.open(path.with_name(path.name + ".gz"), "rt", newline="")
    with handle:
        return list(csv.DictReader(handle))
