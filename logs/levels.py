"""Log levels, stored as integers so that "at least WARNING" is a range."""

from django.db import models


class Level(models.IntegerChoices):
    # The numbers match Python's logging module, which many clients know.
    DEBUG = 10, "DEBUG"
    INFO = 20, "INFO"
    WARNING = 30, "WARNING"
    ERROR = 40, "ERROR"
    CRITICAL = 50, "CRITICAL"


# Names that clients and log formats use for the five levels, lower-cased.
LEVEL_ALIASES: dict[str, Level] = {
    "trace": Level.DEBUG,
    "verbose": Level.DEBUG,
    "debug": Level.DEBUG,
    "dbg": Level.DEBUG,
    "info": Level.INFO,
    "information": Level.INFO,
    "informational": Level.INFO,
    "notice": Level.INFO,
    "warn": Level.WARNING,
    "warning": Level.WARNING,
    "err": Level.ERROR,
    "error": Level.ERROR,
    "severe": Level.ERROR,
    "crit": Level.CRITICAL,
    "critical": Level.CRITICAL,
    "fatal": Level.CRITICAL,
    "alert": Level.CRITICAL,
    "emerg": Level.CRITICAL,
    "emergency": Level.CRITICAL,
    "panic": Level.CRITICAL,
}


def parse_level(value: str) -> Level | None:
    """Return the level a name stands for, or None for an unknown name."""
    return LEVEL_ALIASES.get(value.strip().lower())
