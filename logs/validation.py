"""Validate log entries and turn them into the form the pipeline carries.

The API, the Kafka consumer and the Celery task all pass entries around as
plain dicts with the same keys, produced by `normalize_entry`:

    id            event id, a UUID string
    timestamp     event time, ISO 8601 in UTC
    received_at   intake time, ISO 8601 in UTC
    level         one of DEBUG, INFO, WARNING, ERROR, CRITICAL
    service_name  non-empty string
    message       string
    metadata      JSON object

Normalizing an already normalized entry returns an equal entry, which lets
the consumer validate what it reads with the same code as the API.
"""

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from logs.ids import uuid7
from logs.levels import Level, parse_level

CLIENT_FIELDS = frozenset(
    {"id", "timestamp", "level", "service_name", "message", "metadata"}
)
PIPELINE_FIELDS = CLIENT_FIELDS | {"received_at"}
MAX_SERVICE_NAME_LENGTH = 200
MAX_ERRORS_REPORTED = 100

# PostgreSQL rejects U+0000 in text and jsonb values, so it is replaced.
NUL = "\x00"
REPLACEMENT = "\ufffd"

_EPOCH_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class EntryError:
    """One problem with one field of one entry in a request."""

    index: int
    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "field": self.field,
            "message": self.message,
            "code": self.code,
        }


class EntryInvalid(Exception):
    def __init__(self, field: str, message: str, code: str = "invalid"):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code


class BatchInvalid(Exception):
    def __init__(self, errors: list[EntryError]):
        super().__init__(f"{len(errors)} invalid entries")
        self.errors = errors


def parse_timestamp(value: Any) -> datetime:
    """Parse an event time into an aware UTC datetime.

    Accepts ISO 8601 strings with an offset or `Z`, naive ISO strings (taken
    as UTC), and epoch numbers or numeric strings. The unit of an epoch
    number follows from its size: below 1e11 it is seconds (until the year
    5138), below 1e14 milliseconds, below 1e17 microseconds, else
    nanoseconds.
    """
    if isinstance(value, bool):
        raise EntryInvalid("timestamp", "must be an ISO 8601 string or epoch number.")
    if isinstance(value, str):
        text = value.strip()
        if _EPOCH_NUMBER.match(text):
            return _from_epoch(_epoch_from_text(text))
        return _from_iso(text)
    if isinstance(value, (int, float)):
        return _from_epoch(value)
    raise EntryInvalid("timestamp", "must be an ISO 8601 string or epoch number.")


def _epoch_from_text(text: str) -> int | float:
    # int() raises ValueError past Python's limit of 4300 digits. Such a value
    # is far beyond any epoch, so it is rejected as out of range.
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise EntryInvalid(
            "timestamp",
            f"epoch value of {len(text)} digits is out of the supported range.",
        ) from None


def _from_epoch(number: int | float) -> datetime:
    if isinstance(number, float) and not math.isfinite(number):
        raise EntryInvalid("timestamp", "epoch value must be finite.")
    magnitude = abs(number)
    try:
        if magnitude < 1e11:
            seconds = number
        elif magnitude < 1e14:
            seconds = number / 1e3
        elif magnitude < 1e17:
            seconds = number / 1e6
        else:
            # An integer too large for a float raises OverflowError here.
            seconds = number / 1e9
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise EntryInvalid(
            "timestamp", f"epoch value {number!r} is out of the supported range."
        ) from None


def _from_iso(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise EntryInvalid(
            "timestamp",
            f"{text[:64]!r} is not an ISO 8601 date-time or epoch number.",
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise EntryInvalid(
            "timestamp", f"{text[:64]!r} is out of the supported range."
        ) from None


def _clean_text(value: str) -> str:
    return value.replace(NUL, REPLACEMENT) if NUL in value else value


def clean_metadata(value: Any) -> Any:
    """Replace NUL characters in metadata keys and strings, and bound its size.

    Raises EntryInvalid when the metadata is nested deeper than
    INTAKE_MAX_METADATA_DEPTH or has more than INTAKE_MAX_METADATA_KEYS keys,
    counted over every object in it.
    """
    return _MetadataCleaner().clean(value, 0)


class _MetadataCleaner:
    def __init__(self):
        self.keys_left = settings.INTAKE_MAX_METADATA_KEYS

    def clean(self, value: Any, depth: int) -> Any:
        if depth > settings.INTAKE_MAX_METADATA_DEPTH:
            raise EntryInvalid(
                "metadata",
                f"is nested deeper than {settings.INTAKE_MAX_METADATA_DEPTH} levels.",
                code="too_deep",
            )
        if isinstance(value, str):
            return _clean_text(value)
        if isinstance(value, dict):
            self._count_keys(len(value))
            return {
                _clean_text(str(key)): self.clean(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.clean(item, depth + 1) for item in value]
        if isinstance(value, float) and not math.isfinite(value):
            raise EntryInvalid("metadata", "numbers must be finite.", code="invalid")
        return value

    def _count_keys(self, count: int) -> None:
        self.keys_left -= count
        if self.keys_left < 0:
            limit = settings.INTAKE_MAX_METADATA_KEYS
            raise EntryInvalid(
                "metadata",
                f"has more than {limit} keys, counting those of nested objects.",
                code="too_many_keys",
            )


def _normalize_id(value: Any) -> str:
    if not isinstance(value, str):
        raise EntryInvalid("id", "must be a UUID string.")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise EntryInvalid("id", f"{value[:64]!r} is not a valid UUID.") from None


def _normalize_level(value: Any) -> str:
    if not isinstance(value, str):
        raise EntryInvalid("level", "must be a string such as INFO or error.")
    level = parse_level(value)
    if level is None:
        choices = ", ".join(Level.names)
        raise EntryInvalid(
            "level", f"{value[:32]!r} is not a known level; use one of {choices}."
        )
    return level.name


def _normalize_service(value: Any) -> str:
    if not isinstance(value, str):
        raise EntryInvalid("service_name", "must be a string.")
    name = _clean_text(value.strip())
    if not name:
        raise EntryInvalid("service_name", "must not be blank.", code="blank")
    if len(name) > MAX_SERVICE_NAME_LENGTH:
        raise EntryInvalid(
            "service_name",
            f"is longer than {MAX_SERVICE_NAME_LENGTH} characters.",
            code="max_length",
        )
    return name


def _normalize_message(value: Any) -> str:
    if not isinstance(value, str):
        raise EntryInvalid("message", "must be a string.")
    limit = settings.INTAKE_MAX_MESSAGE_LENGTH
    if len(value) > limit:
        raise EntryInvalid(
            "message", f"is longer than {limit} characters.", code="max_length"
        )
    return _clean_text(value)


def normalize_entry(
    raw: Any,
    received_at: datetime,
    *,
    default_id: str | None = None,
    allowed_fields: frozenset[str] = CLIENT_FIELDS,
) -> dict[str, Any]:
    """Validate one entry and return it in pipeline form.

    `default_id` is used when the entry has no `id`; without one a new
    time-ordered UUID is assigned. Raises EntryInvalid on the first problem.
    """
    if not isinstance(raw, dict):
        raise EntryInvalid("non_field_errors", "each entry must be a JSON object.")
    unknown = sorted(set(raw) - allowed_fields)
    if unknown:
        raise EntryInvalid(
            unknown[0],
            "is not a known field; put extra fields inside metadata.",
            code="unknown_field",
        )
    for field in ("service_name", "message"):
        if field not in raw or raw[field] is None:
            raise EntryInvalid(field, "this field is required.", code="required")

    if raw.get("id") is not None:
        event_id = _normalize_id(raw["id"])
    else:
        event_id = default_id or str(uuid7())

    level = raw.get("level")
    timestamp = raw.get("timestamp")
    stamped_at = raw.get("received_at")
    metadata = raw.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        raise EntryInvalid("metadata", "must be a JSON object.")

    return {
        "id": event_id,
        "timestamp": (
            parse_timestamp(timestamp) if timestamp is not None else received_at
        ).isoformat(),
        "received_at": (
            parse_timestamp(stamped_at) if stamped_at is not None else received_at
        ).isoformat(),
        "level": _normalize_level(level) if level is not None else Level.INFO.name,
        "service_name": _normalize_service(raw["service_name"]),
        "message": _normalize_message(raw["message"]),
        "metadata": clean_metadata(metadata),
    }


def normalize_batch(items: list[Any], received_at: datetime) -> list[dict[str, Any]]:
    """Validate every entry of a request, or raise BatchInvalid with all errors.

    Nothing of a request is accepted when one entry is invalid, so the
    client can fix it and send the whole request again. Two entries with
    the same id in one request are invalid too, because storage would keep
    only one of them and which one is not defined.
    """
    entries: list[dict[str, Any]] = []
    errors: list[EntryError] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(items):
        try:
            entry = normalize_entry(raw, received_at)
            earlier = first_index.setdefault(entry["id"], index)
            if earlier != index:
                raise EntryInvalid(
                    "id",
                    f"is the same as the id of entry {earlier}; give each entry "
                    "of a request its own id.",
                    code="duplicate_id",
                )
            entries.append(entry)
        except EntryInvalid as exc:
            errors.append(EntryError(index, exc.field, exc.message, exc.code))
            if len(errors) >= MAX_ERRORS_REPORTED:
                break
    if errors:
        raise BatchInvalid(errors)
    return entries
