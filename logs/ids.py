"""Event ids. This module imports nothing from Django, so clients can use it."""

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """Return a time-ordered UUID (version 7, RFC 9562).

    Its first 48 bits are the Unix time in milliseconds, so new ids sort by
    creation time and inserts land at the end of the primary key index
    instead of on random pages.
    """
    raw = bytearray((time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10))
    raw[6] = (raw[6] & 0x0F) | 0x70
    raw[8] = (raw[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(raw))
