from django.core.management.base import BaseCommand, CommandError

from logs.models import ApiKey


class Command(BaseCommand):
    help = (
        "Create an API key for sending logs. The key is printed once, alone on "
        "the last line of the output; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who or what will use the key.")

    def handle(self, *args, **options):
        name = options["name"].strip()
        if not name:
            raise CommandError("The key name must not be blank.")
        api_key, secret = ApiKey.generate(name)
        self.stderr.write(
            f"Created API key {api_key.prefix}… named {name!r}. Store it now; "
            "it cannot be shown again."
        )
        self.stdout.write(secret)
