"""Realistic synthetic log entries, written as PostgreSQL COPY text.

The generator serves `manage.py generate_logs`. Services get a Zipf-like
share of the volume, levels follow the mix of a typical production system,
and messages come from templates with variable parts. Services named after
a Loghub system use that system's templates when the Loghub samples are
present, and built-in templates otherwise.

All content comes from random generators seeded from one seed, so a seed
and a batch size reproduce every row except its event id. Event ids come
from a generator seeded by the operating system in each process, so running
twice with one seed adds new rows instead of failing on duplicate ids.
"""

import csv
import logging
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

from logs.levels import Level

logger = logging.getLogger(__name__)

# Share of each level, in per mille: mostly DEBUG and INFO, a few percent
# WARNING, about 1% ERROR and a rare CRITICAL.
LEVEL_WEIGHTS = {
    Level.DEBUG: 300,
    Level.INFO: 647,
    Level.WARNING: 42,
    Level.ERROR: 10,
    Level.CRITICAL: 1,
}
# Service k (from 1) gets a share proportional to 1 / k**ZIPF_EXPONENT.
ZIPF_EXPONENT = 1.1

# Services and the Loghub system whose templates they use (None: built-in
# web service templates). Ordered so that the busiest services mix both kinds.
SERVICES = [
    ("api-gateway", None),
    ("checkout", None),
    ("hdfs-datanode", "HDFS"),
    ("auth", None),
    ("search", None),
    ("spark-executor", "Spark"),
    ("payments", None),
    ("orders", None),
    ("sshd", "OpenSSH"),
    ("cart", None),
    ("inventory", None),
    ("zookeeper", "Zookeeper"),
    ("users", None),
    ("catalog", None),
    ("hadoop-mapreduce", "Hadoop"),
    ("pricing", None),
    ("shipping", None),
    ("apache-httpd", "Apache"),
    ("notifications", None),
    ("billing", None),
    ("linux-kernel", "Linux"),
    ("recommendations", None),
    ("reviews", None),
    ("android-client", "Android"),
    ("media", None),
    ("sessions", None),
    ("health-tracker", "HealthApp"),
    ("webhooks", None),
    ("fraud", None),
    ("windows-cbs", "Windows"),
    ("ledger", None),
    ("loyalty", None),
    ("bgl-compute", "BGL"),
    ("geo", None),
    ("feature-flags", None),
    ("hpc-cluster", "HPC"),
    ("exports", None),
    ("tax", None),
    ("reports", None),
    ("audit", None),
]

# Loghub templates that contain one of these words describe a problem and
# are used for WARNING and above; the others for DEBUG and INFO.
PROBLEM_WORDS = re.compile(
    r"error|exception|fail|fatal|denied|refused|timeout|timed out|invalid|corrupt"
    r"|unable|cannot|can't|lost|killed|panic|warn|unexpected|not found|bad ",
    re.IGNORECASE,
)

# Built-in templates. A {kind} placeholder takes a value from the pool of
# that kind (see _value_pools), and Loghub's <*> one from the pool "any".
WEB_TEMPLATES = {
    Level.DEBUG: [
        "cache hit for key {word}:{int} in {ms} ms",
        "SQL query on table {word} returned {int} rows in {ms} ms",
        "feature flag {word} evaluated to {bool} for user {user}",
        "loaded configuration revision {hex} from {host}",
        "opened connection {int} to {host}:{port}",
    ],
    Level.INFO: [
        "GET /api/v1/{word}/{int} 200 {ms}ms",
        "POST /api/v1/{word} 201 {ms}ms",
        "user {user} signed in from {ip}",
        "order {hex} created with {int} items",
        "payment {hex} captured for {int}.{int} EUR",
        "job {word}-{int} finished in {ms} ms",
        "published {int} events to topic {word}",
        "request {hex} completed for client {ip}",
    ],
    Level.WARNING: [
        "slow request: GET /api/v1/{word}/{int} took {ms} ms",
        "rate limit reached for client {ip}",
        "retrying call to {host} after timeout, attempt {int} of 3",
        "deprecated API version v1 called by client {ip}",
        "connection pool {word} at {int}% of its size",
    ],
    Level.ERROR: [
        "upstream {host} returned 503 for request {hex}",
        "timed out after {ms} ms calling {host}:{port}",
        "database error: deadlock detected while updating table {word}",
        "payment {hex} declined: card expired",
        "unhandled exception in worker: KeyError: '{word}'",
    ],
    Level.CRITICAL: [
        "database connection pool exhausted; rejecting requests",
        "disk usage at {int}% on /var/lib/{word}",
        "circuit breaker open for {host}: every call failing",
        "out of memory: killed process {int}",
    ],
}
# Problem templates for Loghub-backed services whose own set has none.
INFRA_PROBLEM_TEMPLATES = [
    "connection to {host}:{port} failed: connection reset by peer",
    "health check of {host} timed out after {ms} ms",
    "process {int} exited with status {int}",
]

_WORDS = (
    "accounts carts items orders invoices users sessions products prices "
    "tokens events reports exports shipments refunds coupons addresses "
    "profiles settings payments reviews ratings images uploads queues "
    "jobs tasks metrics alerts widgets tenants"
).split()


@dataclass
class Template:
    """A message template: literal parts with one value slot between each two."""

    parts: list[str]
    slots: list[list[str]]

    def render(self, rng: random.Random) -> str:
        parts = self.parts
        if len(parts) == 1:
            return parts[0]
        getrandbits = rng.getrandbits
        text = parts[0]
        for index, pool in enumerate(self.slots, start=1):
            text += pool[getrandbits(POOL_BITS)] + parts[index]
        return text


@dataclass
class Service:
    """One generated service: its name, hosts, templates and metadata shape."""

    name: str
    is_web: bool
    hosts: list[str]
    templates: dict[int, list[Template]] = field(default_factory=dict)


# Each value pool contains 2**POOL_BITS values, so one getrandbits picks one.
POOL_BITS = 12
POOL_SIZE = 1 << POOL_BITS
# The longest time between an entry's event and its arrival.
MAX_ARRIVAL_DELAY_SECONDS = 5


def _value_pools(rng: random.Random) -> dict[str, list[str]]:
    def pool(make) -> list[str]:
        return [make() for _ in range(POOL_SIZE)]

    pools = {
        "int": pool(lambda: str(int(rng.paretovariate(1.2) * 3))),
        "ms": pool(lambda: str(int(rng.lognormvariate(3.5, 1.0)))),
        "hex": pool(lambda: f"{rng.getrandbits(48):012x}"),
        "word": pool(lambda: rng.choice(_WORDS)),
        "bool": pool(lambda: rng.choice(["true", "false"])),
        "user": pool(lambda: f"u{rng.randrange(1, 100_000)}"),
        "ip": pool(
            lambda: (
                f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            )
        ),
        "host": pool(lambda: f"{rng.choice(_WORDS)}-{rng.randrange(1, 13):02d}"),
        "port": pool(lambda: str(rng.choice([80, 443, 5432, 6379, 8080, 9092]))),
    }
    # Loghub's <*> is a number, an id, an address or a name.
    mixed = ["int", "hex", "ip", "word", "ms"]
    pools["any"] = [pools[mixed[i % len(mixed)]][i] for i in range(POOL_SIZE)]
    return pools


# COPY's text format gives backslash, tab, newline and carriage return a
# meaning, so literal text escapes them. PostgreSQL cannot store NUL.
_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\ufffd"}
)
# Built-in templates mark slots with {kind}, Loghub's with <*>. Loghub text
# may contain braces of its own, so only <*> counts as a slot there.
_BUILTIN_SLOT = re.compile(r"\{(\w+)\}")
_LOGHUB_SLOT = re.compile(r"<\*>")


def parse_template(
    text: str, pools: dict[str, list[str]], slot: re.Pattern = _BUILTIN_SLOT
) -> Template:
    """Split a template at its slots, with the text escaped for COPY."""
    parts, slots, start = [], [], 0
    for match in slot.finditer(text):
        parts.append(text[start : match.start()].translate(_COPY_ESCAPES))
        slots.append(pools[match.group(1) if match.groups() else "any"])
        start = match.end()
    parts.append(text[start:].translate(_COPY_ESCAPES))
    return Template(parts, slots)


def read_loghub_templates(data_dir: Path | None, system: str) -> list[str]:
    """Return the templates of one Loghub system, or [] without the file."""
    if data_dir is None:
        return []
    path = data_dir / "loghub" / system / f"{system}_2k.log_templates.csv"
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return [row["EventTemplate"] for row in csv.DictReader(handle)]
    except FileNotFoundError:
        return []
    except (OSError, KeyError, csv.Error, UnicodeDecodeError) as exc:
        logger.warning("generate_logs: cannot read templates %s: %s", path, exc)
        return []


def _templates_for(system, data_dir, pools) -> dict[int, list[Template]]:
    loghub = read_loghub_templates(data_dir, system) if system else []
    if not loghub:
        return {
            level: [parse_template(text, pools) for text in texts]
            for level, texts in WEB_TEMPLATES.items()
        }
    normal = [
        parse_template(text, pools, _LOGHUB_SLOT)
        for text in loghub
        if not PROBLEM_WORDS.search(text)
    ]
    problems = [
        parse_template(text, pools, _LOGHUB_SLOT)
        for text in loghub
        if PROBLEM_WORDS.search(text)
    ]
    if not problems:
        problems = [parse_template(text, pools) for text in INFRA_PROBLEM_TEMPLATES]
    if not normal:
        normal = problems
    return {
        level.value: problems if level >= Level.WARNING else normal for level in Level
    }


def service_names(count: int) -> list[tuple[str, str | None]]:
    """Return `count` services; beyond the named ones, web services service-N."""
    named = SERVICES[:count]
    extra = [(f"service-{n}", None) for n in range(len(SERVICES) + 1, count + 1)]
    return named + extra


def build_services(
    count: int, data_dir: Path | None, seed: int | None
) -> list[Service]:
    """Build the services with their hosts, templates and value pools."""
    rng = random.Random(seed)
    pools = _value_pools(rng)
    services = []
    for name, system in service_names(count):
        host_count = rng.choice([2, 4, 8])
        hosts = [f"{name}-{n:02d}" for n in range(1, host_count + 1)]
        service = Service(name=name, is_web=system is None, hosts=hosts)
        service.templates = _templates_for(system, data_dir, pools)
        services.append(service)
    return services


# HTTP status codes by level, repeated to weight them, for web services.
_STATUS_BY_LEVEL = {
    Level.DEBUG: [200] * 12 + [204, 304, 301, 201],
    Level.INFO: [200] * 12 + [201, 204, 304, 301],
    Level.WARNING: [400, 401, 403, 404, 404, 404, 409, 429],
    Level.ERROR: [500, 502, 503, 503, 504],
    Level.CRITICAL: [500, 503],
}


def _format_minute(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M:")


class RowGenerator:
    """Produce batches of COPY text rows in event-time order.

    The caller gives each batch its own slice of the time span, so event
    times and ids grow from batch to batch, as they do when entries arrive
    live. That keeps the inserts into the time and id indexes at their ends.
    """

    def __init__(self, services: list[Service], seed: int | None):
        self.services = services
        self.seed = seed
        self.id_rng = random.Random()
        self.service_cum = list(
            accumulate(1 / k**ZIPF_EXPONENT for k in range(1, len(services) + 1))
        )
        self.levels = [level.value for level in LEVEL_WEIGHTS]
        self.level_cum = list(accumulate(LEVEL_WEIGHTS.values()))
        self.status = {
            level.value: [str(code) for code in codes]
            for level, codes in _STATUS_BY_LEVEL.items()
        }
        # Arrival delays in microseconds: mostly tens of milliseconds, with
        # a long tail up to a few seconds.
        delay_rng = random.Random(seed)
        self.delays = [
            min(
                int(delay_rng.lognormvariate(10.5, 1.0)),
                MAX_ARRIVAL_DELAY_SECONDS * 10**6,
            )
            for _ in range(POOL_SIZE)
        ]
        self._minutes: dict[int, str] = {}

    def _time_text(self, micros: int) -> str:
        # Formatting a datetime per row is slow, so the date, hour and minute
        # are formatted once per minute and the seconds appended.
        minute = micros // 60_000_000
        prefix = self._minutes.get(minute)
        if prefix is None:
            prefix = self._minutes[minute] = _format_minute(minute)
        return f"{prefix}{(micros // 1_000_000) % 60:02d}.{micros % 1_000_000:06d}+00"

    def _event_id(self, micros: int) -> str:
        # A UUID version 7 (RFC 9562) whose 48-bit millisecond field is the
        # event time, with 74 random bits. PostgreSQL reads 32 hex digits.
        bits = self.id_rng.getrandbits(74)
        value = (
            (micros // 1000) << 80
            | 0x7 << 76
            | (bits >> 62) << 64
            | 0b10 << 62
            | (bits & (1 << 62) - 1)
        )
        return f"{value:032x}"

    def _metadata(self, rng: random.Random, service: Service, level: int) -> str:
        host = service.hosts[rng.getrandbits(3) % len(service.hosts)]
        if not service.is_web:
            return f'{{"host": "{host}", "pid": {rng.getrandbits(15) + 300}}}'
        statuses = self.status[level]
        status = statuses[rng.getrandbits(4) % len(statuses)]
        duration = self.delays[rng.getrandbits(POOL_BITS)] // 1000
        text = (
            f'{{"host": "{host}", "request_id": "{rng.getrandbits(64):016x}", '
            f'"status": {status}, "duration_ms": {duration}'
        )
        # Four entries in ten come from a signed-in user.
        if rng.random() < 0.4:
            text += f', "user_id": {rng.randrange(1, 100_001)}'
        return text + "}"

    def batch(self, number: int, start_us: int, end_us: int, count: int) -> bytes:
        """Return `count` rows with event times in [start_us, end_us), as COPY text.

        Batch `number` draws from its own generator, seeded from the seed and
        the number, so batches made in any order or process are the same.
        """
        rows = self.rows(number, start_us, end_us, count)
        return "".join([f"{row.line}\n" for row in rows]).encode()

    def rows(
        self, number: int, start_us: int, end_us: int, count: int
    ) -> list["GeneratedRow"]:
        """Return the rows of batch `number`, each with its parts for mining."""
        rng = random.Random(None if self.seed is None else f"{self.seed}:{number}")
        getrandbits = rng.getrandbits
        delays = self.delays
        time_text = self._time_text
        span = end_us - start_us
        offsets = sorted([int(rng.random() * span) for _ in range(count)])
        picks = rng.choices(self.services, cum_weights=self.service_cum, k=count)
        levels = rng.choices(self.levels, cum_weights=self.level_cum, k=count)
        rows = []
        for offset, service, level in zip(offsets, picks, levels, strict=True):
            event_us = start_us + offset
            received = time_text(event_us + delays[getrandbits(POOL_BITS)])
            templates = service.templates[level]
            message = templates[getrandbits(16) % len(templates)].render(rng)
            event_id = self._event_id(event_us)
            line = (
                f"{event_id}\t{time_text(event_us)}\t{received}\t{level}\t"
                f"{service.name}\t{message}\t{self._metadata(rng, service, level)}"
            )
            rows.append(GeneratedRow(line, event_id, service.name, message, received))
        return rows


class GeneratedRow(NamedTuple):
    """One generated row: its COPY line, without the newline, and its parts.

    `message` is escaped for COPY like the line (see copy_unescape), and
    `received_at` is in the line's time format.
    """

    line: str
    event_id: str
    service_name: str
    message: str
    received_at: str


_COPY_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
_COPY_ESCAPE = re.compile(r"\\[\\tnr]")


def copy_unescape(text: str) -> str:
    """Return the text that COPY stores for `text`, the reverse of _COPY_ESCAPES."""
    if "\\" not in text:
        return text
    return _COPY_ESCAPE.sub(lambda match: _COPY_UNESCAPES[match.group()], text)
