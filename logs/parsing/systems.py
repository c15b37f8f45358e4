"""Parsers for Android logcat, Apache httpd, BGL, HPC, HealthApp and Windows CBS."""

import re
from datetime import datetime

from logs.parsing.base import Entry, RegexLineParser
from logs.parsing.timestamps import (
    epoch_to_iso,
    fraction_to_microseconds,
    month_number,
)


class AndroidParser(RegexLineParser):
    """Android logcat in threadtime form: `03-17 16:13:38.819  1702  8671 D Tag: text`.

    The date has no year, so the parser's year applies. The tag becomes the
    service name.
    """

    name = "android"
    pattern = re.compile(
        r"(?P<month>\d\d)-(?P<day>\d\d) "
        r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)\.(?P<fraction>\d+) +"
        r"(?P<pid>\d+) +(?P<tid>\d+) (?P<level>[VDIWEFA]) "
        r"(?P<tag>.*?) *:(?: (?P<message>.*))?"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        month = int(match["month"])
        timestamp = self.match_time(
            match,
            year=self.years.year_for(month, int(match["day"])),
            month=month,
            microsecond=fraction_to_microseconds(match["fraction"]),
        )
        return self.make_entry(
            (match["message"] or "").rstrip(),
            level=match["level"],
            timestamp=timestamp,
            component=match["tag"],
            metadata={"pid": int(match["pid"]), "tid": int(match["tid"])},
        )


class ApacheParser(RegexLineParser):
    """Apache httpd error_log: `[Sun Dec 04 04:47:44 2005] [error] text`.

    The httpd 2.4 form `[Wed Oct 11 14:32:52.123456 2000] [core:error]
    [pid 35708:tid 4328] text` is read too. The line names no component, so
    the default service applies.
    """

    name = "apache"
    pattern = re.compile(
        r"\[[A-Za-z]{3} (?P<month>[A-Za-z]{3}) +(?P<day>\d{1,2}) "
        r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)(?:\.(?P<fraction>\d+))? "
        r"(?P<year>\d{4})\] \[(?:(?P<module>[^\]:]+):)?(?P<level>[^\]:]+)\] "
        r"(?:\[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\] )?(?P<message>.*)"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        month = month_number(match["month"])
        if month is None:
            return None
        timestamp = self.match_time(
            match, month=month, microsecond=fraction_to_microseconds(match["fraction"])
        )
        metadata: dict[str, object] = {}
        if match["module"]:
            metadata["module"] = match["module"]
        if match["pid"]:
            metadata["pid"] = int(match["pid"])
        if match["tid"]:
            metadata["tid"] = int(match["tid"])
        return self.make_entry(
            match["message"].rstrip(),
            level=match["level"],
            timestamp=timestamp,
            metadata=metadata,
        )


class BglParser(RegexLineParser):
    """Blue Gene/L RAS log lines from the LLNL BGL data set.

    `- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872
    R02-M1-N0-C:J12-U11 RAS KERNEL INFO text`: alert label (`-` for none),
    epoch seconds in UTC, date, node, local time with microseconds, node
    again, type, component, level and text. The timestamp is the epoch, in
    UTC. The local time, 7 or 8 hours behind in this data set, goes into the
    metadata as `local_time`, because its zone is not written down.
    """

    name = "bgl"
    pattern = re.compile(
        r"(?P<label>\S+) (?P<epoch>\d+) \d{4}\.\d\d\.\d\d (?P<node>\S+) "
        r"(?P<time>\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d\.\d{6}) (?P<reporter>\S+) "
        r"(?P<type>\S+) (?P<component>\S+) (?P<level>[A-Z]+) (?P<message>.*)"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        metadata: dict[str, object] = {"node": match["node"], "type": match["type"]}
        try:
            local = datetime.strptime(match["time"], "%Y-%m-%d-%H.%M.%S.%f")
        except ValueError:
            metadata["local_time"] = match["time"]
        else:
            metadata["local_time"] = local.isoformat()
        if match["label"] != "-":
            metadata["label"] = match["label"]
        if match["reporter"] != match["node"]:
            metadata["reporting_node"] = match["reporter"]
        return self.make_entry(
            match["message"].rstrip(),
            level=match["level"],
            timestamp=epoch_to_iso(int(match["epoch"])),
            component=match["component"],
            metadata=metadata,
        )


class HpcParser(RegexLineParser):
    """LANL HPC cluster logs: log id, node, component, state, epoch, flag, text.

    `134681 node-246 unix.hw state_change.unavailable 1077804742 1 text`:
    the epoch is in seconds and UTC. There is no level, so every entry is
    INFO. Octal escapes such as `\\042` stay in the message as written.
    """

    name = "hpc"
    pattern = re.compile(
        r"(?P<log_id>\d+) (?P<node>\S+) (?P<component>\S+) (?P<state>\S+) "
        r"(?P<epoch>\d+) (?P<flag>-?\d+) (?P<message>.*)"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        return self.make_entry(
            match["message"].rstrip(),
            timestamp=epoch_to_iso(int(match["epoch"])),
            component=match["component"],
            metadata={
                "log_id": int(match["log_id"]),
                "node": match["node"],
                "state": match["state"],
                "flag": int(match["flag"]),
            },
        )


class HealthAppParser(RegexLineParser):
    """HealthApp logs: `20171223-22:15:29:606|Step_LSC|30002312|text`.

    No part of the time is zero-padded, so `22:16:0:11` is 22:16:00.011.
    There is no level, so every entry is INFO. The message keeps its leading
    spaces.
    """

    name = "healthapp"
    pattern = re.compile(
        r"(?P<year>\d{4})(?P<month>\d\d)(?P<day>\d\d)-"
        r"(?P<hour>\d{1,2}):(?P<minute>\d{1,2}):(?P<second>\d{1,2}):(?P<millis>\d{1,3})"
        r"\|(?P<component>[^|]*)\|(?P<pid>[^|]*)\|(?P<message>.*)"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        timestamp = self.match_time(match, microsecond=int(match["millis"]) * 1000)
        pid = match["pid"]
        return self.make_entry(
            match["message"].rstrip(),
            timestamp=timestamp,
            component=match["component"],
            metadata={"pid": int(pid) if pid.isdigit() else pid},
        )


class WindowsParser(RegexLineParser):
    """Windows CBS.log: `2016-09-28 04:30:31, Info                  CSI    text`.

    The level word is padded to a fixed width, and the component (CBS or
    CSI) becomes the service name.
    """

    name = "windows"
    pattern = re.compile(
        r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d) "
        r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d), "
        r"(?P<level>[A-Za-z]+) +(?P<component>\S+)(?: +(?P<message>.*))?"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        timestamp = self.match_time(match)
        return self.make_entry(
            (match["message"] or "").rstrip(),
            level=match["level"],
            timestamp=timestamp,
            component=match["component"],
        )
