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

The pages other than ``/`` share one shell (``web/pages/shell.html``: head, bar, banner, key
dialog); each states only what differs: its ``<main>`` in ``web/pages/<name>.html`` and, in
``PAGES`` below, its scripts, its key dialog's help line and whether it is dark. The shell is a
``string.Template`` filled once per page: no template engine to depend on for five pages.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

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


@dataclass(frozen=True)
class Page:
    """What one page adds to the shared shell (its ``<main>`` is ``web/pages/<name>.html``)."""

    name: str  # the page's file and its body class ``page-<name>``
    scripts: tuple[str, ...]  # its own scripts, after texts.js, texts-pages.js and common.js
    key_help: tuple[str, str] | None = None  # the key dialog's help line: text key, English text
    dark: bool = True  # cards print on paper: no dark colour scheme
    title: str = "plantpulse"


PAGES = {
    "/orders": Page("orders", ("orderforms.js", "orders.js"),
                    ("ordersKeyHelp", "Changing orders needs a write key. The key is kept in this browser only.")),
    "/schedule": Page("schedule", ("schedule.js",)),
    "/scan": Page("scan", ("scan.js",),
                  ("scanKeyHelp", "Reporting needs a key with the report role (or a write key).")),
    "/cards": Page("cards", ("cards.js",), dark=False),
}
MACHINE = Page("machine", ("machine.js",), ("keyHelp", "The key is kept in this browser only."))


@functools.cache
def render(page: Page) -> str:
    """The page's HTML: the shell with the page's parts (read once; the files change only on upgrade)."""
    shell = Template((WEB / "pages" / "shell.html").read_text(encoding="utf-8"))
    help_line = ""
    if page.key_help is not None:
        key, text = page.key_help
        help_line = f'    <p data-t="{key}">{html.escape(text)}</p>\n'
    return shell.substitute(
        name=page.name,
        title=html.escape(page.title),
        color_scheme='<meta name="color-scheme" content="dark">\n' if page.dark else "",
        scripts="".join(f'<script src="/static/{s}" defer></script>\n' for s in page.scripts),
        main=(WEB / "pages" / f"{page.name}.html").read_text(encoding="utf-8"),
        key_help=help_line,
    )


def _html(page: Page) -> HTMLResponse:
    return HTMLResponse(render(page), headers={**_HEADERS, "Content-Security-Policy": _CSP})


@router.api_route("/machines/{machine_id}", methods=["GET", "HEAD"], summary="One machine's day")
async def machine_page(machine_id: str) -> HTMLResponse:
    return _html(MACHINE)  # the script reads the id from the address


def _page(page: Page) -> Callable[[], Awaitable[HTMLResponse]]:
    async def serve() -> HTMLResponse:
        return _html(page)
    return serve


for _path, _p in PAGES.items():
    router.add_api_route(_path, _page(_p), methods=["GET", "HEAD"], summary=f"The page {_path}")
