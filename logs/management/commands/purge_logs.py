from django.core.management.base import BaseCommand

from logs.partitions import Partition
from logs.retention import dedup_cutoff, purge, retention_rules


class Command(BaseCommand):
    help = (
        "Remove log entries older than their retention (LOG_RETENTION_DAYS, "
        "LOG_RETENTION_OVERRIDES), counted from when they arrived: whole days "
        "are dropped with their partition, the rest deleted in batches. Also "
        "deletes event ids older than LOG_DEDUP_DAYS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be removed and remove nothing.",
        )

    def handle(self, *args, dry_run=False, **options):
        rules = retention_rules()
        result = purge(dry_run=dry_run)
        if not rules:
            self.stdout.write("Retention is off (0 days): no entry is ever removed.")
        for name, count in result.partitions.items():
            verb = "would drop" if dry_run else "dropped"
            day = Partition.from_name(name).day
            self.stdout.write(
                f"partition {name}: {verb} it with its {count} entries "
                f"that arrived on {day}"
            )
        verb = "would delete" if dry_run else "deleted"
        for rule in rules:
            self.stdout.write(
                f"{rule.label}: kept {rule.days} days, {verb} "
                f"{result.rules[rule.label]} more entries that arrived before "
                f"{rule.cutoff:%Y-%m-%d %H:%M:%S} UTC"
            )
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(
            f"event ids: {verb} {result.event_ids} ids of entries that arrived "
            f"before {dedup_cutoff():%Y-%m-%d %H:%M:%S} UTC"
        )
