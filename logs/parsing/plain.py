"""Parser for plain text: every line is a message of its own."""

from logs.parsing.base import Entry, LineParser


class PlainParser(LineParser):
    """Every non-blank line becomes an INFO entry of the default service.

    Lines are never joined, and no timestamp is read, so the intake API
    stamps each entry with the time it receives it.
    """

    name = "plain"

    def parse_line(self, line: str) -> Entry | None:
        return self.whole_line_entry(line)
