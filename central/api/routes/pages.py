"""The live machine-status page: ``/`` and its static files from ``central/web`` (docs/page.md).

Everything the page needs is served from here, so it works on a factory LAN with no internet (no
CDN, no build step). The page is plain HTML/CSS/JS that reads ``/api/v1`` and the SSE stream.

Headers, and why:

- ``Content-Security-Policy`` allows this origin only: a page that pulled a script or font from
  elsewhere would break on the floor, and this makes such a mistake fail in every test run;
- ``Referrer-Policy: no-referrer``: the stream URL may carry ``?key=`` (EventSource cannot send
  headers), and the key must not leak through a Referer header;
- ``Cache-Control: no-cache``: a board left open for months revalidates after an upgrade.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(tags=["pages"], include_in_schema=False)

WEB = Path(__file__).resolve().parents[2] / "web"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\.(?:js|css|svg|html)")  # no folders, no dots: no way out of WEB
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"
)
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _file(name: str) -> FileResponse:
    path = WEB / name
    if not _NAME.fullmatch(name) or not path.is_file():
        raise HTTPException(404, f"no file '{name}' in the page's static files")
    headers = dict(_HEADERS)
    if name.endswith(".html"):
        headers["Content-Security-Policy"] = _CSP
    return FileResponse(path, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"], summary="The live machine-status page")
async def index() -> FileResponse:
    return _file("index.html")


@router.api_route("/static/{name}", methods=["GET", "HEAD"], summary="A static file of the page (script, style, icon)")
async def static(name: str) -> FileResponse:
    return _file(name)
