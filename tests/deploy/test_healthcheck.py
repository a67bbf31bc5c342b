"""plantpulse.healthcheck: a URL that answers 200, a file that is fresh (real HTTP server, real files)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from plantpulse.healthcheck import check_file, check_url, main


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" else 503
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"status": "degraded"}' if status != 200 else b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url(server: str) -> None:
    assert check_url(f"{server}/healthz", 5) is None
    problem = check_url(f"{server}/other", 5)
    assert problem is not None and "503" in problem and "degraded" in problem
    assert main([f"{server}/healthz"]) == 0 and main([f"{server}/other"]) == 1
    assert check_url("file:///etc/passwd", 5) is not None


def test_file(tmp_path: Path) -> None:
    alive = tmp_path / "alive"
    assert check_file(alive, 30) is not None  # missing
    alive.write_text("1")
    now = alive.stat().st_mtime
    assert check_file(alive, 30, now=now + 10) is None
    assert "old" in (check_file(alive, 30, now=now + 31) or "")
    os.utime(alive, (now - 100, now - 100))
    assert main(["--file", str(alive), "--max-age", "30"]) == 1


def test_the_check_can_come_from_the_environment(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANTPULSE_HEALTH", raising=False)
    assert main([]) == 0  # nothing to check in this container
    monkeypatch.setenv("PLANTPULSE_HEALTH", f"{server}/other")
    assert main([]) == 1
    alive = tmp_path / "alive"
    alive.write_text("1")
    monkeypatch.setenv("PLANTPULSE_HEALTH", f"file:{alive}")
    assert main([]) == 0
    monkeypatch.setenv("PLANTPULSE_HEALTH_MAX_AGE", "-1")
    assert main([]) == 1
