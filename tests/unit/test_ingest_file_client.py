"""The intake client and the ingest_file command, against a local HTTP server."""

import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from logs.parsing import read_entries
from logs.parsing.client import (
    IntakeClient,
    IntakeError,
    iter_batches,
    send_entries,
)
from logs.validation import BatchInvalid, normalize_batch
from tests.datafiles import data_dir

API_KEY = "lp_test_secret_key"


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeIntake:
    """An intake API on 127.0.0.1 that records requests and plays scripted replies.

    Without a scripted reply it accepts the whole batch, as the real API
    responds: 202 with the count and the ids.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[Reply] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # A short poll interval makes shutdown() at teardown return quickly.
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/api/logs/"

    def batches(self) -> list[list[dict[str, Any]]]:
        return [request["entries"] for request in self.requests]

    def _reply_to(self, entries: list[dict[str, Any]], headers) -> Reply:
        with self._lock:
            self.requests.append({"entries": entries, "headers": dict(headers)})
            if self.replies:
                return self.replies.pop(0)
        ids = [entry["id"] for entry in entries]
        return Reply(202, {"accepted": len(entries), "ids": ids})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        intake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                entries = json.loads(self.rfile.read(length))
                reply = intake._reply_to(entries, self.headers)
                body = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def intake() -> Iterator[FakeIntake]:
    server = FakeIntake()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(intake, sleeps) -> Iterator[IntakeClient]:
    intake_client = IntakeClient(
        intake.url, API_KEY, max_attempts=3, timeout=10, sleep=sleeps.append
    )
    yield intake_client
    intake_client.close()


def make_entries(count: int) -> list[dict[str, Any]]:
    return [
        {
            "level": "INFO",
            "timestamp": None,
            "message": f"message {number}",
            "service_name": "test",
            "metadata": {},
        }
        for number in range(count)
    ]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Batching and ids.
def test_batches_split_by_size(intake, client):
    send_entries(make_entries(25), client, batch_size=10)
    assert [len(batch) for batch in intake.batches()] == [10, 10, 5]


def test_batches_keep_order(intake, client):
    send_entries(make_entries(25), client, batch_size=10)
    messages = [entry["message"] for batch in intake.batches() for entry in batch]
    assert messages == [f"message {number}" for number in range(25)]


def test_send_entries_returns_total(client):
    assert send_entries(make_entries(25), client, batch_size=10) == 25


def test_every_entry_gets_uuid7(intake, client):
    send_entries(make_entries(25), client, batch_size=10)
    ids = [entry["id"] for batch in intake.batches() for entry in batch]
    assert {uuid.UUID(event_id).version for event_id in ids} == {7}


def test_ids_are_unique(intake, client):
    send_entries(make_entries(25), client, batch_size=10)
    ids = [entry["id"] for batch in intake.batches() for entry in batch]
    assert len(set(ids)) == 25


def test_batches_split_by_bytes():
    batches = list(iter_batches(make_entries(10), batch_size=100, max_bytes=600))
    assert all(len(batch.body) <= 600 for batch in batches)


def test_oversized_entry_sent_alone():
    batches = list(iter_batches(make_entries(3), batch_size=100, max_bytes=10))
    assert [len(batch.ids) for batch in batches] == [1, 1, 1]


def test_authorization_header(intake, client):
    send_entries(make_entries(1), client)
    assert intake.requests[0]["headers"]["Authorization"] == f"Bearer {API_KEY}"


# Retries.
def test_retry_on_503_resends_same_ids(intake, client):
    intake.replies.append(Reply(503, {"detail": "down"}, {"Retry-After": "0"}))
    send_entries(make_entries(5), client)
    first, second = intake.batches()
    assert first == second


def test_retry_after_header_waits(intake, client, sleeps):
    intake.replies.append(Reply(503, {"detail": "down"}, {"Retry-After": "7"}))
    send_entries(make_entries(5), client)
    assert sleeps == [7.0]


def test_retry_on_429(intake, client):
    intake.replies.append(Reply(429, {"detail": "slow down"}, {"Retry-After": "1"}))
    send_entries(make_entries(5), client)
    assert len(intake.requests) == 2


def test_retry_without_header_backs_off(intake, client, sleeps):
    intake.replies.extend([Reply(503, {}), Reply(503, {})])
    send_entries(make_entries(5), client)
    assert sleeps == [1.0, 2.0]


def test_gives_up_after_max_attempts(intake, client):
    intake.replies.extend([Reply(503, {}, {"Retry-After": "0"})] * 3)
    with pytest.raises(IntakeError, match="after 3 attempts"):
        send_entries(make_entries(5), client)


def test_max_attempts_bound_requests(intake, client):
    intake.replies.extend([Reply(503, {}, {"Retry-After": "0"})] * 5)
    with pytest.raises(IntakeError):
        send_entries(make_entries(5), client)
    assert len(intake.requests) == 3


def test_connection_error_backs_off(sleeps):
    url = f"http://127.0.0.1:{closed_port()}/api/logs/"
    unreachable = IntakeClient(url, API_KEY, max_attempts=3, sleep=sleeps.append)
    with pytest.raises(IntakeError, match="ConnectionError"):
        send_entries(make_entries(1), unreachable)
    assert sleeps == [1.0, 2.0]


def test_retry_logged_with_batch_and_id(intake, client, caplog):
    intake.replies.append(Reply(503, {}, {"Retry-After": "0"}))
    with caplog.at_level(logging.WARNING, logger="logs.parsing.client"):
        send_entries(make_entries(2), client)
    first_id = intake.batches()[0][0]["id"]
    assert f"Batch 0 (first id {first_id})" in caplog.text


def test_retry_log_omits_api_key(intake, client, caplog):
    intake.replies.append(Reply(503, {}, {"Retry-After": "0"}))
    with caplog.at_level(logging.DEBUG):
        send_entries(make_entries(2), client)
    assert API_KEY not in caplog.text


# Rejections.
def test_400_raises_server_detail(intake, client):
    detail = "Entry 0, field timestamp: bad. Nothing from this request was accepted."
    intake.replies.append(Reply(400, {"detail": detail}))
    with pytest.raises(IntakeError, match="Entry 0, field timestamp"):
        send_entries(make_entries(2), client)


def test_400_not_retried(intake, client):
    intake.replies.append(Reply(400, {"detail": "bad"}))
    with pytest.raises(IntakeError):
        send_entries(make_entries(2), client)
    assert len(intake.requests) == 1


def test_401_names_api_key(intake, client):
    intake.replies.append(Reply(401, {"detail": "Invalid or revoked API key."}))
    with pytest.raises(IntakeError, match="Check the API key"):
        send_entries(make_entries(2), client)


def test_accepted_count_checked(intake, client):
    intake.replies.append(Reply(202, {"accepted": 1, "ids": []}))
    with pytest.raises(IntakeError, match="accepted 1 of 2"):
        send_entries(make_entries(2), client)


def test_redirect_not_followed(intake, client):
    intake.replies.append(Reply(301, {}, {"Location": "http://127.0.0.1:1/x"}))
    with pytest.raises(IntakeError, match="redirects to http://127.0.0.1:1/x"):
        send_entries(make_entries(2), client)


def test_failure_logged_as_error(intake, client, caplog):
    intake.replies.append(Reply(400, {"detail": "bad"}))
    with caplog.at_level(logging.ERROR, logger="logs.parsing.client"):
        with pytest.raises(IntakeError):
            send_entries(make_entries(2), client)
    assert "Giving up batch 0" in caplog.text


def test_integer_beyond_64_bits_encoded():
    entry = make_entries(1)[0] | {"metadata": {"big": 2**70}}
    batch = next(iter_batches([entry]))
    assert json.loads(batch.body)[0]["metadata"]["big"] == 2**70


def test_stops_at_failed_batch(intake, client):
    intake.replies.extend([Reply(202, {"accepted": 2}), Reply(400, {"detail": "x"})])
    with pytest.raises(IntakeError):
        send_entries(make_entries(6), client, batch_size=2)
    assert len(intake.requests) == 2


# The management command.
def run_command(*args: str, **options: Any) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("ingest_file", *args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def test_command_sends_file(intake, tmp_path):
    path = tmp_path / "app.log"
    path.write_text("one\ntwo\nthree\n")
    run_command(
        str(path), format="plain", service="app", url=intake.url, api_key=API_KEY
    )
    assert [entry["message"] for entry in intake.batches()[0]] == [
        "one",
        "two",
        "three",
    ]


def test_command_summary_line(intake, tmp_path):
    path = tmp_path / "app.log"
    path.write_text("one\ntwo\n")
    stdout, _stderr = run_command(
        str(path), format="plain", service="app", url=intake.url, api_key=API_KEY
    )
    assert stdout.startswith(f"ingested 2 entries from {path} (format plain) in ")


def test_command_batch_size(intake, tmp_path):
    path = tmp_path / "app.log"
    path.write_text("line\n" * 5)
    run_command(
        str(path),
        format="plain",
        service="app",
        url=intake.url,
        api_key=API_KEY,
        batch_size=2,
    )
    assert [len(batch) for batch in intake.batches()] == [2, 2, 1]


def test_command_reads_key_from_environment(intake, tmp_path, monkeypatch):
    monkeypatch.setenv("LOGPLATFORM_API_KEY", "from-env")
    path = tmp_path / "app.log"
    path.write_text("one\n")
    run_command(str(path), format="plain", service="app", url=intake.url)
    assert intake.requests[0]["headers"]["Authorization"] == "Bearer from-env"


def test_command_requires_api_key(tmp_path, monkeypatch):
    monkeypatch.delenv("LOGPLATFORM_API_KEY", raising=False)
    path = tmp_path / "app.log"
    path.write_text("one\n")
    with pytest.raises(CommandError, match="No API key"):
        run_command(str(path), format="plain", service="app")


def test_command_rejects_missing_file(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        run_command(
            str(tmp_path / "absent.log"), format="plain", service="a", api_key="k"
        )


def test_command_rejects_url_without_scheme(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("one\n")
    with pytest.raises(CommandError, match="is invalid"):
        run_command(
            str(path), format="plain", service="a", api_key="k", url="127.0.0.1:8000"
        )


@pytest.mark.parametrize("batch_size", [0, 10_001])
def test_command_rejects_batch_size(tmp_path, batch_size):
    path = tmp_path / "app.log"
    path.write_text("one\n")
    with pytest.raises(CommandError, match="--batch-size"):
        run_command(
            str(path), format="plain", service="a", api_key="k", batch_size=batch_size
        )


def test_command_fails_on_400(intake, tmp_path):
    intake.replies.append(Reply(400, {"detail": "Entry 0, field message: bad."}))
    path = tmp_path / "app.log"
    path.write_text("one\n")
    with pytest.raises(CommandError, match="Entry 0, field message"):
        run_command(
            str(path), format="plain", service="app", url=intake.url, api_key=API_KEY
        )


def test_command_sends_loghub_sample(intake):
    path = data_dir() / "loghub" / "HDFS" / "HDFS_2k.log"
    run_command(
        str(path), format="hdfs", service="hdfs", url=intake.url, api_key=API_KEY
    )
    lines = [
        entry["metadata"]["source"]["line"]
        for batch in intake.batches()
        for entry in batch
    ]
    assert lines == list(range(1, 2001))


# The contract with the intake API: the parsed entries of every sample pass
# its validation, so no batch is rejected because of the parser's output.
SAMPLES = [
    *(
        (f"loghub/{system}/{system}_2k.log", system.lower())
        for system in (
            "Android",
            "Apache",
            "BGL",
            "HDFS",
            "HPC",
            "Hadoop",
            "HealthApp",
            "Linux",
            "OpenSSH",
            "Spark",
            "Windows",
            "Zookeeper",
        )
    ),
    ("syslog/plaso/syslog", "rfc3164"),
    ("syslog/plaso/syslog_chromeos", "rfc3164"),
    ("syslog/plaso/syslog_rsyslog_SyslogProtocol23Format", "rfc5424"),
    ("syslog/otel-dynatrace/RFC5424", "rfc5424"),
    ("jsonlines/lnav/logfile_json.json", "jsonl"),
    ("jsonlines/lnav/logfile_journald.json", "jsonl"),
    ("jsonlines/plaso/docker-container-json.log", "jsonl"),
    ("jsonlines/plaso/gcp_logging.jsonl", "jsonl"),
]


@pytest.mark.parametrize(("relative", "format_name"), SAMPLES)
def test_entries_pass_intake_validation(relative, format_name):
    entries = read_entries(data_dir() / relative, format_name, "test", year=2016)
    batch = next(iter_batches(entries, batch_size=10_000))
    try:
        normalize_batch(json.loads(batch.body), timezone.now())
    except BatchInvalid as exc:
        pytest.fail(f"{relative}: {exc.errors[:3]}")
