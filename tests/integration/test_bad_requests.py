"""Bad intake requests get a clear 4xx answer and store nothing."""

import uuid

import pytest
import requests

from tests.integration.conftest import stored_count, wait_until

# django_db makes pytest-django create the test database; reads inside the
# test transaction still see the rows that the worker commits.
pytestmark = [pytest.mark.integration, pytest.mark.django_db]

SERVICE = f"bad-requests-{uuid.uuid4().hex[:8]}"


def good(**fields):
    return {"service_name": SERVICE, "message": "valid entry"} | fields


# Each case: the JSON body (or raw bytes), the expected status, and a text the
# answer must contain, which names the field or the problem.
CASES = [
    ("missing service", [good(), {"message": "x"}], 400, "service_name"),
    ("blank service", [good(service_name=" ")], 400, "service_name"),
    ("missing message", [good(), good(message=None)], 400, "message"),
    ("message not text", [good(message=["a"])], 400, "message"),
    ("unknown level", [good(), good(), good(level="loud")], 400, "level"),
    ("bad timestamp", [good(timestamp="next tuesday")], 400, "timestamp"),
    ("bad id", [good(id="1234")], 400, "id"),
    ("metadata not object", [good(metadata=[1])], 400, "metadata"),
    ("unknown field", [good(msg="typo")], 400, "msg"),
    ("entry not object", [good(), "just text"], 400, "non_field_errors"),
    ("not json", b"{not json", 400, "not valid JSON"),
    ("scalar body", b"42", 400, "JSON object"),
    ("too many entries", [good()] * 10_001, 413, "10000"),
]


@pytest.mark.parametrize(
    ("body", "status", "mentions"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_request_rejected(pipeline, body, status, mentions):
    headers = pipeline.headers | {"Content-Type": "application/json"}
    if isinstance(body, bytes):
        response = requests.post(pipeline.url, data=body, headers=headers, timeout=30)
    else:
        response = requests.post(pipeline.url, json=body, headers=headers, timeout=30)

    assert response.status_code == status, response.text
    assert mentions in response.text
    if status == 400 and isinstance(body, list) and body:
        error = response.json()["errors"][0]
        assert error["field"] == mentions or mentions in error["message"]
        assert isinstance(error["index"], int)


def test_oversized_body_gets_413(pipeline, settings):
    limit = settings.INTAKE_MAX_BODY_BYTES
    body = b'{"service_name": "x", "message": "' + b"a" * limit + b'"}'
    response = requests.post(
        pipeline.url,
        data=body,
        headers=pipeline.headers | {"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413
    assert str(limit) in response.text


def test_missing_key_gets_401(pipeline):
    response = requests.post(pipeline.url, json=good(), timeout=30)
    assert response.status_code == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_wrong_key_gets_401(pipeline):
    response = requests.post(
        pipeline.url,
        json=good(),
        headers={"Authorization": "Bearer lp_wrongwrongwrongwrong"},
        timeout=30,
    )
    assert response.status_code == 401


def test_post_without_slash_not_redirected(pipeline):
    service = f"noslash-{uuid.uuid4().hex[:8]}"
    url = pipeline.url.rstrip("/")
    response = requests.post(
        url,
        json={"service_name": service, "message": "m"},
        headers=pipeline.headers,
        timeout=30,
        allow_redirects=False,
    )
    assert response.status_code == 202
    wait_until(lambda: stored_count(service_name=service) == 1, 60, "the entry")


def test_nothing_stored_from_bad_requests(pipeline):
    # Runs after the table above (pytest keeps file order): once a marker
    # sent later has landed, none of the valid entries in rejected requests
    # may have been stored.
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    assert pipeline.post({"service_name": marker, "message": "m"}).status_code == 202
    wait_until(lambda: stored_count(service_name=marker) == 1, 60, "the marker")
    assert stored_count(service_name=SERVICE) == 0
