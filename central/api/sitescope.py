"""Site-qualified API paths: ``/api/v1/sites/{site}/<rest>`` is ``/api/v1/<rest>`` on the central serving {site}.

One central serves one site (issue 15), so a group's reverse proxy can route ``/api/v1/sites/<site>/``
to each plant's central, and an ERP's URLs always carry the site its machine and order ids belong to
(two plants' ``cnc-01`` never meet). The path is rewritten before routing, in plain ASGI (not
Starlette's ``BaseHTTPMiddleware``): responses pass through untouched, the SSE stream included, and
every route has the qualified form with nothing to declare. Read access is unchanged: the rewritten
request meets the route's own dependencies. A request naming another site is answered 404 before
any route sees it: answered here, it would give this plant's record under another plant's name.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/api/v1/sites/"


class SiteScope:
    """Rewrites ``/api/v1/sites/{site}/<rest>`` of this central's site to ``/api/v1/<rest>`` (HTTP only)."""

    def __init__(self, app: ASGIApp, site: Callable[[], str]) -> None:
        """``site``: central's site, asked per request (the route table is built before a central runs)."""
        self.app = app
        self.site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        site, slash, rest = path[len(PREFIX):].partition("/")
        ours = self.site()
        if site != ours:
            await _not_found(send, f"this central serves site {ours!r}, not {site!r}: route {PREFIX}{site}/ to "
                                   f"that site's central, or use {PREFIX}{ours}/")
            return
        inner = f"/api/v1/{rest}" if slash else "/api/v1"
        raw: bytes = scope.get("raw_path") or b""
        qualified = f"{PREFIX}{site}/".encode()
        # request.url shows the unqualified path, still encoded as the client sent it (else from the decoded one)
        raw_inner = b"/api/v1/" + raw[len(qualified):] if raw.startswith(qualified) else inner.encode()
        await self.app(dict(scope, path=inner, raw_path=raw_inner), receive, send)


async def _not_found(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
