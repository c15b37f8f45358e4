"""Parsers for syslog: RFC 5424, RFC 3164 and the BSD file format of /var/log.

The level comes from the PRI value (its severity, PRI mod 8) when a line
has one, and the facility (PRI div 8) goes into the metadata. The program
or APP-NAME becomes the service name.
"""

import re
from typing import Any

from logs.parsing.base import Entry, RegexLineParser
from logs.parsing.levels import SYSLOG_SEVERITY_LEVELS
from logs.parsing.timestamps import (
    fraction_to_microseconds,
    iso_text_to_iso,
    month_number,
)

# Facility keywords by number: rsyslog's names for 0-11 and 16-23, and short
# forms of RFC 5424's descriptions for 12-15, which have no common keyword.
FACILITIES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "audit",
    "alert",
    "clock",
    *(f"local{number}" for number in range(8)),
)
# ChromeOS writes one of these words where other systems write the host.
_CHROMEOS_SEVERITIES = frozenset(
    {"DEBUG", "INFO", "NOTICE", "WARNING", "ERR", "ERROR", "CRIT", "ALERT", "EMERG"}
)
# RFC 5424 and RFC 3164 allow PRI values up to 23 * 8 + 7.
MAX_PRI = 191


def split_priority(text: str) -> tuple[str, str] | None:
    """Return the level and facility for a PRI value, or None when out of range."""
    value = int(text)
    if value > MAX_PRI:
        return None
    return SYSLOG_SEVERITY_LEVELS[value % 8], FACILITIES[value // 8]


class Rfc3164Parser(RegexLineParser):
    """BSD syslog, with or without the `<PRI>` prefix.

    `<34>Feb  4 11:14:27 host tag[pid]: text`. The timestamp may instead be
    RFC 3339 as rsyslog writes it, and the seconds may have a fraction. The
    host and the tag may each be missing. Without PRI, a level comes from a
    macOS `tag[pid] <Info>:` marker or from a ChromeOS severity word in
    place of the host, and is INFO otherwise. The date has no year, so the
    parser's year applies.
    """

    name = "rfc3164"
    pattern = re.compile(
        r"(?:<(?P<pri>\d{1,3})>)?"
        r"(?:(?P<month>[A-Za-z]{3}) +(?P<day>\d{1,2}) "
        r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)(?:\.(?P<fraction>\d+))?"
        r"|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?))"
        r":?(?: +(?P<rest>.*))?"
    )
    # The parts after the timestamp, tried in order. A tag ends at `[pid]`
    # or `:`, and without one the rest is the host and the message.
    _TAG = (
        r"(?P<tag>[^\s:\[\]]+)(?:\[(?P<pid>[^\]]*)\])?"
        r"(?: <(?P<marker>[A-Za-z]+)>)?:(?P<message>.*)"
    )
    _HOST = r"(?P<host>[A-Za-z0-9][\w.-]*)"
    rest_patterns: tuple[re.Pattern[str], ...] = (
        re.compile(_TAG),
        re.compile(_HOST + " +" + _TAG),
        re.compile(_HOST + " +(?P<message>.*)"),
        re.compile("(?P<message>.*)"),
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        month = None
        if match["iso"] is None:
            month = month_number(match["month"])
            if month is None:
                # A line such as "MMM 22 07:54:32 …" starts with no valid
                # month, so it is text that continues the entry above.
                return None

        metadata: dict[str, Any] = {}
        level = None
        if match["pri"] is not None:
            priority = split_priority(match["pri"])
            if priority is None:
                return None
            level, metadata["facility"] = priority

        timestamp = self._timestamp(match, month)
        if timestamp is None:
            metadata["unparsed_timestamp"] = _timestamp_text(match)

        parts = self._split_rest(match["rest"] or "")
        host, tag, pid = parts.get("host"), parts.get("tag"), parts.get("pid")
        if host is not None and level is None and _is_severity_word(host):
            level, host = host, None
        if host is not None:
            metadata["host"] = host
        if pid:
            metadata["pid"] = int(pid) if pid.isdigit() else pid
        if level is None and parts.get("marker"):
            level = parts["marker"]
        return self.make_entry(
            (parts.get("message") or "").strip(),
            level=level,
            timestamp=timestamp,
            component=tag.strip() if tag else None,
            metadata=metadata,
        )

    def _timestamp(self, match: re.Match[str], month: int | None) -> str | None:
        if month is None:
            return iso_text_to_iso(match["iso"])
        return self.match_time(
            match,
            year=self.years.year_for(month, int(match["day"])),
            month=month,
            microsecond=fraction_to_microseconds(match["fraction"]),
        )

    def _split_rest(self, rest: str) -> dict[str, str | None]:
        for pattern in self.rest_patterns:
            found = pattern.fullmatch(rest)
            if found is not None:
                return found.groupdict()
        return {"message": rest}


class SyslogFileParser(Rfc3164Parser):
    """The BSD syslog file format of /var/log/messages and /var/log/secure.

    `Jun 14 15:16:01 combo sshd(pam_unix)[19939]: text`: the same as
    RFC 3164 without PRI, except that the program name may contain spaces
    (`syslogd 1.4.1: restart.`), as in the Loghub Linux and OpenSSH sets.
    """

    name = "linux"
    rest_patterns = (
        re.compile(
            r"(?P<host>\S+) +(?P<tag>[^:\[]+?)(?:\[(?P<pid>\d+)\])?:(?P<message>.*)"
        ),
        *Rfc3164Parser.rest_patterns,
    )


class OpenSshParser(SyslogFileParser):
    """sshd lines from a syslog file: `Dec 10 06:55:46 LabSZ sshd[24200]: text`."""

    name = "openssh"


class Rfc5424Parser(RegexLineParser):
    """RFC 5424 syslog: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`.

    `-` marks a nil field, which is left out of the metadata. Structured
    data goes into the metadata as `{sd_id: {param: value}}`. The message is
    kept as sent, with its leading spaces, but without a UTF-8 byte order
    mark. An RFC 6587 octet count before `<PRI>` and a NUL trailer are
    ignored.
    """

    name = "rfc5424"
    pattern = re.compile(
        r"(?:\d+ )?<(?P<pri>\d{1,3})>\d{1,2} (?P<timestamp>\S+) (?P<host>\S+) "
        r"(?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<rest>.*)"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        priority = split_priority(match["pri"])
        parts = split_structured_data(match["rest"].rstrip("\x00"))
        if priority is None or parts is None:
            return None
        level, facility = priority
        structured_data, message = parts
        metadata: dict[str, Any] = {"facility": facility}
        for key in ("host", "procid", "msgid"):
            if match[key] != "-":
                metadata[key] = match[key]
        if structured_data:
            metadata["structured_data"] = structured_data

        timestamp = None
        if match["timestamp"] != "-":
            timestamp = iso_text_to_iso(match["timestamp"])
            if timestamp is None:
                metadata["unparsed_timestamp"] = match["timestamp"]
        return self.make_entry(
            message.removeprefix("\ufeff"),
            level=level,
            timestamp=timestamp,
            component=match["app"] if match["app"] != "-" else None,
            metadata=metadata,
        )


_SD_NAME = r'[^\s=\]"]+'
_SD_VALUE = r'(?:[^"\\]|\\.)*'
_SD_ELEMENT = re.compile(
    rf'\[(?P<id>{_SD_NAME})(?P<params>(?: {_SD_NAME}="{_SD_VALUE}")*)\]'
)
_SD_PARAM = re.compile(rf' (?P<name>{_SD_NAME})="(?P<value>{_SD_VALUE})"')
_SD_ESCAPE = re.compile(r'\\(["\\\]])')


def split_structured_data(
    text: str,
) -> tuple[dict[str, dict[str, str]], str] | None:
    """Split the text after MSGID into structured data and the message.

    Returns None when the text does not start with `-` or valid SD elements
    followed by a space or the end. Inside a value, `\\"`, `\\\\` and `\\]`
    are unescaped, as RFC 5424 requires. A backslash before any other
    character is kept.
    """
    elements: dict[str, dict[str, str]] = {}
    position = 0
    if text.startswith("-"):
        position = 1
    else:
        while (element := _SD_ELEMENT.match(text, position)) is not None:
            elements[element["id"]] = {
                param["name"]: _SD_ESCAPE.sub(r"\1", param["value"])
                for param in _SD_PARAM.finditer(element["params"])
            }
            position = element.end()
        if not elements:
            return None
    remainder = text[position:]
    if not remainder:
        return elements, ""
    if remainder.startswith(" "):
        return elements, remainder[1:]
    return None


def _timestamp_text(match: re.Match[str]) -> str:
    if match["iso"] is not None:
        return match["iso"]
    end = match.end("fraction") if match["fraction"] else match.end("second")
    return match.string[match.start("month") : end]


def _is_severity_word(word: str) -> bool:
    """Return whether a host field is really a ChromeOS severity word."""
    return word in _CHROMEOS_SEVERITIES
