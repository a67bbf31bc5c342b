"""The pages: ``/`` (live machine status, docs/page.md), ``/machines/{id}``, ``/orders``,
``/schedule``, ``/scan`` and ``/cards`` (docs/pages.md), and their static files from ``central/web``.

Everything the page needs is served from here, so it works on a factory LAN with no internet (no
CDN, no build step). Each page is plain HTML/CSS/JS that reads ``/api/v1`` and the SSE stream; the
pages carry no plant data themselves, so they need no key (their scripts read with the browser's).

Headers, and why:

- ``Content-Security-Policy`` allows this origin only: a page that pulled a script or font from
  elsewhere would break on the floor, and this makes such a mistake fail in every test run;
- ``Referrer-Policy: no-referrer``: the stream URL may carry ``?key=`` (EventSource cannot send
  headers), and the key must not leak through a Referer header;
- ``Cache-Control: no-cache``: a board left open for months revalidates after an upgrade.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(tags=["pages"], include_in_schema=False)

WEB = Path(__file__).resolve().parents[2] / "web"
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\.(?:js|css|svg|html|txt)")  # no folders, no dots: no way out of WEB
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "media-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"
)
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _file(name: str, folder: Path = WEB) -> FileResponse:
    path = folder / name
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


@router.api_route("/static/vendor/{name}", methods=["GET", "HEAD"],
                  summary="A vendored third-party script (scripts/vendor-web.sh), with its licence")
async def vendored(name: str) -> FileResponse:
    return _file(name, WEB / "vendor")


@router.api_route("/machines/{machine_id}", methods=["GET", "HEAD"], summary="One machine's day")
async def machine_page(machine_id: str) -> FileResponse:
    return _file("machine.html")  # the script reads the id from the address


PAGES = {"/orders": "orders.html", "/schedule": "schedule.html", "/scan": "scan.html", "/cards": "cards.html"}


def _page(name: str) -> Callable[[], Awaitable[FileResponse]]:
    async def serve() -> FileResponse:
        return _file(name)
    return serve


for _path, _name in PAGES.items():
    router.add_api_route(_path, _page(_name), methods=["GET", "HEAD"], summary=f"The page {_path}")
