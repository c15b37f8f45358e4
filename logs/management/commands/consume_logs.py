import signal

from django.core.management.base import BaseCommand

from logs.consumer import LogConsumer


class Command(BaseCommand):
    help = (
        "Read log entries from Kafka in batches and enqueue one Celery task per "
        "batch. SIGTERM or SIGINT finishes the batch in hand, commits and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            help="Maximum entries per batch (default: CONSUMER_BATCH_SIZE).",
        )
        parser.add_argument(
            "--batch-seconds",
            type=float,
            help="Maximum seconds a batch stays open after its first entry "
            "(default: CONSUMER_BATCH_SECONDS).",
        )
        parser.add_argument(
            "--group", help="Consumer group id (default: KAFKA_CONSUMER_GROUP)."
        )

    def handle(self, *args, **options):
        consumer = LogConsumer(
            batch_size=options["batch_size"],
            batch_seconds=options["batch_seconds"],
            group_id=options["group"],
        )

        def request_stop(signum, _frame):
            consumer.stop()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        consumer.run()
