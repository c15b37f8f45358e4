"""The entry type, the parser base classes and the joining of continuation lines."""

import re
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, TypedDict

from logs.parsing.levels import INFO, level_from_word
from logs.parsing.timestamps import YearGuesser, naive_iso

# The intake API rejects longer service names, so a longer component keeps
# the default service and appears only in the metadata.
MAX_SERVICE_NAME_LENGTH = 200


class Entry(TypedDict):
    """One log entry in the form that the intake API accepts."""

    level: str
    timestamp: str | None
    message: str
    service_name: str
    metadata: dict[str, Any]


class LineParser:
    """Base class of all parsers, which turn a line into the entry it starts.

    `parse_line` returns None for a line that does not start an entry, and
    `iter_entries` then joins that line to the entry above it. Subclasses
    set `name`, the value of the `--format` option.
    """

    name: ClassVar[str]

    def __init__(self, service: str, year: int | None = None) -> None:
        self.service = service
        self.years = YearGuesser(year)

    def parse_line(self, line: str) -> Entry | None:
        raise NotImplementedError

    def make_entry(
        self,
        message: str,
        *,
        level: str | None = None,
        timestamp: str | None = None,
        component: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Entry:
        """Build an entry from the parts of a line.

        `level` is the source's level word, and an unknown word gives INFO
        and is kept in the metadata as `level`. A non-blank `component`
        becomes the service name and is kept in the metadata as `component`.
        """
        extra = dict(metadata or {})
        mapped = level_from_word(level) if level is not None else INFO
        if mapped is None:
            extra["level"] = level
            mapped = INFO
        if component is not None:
            extra["component"] = component
        return {
            "level": mapped,
            "timestamp": timestamp,
            "message": message,
            "service_name": self.service_name_for(component),
            "metadata": extra,
        }

    def service_name_for(self, name: str | None) -> str:
        """Return the name without surrounding spaces, or the default service.

        The default applies when the name is missing, blank or longer than
        the intake API accepts.
        """
        name = name.strip() if name else ""
        if name and len(name) <= MAX_SERVICE_NAME_LENGTH:
            return name
        return self.service

    def whole_line_entry(self, line: str) -> Entry:
        """Return an INFO entry of the default service with the whole line."""
        return self.make_entry(line)


class RegexLineParser(LineParser):
    """A parser whose entries start with lines that match `pattern`."""

    pattern: ClassVar[re.Pattern[str]]

    def parse_line(self, line: str) -> Entry | None:
        match = self.pattern.fullmatch(line)
        if match is None:
            return None
        return self.build(match)

    def build(self, match: re.Match[str]) -> Entry | None:
        """Return the entry for a matching line, or None to treat it as text."""
        raise NotImplementedError

    @staticmethod
    def match_time(
        match: re.Match[str],
        *,
        year: int | None = None,
        month: int | None = None,
        microsecond: int = 0,
    ) -> str | None:
        """Return the naive ISO time from a match's named date and time groups.

        `year` and `month` replace the groups of those names when the line
        spells them differently (a two-digit year, a month name, no year).
        """
        return naive_iso(
            int(match["year"]) if year is None else year,
            int(match["month"]) if month is None else month,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            microsecond,
        )


def iter_entries(
    lines: Iterable[str], parser: LineParser, source: str | None = None
) -> Iterator[Entry]:
    """Parse lines without line breaks into entries, in order.

    A line that starts no entry joins the entry above it after a newline,
    which keeps stack traces and wrapped messages whole. Before the first
    entry that a line starts, each such line becomes an entry of its own
    with the whole line as its message. Blank lines inside a continuation
    are kept, but blank lines that end an entry or come before the first
    one are dropped.

    With `source`, each entry's metadata gets `"source": {"file": source,
    "line": n}`, where n counts lines from 1 and is the entry's first line.
    A `source` key that the line itself supplied is kept instead.
    """
    pending: Entry | None = None
    pending_line = 0
    # Continuation lines are collected and joined once, because adding them
    # to the message one by one is quadratic for a long stack trace.
    continuation: list[str] = []
    blank_lines = 0
    started = False
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            blank_lines += 1
            continue
        entry = parser.parse_line(line)
        if entry is None and started:
            continuation.extend([""] * blank_lines)
            continuation.append(line)
            blank_lines = 0
            continue
        if pending is not None:
            yield _finish(pending, continuation, source, pending_line)
            continuation = []
        started = started or entry is not None
        pending = entry if entry is not None else parser.whole_line_entry(line)
        pending_line = line_number
        blank_lines = 0
    if pending is not None:
        yield _finish(pending, continuation, source, pending_line)


def _finish(
    entry: Entry, continuation: list[str], source: str | None, line_number: int
) -> Entry:
    if continuation:
        entry["message"] = "\n".join([entry["message"], *continuation])
    if source is not None:
        entry["metadata"].setdefault("source", {"file": source, "line": line_number})
    return entry
