"""Parsers for Java services that log through log4j: HDFS, Hadoop, Spark, ZooKeeper.

The logger (a class name) becomes the service name. Lines of a stack trace
match no pattern, so they join the entry above them.
"""

import re

from logs.parsing.base import Entry, RegexLineParser
from logs.parsing.timestamps import naive_iso, two_digit_year


class HdfsParser(RegexLineParser):
    """HDFS DataNode and NameNode logs: `081109 203615 148 INFO dfs.Class: text`.

    The date is yyMMdd and the time HHmmss, without fractions of a second.
    """

    name = "hdfs"
    pattern = re.compile(
        r"(?P<date>\d{6}) (?P<time>\d{6}) (?P<pid>\d+) (?P<level>[A-Za-z]+) "
        r"(?P<logger>\S+?):(?: (?P<message>.*))?"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        date, time = match["date"], match["time"]
        timestamp = naive_iso(
            two_digit_year(int(date[:2])),
            int(date[2:4]),
            int(date[4:]),
            int(time[:2]),
            int(time[2:4]),
            int(time[4:]),
        )
        return self.make_entry(
            (match["message"] or "").rstrip(),
            level=match["level"],
            timestamp=timestamp,
            component=match["logger"],
            metadata={"pid": int(match["pid"])},
        )


class HadoopParser(RegexLineParser):
    """Hadoop MapReduce logs: `2015-10-18 18:01:47,978 INFO [main] a.b.C: text`.

    The thread name in brackets may contain spaces.
    """

    name = "hadoop"
    pattern = re.compile(
        r"(?P<date>\d{4}-\d\d-\d\d) (?P<time>\d\d:\d\d:\d\d),(?P<millis>\d{3}) "
        r"(?P<level>[A-Za-z]+) \[(?P<thread>.*?)\] "
        r"(?P<logger>\S+?):(?: (?P<message>.*))?"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        return self.make_entry(
            (match["message"] or "").rstrip(),
            level=match["level"],
            timestamp=_iso_date_time(match["date"], match["time"], match["millis"]),
            component=match["logger"],
            metadata={"thread": match["thread"]},
        )


class SparkParser(RegexLineParser):
    """Spark executor logs: `17/06/09 20:10:40 INFO spark.Class: text`.

    The year has two digits and the time has no fraction of a second.
    """

    name = "spark"
    pattern = re.compile(
        r"(?P<year>\d\d)/(?P<month>\d\d)/(?P<day>\d\d) "
        r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d) "
        r"(?P<level>[A-Za-z]+) (?P<logger>\S+?):(?: (?P<message>.*))?"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        timestamp = self.match_time(match, year=two_digit_year(int(match["year"])))
        return self.make_entry(
            (match["message"] or "").rstrip(),
            level=match["level"],
            timestamp=timestamp,
            component=match["logger"],
        )


class ZookeeperParser(RegexLineParser):
    """ZooKeeper logs: `2015-07-29 19:04:29,071 - WARN  [thread:Class@688] - text`.

    The thread name may itself contain colons and brackets
    (`QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181`), so the class is the last
    `:Class@line` before `] - `. A `[myid:N] ` after the time, which some
    configurations write, goes into the metadata.
    """

    name = "zookeeper"
    pattern = re.compile(
        r"(?P<date>\d{4}-\d\d-\d\d) (?P<time>\d\d:\d\d:\d\d),(?P<millis>\d{3}) "
        r"(?:\[myid:(?P<myid>\d*)\] )?- (?P<level>[A-Za-z]+) +"
        r"\[(?P<thread>.*?):(?P<logger>[\w$.]+)@(?P<line>\d+)\] - (?P<message>.*)"
    )

    def build(self, match: re.Match[str]) -> Entry | None:
        metadata: dict[str, object] = {
            "thread": match["thread"],
            "caller_line": int(match["line"]),
        }
        if match["myid"]:
            metadata["myid"] = int(match["myid"])
        return self.make_entry(
            match["message"].rstrip(),
            level=match["level"],
            timestamp=_iso_date_time(match["date"], match["time"], match["millis"]),
            component=match["logger"],
            metadata=metadata,
        )


def _iso_date_time(date: str, time: str, millis: str) -> str | None:
    """Return the naive ISO string for `yyyy-MM-dd`, `HH:mm:ss` and milliseconds."""
    return naive_iso(
        int(date[:4]),
        int(date[5:7]),
        int(date[8:]),
        int(time[:2]),
        int(time[3:5]),
        int(time[6:]),
        int(millis) * 1000,
    )
