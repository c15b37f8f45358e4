"""Split log messages into tokens and mask the variable ones.

One configuration serves every source: the rules match kinds of values
that logs of all sorts share (numbers, ids, addresses, paths, times), never
the wording of one application.
"""

import re

from logs.mining.drain import WILDCARD

# Lines longer than this many tokens keep their first MAX_TOKENS - 1 tokens
# and a wildcard for the rest, which bounds the token counts a Drain sees.
MAX_TOKENS = 120

_HEX = r"[0-9a-fA-F]"
_DIGIT_AHEAD = r"(?=[0-9a-fA-F:.]*\d)"

# Values replaced wherever they occur, in this order of preference: at each
# position the first alternative that matches wins, so the longer shapes
# (a URL, a date with its time) come before the pieces they contain.
_VALUE_PATTERNS = [
    # URLs with a scheme.
    r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+",
    # E-mail addresses.
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    # UUIDs.
    rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    # ISO 8601 dates with an optional time and zone.
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?",
    # Other dates: 10/18/2015, 2015/10/18, 18.10.2015.
    r"\d{1,4}[/.]\d{1,2}[/.]\d{2,4}(?![\d.])",
    # Times of day, with optional fractions.
    r"\d{1,2}:\d{2}:\d{2}(?:[.,:]\d+)?",
    # IPv4 addresses with an optional port.
    r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\d.])",
    # IPv6 addresses (at least two colons and a digit; MAC addresses too).
    rf"(?<![\w:]){_DIGIT_AHEAD}(?:{_HEX}{{0,4}}:){{2,7}}{_HEX}{{0,4}}(?![\w:])",
    # MAC addresses written with dashes.
    rf"(?<![\w-])(?:{_HEX}{{2}}-){{5}}{_HEX}{{2}}(?![\w-])",
    # Windows paths.
    r"(?<![\w])[A-Za-z]:\\[^\s\"'<>,;]*",
    # Unix paths: a slash that starts a token or follows punctuation.
    r"(?<![\w/.])(?:/[\w.@%+~:-]+)+/?",
    # Hexadecimal numbers with a 0x prefix, and bare ones of 8 or more digits
    # that hold a decimal digit (hashes, ids).
    rf"\b0[xX]{_HEX}+\b",
    rf"\b(?=[a-fA-F]*\d){_HEX}{{8,}}\b",
    # Decimal numbers, signed, with an optional exponent and unit suffix.
    r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?:[a-zA-Z%]{1,3})?(?![\w.])",
]
_VALUES = re.compile("|".join(f"(?:{pattern})" for pattern in _VALUE_PATTERNS))

# The value of key=value, up to a delimiter; an empty value stays empty.
_KEY_VALUE = re.compile(r"(?<![\w=])([A-Za-z_][\w.-]*=)(?!<\*>)[^\s,;&)\]}\"']+")

# A run of letters and digits that still holds a digit after the value
# masks, such as the number in "blk_-1608" or "job_1445_0020".
_DIGIT_WORD = re.compile(r"[-+]?[A-Za-z0-9]*\d[A-Za-z0-9]*")

_MASK = re.escape(WILDCARD)
# Runs of adjacent wildcards, such as "<*><*>" after two masks met.
_WILDCARD_RUN = re.compile(rf"(?:{_MASK})+")


def tokenize(message: str) -> list[str]:
    """Split a message on whitespace and replace its variable parts by WILDCARD.

    No token contains whitespace or is empty. A token keeps its constant
    part where it has one, so "user=bob" becomes "user=<*>" and
    "blk_-1608" becomes "blk_<*>". Returns an empty list for a message of
    whitespace only.
    """
    masked = _VALUES.sub(WILDCARD, message)
    masked = _KEY_VALUE.sub(rf"\1{WILDCARD}", masked)
    tokens = masked.split()
    for index, token in enumerate(tokens):
        if _has_digit(token):
            token = _DIGIT_WORD.sub(WILDCARD, token)
        if "<*><*>" in token:
            token = _WILDCARD_RUN.sub(WILDCARD, token)
        tokens[index] = token
    if len(tokens) > MAX_TOKENS:
        tokens = tokens[: MAX_TOKENS - 1] + [WILDCARD]
    return tokens


def _has_digit(token: str) -> bool:
    return any(char.isdigit() for char in token)
