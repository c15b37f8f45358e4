"""Log rows written straight through the ORM, for tests of what reads them."""

import uuid
from datetime import datetime

from logs.models import Log, Pattern


def store_rows(
    service: str,
    received_at: datetime,
    count: int = 1,
    timestamp: datetime | None = None,
    pattern: Pattern | None = None,
) -> list[uuid.UUID]:
    """Store `count` INFO rows that arrived at received_at; return their ids."""
    rows = [
        Log(
            id=uuid.uuid4(),
            timestamp=timestamp or received_at,
            received_at=received_at,
            level=20,
            service_name=service,
            message=f"row of {service}",
            pattern=pattern,
        )
        for _ in range(count)
    ]
    Log.objects.bulk_create(rows)
    return [row.id for row in rows]


def store_pattern(
    service: str, template: str, first_seen: datetime, count: int = 0
) -> Pattern:
    """Store a pattern first and last seen at first_seen."""
    return Pattern.objects.create(
        service_name=service,
        template=template,
        first_seen=first_seen,
        last_seen=first_seen,
        count=count,
    )


def remaining(ids) -> int:
    """How many of the rows are still stored."""
    return Log.objects.filter(id__in=ids).count()


def open_alert(group: str = ""):
    """Store a pattern rule with one open alert in `group`; return the alert."""
    from django.utils import timezone

    from alerts.models import Alert, AlertRule

    rule = AlertRule.objects.create(
        name=f"rule {uuid.uuid4().hex[:6]}", kind=AlertRule.Kind.PATTERN
    )
    now = timezone.now()
    return Alert.objects.create(
        rule=rule,
        severity=rule.severity,
        value=1,
        last_value=1,
        first_seen=now,
        last_seen=now,
        group=group,
    )
