from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from logs.dead_letters import list_dead_letters, replay_dead_letters


class Command(BaseCommand):
    help = (
        "List the messages in the dead-letter topic, or replay them to the logs "
        "topic after the cause is fixed. Replay commits its consumer group's "
        "progress, so no message is replayed twice by the same group."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "replay"])
        parser.add_argument(
            "--from-offset",
            type=int,
            help="First offset to include, in every partition (default: the start).",
        )
        parser.add_argument(
            "--to-offset",
            type=int,
            help="Last offset to include, in every partition (default: the end).",
        )
        parser.add_argument(
            "--dlq-topic", help="Dead-letter topic (default: KAFKA_DLQ_TOPIC)."
        )
        parser.add_argument(
            "--topic", help="Topic to replay to (default: KAFKA_TOPIC)."
        )
        parser.add_argument(
            "--group",
            help="Consumer group that records replay progress "
            "(default: KAFKA_CONSUMER_GROUP followed by -replay).",
        )

    def handle(self, *args, **options):
        first, last = options["from_offset"], options["to_offset"]
        if first is not None and last is not None and first > last:
            raise CommandError(
                f"--from-offset {first} is after --to-offset {last}; swap them."
            )
        dlq_topic = options["dlq_topic"] or settings.KAFKA_DLQ_TOPIC
        try:
            if options["action"] == "list":
                self._list(dlq_topic, first, last)
            else:
                self._replay(dlq_topic, options, first, last)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def _list(self, dlq_topic, first, last):
        count = 0
        self.stdout.write("partition\toffset\tsize\treason\tpreview")
        for letter in list_dead_letters(dlq_topic, first, last):
            size = f"{letter.size}" + (" (truncated)" if letter.truncated else "")
            self.stdout.write(
                f"{letter.partition}\t{letter.offset}\t{size}\t{letter.reason}\t"
                f"{letter.preview}"
            )
            count += 1
        self.stdout.write(f"{count} dead letters in {dlq_topic}")

    def _replay(self, dlq_topic, options, first, last):
        topic = options["topic"] or settings.KAFKA_TOPIC
        group = options["group"] or f"{settings.KAFKA_CONSUMER_GROUP}-replay"
        result = replay_dead_letters(dlq_topic, topic, group, first, last)
        self.stdout.write(
            f"Replayed {result.replayed} dead letters from {dlq_topic} to {topic} "
            f"as group {group}; skipped {result.skipped_truncated} truncated."
        )
