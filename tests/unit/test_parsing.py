"""Log file parsers, checked against real samples and their ground truth."""

import functools
import gzip
import shutil
from datetime import date, datetime
from typing import Any

import pytest

from logs.parsing import (
    FORMATS,
    Entry,
    UnknownFormat,
    create_parser,
    iter_entries,
    read_entries,
    read_lines,
)
from logs.parsing.levels import level_from_number, level_from_word
from logs.parsing.timestamps import YearGuesser, epoch_to_iso
from tests.datafiles import data_dir
from tests.loghub import (
    LOGHUB_LEVELS,
    LOGHUB_SYSTEMS,
    LOGHUB_TIMES,
    YEAR,
    loghub_folder,
    loghub_rows,
)

MISSING = object()

# The service name each row must get: the CSV's component, except where the
# CSV column contains something else (the host in OpenSSH, a split thread name
# in ZooKeeper) or the format names no component (Apache).
LOGHUB_SERVICES = {
    "Apache": lambda r: "loghub",
    "OpenSSH": lambda r: "sshd",
    "Zookeeper": lambda r: r["Component"].rsplit(":", 1)[-1],
}


@functools.cache
def loghub_entries(system: str) -> list[Entry]:
    format_name = LOGHUB_SYSTEMS[system][0]
    path = loghub_folder(system) / f"{system}_2k.log"
    return list(read_entries(path, format_name, "loghub", year=YEAR))


def loghub_pairs(system: str) -> list[tuple[int, Entry, dict[str, str]]]:
    rows = loghub_rows(system)
    return [
        (int(row["LineId"]), entry, row)
        for entry, row in zip(loghub_entries(system), rows, strict=False)
    ]


def as_datetime(timestamp: str | None) -> datetime | None:
    return datetime.fromisoformat(timestamp) if timestamp is not None else None


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_loghub_entry_count(system):
    assert len(loghub_entries(system)) == 2000


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_loghub_ground_truth_rows(system):
    assert len(loghub_rows(system)) == 2000


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_loghub_messages(system):
    mismatches = [
        (line, entry["message"], row["Content"])
        for line, entry, row in loghub_pairs(system)
        if entry["message"] != row["Content"]
    ]
    assert mismatches[:5] == []


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_loghub_levels(system):
    column = LOGHUB_SYSTEMS[system][1]
    mismatches = []
    for line, entry, row in loghub_pairs(system):
        expected = LOGHUB_LEVELS[row[column].strip().upper()] if column else "INFO"
        if entry["level"] != expected:
            mismatches.append((line, entry["level"], expected))
    assert mismatches[:5] == []


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_loghub_timestamps(system):
    expected_time = LOGHUB_TIMES[system]
    mismatches = [
        (line, entry["timestamp"], expected_time(row))
        for line, entry, row in loghub_pairs(system)
        if as_datetime(entry["timestamp"]) != expected_time(row)
    ]
    assert mismatches[:5] == []


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_loghub_services(system):
    expected_service = LOGHUB_SERVICES.get(system, lambda r: r["Component"])
    mismatches = [
        (line, entry["service_name"], expected_service(row))
        for line, entry, row in loghub_pairs(system)
        if entry["service_name"] != expected_service(row)
    ]
    assert mismatches[:5] == []


@pytest.mark.parametrize("system", sorted(LOGHUB_SYSTEMS))
def test_loghub_source_lines(system):
    mismatches = [
        (line, entry["metadata"]["source"])
        for line, entry, _row in loghub_pairs(system)
        if entry["metadata"]["source"] != {"file": f"{system}_2k.log", "line": line}
    ]
    assert mismatches[:5] == []


def test_bgl_keeps_local_time():
    entry = loghub_entries("BGL")[0]
    assert entry["metadata"]["local_time"] == "2005-06-03T15:42:50.675872"


def test_bgl_alert_label():
    labels = {entry["metadata"].get("label") for entry in loghub_entries("BGL")}
    assert "KERNDTLB" in labels


def test_healthapp_keeps_leading_spaces():
    messages = [entry["message"] for entry in loghub_entries("HealthApp")]
    assert any(message.startswith(" ") for message in messages)


def test_gzip_file_read_transparently(tmp_path):
    source = loghub_folder("HDFS") / "HDFS_2k.log"
    compressed = tmp_path / "HDFS_2k.log"
    with source.open("rb") as plain, gzip.open(compressed, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    entries = list(read_entries(compressed, "hdfs", "loghub"))
    assert entries == loghub_entries("HDFS")


# Syslog samples. Each case: file under syslog/, format, year, entry index,
# path of keys into the entry, and the expected value (MISSING: no such key).
SYSLOG_CASES = [
    # RFC 5424 with one SD element, from the OpenTelemetry Collector tests.
    ("otel-dynatrace/RFC5424", "rfc5424", YEAR, 0, ("level",), "INFO"),
    (
        "otel-dynatrace/RFC5424",
        "rfc5424",
        YEAR,
        0,
        ("timestamp",),
        "2015-08-05T21:58:59.693000+00:00",
    ),
    ("otel-dynatrace/RFC5424", "rfc5424", YEAR, 0, ("service_name",), "SecureAuth0"),
    (
        "otel-dynatrace/RFC5424",
        "rfc5424",
        YEAR,
        0,
        ("message",),
        "Found the user for retrieving user's profile",
    ),
    (
        "otel-dynatrace/RFC5424",
        "rfc5424",
        YEAR,
        0,
        ("metadata", "facility"),
        "authpriv",
    ),
    (
        "otel-dynatrace/RFC5424",
        "rfc5424",
        YEAR,
        0,
        ("metadata", "host"),
        "192.168.2.132",
    ),
    ("otel-dynatrace/RFC5424", "rfc5424", YEAR, 0, ("metadata", "procid"), "23108"),
    ("otel-dynatrace/RFC5424", "rfc5424", YEAR, 0, ("metadata", "msgid"), "ID52020"),
    (
        "otel-dynatrace/RFC5424",
        "rfc5424",
        YEAR,
        0,
        ("metadata", "structured_data", "SecureAuth@27389", "UserID"),
        "Tester2",
    ),
    # PRI 123 is facility 15 and severity 3.
    (
        "otel-dynatrace/rfc5424-skip-pri-present",
        "rfc5424",
        YEAR,
        0,
        ("level",),
        "ERROR",
    ),
    (
        "otel-dynatrace/rfc5424-skip-pri-present",
        "rfc5424",
        YEAR,
        0,
        ("metadata", "facility"),
        "clock",
    ),
    # RFC 6587 framing: an octet count before the message, or a NUL after it.
    (
        "otel-dynatrace/rfc6587-octet-counting",
        "rfc5424",
        YEAR,
        0,
        ("service_name",),
        "SecureAuth0",
    ),
    (
        "otel-dynatrace/rfc6587-non-transparent-framing",
        "rfc5424",
        YEAR,
        0,
        ("message",),
        "Found the user for retrieving user's profile",
    ),
    # Nil PROCID, MSGID and SD, and a message that starts with a space.
    (
        "otel-dynatrace/rfc6587-octet-counting-preserve-space",
        "rfc5424",
        YEAR,
        0,
        ("message",),
        " partition is p2 ",
    ),
    (
        "otel-dynatrace/rfc6587-octet-counting-preserve-space",
        "rfc5424",
        YEAR,
        0,
        ("metadata", "procid"),
        MISSING,
    ),
    (
        "otel-dynatrace/rfc6587-octet-counting-preserve-space",
        "rfc5424",
        YEAR,
        0,
        ("metadata", "structured_data"),
        MISSING,
    ),
    # rsyslog's RFC 5424 output, with a message that spans two lines.
    (
        "plaso/syslog_rsyslog_SyslogProtocol23Format",
        "rfc5424",
        YEAR,
        0,
        ("level",),
        "DEBUG",
    ),
    (
        "plaso/syslog_rsyslog_SyslogProtocol23Format",
        "rfc5424",
        YEAR,
        0,
        ("metadata", "msgid"),
        "123",
    ),
    (
        "plaso/syslog_rsyslog_SyslogProtocol23Format",
        "rfc5424",
        YEAR,
        1,
        ("message",),
        " this is info\nwith another line",
    ),
    (
        "plaso/syslog_rsyslog_SyslogProtocol23Format",
        "rfc5424",
        YEAR,
        3,
        ("level",),
        "CRITICAL",
    ),
    (
        "plaso/syslog_rsyslog_SyslogProtocol23Format",
        "rfc5424",
        YEAR,
        4,
        ("metadata", "procid"),
        "1",
    ),
    (
        "plaso/syslog_rsyslog_SyslogProtocol23Format",
        "rfc5424",
        YEAR,
        7,
        ("metadata", "facility"),
        "cron",
    ),
    # RFC 3164 with and without PRI.
    ("otel-dynatrace/RFC3164", "rfc3164", YEAR, 0, ("level",), "CRITICAL"),
    (
        "otel-dynatrace/RFC3164",
        "rfc3164",
        YEAR,
        0,
        ("timestamp",),
        f"{YEAR}-02-04T11:14:27",
    ),
    ("otel-dynatrace/RFC3164", "rfc3164", YEAR, 0, ("metadata", "facility"), "auth"),
    ("otel-dynatrace/RFC3164", "rfc3164", YEAR, 0, ("metadata", "host"), "1.2.3.4"),
    (
        "otel-dynatrace/RFC3164",
        "rfc3164",
        YEAR,
        0,
        ("service_name",),
        "apache_server",
    ),
    ("otel-dynatrace/RFC3164", "rfc3164", YEAR, 0, ("message",), "test message"),
    ("otel-dynatrace/rfc3164-skip-pri-absent", "rfc3164", YEAR, 0, ("level",), "INFO"),
    (
        "otel-dynatrace/rfc3164-skip-pri-absent",
        "rfc3164",
        YEAR,
        0,
        ("metadata", "facility"),
        MISSING,
    ),
    # Hand-made edge cases from plaso.
    (
        "plaso/syslog",
        "rfc3164",
        2012,
        0,
        ("message",),
        "INFO No new content in \u00edmynd.dd.",
    ),
    ("plaso/syslog", "rfc3164", 2012, 0, ("metadata", "pid"), 30840),
    (
        "plaso/syslog",
        "rfc3164",
        2012,
        5,
        ("message",),
        "Job `cron.daily' terminated",
    ),
    ("plaso/syslog", "rfc3164", 2012, 5, ("service_name",), "syslog-test"),
    ("plaso/syslog", "rfc3164", 2012, 6, ("timestamp",), "2012-02-29T01:15:43"),
    # "MMM 22 …" has no valid month, so it continues the entry above.
    (
        "plaso/syslog",
        "rfc3164",
        2012,
        6,
        ("message",),
        "--- testing leap year in parsing, events take place in 2012 ---\n"
        "MMM 22 07:54:32 myhostname.myhost.com anacron[29782]: "
        "Normal exit (1 job run)",
    ),
    # 2013 has no 29 February.
    ("plaso/syslog", "rfc3164", 2013, 6, ("timestamp",), None),
    (
        "plaso/syslog",
        "rfc3164",
        2013,
        6,
        ("metadata", "unparsed_timestamp"),
        "Feb 29 01:15:43",
    ),
    # The year advanced when December was followed by March.
    (
        "plaso/syslog",
        "rfc3164",
        2012,
        9,
        ("timestamp",),
        "2013-03-23T23:01:18.123000",
    ),
    (
        "plaso/syslog",
        "rfc3164",
        2012,
        11,
        ("message",),
        "This is a multi-line message that screws up\n\tmany syslog parsers.",
    ),
    ("plaso/syslog", "rfc3164", 2012, 14, ("service_name",), "kernel"),
    ("plaso/syslog", "rfc3164", 2012, 14, ("metadata", "host"), MISSING),
    (
        "plaso/syslog",
        "rfc3164",
        2012,
        14,
        ("message",),
        "[997.390602] sda2: rw=0, want=65, limit=2",
    ),
    # ChromeOS writes a severity word where the host would be.
    ("plaso/syslog_chromeos", "rfc3164", YEAR, 3, ("level",), "WARNING"),
    ("plaso/syslog_chromeos", "rfc3164", YEAR, 3, ("metadata", "host"), MISSING),
    (
        "plaso/syslog_chromeos",
        "rfc3164",
        YEAR,
        3,
        ("timestamp",),
        "2016-10-25T12:37:24.987995-07:00",
    ),
    ("plaso/syslog_chromeos", "rfc3164", YEAR, 5, ("level",), "ERROR"),
    (
        "plaso/syslog_chromeos",
        "rfc3164",
        YEAR,
        7,
        ("message",),
        "[  316.587330] cfg80211: This is a multi-line\n"
        "\tmessage that screws up many syslog parsers.",
    ),
    # macOS puts the level in angle brackets after the PID.
    ("plaso/syslog_osx", "rfc3164", YEAR, 1, ("service_name",), "sockerfilterfw"),
    (
        "plaso/syslog_osx",
        "rfc3164",
        YEAR,
        1,
        ("message",),
        "launchd Allow TCP LISTEN (in:0 out:2)",
    ),
    # rsyslog's file format with RFC 3339 timestamps.
    (
        "plaso/syslog_rsyslog",
        "rfc3164",
        YEAR,
        0,
        ("timestamp",),
        "2020-05-31T00:00:45.698463+00:00",
    ),
    (
        "plaso/syslog_rsyslog",
        "rfc3164",
        YEAR,
        0,
        ("message",),
        "message repeated 76 times: [-- MARK --]",
    ),
    (
        "plaso/syslog_rsyslog_traditional",
        "rfc3164",
        YEAR,
        2,
        ("message",),
        "--- last message repeated 5 times ---",
    ),
    (
        "plaso/syslog_rsyslog_traditional",
        "rfc3164",
        YEAR,
        5,
        ("message",),
        "(unity-music-daemon:27902): unity-music-daemon-WARNING\n"
        " **: rhythmbox-collection.vala:574: Error while parsing rhythmbox DB: "
        "Error opening file: No such file or directory",
    ),
    # Real BSD syslog files from lnav's tests.
    (
        "lnav/logfile_syslog.1",
        "rfc3164",
        2012,
        0,
        ("timestamp",),
        "2012-12-03T09:23:38",
    ),
    (
        "lnav/logfile_syslog.1",
        "rfc3164",
        2012,
        3,
        ("timestamp",),
        "2013-01-03T09:47:02",
    ),
    (
        "lnav/logfile_syslog.3",
        "rfc3164",
        YEAR,
        2,
        ("message",),
        "Configuration Notice:\n"
        '\tASL Module "com.apple.cdscheduler" claims selected messages.\n'
        "\tThose messages may not appear in standard system log files or in the "
        "ASL database.",
    ),
    (
        "lnav/logfile_syslog_with_header.0",
        "rfc3164",
        YEAR,
        0,
        ("message",),
        "Header1: abc",
    ),
    (
        "lnav/logfile_syslog_with_header.0",
        "rfc3164",
        YEAR,
        1,
        ("message",),
        "Header2: def",
    ),
    ("lnav/logfile_syslog_with_header.0", "rfc3164", YEAR, 1, ("timestamp",), None),
    (
        "lnav/logfile_bad_syslog.0",
        "rfc3164",
        YEAR,
        2,
        ("message",),
        "lookup for opt failed",
    ),
    (
        "lnav/logfile_bad_syslog.0",
        "rfc3164",
        YEAR,
        2,
        ("service_name",),
        "syslog-test",
    ),
    ("lnav/logfile_bad_syslog.0", "rfc3164", YEAR, 2, ("metadata", "host"), "veridian"),
    # The Linux file format parser also reads other syslog files.
    ("lnav/logfile_syslog.0", "linux", YEAR, 3, ("service_name",), "sudo"),
]

SYSLOG_COUNTS = [
    ("plaso/syslog_rsyslog_SyslogProtocol23Format", "rfc5424", 9),
    ("plaso/syslog", "rfc3164", 16),
    ("lnav/logfile_syslog_with_header.0", "rfc3164", 6),
    ("lnav/logfile_syslog.3", "rfc3164", 7),
]


@functools.cache
def sample_entries(
    folder: str, relative: str, format_name: str, year: int | None, service: str
) -> list[Entry]:
    path = data_dir() / folder / relative
    return list(read_entries(path, format_name, service, year=year))


def field(entry: Entry, path: tuple[str, ...]) -> Any:
    value: Any = entry
    for key in path:
        if key not in value:
            return MISSING
        value = value[key]
    return value


def _case_id(case: tuple) -> str:
    relative, _format, _year, index, path, _expected = case
    return f"{relative}#{index}:{'.'.join(path)}"


@pytest.mark.parametrize(
    ("relative", "format_name", "year", "index", "path", "expected"),
    SYSLOG_CASES,
    ids=[_case_id(case) for case in SYSLOG_CASES],
)
def test_syslog_samples(relative, format_name, year, index, path, expected):
    entries = sample_entries("syslog", relative, format_name, year, "syslog-test")
    assert field(entries[index], path) == expected


@pytest.mark.parametrize(("relative", "format_name", "count"), SYSLOG_COUNTS)
def test_syslog_entry_counts(relative, format_name, count):
    entries = sample_entries("syslog", relative, format_name, YEAR, "syslog-test")
    assert len(entries) == count


def test_rfc5424_escaped_structured_data():
    line = r'<14>1 - host app - - [x@1 a="q\"b\]c\\d" e="f"] text'
    entry = parse_text("rfc5424", [line])[0]
    params = entry["metadata"]["structured_data"]["x@1"]
    assert params == {"a": 'q"b]c\\d', "e": "f"}


def test_rfc5424_several_elements():
    line = '<165>1 2003-10-11T22:14:15.003Z m e - ID47 [a@1 k="1"][b@1 j="2"] hi'
    entry = parse_text("rfc5424", [line])[0]
    assert sorted(entry["metadata"]["structured_data"]) == ["a@1", "b@1"]


def test_rfc5424_nil_timestamp():
    entry = parse_text("rfc5424", ["<14>1 - host app - - - text"])[0]
    assert entry["timestamp"] is None


def test_rfc5424_drops_byte_order_mark():
    entry = parse_text("rfc5424", ["<14>1 - host app - - - \ufefftext"])[0]
    assert entry["message"] == "text"


def test_rfc5424_rejects_pri_over_191():
    entry = parse_text("rfc5424", ["<192>1 - host app - - - text"])[0]
    assert entry["message"] == "<192>1 - host app - - - text"


# JSON-lines sample cases, in the same form as the syslog cases.
JSONL_CASES = [
    # A truncated line is kept whole among valid ones.
    ("lnav/logfile_invalid_json.json", 2, ("level",), "INFO"),
    ("lnav/logfile_invalid_json.json", 2, ("timestamp",), None),
    # Level and message nested under "@fields".
    ("lnav/logfile_invalid_json.json", 0, ("level",), "DEBUG"),
    ("lnav/logfile_nested_json.json", 0, ("message",), "trace test"),
    ("lnav/logfile_nested_json.json", 0, ("metadata", "@fields"), MISSING),
    (
        "lnav/logfile_nested_json.json",
        2,
        ("metadata", "@fields"),
        {"user": "steve@example.com"},
    ),
    ("lnav/logfile_nested_json.json", 9, ("level",), "WARNING"),
    ("lnav/logfile_nested_json.json", 12, ("level",), "CRITICAL"),
    # ECS: the dotted key "log.level" next to a nested "log" object.
    ("lnav/logfile_ecs_log.json", 4, ("level",), "CRITICAL"),
    ("lnav/logfile_ecs_log.json", 4, ("metadata", "log.level"), MISSING),
    ("lnav/logfile_ecs_log.json", 4, ("metadata", "log", "logger"), "app"),
    # Epoch timestamps in milliseconds, float seconds and microseconds.
    (
        "lnav/logfile_pino.0",
        0,
        ("timestamp",),
        "2025-04-24T22:08:37.537000+00:00",
    ),
    ("lnav/logfile_pino.0", 0, ("service_name",), "payment"),
    (
        "lnav/logfile_caddy_log.1",
        0,
        ("timestamp",),
        "2024-05-26T11:42:52.601481+00:00",
    ),
    (
        "lnav/logfile_journald.json",
        0,
        ("timestamp",),
        "2018-08-21T14:04:21.221373+00:00",
    ),
    # journald PRIORITY is a syslog severity: 1 alert, 6 info.
    ("lnav/logfile_journald.json", 0, ("level",), "CRITICAL"),
    ("lnav/logfile_journald.json", 1, ("level",), "INFO"),
    ("lnav/logfile_journald.json", 0, ("service_name",), "python"),
    # bunyan levels are numbers: 20 debug, 30 info.
    ("lnav/logfile_bunyan.0", 0, ("level",), "DEBUG"),
    ("lnav/logfile_bunyan.0", 3, ("level",), "INFO"),
    ("lnav/logfile_bunyan.0", 0, ("service_name",), "renovate"),
    ("lnav/logfile_bunyan.0", 0, ("metadata", "name"), MISSING),
    # A bad timestamp and an unknown level stay in the metadata.
    ("lnav/logfile_json.json", 5, ("timestamp",), None),
    ("lnav/logfile_json.json", 5, ("metadata", "ts"), "xxx"),
    ("lnav/logfile_json.json", 9, ("level",), "INFO"),
    ("lnav/logfile_json.json", 9, ("metadata", "lvl"), "STATS"),
    ("lnav/logfile_json.json", 3, ("message",), "D\bDetails..."),
    # Docker json-file: 1 to 9 fraction digits, the first without a zone.
    ("plaso/docker-container-json.log", 0, ("timestamp",), "2016-01-07T16:49:10"),
    (
        "plaso/docker-container-json.log",
        9,
        ("timestamp",),
        "2016-01-07T16:49:10.237222+00:00",
    ),
    (
        "plaso/docker-container-json.log",
        0,
        ("message",),
        "\x1b]0;root@e7d0b7ea5ccf: /home/plaso\x07root@e7d0b7ea5ccf:/home/plaso# ls",
    ),
    ("plaso/docker-container-json.log", 0, ("metadata", "stream"), "stdout"),
    # Rust tracing nests the message under "fields".
    ("lnav/logfile_rust_tracing.0", 0, ("message",), "preparing to shave yaks"),
    (
        "lnav/logfile_rust_tracing.0",
        0,
        ("metadata", "fields"),
        {"number_of_yaks": 3},
    ),
    # Cloud audit logs: an offset with a space for "T", and a naive time.
    (
        "plaso/aws_cloudtrail.jsonl",
        0,
        ("timestamp",),
        "2022-02-08T09:23:37+11:00",
    ),
    (
        "plaso/microsoft_audit_log.jsonl",
        0,
        ("timestamp",),
        "2022-05-07T12:55:53",
    ),
    # CRLF endings, a logfmt line and a stack trace among JSON lines.
    ("lnav/logfile_mixed_json2.json", 0, ("message",), "trace test"),
    (
        "lnav/logfile_mixed_json2.json",
        3,
        ("message",),
        'timestamp="2013-09-06T22:00:50.123000Z" level="INFO" msg="Hello, World"',
    ),
    (
        "lnav/logfile_mixed_json2.json",
        4,
        ("message",),
        "panic: foo bar failed baz\n   level1.py:10034\n   level2.py:100\n"
        "   level3.py:42",
    ),
]

# Lines that must be kept whole: file, line number from 1, entry index.
JSONL_WHOLE_LINES = [
    ("lnav/logfile_invalid_json.json", 3, 2),
    ("lnav/logfile_json_invalid.json", 5, 4),
    ("lnav/logfile_caddy_log.0", 1, 0),
    ("plaso/cri.log", 1, 0),
]

JSONL_COUNTS = [
    ("lnav/logfile_invalid_json.json", 5),
    ("lnav/logfile_json_invalid.json", 13),
    ("lnav/logfile_mixed_json2.json", 15),
    ("lnav/logfile_json.json", 14),
]


def _jsonl_case_id(case: tuple) -> str:
    relative, index, path, _expected = case
    return f"{relative}#{index}:{'.'.join(path)}"


@pytest.mark.parametrize(
    ("relative", "index", "path", "expected"),
    JSONL_CASES,
    ids=[_jsonl_case_id(case) for case in JSONL_CASES],
)
def test_jsonl_samples(relative, index, path, expected):
    entries = sample_entries("jsonlines", relative, "jsonl", None, "json-test")
    assert field(entries[index], path) == expected


@pytest.mark.parametrize(("relative", "line_number", "index"), JSONL_WHOLE_LINES)
def test_jsonl_invalid_line_kept_whole(relative, line_number, index):
    lines = list(read_lines(data_dir() / "jsonlines" / relative))
    entries = sample_entries("jsonlines", relative, "jsonl", None, "json-test")
    assert entries[index]["message"] == lines[line_number - 1]


@pytest.mark.parametrize(("relative", "count"), JSONL_COUNTS)
def test_jsonl_entry_counts(relative, count):
    entries = sample_entries("jsonlines", relative, "jsonl", None, "json-test")
    assert len(entries) == count


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"time": 1712790000, "msg": "s"}', "2024-04-10T23:00:00+00:00"),
        ('{"time": 1712790000.5, "msg": "s"}', "2024-04-10T23:00:00.500000+00:00"),
        ('{"time": 1712790000123, "msg": "ms"}', "2024-04-10T23:00:00.123000+00:00"),
        (
            '{"time": "1712790000123456", "msg": "us"}',
            "2024-04-10T23:00:00.123456+00:00",
        ),
        (
            '{"time": 1712790000123456789, "msg": "ns"}',
            "2024-04-10T23:00:00.123456+00:00",
        ),
    ],
)
def test_jsonl_epoch_units(line, expected):
    assert parse_text("jsonl", [line])[0]["timestamp"] == expected


def test_jsonl_mongodb_date():
    line = '{"t": {"$date": "2026-03-10T20:58:09.401+00:00"}, "msg": "m"}'
    entry = parse_text("jsonl", [line])[0]
    assert entry["timestamp"] == "2026-03-10T20:58:09.401000+00:00"


def test_jsonl_rejects_nan():
    line = '{"msg": "x", "value": NaN}'
    assert parse_text("jsonl", [line])[0]["message"] == line


def test_jsonl_array_kept_whole():
    assert parse_text("jsonl", ["[1, 2]"])[0]["message"] == "[1, 2]"


def test_jsonl_without_message_key():
    line = '{"status": 200, "path": "/"}'
    entry = parse_text("jsonl", [line])[0]
    assert entry["message"] == line


def test_jsonl_metadata_is_rest():
    line = '{"level": "warn", "msg": "m", "user": "ann"}'
    entry = parse_text("jsonl", [line])[0]
    assert entry["metadata"] == {
        "user": "ann",
        "source": {"file": "test.log", "line": 1},
    }


def test_jsonl_long_service_name_ignored():
    line = '{"service": "' + "s" * 201 + '", "msg": "m"}'
    assert parse_text("jsonl", [line])[0]["service_name"] == "test"


# Continuation lines, with a Hadoop logger line as the entry's first line.
JAVA_TRACE = [
    "2015-10-18 18:01:47,978 ERROR [main] org.example.Job: Task failed",
    "java.lang.IllegalStateException: boom",
    "\tat org.example.Job.run(Job.java:42)",
    "",
    "\tat org.example.Main.main(Main.java:7)",
    "2015-10-18 18:01:48,001 INFO [main] org.example.Job: Retrying",
    "",
    "",
]


def parse_text(format_name: str, lines: list[str], year: int = YEAR) -> list[Entry]:
    parser = create_parser(format_name, "test", year)
    return list(iter_entries(lines, parser, source="test.log"))


def test_continuation_joins_stack_trace():
    entries = parse_text("hadoop", JAVA_TRACE)
    assert entries[0]["message"] == (
        "Task failed\n"
        "java.lang.IllegalStateException: boom\n"
        "\tat org.example.Job.run(Job.java:42)\n"
        "\n"
        "\tat org.example.Main.main(Main.java:7)"
    )


def test_continuation_entry_count():
    assert len(parse_text("hadoop", JAVA_TRACE)) == 2


def test_continuation_drops_trailing_blank_lines():
    assert parse_text("hadoop", JAVA_TRACE)[1]["message"] == "Retrying"


def test_continuation_keeps_first_line_number():
    entries = parse_text("hadoop", JAVA_TRACE)
    assert entries[1]["metadata"]["source"] == {"file": "test.log", "line": 6}


def test_lines_before_first_entry_separate():
    entries = parse_text("hadoop", ["header one", "header two", *JAVA_TRACE[:1]])
    assert [entry["message"] for entry in entries] == [
        "header one",
        "header two",
        "Task failed",
    ]


def test_plain_never_joins_lines():
    entries = parse_text("plain", ["first", "  second", "", "third"])
    assert [entry["message"] for entry in entries] == ["first", "  second", "third"]


UNPARSEABLE = "this is not a log line"


@pytest.mark.parametrize("format_name", FORMATS)
def test_unparseable_line_message(format_name):
    assert parse_text(format_name, [UNPARSEABLE])[0]["message"] == UNPARSEABLE


@pytest.mark.parametrize("format_name", FORMATS)
def test_unparseable_line_level(format_name):
    assert parse_text(format_name, [UNPARSEABLE])[0]["level"] == "INFO"


@pytest.mark.parametrize("format_name", FORMATS)
def test_unparseable_line_service(format_name):
    assert parse_text(format_name, [UNPARSEABLE])[0]["service_name"] == "test"


@pytest.mark.parametrize("format_name", FORMATS)
def test_unparseable_line_timestamp(format_name):
    assert parse_text(format_name, [UNPARSEABLE])[0]["timestamp"] is None


def test_unknown_level_word_kept():
    line = "2015-10-18 18:01:47,978 NOTE [main] a.B: text"
    entry = parse_text("hadoop", [line])[0]
    assert entry["metadata"]["level"] == "NOTE"


def test_unknown_format_rejected():
    with pytest.raises(UnknownFormat):
        create_parser("cobol", "test")


def test_all_formats_registered():
    expected = {
        "plain",
        "jsonl",
        "rfc3164",
        "rfc5424",
        "android",
        "apache",
        "bgl",
        "hdfs",
        "hpc",
        "hadoop",
        "healthapp",
        "linux",
        "openssh",
        "spark",
        "windows",
        "zookeeper",
    }
    assert set(FORMATS) == expected


def test_apache_24_error_log():
    line = (
        "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328] "
        "[client 72.15.99.187] File does not exist"
    )
    entry = parse_text("apache", [line])[0]
    assert entry["metadata"]["module"] == "core"
    assert entry["timestamp"] == "2000-10-11T14:32:52.123456"
    assert entry["message"] == "[client 72.15.99.187] File does not exist"


def test_zookeeper_myid_prefix():
    line = "2015-07-29 19:04:29,071 [myid:3] - WARN  [T:Cls@688] - text"
    entry = parse_text("zookeeper", [line])[0]
    assert entry["metadata"]["myid"] == 3


# Reading files.
def test_read_lines_strips_crlf(tmp_path):
    path = tmp_path / "crlf.log"
    path.write_bytes(b"one\r\ntwo\r\nthree")
    assert list(read_lines(path)) == ["one", "two", "three"]


def test_read_lines_keeps_lone_carriage_return(tmp_path):
    path = tmp_path / "cr.log"
    path.write_bytes(b"a\rb\n")
    assert list(read_lines(path)) == ["a\rb"]


def test_read_lines_replaces_invalid_utf8(tmp_path):
    path = tmp_path / "latin1.log"
    path.write_bytes(b"caf\xe9\n")
    assert list(read_lines(path)) == ["caf\ufffd"]


def test_read_lines_drops_byte_order_mark(tmp_path):
    path = tmp_path / "bom.log"
    path.write_bytes(b"\xef\xbb\xbfline\n")
    assert list(read_lines(path)) == ["line"]


def test_read_lines_gzip_by_content(tmp_path):
    path = tmp_path / "packed.log"
    with gzip.open(path, "wb") as handle:
        handle.write(b"one\r\ntwo\n")
    assert list(read_lines(path)) == ["one", "two"]


def test_read_entries_is_lazy(tmp_path):
    path = tmp_path / "big.log"
    path.write_text("line\n" * 10)
    entries = read_entries(path, "plain", "test")
    assert next(entries)["message"] == "line"


# Levels and timestamps.
@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("V", "DEBUG"),
        ("trace", "DEBUG"),
        ("trace8", "DEBUG"),
        ("DEBUG5", "DEBUG"),
        ("notice", "INFO"),
        ("Info", "INFO"),
        ("warn", "WARNING"),
        ("err", "ERROR"),
        ("severe", "ERROR"),
        ("fatal", "CRITICAL"),
        ("emerg", "CRITICAL"),
        ("STATS", None),
    ],
)
def test_level_words(word, expected):
    assert level_from_word(word) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (0, "CRITICAL"),
        (3, "ERROR"),
        (4, "WARNING"),
        (5, "INFO"),
        (7, "DEBUG"),
        (8, None),
        (10, "DEBUG"),
        (20, "DEBUG"),
        (30, "INFO"),
        (40, "WARNING"),
        (50, "ERROR"),
        (60, "CRITICAL"),
        (-1, None),
    ],
)
def test_level_numbers(number, expected):
    assert level_from_number(number) == expected


def test_epoch_nanoseconds_exact():
    assert epoch_to_iso(1_700_000_000_000_001_000) == "2023-11-14T22:13:20.000001+00:00"


def test_year_guesser_new_year():
    years = YearGuesser(2020)
    assert [years.year_for(month) for month in (11, 12, 1, 2)] == [
        2020,
        2020,
        2021,
        2021,
    ]


def test_year_guesser_small_step_back():
    years = YearGuesser(2020)
    assert [years.year_for(month) for month in (5, 4)] == [2020, 2020]


def test_year_guesser_defaults_to_this_year():
    assert YearGuesser().year == datetime.now().year


def test_year_guesser_keeps_future_dates_out():
    """A December file read early in January is last year's."""
    years = YearGuesser(today=date(2027, 1, 3))
    assert years.year_for(12, 10) == 2026
    assert years.year_for(1, 2) == 2027


def test_year_guesser_allows_tomorrow():
    years = YearGuesser(today=date(2026, 12, 4))
    assert years.year_for(12, 5) == 2026


def test_year_guesser_given_year_is_kept():
    years = YearGuesser(2015, today=date(2015, 1, 1))
    assert years.year_for(12, 10) == 2015
