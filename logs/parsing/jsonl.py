"""Parser for JSON lines: one JSON object per line, as most logging libraries write.

The level, timestamp, message and service come from the first key in each
list below whose value converts. A dotted key such as `log.level` matches
either that literal key or the nested path. Keys that were used are removed,
and the rest of the object becomes the metadata.
"""

import json
from typing import Any

from logs.parsing.base import Entry, LineParser
from logs.parsing.levels import (
    level_from_number,
    level_from_syslog_severity,
    level_from_word,
)
from logs.parsing.timestamps import epoch_text_to_iso, epoch_to_iso, iso_text_to_iso

MESSAGE_KEYS = (
    "message",
    "msg",
    "MESSAGE",
    "log",
    "fields.message",
    "@fields.msg",
    "@fields.message",
    "textPayload",
    "jsonPayload.message",
    "body",
)
LEVEL_KEYS = (
    "level",
    "lvl",
    "severity",
    "log.level",
    "levelname",
    "loglevel",
    "log_level",
    "severityText",
    "@fields.level",
    "@fields.lvl",
    "PRIORITY",
)
TIMESTAMP_KEYS = (
    "timestamp",
    "@timestamp",
    "time",
    "ts",
    "t",
    "datetime",
    "date",
    "__REALTIME_TIMESTAMP",
    "eventTime",
    "EventTime",
    "CreationTime",
    "event_timestamp",
)
SERVICE_KEYS = (
    "service_name",
    "service",
    "service.name",
    "serviceName",
    "SYSLOG_IDENTIFIER",
    "_SYSTEMD_UNIT",
    "app",
    "application",
    "name",
)
# journald's PRIORITY is a syslog severity 0-7. Other numeric levels are
# read with level_from_number.
SYSLOG_SEVERITY_KEYS = frozenset({"PRIORITY"})

Path = tuple[str, ...]


class JsonLinesParser(LineParser):
    """JSON lines, such as bunyan, pino, zap, ECS, journald and Docker output.

    A line that is not a JSON object is kept whole as the message of an INFO
    entry, except that an invalid line starting with whitespace continues
    the entry above, as in a stack trace. A numeric timestamp is an epoch
    in seconds, milliseconds, microseconds or nanoseconds, by its size.
    Without a message key, the message is the whole line. A message loses
    its trailing line break.
    """

    name = "jsonl"

    def parse_line(self, line: str) -> Entry | None:
        try:
            record = json.loads(line, parse_constant=_reject_constant)
        except ValueError:
            if line[:1].isspace():
                return None
            return self.whole_line_entry(line)
        if not isinstance(record, dict):
            return self.whole_line_entry(line)

        message = _take(record, MESSAGE_KEYS, _to_message)
        level = _take(record, LEVEL_KEYS, _to_level)
        timestamp = _take(record, TIMESTAMP_KEYS, _to_timestamp)
        service = _take(record, SERVICE_KEYS, _to_service)
        entry = self.make_entry(
            message if message is not None else line,
            level=level,
            timestamp=timestamp,
            metadata=record,
        )
        entry["service_name"] = self.service_name_for(service)
        return entry


def _take(record: dict[str, Any], keys: tuple[str, ...], convert) -> Any:
    """Return the first converted value among `keys`, removing its key.

    `convert` takes the key and the value and returns None when the value
    does not fit, in which case the key stays in the record.
    """
    for key in keys:
        path = _find(record, key)
        if path is None:
            continue
        value = convert(key, _get(record, path))
        if value is not None:
            _remove(record, path)
            return value
    return None


def _find(record: dict[str, Any], key: str) -> Path | None:
    if key in record:
        return (key,)
    if "." not in key:
        return None
    path = tuple(key.split("."))
    node: Any = record
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return path


def _get(record: dict[str, Any], path: Path) -> Any:
    node: Any = record
    for part in path:
        node = node[part]
    return node


def _remove(record: dict[str, Any], path: Path) -> None:
    """Delete the key at `path`, then every parent object left empty."""
    parents = [record]
    for part in path[:-1]:
        parents.append(parents[-1][part])
    del parents[-1][path[-1]]
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth]:
            break
        del parents[depth - 1][path[depth - 1]]


def _to_message(key: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.rstrip("\r\n")


def _to_level(key: str, value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            return level_from_word(text)
        value = int(text)
    if not isinstance(value, int | float):
        return None
    if key in SYSLOG_SEVERITY_KEYS:
        return level_from_syslog_severity(int(value))
    return level_from_number(value)


def _to_timestamp(key: str, value: Any) -> str | None:
    # MongoDB's extended JSON wraps dates as {"$date": ...}.
    if isinstance(value, dict) and len(value) == 1 and "$date" in value:
        value = value["$date"]
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return epoch_to_iso(value)
    if isinstance(value, str):
        return epoch_text_to_iso(value.strip()) or iso_text_to_iso(value)
    return None


def _to_service(key: str, value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    return None


def _reject_constant(name: str) -> float:
    # The intake API rejects NaN and Infinity, which are not JSON anyway.
    raise ValueError(f"{name} is not valid JSON")
