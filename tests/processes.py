"""Start and stop the platform's processes for integration tests."""

import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = PROJECT_ROOT / ".venv" / "bin"
SERVICES_SCRIPT = PROJECT_ROOT / "scripts" / "services.sh"


def plain_http_environment() -> dict[str, str]:
    """Return the variables of a server with DEBUG off on plain HTTP at 127.0.0.1.

    With DEBUG off, settings.py requires a real secret key, would redirect
    every request to HTTPS, which nothing serves here, and would mark the
    session and CSRF cookies secure, so that a client on HTTP never sends
    them back.
    """
    return {
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_SECURE_COOKIES": "false",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], bool], timeout: float, message: str, interval=0.25
) -> None:
    """Poll `condition` until it is true; raise AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def worker_command(concurrency: int, *extra: str) -> list[str]:
    """Return the command line of a Celery worker with task events on."""
    return [
        str(BIN / "celery"),
        "-A",
        "logplatform",
        "worker",
        "-E",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency),
        *extra,
    ]


class ManagedProcess:
    """A child process whose combined output goes to a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    def start(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def output(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def wait_for_output(self, pattern: str, timeout: float = 60) -> None:
        """Wait until the output since the last start matches `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if regex.search(self.output()):
                return
            if self.process and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n"
                    f"{self.output()[-3000:]}"
                )
            time.sleep(0.2)
        raise TimeoutError(
            f"{self.name} did not print {pattern!r} within {timeout}s:\n"
            f"{self.output()[-3000:]}"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(10)


def run_services(*args: str, env: dict[str, str] | None = None) -> None:
    """Run scripts/services.sh with the given arguments, failing on error.

    `env` replaces the environment, to run the script on other ports or in
    another LOGPLATFORM_SERVICES_DIR.
    """
    result = subprocess.run(
        [str(SERVICES_SCRIPT), *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"services.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )


def api_answers(url: str) -> bool:
    """Return whether the API at `url` responds to a request without a key."""
    try:
        return requests.get(url, timeout=5).status_code in (401, 403)
    except requests.RequestException:
        return False


def database_url(db: dict) -> str:
    """Return the postgres:// URL of a Django database settings dict."""
    return (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/"
        f"{db['NAME']}"
    )


def gunicorn_command(port: int, *extra: str) -> list[str]:
    """Return the command line of the API on 127.0.0.1 with 2 workers of 4 threads.

    Later options in `extra` override these, as in `"--workers", "1"`.
    """
    return [
        str(BIN / "gunicorn"),
        "logplatform.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "4",
        *extra,
    ]
