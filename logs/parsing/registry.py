"""The parsers by format name, as the `--format` option of ingest_file takes them."""

from logs.parsing.base import LineParser
from logs.parsing.jsonl import JsonLinesParser
from logs.parsing.log4j import HadoopParser, HdfsParser, SparkParser, ZookeeperParser
from logs.parsing.plain import PlainParser
from logs.parsing.syslog import (
    OpenSshParser,
    Rfc3164Parser,
    Rfc5424Parser,
    SyslogFileParser,
)
from logs.parsing.systems import (
    AndroidParser,
    ApacheParser,
    BglParser,
    HealthAppParser,
    HpcParser,
    WindowsParser,
)

PARSERS: dict[str, type[LineParser]] = {
    parser.name: parser
    for parser in (
        PlainParser,
        JsonLinesParser,
        Rfc3164Parser,
        Rfc5424Parser,
        AndroidParser,
        ApacheParser,
        BglParser,
        HdfsParser,
        HpcParser,
        HadoopParser,
        HealthAppParser,
        SyslogFileParser,
        OpenSshParser,
        SparkParser,
        WindowsParser,
        ZookeeperParser,
    )
}
FORMATS = tuple(PARSERS)


class UnknownFormat(ValueError):
    pass


def create_parser(
    format_name: str, service: str, year: int | None = None
) -> LineParser:
    """Return a new parser for one file.

    `service` is the service name of entries whose line names none. `year`
    is the year of the first entry for formats whose dates have none, and
    defaults to the current year. Raises UnknownFormat for a name that is
    not in PARSERS.
    """
    try:
        parser_class = PARSERS[format_name]
    except KeyError:
        choices = ", ".join(FORMATS)
        raise UnknownFormat(
            f"Unknown log format {format_name!r}; use one of {choices}."
        ) from None
    return parser_class(service, year)
