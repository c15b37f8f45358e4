"""Fixtures shared by the unit and integration tests."""

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings
from django.db import connection


@pytest.fixture(scope="session")
def db_access(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Database access outside a test transaction, to see other processes' rows.

    pytest-django creates the test database only when a collected test is
    marked `django_db`; a run of integration modules alone needs it too.
    """
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        created = None
        if not connection.settings_dict["NAME"].startswith("test_"):
            created = setup_databases(
                verbosity=0, interactive=False, aliases={"default"}
            )
        try:
            yield
        finally:
            if created is not None:
                teardown_databases(created, verbosity=0)


@pytest.fixture
def kafka_topic() -> Iterator[str]:
    """A Kafka topic of two partitions for one test, deleted afterwards."""
    name = f"test-topic-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    created = admin.create_topics(
        [NewTopic(name, num_partitions=2, replication_factor=1)]
    )
    created[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)
