"""The naive reference the pipeline is compared with: one task per entry.

The benchmark starts its Celery worker with `--include bench.tasks`; the
platform never runs this task.
"""

from datetime import datetime
from typing import Any

from celery import shared_task


@shared_task(name="bench.store_one", acks_late=True)
def store_one(entry: dict[str, Any]) -> None:
    """Insert one normalized entry with the ORM, in its own transaction."""
    from logs.levels import Level
    from logs.models import Log

    Log.objects.create(
        id=entry["id"],
        timestamp=datetime.fromisoformat(entry["timestamp"]),
        received_at=datetime.fromisoformat(entry["received_at"]),
        level=Level[entry["level"]].value,
        service_name=entry["service_name"],
        message=entry["message"],
        metadata=entry["metadata"],
    )
