"""A webhook receiver on 127.0.0.1 that records every POST, for tests."""

import hashlib
import hmac
import threading
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ReceivedRequest:
    path: str
    headers: Message
    body: bytes
    signature_valid: bool | None
    status: int


class Receiver:
    """An HTTP server that responds to POSTs with a planned list of statuses.

    `answers` lists the (status, body) responses in order. Once they run
    out, every request gets 200. With a `secret`, each request's
    X-Logplatform-Signature is checked and a bad one gets 401. With
    `hang=True` no answer is sent until the receiver stops.
    """

    def __init__(
        self,
        answers: list[tuple[int, bytes]] | None = None,
        secret: str | None = None,
        hang: bool = False,
        extra_headers: dict[str, str] | None = None,
    ):
        self.answers = list(answers or [])
        self.secret = secret
        self.hang = hang
        self.extra_headers = extra_headers or {}
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks/logplatform"

    @property
    def accepted(self) -> list[ReceivedRequest]:
        with self._lock:
            return [request for request in self.requests if 200 <= request.status < 300]

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _check_signature(self, headers: Message, body: bytes) -> bool | None:
        if self.secret is None:
            return None
        digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(
            f"sha256={digest}", headers.get("X-Logplatform-Signature", "")
        )

    def _answer(self, headers: Message, body: bytes, path: str) -> tuple[int, bytes]:
        valid = self._check_signature(headers, body)
        with self._lock:
            if valid is False:
                status, text = 401, b"bad signature"
            elif self.answers:
                status, text = self.answers.pop(0)
            else:
                status, text = 200, b"ok"
            self.requests.append(ReceivedRequest(path, headers, body, valid, status))
        return status, text

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status, text = receiver._answer(self.headers, body, self.path)
                if receiver.hang:
                    receiver._release.wait(timeout=60)
                    return
                self.send_response(status)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format, *args) -> None:
                pass  # Keep the test output quiet.

        return Handler
