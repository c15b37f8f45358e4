import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import (
    AddIndexConcurrently,
    RemoveIndexConcurrently,
    TrigramExtension,
)
from django.db import migrations, models


class Migration(migrations.Migration):
    # The indexes are built without locking out writes, which takes minutes
    # on a table of millions of rows and cannot run in a transaction.
    atomic = False

    dependencies = [
        ("logs", "0002_received_at_brin"),
    ]

    operations = [
        # The new service index comes before the old one goes, so listing
        # one service always has an index.
        AddIndexConcurrently(
            model_name="log",
            index=models.Index(
                fields=["service_name", "-timestamp", "-id", "level"],
                name="log_service_ts_level_idx",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="log",
            name="log_service_ts_idx",
        ),
        TrigramExtension(),
        AddIndexConcurrently(
            model_name="log",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper("message"),
                    name="gin_trgm_ops",
                ),
                name="log_message_trgm",
            ),
        ),
    ]
