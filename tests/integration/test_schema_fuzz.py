"""Property-based requests against a live API, generated from its OpenAPI schema.

Schemathesis sends requests built from /api/schema/ to gunicorn on loopback,
with an API key for the intake and a signed-in staff session for the rest,
and checks that no response is a 5xx and every one matches the schema.

The server produces to a Kafka topic of its own that no consumer reads, so
fuzzed entries never reach the database that later tests count in. Rules,
channels, alerts and deliveries that the run creates are deleted afterwards.
"""

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alerts.models import Alert, AlertRule, NotificationChannel, NotificationDelivery
from logs.models import ApiKey
from tests.integration.conftest import REDIS_TEST_DB, _with_database
from tests.processes import (
    ManagedProcess,
    database_url,
    free_port,
    gunicorn_command,
    plain_http_environment,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# Examples per operation and generation mode. With 25 operations the whole
# run took 35 to 42 s on the development machine.
EXAMPLES_PER_OPERATION = 15
# Webhook and Slack channels the fuzzer creates point here instead, a port on
# loopback where nothing listens, so a test notification never leaves the
# machine.
LOOPBACK_SINK = "http://127.0.0.1:9/fuzz"
FUZZ_MODELS = (NotificationDelivery, Alert, AlertRule, NotificationChannel)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class FuzzServer:
    url: str
    api_key: str
    session: requests.Session


def _create_topic(name: str) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    new = NewTopic(name, num_partitions=1, replication_factor=1)
    for future in admin.create_topics([new], operation_timeout=30).values():
        future.result(timeout=60)
    return admin


def _signed_in_session(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    login = f"{base}/api-auth/login/"
    session.get(login, timeout=30)
    token = session.cookies["csrftoken"]
    response = session.post(
        login,
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": login},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:500]
    # SessionAuthentication checks CSRF on every unsafe request.
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session


def _last_ids() -> dict[type, int]:
    return {
        model: model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        for model in FUZZ_MODELS
    }


@pytest.fixture(scope="module")
def fuzz_server(db_access, tmp_path_factory) -> Iterator[FuzzServer]:
    run = uuid.uuid4().hex[:8]
    topic = f"test-fuzz-{run}"
    admin = _create_topic(topic)
    db = connection.settings_dict
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": database_url(db),
        "REDIS_URL": _with_database(settings.CELERY_BROKER_URL, REDIS_TEST_DB),
        "KAFKA_TOPIC": topic,
        **plain_http_environment(),
        "PYTHONUNBUFFERED": "1",
    }
    api = ManagedProcess(
        "fuzz-api",
        gunicorn_command(port),
        env,
        tmp_path_factory.mktemp("fuzz"),
    )
    _key, secret = ApiKey.generate(f"schema fuzz {run}")
    password = uuid.uuid4().hex
    username = f"fuzz-{run}"
    User.objects.create_superuser(username, f"{username}@example.invalid", password)
    before = _last_ids()
    base = f"http://127.0.0.1:{port}"
    api.start()
    try:
        wait_until(lambda: _responds(f"{base}/api/schema/"), 60, "the fuzz API")
        yield FuzzServer(base, secret, _signed_in_session(base, username, password))
    finally:
        api.stop()
        for model in FUZZ_MODELS:
            model.objects.filter(pk__gt=before[model]).delete()
        admin.delete_topics([topic], operation_timeout=30)


def _responds(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _send(case, server: FuzzServer) -> None:
    if case.path.startswith("/api/channels") and isinstance(case.body, dict):
        if "url" in case.body:
            case.body["url"] = LOOPBACK_SINK
    if case.path.startswith("/api/logs") and case.method == "POST":
        session = requests.Session()
        headers = {"Authorization": f"Bearer {server.api_key}"}
    else:
        session = server.session
        headers = {}
    case.call_and_validate(
        base_url=server.url, session=session, headers=headers, checks=CHECKS, timeout=30
    )


def _fuzz(operation, mode: GenerationMode, server: FuzzServer) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        _send(case, server)

    run()


def test_api_conforms_to_schema(fuzz_server):
    # The operations run one after another in a plain loop: schemathesis's
    # own pytest plugin (4.32) fails on pytest 9 when it reports a problem.
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/api/schema/")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, fuzz_server)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below
                failures.append(f"{operation.label} ({mode}): {exc}")
    assert not failures, "\n\n".join(failures)
