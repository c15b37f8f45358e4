import logging

from celery import shared_task
from django.conf import settings

from analytics.rollup import roll_up_recent

logger = logging.getLogger(__name__)


@shared_task(name="analytics.roll_up", ignore_result=True)
def roll_up() -> dict[str, int]:
    """Recompute the rollup minutes touched by recently arrived entries."""
    window = settings.ROLLUP_RECOMPUTE_MINUTES
    logger.info("roll_up: started for entries that arrived in the last %d min", window)
    result = roll_up_recent()
    if result.skipped:
        logger.info("roll_up: skipped, another run is still going")
        return {"minutes": 0, "rows_written": 0, "rows_removed": 0}
    logger.info(
        "roll_up: finished: %d minutes recomputed, %d rows written, %d rows removed",
        result.minutes,
        result.rows_written,
        result.rows_removed,
    )
    return {
        "minutes": result.minutes,
        "rows_written": result.rows_written,
        "rows_removed": result.rows_removed,
    }
