"""Turn log files of common formats into entries for the intake API.

Pure Python without Django, so the parsers and the HTTP client also work
outside the platform. `read_entries(path, format_name, service)` is the
main entry point, and `PARSERS` lists the formats.
"""

from logs.parsing.base import Entry, LineParser, iter_entries
from logs.parsing.files import open_log, read_entries, read_lines
from logs.parsing.registry import FORMATS, PARSERS, UnknownFormat, create_parser

__all__ = [
    "FORMATS",
    "PARSERS",
    "Entry",
    "LineParser",
    "UnknownFormat",
    "create_parser",
    "iter_entries",
    "open_log",
    "read_entries",
    "read_lines",
]
