"""Turn a rule's conditions into database filters on the logs table."""

from django.db import DatabaseError, connection, transaction
from django.db.models import Q


def scope_filter(rule) -> Q:
    """Entries of the services the rule watches, whatever else they hold."""
    if rule.service_name:
        return Q(service_name=rule.service_name)
    return Q()


def match_filter(rule) -> Q:
    """Entries that match every condition of the rule."""
    condition = scope_filter(rule)
    if rule.min_level is not None:
        condition &= Q(level__gte=rule.min_level)
    if rule.message_contains:
        condition &= Q(message__icontains=rule.message_contains)
    if rule.message_regex:
        condition &= Q(message__regex=rule.message_regex)
    if rule.metadata_key:
        if rule.metadata_value:
            # Containment uses the GIN index; the value is compared as text,
            # which is how people type it, so a number is tried both ways.
            values = [rule.metadata_value]
            number = _as_number(rule.metadata_value)
            if number is not None:
                values.append(number)
            any_value = Q()
            for value in values:
                any_value |= Q(metadata__contains={rule.metadata_key: value})
            condition &= any_value
        else:
            condition &= Q(metadata__has_key=rule.metadata_key)
    return condition


def _as_number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def regex_error(pattern: str) -> str | None:
    """Return why PostgreSQL rejects a regular expression, or None if it takes it.

    Rules match with PostgreSQL's own regular expressions, whose syntax is
    not Python's, so the database itself is asked.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT '' ~ %s", [pattern])
    except DatabaseError as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"Not a valid regular expression: {text or 'rejected'}"
    return None
