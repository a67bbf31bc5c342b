"""A small InfluxDB-like HTTP server for the writer's error handling: scripted statuses, recorded requests.

VictoriaMetrics ignores tokens and accepts everything, so 401/403/5xx/Retry-After behaviour is tested
against this server: it answers ``POST /api/v2/write`` with the next scripted reply (then 204) and
records each request (path, query, Authorization header, body lines, status sent).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    status: int
    message: str = ""
    retry_after: str | None = None
    hold: float = 0.0  # answer only after this many seconds (or when the server stops): a hanging server


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    lines: list[str]
    status: int = 0


@dataclass
class _Script:
    replies: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=lambda: Reply(204))


class FakeInflux:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script = _Script()
        self._requests: list[Request] = []
        self._release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                parts = urlsplit(self.path)
                request = Request(
                    parts.path, parse_qs(parts.query), self.headers.get("Authorization"),
                    [line for line in body.split("\n") if line],
                )
                reply = owner._next_reply()
                request.status = reply.status
                with owner._lock:  # recorded before replying: once the client has its answer, the test sees it
                    owner._requests.append(request)
                if reply.hold:
                    owner._release.wait(reply.hold)
                payload = b"" if reply.status == 204 else json.dumps(
                    {"code": "error", "message": reply.message or f"status {reply.status}"}
                ).encode()
                self.send_response(reply.status)
                if reply.retry_after is not None:
                    self.send_header("Retry-After", reply.retry_after)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-influx", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeInflux:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def script(self, *replies: Reply, default: Reply | None = None) -> None:
        """Answer the next requests with ``replies`` in order, then with ``default`` (204 unless given)."""
        with self._lock:
            self._script.replies = list(replies)
            if default is not None:
                self._script.default = default

    def _next_reply(self) -> Reply:
        with self._lock:
            if self._script.replies:
                return self._script.replies.pop(0)
            return self._script.default

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def accepted_lines(self) -> list[str]:
        """Body lines of every request answered 2xx, in arrival order."""
        return [line for r in self.requests if 200 <= r.status < 300 for line in r.lines]
