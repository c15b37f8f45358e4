"""Map the level words and numbers of log formats to the platform's five levels."""

DEBUG = "DEBUG"
INFO = "INFO"
WARNING = "WARNING"
ERROR = "ERROR"
CRITICAL = "CRITICAL"

# Lower-cased level words and letters of common formats: log4j, Python
# logging, java.util.logging, syslog keywords, Apache httpd, Android logcat
# letters (V/D/I/W/E/F/A), BGL (SEVERE, FAILURE) and Windows CBS (Info).
_WORDS: dict[str, str] = {
    "trace": DEBUG,
    "finest": DEBUG,
    "finer": DEBUG,
    "fine": DEBUG,
    "verbose": DEBUG,
    "debug": DEBUG,
    "dbg": DEBUG,
    "v": DEBUG,
    "d": DEBUG,
    "info": INFO,
    "information": INFO,
    "informational": INFO,
    "notice": INFO,
    "config": INFO,
    "i": INFO,
    "warn": WARNING,
    "warning": WARNING,
    "w": WARNING,
    "err": ERROR,
    "error": ERROR,
    "severe": ERROR,
    "e": ERROR,
    "crit": CRITICAL,
    "critical": CRITICAL,
    "fatal": CRITICAL,
    "failure": CRITICAL,
    "alert": CRITICAL,
    "emerg": CRITICAL,
    "emergency": CRITICAL,
    "panic": CRITICAL,
    "f": CRITICAL,
    "a": CRITICAL,
}

# Syslog severities 0 (emerg) to 7 (debug), as RFC 5424 and RFC 3164 number them.
SYSLOG_SEVERITY_LEVELS = (
    CRITICAL,
    CRITICAL,
    CRITICAL,
    ERROR,
    WARNING,
    INFO,
    INFO,
    DEBUG,
)


def level_from_word(word: str) -> str | None:
    """Return the level for a level word or letter, or None when it is unknown.

    Numbered debug levels such as Apache's trace1 to trace8 and DEBUG2 to
    DEBUG5 map to DEBUG.
    """
    key = word.strip().lower()
    level = _WORDS.get(key)
    if level is not None:
        return level
    base = key.rstrip("0123456789")
    if base != key and base in ("trace", "debug"):
        return DEBUG
    return None


def level_from_syslog_severity(severity: int) -> str | None:
    """Return the level for a syslog severity 0-7, or None outside that range."""
    if 0 <= severity < len(SYSLOG_SEVERITY_LEVELS):
        return SYSLOG_SEVERITY_LEVELS[severity]
    return None


def level_from_number(number: float) -> str | None:
    """Return the level for a numeric level of unknown origin, or None.

    Integers 0-7 are syslog severities. Numbers from 10 up follow the bunyan
    and pino scale: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
    A number between two steps takes the lower step.
    """
    if number < 0:
        return None
    if number < 8 and number == int(number):
        return level_from_syslog_severity(int(number))
    if number < 10:
        return None
    if number < 30:
        return DEBUG
    if number < 40:
        return INFO
    if number < 50:
        return WARNING
    if number < 60:
        return ERROR
    return CRITICAL
