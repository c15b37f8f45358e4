from django.core.management.base import BaseCommand, CommandError

from logs.models import ApiKey
from logs.validation import MAX_SERVICE_NAME_LENGTH


class Command(BaseCommand):
    help = (
        "Create an API key for sending or reading logs. The key is printed once, "
        "alone on the last line of the output; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who or what will use the key.")
        parser.add_argument(
            "--kind",
            choices=ApiKey.Kind.values,
            default=ApiKey.Kind.INGEST,
            help="ingest (default) to send logs, read to read logs, alerts and stats.",
        )
        parser.add_argument(
            "--service",
            action="append",
            default=[],
            dest="services",
            metavar="NAME",
            help="A service the ingest key may send entries for; repeat it for "
            "more. Without it the key may send for every service.",
        )

    def handle(self, *args, **options):
        name = options["name"].strip()
        if not name:
            raise CommandError("The key name must not be blank.")
        kind = options["kind"]
        services = self._services(options["services"])
        if services and kind != ApiKey.Kind.INGEST:
            raise CommandError("--service applies to ingest keys only.")

        api_key, secret = ApiKey.generate(name, kind=kind, services=services)
        scope = f" for {', '.join(services)}" if services else ""
        self.stderr.write(
            f"Created {kind} API key {api_key.prefix}… named {name!r}{scope}. "
            "Store it now; it cannot be shown again."
        )
        self.stdout.write(secret)

    @staticmethod
    def _services(raw: list[str]) -> list[str]:
        services = []
        for value in raw:
            service = value.strip()
            if not service:
                raise CommandError("--service must not be blank.")
            if len(service) > MAX_SERVICE_NAME_LENGTH:
                raise CommandError(
                    f"--service {service[:40]!r}… is longer than "
                    f"{MAX_SERVICE_NAME_LENGTH} characters."
                )
            if service not in services:
                services.append(service)
        return services
