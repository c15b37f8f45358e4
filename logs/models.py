import hashlib
import secrets

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone

from logs.levels import Level


class Log(models.Model):
    """One stored log entry.

    The table is partitioned by day of `received_at` (see logs/partitions.py),
    which migration 0004 sets up in SQL because Django cannot describe it.
    In the database the primary key is (id, received_at), as a partitioned
    table's unique keys must hold the partition key; Django treats `id`
    alone as the key, and EventId keeps it unique.
    """

    id = models.UUIDField(primary_key=True, verbose_name="event id")
    timestamp = models.DateTimeField(
        help_text="Event time sent by the client, or the intake time if none."
    )
    received_at = models.DateTimeField(help_text="When the API accepted the entry.")
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    service_name = models.CharField(max_length=200)
    message = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    pattern = models.ForeignKey(
        "Pattern",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        # No constraint: checking it would cost every insert a lookup, and
        # a pattern is never deleted while entries of it are kept.
        db_constraint=False,
        db_index=False,
        related_name="+",
        help_text="The template the entry's message was grouped under.",
    )

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            # The newest-first listing with no filter, and time ranges.
            models.Index(fields=["-timestamp", "-id"], name="log_ts_idx"),
            # Listing one service, optionally within a time range. The level
            # at the end lets "level at least X" be checked in the index, so
            # only matching rows are read from the table.
            models.Index(
                fields=["service_name", "-timestamp", "-id", "level"],
                name="log_service_ts_level_idx",
            ),
            # Listing the entries of one pattern, newest first.
            models.Index(
                fields=["pattern", "-timestamp"],
                name="log_pattern_ts_idx",
                condition=models.Q(pattern__isnull=False),
            ),
            # "Level at least X" is a range on the level number.
            models.Index(fields=["level", "-timestamp"], name="log_level_ts_idx"),
            # Alert rules count entries by arrival time. Arrival order is
            # close to insertion order, which is what a BRIN index needs: it
            # stays tiny and costs the writes almost nothing.
            BrinIndex(fields=["received_at"], name="log_received_brin"),
            # Metadata key/value filters use JSON containment (@>).
            GinIndex(
                fields=["metadata"],
                name="log_metadata_gin",
                opclasses=["jsonb_path_ops"],
            ),
            # Case-insensitive text search. Django writes icontains as
            # UPPER(message) LIKE UPPER(pattern), so the trigram index is on
            # UPPER(message). A search for a rare word then reads only the
            # rows that contain its trigrams.
            GinIndex(
                OpClass(Upper("message"), name="gin_trgm_ops"),
                name="log_message_trgm",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.level_name} {self.service_name}"
        )

    @property
    def level_name(self) -> str:
        return Level(self.level).name


# The sequence that numbers every creation or template change of a pattern.
PATTERN_REVISION_SEQUENCE = "logs_pattern_revision"


class Pattern(models.Model):
    """A message template learned from one service's entries.

    The template is the message with its variable parts replaced by `<*>`.
    Its text can become more general as more entries of the same kind
    arrive. Its id never changes.

    NOTE: retention removes entries but never patterns, so `count` and the
    pattern itself outlive the entries that retention has removed.
    """

    id = models.BigAutoField(primary_key=True)
    service_name = models.CharField(max_length=200)
    template = models.TextField()
    first_seen = models.DateTimeField(help_text="Arrival time of its first entry.")
    last_seen = models.DateTimeField(help_text="Arrival time of its latest entry.")
    count = models.BigIntegerField(default=0, help_text="Entries grouped under it.")
    # Workers compare this with what they loaded to find the patterns that
    # other processes added or changed since (see logs/patterns.py).
    revision = models.BigIntegerField(
        db_default=models.Func(
            models.Value(PATTERN_REVISION_SEQUENCE),
            function="nextval",
            output_field=models.BigIntegerField(),
        ),
        editable=False,
        help_text="Taken from a sequence when the pattern is created and each "
        "time its template changes.",
    )

    class Meta:
        ordering = ["-count", "id"]
        indexes = [
            # The workers' check for patterns changed since a revision.
            models.Index(
                fields=["service_name", "revision"], name="pattern_service_revision"
            ),
            models.Index(
                fields=["service_name", "-count"], name="pattern_service_count"
            ),
            models.Index(fields=["-first_seen"], name="pattern_first_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.service_name}: {self.template[:80]}"


class EventId(models.Model):
    """The id of an entry that arrived in the last LOG_DEDUP_DAYS.

    Every insert into the logs table goes through this table's unique key,
    so an entry sent twice is stored once even when its two copies arrived
    on different days and so belong to different partitions of the logs
    table. The purge deletes ids older than LOG_DEDUP_DAYS.
    """

    id = models.UUIDField(primary_key=True, verbose_name="event id")
    received_at = models.DateTimeField()

    class Meta:
        verbose_name = "event id"
        indexes = [BrinIndex(fields=["received_at"], name="eventid_received_brin")]

    def __str__(self) -> str:
        return str(self.id)


def hash_api_key(key: str) -> str:
    """Return the SHA-256 hex digest under which an API key is stored.

    A plain digest is enough because keys are 256 random bits; a slow
    password hash would only cost time on every request.
    """
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """A key that lets a client send logs or read them. Only its hash is stored."""

    KEY_PREFIX = "lp_"

    class Kind(models.TextChoices):
        INGEST = "ingest", "ingest (send logs)"
        READ = "read", "read (logs, alerts and stats)"

    name = models.CharField(max_length=100, help_text="Who or what uses the key.")
    kind = models.CharField(
        max_length=10,
        choices=Kind.choices,
        default=Kind.INGEST,
        help_text="An ingest key can only send logs; a read key can only read.",
    )
    services = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        help_text="Services an ingest key may send entries for, separated by "
        "commas, as in 'checkout,billing'. Empty allows every service.",
    )
    rate_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Entries per second this key may send, in place of "
        "INTAKE_RATE_LIMIT. Empty uses the setting; 0 means no limit.",
    )
    rate_burst = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Entries this key may send at once after a pause, in place of "
        "INTAKE_RATE_BURST. Empty uses the setting.",
    )
    prefix = models.CharField(
        max_length=16,
        unique=True,
        editable=False,
        help_text="The first characters of the key, shown to tell keys apart.",
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def clean(self) -> None:
        if self.services and self.kind != self.Kind.INGEST:
            raise ValidationError(
                {"services": "Only an ingest key can be limited to services."}
            )

    @classmethod
    def generate(
        cls, name: str, kind: str = Kind.INGEST, services: list[str] | None = None
    ) -> tuple["ApiKey", str]:
        """Create and save a key; return it with the one copy of its secret."""
        key = cls.KEY_PREFIX + secrets.token_urlsafe(32)
        api_key = cls.objects.create(
            name=name,
            kind=kind,
            services=services or [],
            prefix=key[:12],
            key_hash=hash_api_key(key),
        )
        return api_key, key

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
