"""Assign each entry of a batch the pattern (message template) it belongs to.

Every worker process keeps one Drain tree per service, rebuilt from the
Pattern table, which is the only shared state. A batch costs:

1. One query that returns the patterns of the batch's services that other
   processes created or changed since this process last read them, found by
   their `revision`. The first batch of a service loads all its patterns.
2. For each entry, tokenize() and a Drain lookup in memory. An entry that
   fits a pattern without changing its template takes that pattern's id. A
   message seen recently skips both through a cache, until a pattern with
   its token count changes.
3. Only when some entries would create a pattern or change a template: one
   transaction that takes a per-service advisory lock for each such service,
   reads what changed again, repeats the lookups and writes the new or
   changed patterns. The lock makes these writes one at a time per service,
   so two workers that see the same new kind of line create one pattern.

A revision comes from a sequence and is taken under the service's lock, so
a service's revisions become visible in increasing order. Comparing them per
service is therefore exact, while a process that compared the sequence's
last value could skip a revision that another service's transaction had
taken but not yet committed.
"""

import itertools
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction

from logs.mining import Cluster, Drain, tokenize
from logs.models import PATTERN_REVISION_SEQUENCE, Pattern

logger = logging.getLogger(__name__)

# First key of the pattern locks, pg_advisory_xact_lock(LOCK_NAMESPACE,
# slot); "patt" in ASCII, to differ from other locks.
LOCK_NAMESPACE = 0x70617474
# Services map to this many lock slots (a power of two).
LOCK_SLOTS = 256
# A lock wait longer than this is logged.
LOCK_WAIT_LOG_SECONDS = 1.0
# The maximum number of messages cached over all services, and of characters
# in their services, messages and joined tokens. The cache is emptied when
# it reaches either, so long messages cannot make it grow past the second.
CACHE_MAX_MESSAGES = 50_000
CACHE_MAX_CHARACTERS = 20_000_000
# Seconds between two warnings about the same service being at its bound.
FULL_WARNING_SECONDS = 300.0

_generations = itertools.count(1)


@dataclass
class _ServiceState:
    """One service's Drain tree and how far it has read the Pattern table."""

    # The assigner keeps each service within PATTERN_MAX_PER_SERVICE itself.
    # Drain's own bound would instead merge each further line into the most
    # similar template, however unlike, so it is set out of reach.
    drain: Drain = field(default_factory=lambda: Drain(max_clusters=sys.maxsize))
    # The token count of each pattern's template, by pattern id.
    lengths: dict[int, int] = field(default_factory=dict)
    # The highest revision of the service's patterns applied to the tree.
    revision: int = 0
    # By token count, a number that changes whenever a pattern of that
    # length is added or changed. Drain places a line only among clusters of
    # its own token count, so a cached lookup stays valid while the number
    # of its length is the same.
    generations: dict[int, int] = field(default_factory=dict)
    unassigned: int = 0
    warned_at: float = float("-inf")

    def apply(self, pattern_id: int, template: str, revision: int) -> None:
        self.drain.restore(pattern_id, template_tokens(template))
        self.changed(pattern_id, template_tokens(template))
        self.revision = max(self.revision, revision)

    def changed(self, pattern_id: int, tokens: Sequence[str]) -> None:
        """Invalidate the cached lookups that a new or changed pattern may alter."""
        previous = self.lengths.get(pattern_id)
        if previous is not None and previous != len(tokens):
            self.generations[previous] = next(_generations)
        self.lengths[pattern_id] = len(tokens)
        self.generations[len(tokens)] = next(_generations)


def template_tokens(template: str) -> list[str]:
    # "".split(" ") is [""], but a message without tokens has no tokens.
    return template.split(" ") if template else []


class PatternAssigner:
    """The pattern state of one worker process, and the assignment of batches."""

    def __init__(self, max_per_service: int) -> None:
        self.max_per_service = max_per_service
        self._services: dict[str, _ServiceState] = {}
        # (service, message) -> (its tokens joined by spaces, token count,
        # the generation of that count, pattern id). The tokens spare a
        # second tokenize() when a change of the tree invalidates the id.
        self._cache: dict[tuple[str, str], tuple[str, int, int, int]] = {}
        self._cache_characters = 0

    def assign(self, entries: Sequence[dict[str, Any]]) -> list[int | None]:
        """Return the pattern id of each entry, creating patterns as needed.

        An entry gets None when its service has reached the bound on
        patterns and the entry fits none of them.
        """
        ids: list[int | None] = [None] * len(entries)
        by_service: dict[str, list[int]] = defaultdict(list)
        for index, entry in enumerate(entries):
            by_service[entry["service_name"]].append(index)
        self._catch_up(by_service)

        unmatched: dict[str, list[tuple[int, list[str]]]] = {}
        for service, indexes in by_service.items():
            state = self._services[service]
            for index in indexes:
                message = entries[index]["message"]
                pattern_id, tokens = self._lookup(service, state, message)
                ids[index] = pattern_id
                if tokens is not None:
                    unmatched.setdefault(service, []).append((index, tokens))
            self._warn_if_full(service, state)
        if unmatched:
            self._learn(entries, unmatched, ids)
        return ids

    def _lookup(
        self, service: str, state: _ServiceState, message: str
    ) -> tuple[int | None, list[str] | None]:
        """Return the message's pattern id, or its tokens when it needs a write."""
        key = (service, message)
        cached = self._cache.get(key)
        if cached is None:
            tokens = tokenize(message)
        else:
            joined, length, generation, pattern_id = cached
            if state.generations.get(length) == generation:
                return pattern_id, None
            tokens = template_tokens(joined)

        cluster, changes = state.drain.lookup(tokens)
        if cluster is None:
            if len(state.lengths) >= self.max_per_service:
                # Patterns are never removed, so the service stays full and
                # the lock would change nothing.
                state.unassigned += 1
                return None, None
            return None, tokens
        if changes:
            return None, tokens
        self._remember(key, tokens, state, cluster.id)
        return cluster.id, None

    def _remember(
        self,
        key: tuple[str, str],
        tokens: Sequence[str],
        state: _ServiceState,
        pattern_id: int,
    ) -> None:
        joined = " ".join(tokens)
        size = len(key[0]) + len(key[1]) + len(joined)
        previous = self._cache.pop(key, None)
        if previous is not None:
            self._cache_characters -= len(key[0]) + len(key[1]) + len(previous[0])
        if size > CACHE_MAX_CHARACTERS:
            return
        if (
            len(self._cache) >= CACHE_MAX_MESSAGES
            or self._cache_characters + size > CACHE_MAX_CHARACTERS
        ):
            self._cache.clear()
            self._cache_characters = 0

        length = len(tokens)
        generation = state.generations.setdefault(length, next(_generations))
        self._cache[key] = (joined, length, generation, pattern_id)
        self._cache_characters += size

    # Reading the Pattern table

    def _catch_up(self, services: Iterable[str]) -> None:
        """Apply the patterns of `services` written since this process read them."""
        states = {}
        for service in services:
            if service not in self._services:
                self._services[service] = _ServiceState()
            states[service] = self._services[service]
        table = connection.ops.quote_name(Pattern._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT pattern.service_name, pattern.id, pattern.template,
                    pattern.revision
                FROM unnest(%s::text[], %s::bigint[]) AS known(service, revision)
                JOIN {table} AS pattern ON pattern.service_name = known.service
                    AND pattern.revision > known.revision
                """,
                [list(states), [state.revision for state in states.values()]],
            )
            rows = cursor.fetchall()

        applied: dict[str, int] = defaultdict(int)
        for service, pattern_id, template, revision in rows:
            states[service].apply(pattern_id, template, revision)
            applied[service] += 1
        for service, count in applied.items():
            state = states[service]
            logger.info(
                "patterns: read %d new or changed patterns of service %s, "
                "%d in all, up to revision %d",
                count,
                service,
                len(state.lengths),
                state.revision,
            )

    # Writing new and changed patterns

    def _learn(
        self,
        entries: Sequence[dict[str, Any]],
        unmatched: dict[str, list[tuple[int, list[str]]]],
        ids: list[int | None],
    ) -> None:
        """Assign the entries that need a write, under their services' locks."""
        services = sorted(unmatched)
        try:
            with transaction.atomic():
                self._lock(services)
                self._catch_up(services)
                writes = _Writes()
                for service in services:
                    state = self._services[service]
                    for index, tokens in unmatched[service]:
                        ids[index] = self._learn_one(
                            service, state, tokens, entries[index], writes
                        )
                self._write(writes)
        except BaseException:
            # The trees may hold patterns that were rolled back; read the
            # services again from the table on their next batch.
            for service in services:
                self._services.pop(service, None)
            raise
        for service in services:
            self._warn_if_full(service, self._services[service])

    def _lock(self, services: list[str]) -> None:
        # A service's lock is one of LOCK_SLOTS, so a batch of many new
        # services takes at most that many locks and cannot run out of
        # PostgreSQL's lock table. Services that share a slot only wait for
        # each other. The slots are taken in increasing order, so two
        # processes cannot wait for each other in a cycle.
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, slot) FROM ("
                "SELECT DISTINCT hashtext(service) & %s AS slot "
                "FROM unnest(%s::text[]) AS locks(service)) AS slots ORDER BY slot",
                [LOCK_NAMESPACE, LOCK_SLOTS - 1, services],
            )
        waited = time.monotonic() - started
        if waited >= LOCK_WAIT_LOG_SECONDS:
            logger.warning(
                "patterns: waited %.1fs for the pattern locks of %d services "
                "(first %s)",
                waited,
                len(services),
                services[0],
            )

    def _learn_one(
        self,
        service: str,
        state: _ServiceState,
        tokens: list[str],
        entry: dict[str, Any],
        writes: "_Writes",
    ) -> int | None:
        cluster, changes = state.drain.lookup(tokens)
        if cluster is not None and not changes:
            self._remember((service, entry["message"]), tokens, state, cluster.id)
            return cluster.id
        if cluster is None and len(state.lengths) >= self.max_per_service:
            state.unassigned += 1
            return None

        new_id = writes.new_id() if cluster is None else cluster.id
        cluster, _changed = state.drain.learn(tokens, new_id)
        is_new = cluster.id not in state.lengths
        state.changed(cluster.id, cluster.tokens)
        if is_new:
            writes.created[cluster.id] = (service, cluster, entry["received_at"])
        elif cluster.id in writes.created:
            _service, _earlier, first_seen = writes.created[cluster.id]
            writes.created[cluster.id] = (service, cluster, first_seen)
        else:
            writes.changed[cluster.id] = cluster
        self._remember((service, entry["message"]), tokens, state, cluster.id)
        return cluster.id

    def _write(self, writes: "_Writes") -> None:
        table = connection.ops.quote_name(Pattern._meta.db_table)
        rows: list[tuple[str, int, int]] = []
        with connection.cursor() as cursor:
            if writes.created:
                created = list(writes.created.items())
                cursor.execute(
                    f"""
                    INSERT INTO {table}
                        (id, service_name, template, first_seen, last_seen, count)
                    SELECT id, service, template, seen, seen, 0
                    FROM unnest(%s::bigint[], %s::text[], %s::text[],
                        %s::timestamptz[]) AS new(id, service, template, seen)
                    RETURNING service_name, id, revision
                    """,
                    [
                        [pattern_id for pattern_id, _ in created],
                        [service for _, (service, _, _) in created],
                        [cluster.template for _, (_, cluster, _) in created],
                        [seen for _, (_, _, seen) in created],
                    ],
                )
                rows += cursor.fetchall()
            if writes.changed:
                cursor.execute(
                    f"""
                    WITH changed AS (
                        SELECT * FROM unnest(%s::bigint[], %s::text[])
                            AS changed(id, template)
                    ), locked AS (
                        SELECT id FROM {table}
                        WHERE id IN (SELECT id FROM changed)
                        ORDER BY id
                        FOR UPDATE
                    )
                    UPDATE {table} AS pattern
                    SET template = changed.template,
                        revision = nextval(%s::regclass)
                    FROM changed JOIN locked USING (id)
                    WHERE pattern.id = changed.id
                    RETURNING pattern.service_name, pattern.id, pattern.revision
                    """,
                    [
                        list(writes.changed),
                        [cluster.template for cluster in writes.changed.values()],
                        PATTERN_REVISION_SEQUENCE,
                    ],
                )
                rows += cursor.fetchall()
        for service, pattern_id, revision in rows:
            state = self._services[service]
            state.revision = max(state.revision, revision)
            if pattern_id in writes.created:
                logger.info(
                    "patterns: created pattern %d of service %s: %s",
                    pattern_id,
                    service,
                    writes.created[pattern_id][1].template[:200],
                )

    def _warn_if_full(self, service: str, state: _ServiceState) -> None:
        now = time.monotonic()
        if not state.unassigned or now - state.warned_at < FULL_WARNING_SECONDS:
            return
        logger.warning(
            "patterns: service %s has reached PATTERN_MAX_PER_SERVICE (%d "
            "patterns); %d entries that fit none of them were stored without "
            "a pattern since the last warning",
            service,
            self.max_per_service,
            state.unassigned,
        )
        state.unassigned = 0
        state.warned_at = now


class _Writes:
    """The patterns one locked transaction creates or changes, and their ids."""

    ID_CHUNK = 16

    def __init__(self) -> None:
        self.created: dict[int, tuple[str, Cluster, datetime]] = {}
        self.changed: dict[int, Cluster] = {}
        self._ids: list[int] = []

    def new_id(self) -> int:
        """Take an id from the Pattern table's sequence, a few at a time.

        The ids a transaction takes but does not use are lost, so pattern
        ids have gaps.
        """
        if not self._ids:
            table = Pattern._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
                    "FROM generate_series(1, %s)",
                    [table, self.ID_CHUNK],
                )
                self._ids = [row[0] for row in reversed(cursor.fetchall())]
        return self._ids.pop()


_assigner: PatternAssigner | None = None


def assign_patterns(entries: Sequence[dict[str, Any]]) -> list[int | None] | None:
    """Return each entry's pattern id, or None when mining is off or failed.

    A database that cannot be reached raises, so the caller retries the
    batch. Any other error is logged and the batch is stored without
    patterns rather than lost.
    """
    global _assigner
    if not settings.PATTERN_MINING_ENABLED or not entries:
        return None
    if _assigner is None:
        _assigner = PatternAssigner(settings.PATTERN_MAX_PER_SERVICE)
    try:
        return _assigner.assign(entries)
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        logger.exception(
            "patterns: assigning patterns failed for a batch of %d entries "
            "starting with %s; storing it without patterns",
            len(entries),
            entries[0]["id"],
        )
        return None
