"""Split log messages into tokens and mask the variable ones.

One configuration serves every source: the rules match kinds of values
that logs of all sorts share (numbers, ids, addresses, paths, times), never
the wording of one application.
"""

import re

from logs.mining.drain import WILDCARD

# Lines longer than this many tokens keep their first MAX_TOKENS - 1 tokens
# and a wildcard for the rest, which bounds the number of token counts, and
# so of subtrees, in a Drain.
MAX_TOKENS = 120

_HEX = r"[0-9a-fA-F]"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
# An IPv6 address is at most 39 characters, so its digit lies within that
# reach. The bound keeps the look-ahead from scanning a long run of hex
# digits, dots and colons again at every position.
_DIGIT_AHEAD = r"(?=[0-9a-fA-F:.]{0,38}\d)"

_ISO_TIME = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"

# Dates and times that contain spaces, so they are masked in the whole
# message before it is split: ctime() and syslog dates such as
# "Fri Jun 17 07:07:00 2005" or "Jun 9 12:00:01", and ISO 8601 dates with
# a space before the time.
_SPACED_DATE = re.compile(
    rf"(?:{_WEEKDAY}[a-z]*,?\s+)?{_MONTH}[a-z]*\.?\s+\d{{1,2}},?\s+"
    r"(?:\d{4}\s+)?\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s+\d{4}(?!\d))?"
    rf"|\d{{4}}-\d{{2}}-\d{{2}} {_ISO_TIME}"
)

# Values masked inside each token that contains a digit or one of / @ \.
# At each position the first alternative that matches wins, so the longer
# shapes (a URL, a date with its time) come before the pieces they contain.
# A token's ends count as boundaries.
# URLs with a scheme of up to 64 characters.
_URL = r"[A-Za-z][A-Za-z0-9+.-]{0,63}://[^\s\"'<>]+"
# E-mail addresses with a local part of up to 64 characters.
_EMAIL = r"[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+"
_WINDOWS_PATH = r"(?<![\w])[A-Za-z]:\\[^\s\"'<>,;]*"
# Unix paths: a slash that starts a token or follows punctuation.
_UNIX_PATH = r"(?<![\w/.])(?:/[\w.@%+~:-]+)+/?"

_VALUE_PATTERNS = [
    _URL,
    _EMAIL,
    # UUIDs.
    rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    # ISO 8601 dates with an optional time and zone.
    rf"\d{{4}}-\d{{2}}-\d{{2}}(?:T{_ISO_TIME})?",
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
    _WINDOWS_PATH,
    _UNIX_PATH,
    # Hexadecimal numbers with a 0x prefix, and bare ones of 8 or more digits
    # that hold a decimal digit (hashes, ids).
    rf"\b0[xX]{_HEX}+\b",
    rf"(?<![\w.])(?=[a-fA-F]*\d){_HEX}{{8,}}(?![\w.])",
    # Decimal numbers, signed, with an optional exponent and unit suffix, and
    # dotted version numbers.
    r"(?<![\w.])[-+]?\d+(?:\.\d+)*(?:[eE][-+]?\d+)?(?:[a-zA-Z%]{1,3})?(?![\w.])",
]
_VALUES = re.compile("|".join(f"(?:{pattern})" for pattern in _VALUE_PATTERNS))
# The same without the shapes that need one of / @ \ (the first two and the
# two paths), for the many tokens that have none of them.
_PLAIN_VALUES = re.compile(
    "|".join(
        f"(?:{pattern})"
        for pattern in _VALUE_PATTERNS
        if pattern not in (_URL, _EMAIL, _WINDOWS_PATH, _UNIX_PATH)
    )
)

# Sizes and durations written with a space before the unit, as in "5.2 KB":
# both tokens become wildcards, so the unit may vary but the token count
# stays that of the message.
_QUANTITY = re.compile(
    r"(?<![\w.])[-+]?\d+(?:\.\d+)?\s+(?:[KMGTPE]i?B|B|bytes|[mun]?s|secs?|seconds"
    r"|mins?|minutes|hours?|days?)(?!\w)"
)

# The value of key=value, quoted or up to a delimiter. An empty value stays
# empty, and a quoted value may contain spaces. A key has at most 64
# characters, so a long run of word characters and dots is not scanned
# again from each of its dots.
_KEY_VALUE = re.compile(
    r"(?<![\w=])([A-Za-z_][\w.-]{0,63}=)(?!<\*>)"
    r"(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&)\]}\"']+)"
)

# A run of letters and digits that still contains a digit after the value
# masks, such as the number in "blk_-1608" or "job_1445_0020". It starts
# only where a run starts, so a long run without a digit is scanned once.
_DIGIT_WORD = re.compile(r"[-+]?(?<![A-Za-z0-9])[A-Za-z0-9]*\d[A-Za-z0-9]*")

# An opening parenthesis right after a name, as in "open(path)" or
# "LOGIN(uid=0)". It starts a token of its own, so the name stays a
# constant token while the arguments vary, and a call with a name is not
# confused with a bare parenthesized value.
_CALL = re.compile(r"(?<=[A-Za-z0-9_>])\((?=\S)")

# A comma with no space after it, as between the fields of compact JSON or
# of a list. A space is put after it so each field is a token of its own,
# and one field that varies does not make the whole line a new template.
_GLUED_COMMA = re.compile(r",(?=[^\s,])")

# A token longer than this is masked whole, and one that may hold a value
# skips the value patterns. Such a token is data (an encoded blob, a long
# path or query). Kept, it would make templates, and every worker's copy of
# them, as long as a message, and the patterns would cost time that grows
# with its length.
MAX_TOKEN_LENGTH = 256

# A whitespace-delimited token that may hold a value.
_VALUE_TOKEN = re.compile(r"(?<!\S)[^\s\d/@\\]*[\d/@\\]\S*")
# A token that is only a number, the most common value, skips the patterns.
_PLAIN_NUMBER = re.compile(r"[-+]?\d+(?:[.,:]\d+)*")
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"\w+")
_PATH_OR_ADDRESS = re.compile(r"[/@\\]")

_MASK = re.escape(WILDCARD)
# Wildcards that touch or are joined by one separator, such as "<*><*>" or
# "<*>_<*>" after two masks met: one value, so one wildcard.
_WILDCARD_RUN = re.compile(rf"{_MASK}(?:[.:_/-]?{_MASK})+")


def tokenize(message: str) -> list[str]:
    """Split a message on whitespace and replace its variable parts by WILDCARD.

    No token contains whitespace or is empty. A token keeps its constant
    part where it has one, so "user=bob" becomes "user=<*>" and
    "job_1445_0020" becomes "job_<*>". Returns an empty list for a message
    of whitespace only. A message of more than MAX_TOKENS tokens keeps its
    first MAX_TOKENS - 1 and a wildcard for the rest, and a token of more
    than MAX_TOKEN_LENGTH characters becomes a wildcard.
    """
    masked = message
    if ":" in masked:
        masked = _SPACED_DATE.sub(WILDCARD, masked)
    masked = _QUANTITY.sub(f"{WILDCARD} {WILDCARD}", masked)
    if "=" in masked:
        masked = _KEY_VALUE.sub(rf"\1{WILDCARD}", masked)
    if "(" in masked:
        masked = _CALL.sub(" (", masked)
    if "," in masked:
        masked = _GLUED_COMMA.sub(", ", masked)
    # Most tokens are words without digits, so only the others pay for
    # the value patterns.
    masked = _VALUE_TOKEN.sub(_mask_token, masked)
    tokens = masked.split()
    if len(tokens) > MAX_TOKENS:
        tokens = tokens[: MAX_TOKENS - 1] + [WILDCARD]
    return [WILDCARD if len(token) > MAX_TOKEN_LENGTH else token for token in tokens]


def _mask_token(match: re.Match[str]) -> str:
    token = match.group()
    if len(token) > MAX_TOKEN_LENGTH or _PLAIN_NUMBER.fullmatch(token):
        return WILDCARD
    # In a token of letters, digits and underscores only, no value pattern
    # masks more than the digit runs below.
    if not _WORD.fullmatch(token):
        values = _VALUES if _PATH_OR_ADDRESS.search(token) else _PLAIN_VALUES
        token = values.sub(WILDCARD, token)
    if _DIGIT.search(token):
        token = _DIGIT_WORD.sub(WILDCARD, token)
    if token.count(WILDCARD) > 1:
        token = _WILDCARD_RUN.sub(WILDCARD, token)
    return token
