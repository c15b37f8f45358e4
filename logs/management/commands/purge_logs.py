from django.core.management.base import BaseCommand

from logs.retention import purge, retention_rules


class Command(BaseCommand):
    help = (
        "Delete log entries older than their retention (LOG_RETENTION_DAYS, "
        "LOG_RETENTION_OVERRIDES), counted from when they arrived."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted and delete nothing.",
        )

    def handle(self, *args, dry_run=False, **options):
        rules = retention_rules()
        if not rules:
            self.stdout.write("Retention is off (0 days): nothing is ever deleted.")
            return
        counts = purge(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for rule in rules:
            self.stdout.write(
                f"{rule.label}: kept {rule.days} days, {verb} "
                f"{counts[rule.label]} entries that arrived before "
                f"{rule.cutoff:%Y-%m-%d %H:%M:%S} UTC"
            )
