"""Real-looking log entries built from the Loghub samples.

Each entry carries one line of a Loghub `*_2k.log` file as its message. A
hex `trace_id` in its metadata pads it, or its message is cut, until its
compact JSON (as a client sends it) is 250 to 400 bytes long. This module
imports nothing from Django, so the load client processes can use it.
"""

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tests.datafiles import configured_folder

MIN_ENTRY_BYTES = 250
MAX_ENTRY_BYTES = 400

# The first level word in a line becomes the entry's level. The API accepts
# each of these names and aliases.
_LEVEL_WORD = re.compile(
    r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|SEVERE|FATAL|CRITICAL)\b"
)


@dataclass(frozen=True)
class SampleLine:
    service: str
    text: str


def data_folder() -> Path:
    """Return the folder named by LOGPLATFORM_TEST_DATA, as the tests read it."""
    return configured_folder()


def load_lines(folder: Path) -> list[SampleLine]:
    """Read every non-blank line of the Loghub 2k samples, in a fixed shuffle.

    The service name is the Loghub system in lower case. The shuffle mixes
    the systems, so any run of consecutive entries looks like many services.
    """
    paths = sorted(folder.glob("loghub/*/*_2k.log"))
    if not paths:
        raise FileNotFoundError(
            f"No Loghub samples (loghub/*/*_2k.log) found in {folder}; set "
            "LOGPLATFORM_TEST_DATA to the folder that contains them."
        )
    lines = []
    for path in paths:
        service = path.parent.name.lower()
        with path.open(encoding="utf-8", errors="replace") as handle:
            for raw in handle:
                text = raw.rstrip("\r\n")
                if text.strip():
                    lines.append(SampleLine(service, text))
    random.Random(0).shuffle(lines)
    return lines


def level_of(text: str) -> str:
    match = _LEVEL_WORD.search(text)
    return match.group(1) if match else "INFO"


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encoded_size(entry: dict[str, Any]) -> int:
    return len(orjson.dumps(entry))


def make_entry(
    line: SampleLine, seq: int, rng: random.Random, timestamp: str
) -> dict[str, Any]:
    """Build the client form of an entry whose JSON is 250 to 400 bytes.

    The size is drawn from `rng`. `seq` goes into the metadata, so the
    benchmark can find duplicate and missing rows afterwards.
    """
    target = rng.randint(MIN_ENTRY_BYTES, MAX_ENTRY_BYTES)
    metadata = {"host": f"{line.service}-{seq % 16:02d}", "seq": seq, "trace_id": ""}
    entry = {
        "service_name": line.service,
        "level": level_of(line.text),
        "timestamp": timestamp,
        "message": line.text,
        "metadata": metadata,
    }
    size = encoded_size(entry)
    # Every character encodes to at least one byte, so each pass removes at
    # least the excess and the loop ends.
    while size > target:
        entry["message"] = entry["message"][: -(size - target)]
        size = encoded_size(entry)
    padding = target - size
    if padding > 0:
        metadata["trace_id"] = f"{rng.getrandbits(4 * padding):0{padding}x}"
    return entry


def make_batch(
    lines: list[SampleLine], seqs: range, rng: random.Random
) -> list[dict[str, Any]]:
    """Build one entry per number in `seqs`, cycling through `lines`."""
    timestamp = utc_timestamp()
    return [make_entry(lines[seq % len(lines)], seq, rng, timestamp) for seq in seqs]
