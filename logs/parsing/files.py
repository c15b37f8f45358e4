"""Read log files line by line, gzip-compressed or not, without loading them whole."""

import gzip
import io
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import TextIO

from logs.parsing.base import Entry, iter_entries
from logs.parsing.registry import create_parser

GZIP_MAGIC = b"\x1f\x8b"


def open_log(path: str | PathLike[str]) -> TextIO:
    """Open a log file as UTF-8 text, decompressing it when it is gzip data.

    Compression is recognized by the file's first bytes, not its name.
    Bytes that are not UTF-8 become U+FFFD, and a leading byte order mark is
    dropped. Lines end at "\\n" only, so a lone "\\r" stays inside a line.
    """
    with open(path, "rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    binary = gzip.open(path, "rb") if compressed else open(path, "rb")
    return io.TextIOWrapper(
        binary, encoding="utf-8-sig", errors="replace", newline="\n"
    )


def read_lines(path: str | PathLike[str]) -> Iterator[str]:
    """Yield the lines of a log file without their "\\n" or "\\r\\n" endings."""
    with open_log(path) as stream:
        for line in stream:
            yield line.rstrip("\r\n")


def read_entries(
    path: str | PathLike[str],
    format_name: str,
    service: str,
    year: int | None = None,
) -> Iterator[Entry]:
    """Parse a log file into entries, in file order, one line at a time.

    See `create_parser` for `service` and `year`. Each entry's metadata
    gets `"source": {"file": <file name>, "line": <first line, from 1>}`.
    Raises UnknownFormat before the file is opened when the format name is
    not known.
    """
    parser = create_parser(format_name, service, year)
    return iter_entries(read_lines(path), parser, source=Path(path).name)
