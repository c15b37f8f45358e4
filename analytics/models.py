"""Per-minute counts of stored log entries, kept by `analytics.rollup`.

Charts and the stats API read these tables only, so their cost depends on
the length of the time range and not on the size of the logs table. All
count entries by event time (`Log.timestamp`), truncated to the minute in UTC.
"""

from django.db import models

from logs.levels import Level


class MinuteRollup(models.Model):
    """The number of entries of one service and level in one minute."""

    minute = models.DateTimeField(help_text="Start of the minute, in UTC.")
    service_name = models.CharField(max_length=200)
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "service_name", "level"],
                name="minute_rollup_key",
            )
        ]
        indexes = [
            # A range of minutes for one service. A range over every service
            # uses the unique constraint's index, which starts with minute.
            models.Index(
                fields=["service_name", "minute"], name="minute_rollup_service_idx"
            ),
        ]

    def __str__(self) -> str:
        level = Level(self.level).name
        return f"{self.minute:%Y-%m-%d %H:%M} {self.service_name} {level}: {self.count}"


class ErrorMessageRollup(models.Model):
    """The number of ERROR and CRITICAL entries of one kind in one minute.

    Messages that differ only in numbers and hexadecimal ids ("timeout after
    31 ms", "timeout after 45 ms") share a fingerprint, see
    `analytics.rollup.FINGERPRINT_SQL`. Buckets are minutes, like
    `MinuteRollup`, so that one recompute of a touched minute refreshes both
    tables from the same rows and any range of whole minutes adds up exactly.
    """

    minute = models.DateTimeField(help_text="Start of the minute, in UTC.")
    service_name = models.CharField(max_length=200)
    fingerprint = models.CharField(
        max_length=32,
        help_text="MD5 hex digest of the message's first 200 characters, with "
        "numbers and hexadecimal ids replaced by '#'.",
    )
    count = models.BigIntegerField()
    max_level = models.PositiveSmallIntegerField(
        choices=Level.choices, help_text="The highest level among these entries."
    )
    example_message = models.TextField(
        help_text="One of the messages, cut to 1000 characters."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "service_name", "fingerprint"],
                name="error_rollup_key",
            )
        ]
        indexes = [
            # The most frequent messages of one service over a range of
            # minutes. Every service uses the unique constraint's index.
            models.Index(
                fields=["service_name", "minute"], name="error_rollup_service_idx"
            ),
        ]

    def __str__(self) -> str:
        key = f"{self.service_name} {self.fingerprint}"
        return f"{self.minute:%Y-%m-%d %H:%M} {key}: {self.count}"


class PatternMinuteRollup(models.Model):
    """The number of entries grouped under one pattern in one minute.

    Entries without a pattern are not counted. Buckets are minutes like
    `MinuteRollup`, so the same recompute refreshes all four tables.
    """

    minute = models.DateTimeField(help_text="Start of the minute, in UTC.")
    pattern = models.ForeignKey(
        "logs.Pattern",
        on_delete=models.DO_NOTHING,
        # No constraint, like Log.pattern: the rollup never needs the check,
        # and the pattern table's upkeep stays free of this table.
        db_constraint=False,
        # The (pattern, minute) index below serves lookups by pattern.
        db_index=False,
        related_name="minute_counts",
    )
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "pattern"], name="pattern_rollup_key"
            )
        ]
        indexes = [
            # The count of each pattern over a range of minutes, read from
            # the index alone.
            models.Index(
                fields=["pattern", "minute"],
                include=["count"],
                name="pattern_rollup_pattern_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} pattern {self.pattern_id}: {self.count}"


class PatternHourRollup(models.Model):
    """The sum of one pattern's minute counts over one hour.

    Counts over long ranges read these rows for the whole hours of the range
    and minute rows only for its ends. Each recompute of a minute recomputes
    its hour from PatternMinuteRollup.
    """

    hour = models.DateTimeField(help_text="Start of the hour, in UTC.")
    pattern = models.ForeignKey(
        "logs.Pattern",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="hour_counts",
    )
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "pattern"], name="pattern_hour_rollup_key"
            )
        ]
        indexes = [
            models.Index(
                fields=["pattern", "hour"],
                include=["count"],
                name="pattern_hour_pattern_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h pattern {self.pattern_id}: {self.count}"
