"""Build ISO 8601 timestamps from the date and time parts of log lines.

Every builder returns None instead of raising when the parts do not form a
valid date, so an invalid timestamp never costs the rest of the entry. A
timestamp without a zone is returned naive, which the intake API reads as
UTC.
"""

import math
import re
from datetime import UTC, date, datetime, timedelta

MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "jan",
            "feb",
            "mar",
            "apr",
            "may",
            "jun",
            "jul",
            "aug",
            "sep",
            "oct",
            "nov",
            "dec",
        ),
        start=1,
    )
}

_EPOCH_TEXT = re.compile(r"-?\d+(?:\.\d+)?")


def month_number(name: str) -> int | None:
    """Return 1-12 for an English month abbreviation such as "Jun", else None."""
    return MONTHS.get(name.lower())


def fraction_to_microseconds(digits: str | None) -> int:
    """Convert the digits after a decimal point to microseconds.

    Digits beyond the sixth are dropped, so ".123" is 123000 and
    ".237222729" is 237222.
    """
    if not digits:
        return 0
    return int(digits[:6].ljust(6, "0"))


def naive_iso(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    microsecond: int = 0,
) -> str | None:
    """Return a naive ISO 8601 string, or None for an invalid date or time."""
    try:
        moment = datetime(year, month, day, hour, minute, second, microsecond)
    except ValueError:
        return None
    return moment.isoformat()


def two_digit_year(value: int) -> int:
    """Expand a two-digit year the POSIX strptime way: 69-99 to 19xx, else 20xx."""
    return 1900 + value if value >= 69 else 2000 + value


def epoch_to_datetime(value: float) -> datetime | None:
    """Convert an epoch number to an aware UTC datetime, guessing its unit.

    Below 1e11 the number is seconds (until the year 5138), below 1e14
    milliseconds, below 1e17 microseconds, else nanoseconds. The intake API
    applies the same rule to epoch numbers that it receives.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    magnitude = abs(value)
    if magnitude < 1e11:
        divisor = 1
    elif magnitude < 1e14:
        divisor = 1_000
    elif magnitude < 1e17:
        divisor = 1_000_000
    else:
        divisor = 1_000_000_000
    # Integer division keeps the microseconds of a nanosecond or microsecond
    # epoch exact, which a float of 1.7e18 could not.
    if isinstance(value, int):
        micros = value * 1_000_000 // divisor
    else:
        micros = round(value * 1_000_000 / divisor)
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    except OverflowError:
        return None


def epoch_to_iso(value: float) -> str | None:
    """Return the UTC ISO 8601 string for an epoch number, or None."""
    moment = epoch_to_datetime(value)
    return moment.isoformat() if moment is not None else None


def epoch_text_to_iso(text: str) -> str | None:
    """Return the UTC ISO 8601 string for an epoch number written as text."""
    if not _EPOCH_TEXT.fullmatch(text):
        return None
    number = float(text) if "." in text else int(text)
    return epoch_to_iso(number)


def iso_text_to_iso(text: str) -> str | None:
    """Normalize an ISO 8601 or RFC 3339 string, or return None when invalid.

    A zone offset or "Z" is kept as an offset, a string without one stays
    naive, and fractions longer than microseconds are cut to six digits.
    """
    try:
        return datetime.fromisoformat(text.strip()).isoformat()
    except ValueError:
        return None


class YearGuesser:
    """Supply the year for formats whose timestamps have none.

    The year is the one given, or else the current local year, unless the
    file's first entry would then lie more than a day in the future: a
    December file read in January belongs to the year before. The year
    advances by one when the month drops by more than six between two
    entries (December to January), so a file that spans New Year keeps its
    order. It never goes back, so a hand-edited file out of order can land a
    year late.
    """

    def __init__(self, year: int | None = None, today: date | None = None) -> None:
        self._today = today or date.today()
        self._guessing = year is None
        self.year = year if year is not None else self._today.year
        self._last_month: int | None = None

    def year_for(self, month: int, day: int = 1) -> int:
        if self._last_month is None and self._guessing:
            # Day 28 replaces days that a month may lack (29 February).
            first = date(self.year, month, min(day, 28))
            if first > self._today + timedelta(days=1):
                self.year -= 1
        elif self._last_month is not None and month < self._last_month - 6:
            self.year += 1
        self._last_month = month
        return self.year
