"""``python -m central import-orders FILE``: send a planner's spreadsheet to a running central.

A client of the API (``POST /api/v1/orders/import``), not a second writer of the store: central
stays the one process that changes orders, and the import gets the same checks, the same audit
trail and the same all-or-nothing answer as an upload from the browser or ``curl``. A large file
shows its upload on a progress bar (``plantpulse.progress``: a bar on a terminal, log lines
otherwise), then the wait for central's answer. Row errors are printed one per line, as
``row 7, due: ...``, and the exit status is 1; 0 when imported (or checked, with ``--dry-run``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from plantpulse.progress import Progress

CHUNK = 64 * 1024


def _chunks(data: bytes, bar: Progress) -> Iterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i:i + CHUNK]
        bar.update(min(len(data), i + CHUNK), f"{min(len(data), i + CHUNK) / 1e6:.1f} of {len(data) / 1e6:.1f} MB")


def content_type(path: Path) -> str:
    if path.suffix.lower() == ".xlsx":
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return "text/csv"


def import_file(path: Path, url: str, key: str | None, *, dry_run: bool, out: IO[str] = sys.stdout,
                err: IO[str] = sys.stderr, timeout: float = 300.0) -> int:
    """Upload ``path``; print the outcome; 0 imported/checked, 1 refused, 2 not sent."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=err)
        return 2
    bar = Progress(f"import {path.name}", max(len(data), 1), stream=err)
    headers = {"Content-Type": content_type(path)}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        answer = httpx.post(f"{url.rstrip('/')}/api/v1/orders/import", params={"dry_run": str(dry_run).lower()},
                            content=_chunks(data, bar), headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        print(f"error: cannot reach central at {url}: {exc}", file=err)
        return 2
    bar.finish("sent, central answered")
    try:
        body: Any = answer.json()
    except ValueError:
        body = {"detail": answer.text[:500]}
    if answer.status_code >= 400:
        print(f"error: HTTP {answer.status_code}: {body.get('detail', body)}", file=err)
        for e in body.get("errors", []) if isinstance(body, dict) else []:
            where = "file" if e.get("row") is None else f"row {e['row']}"
            column = f", {e['column']}" if e.get("column") else ""
            print(f"  {where}{column}: {e['message']}", file=err)
        return 1
    counts = body.get("counts", {})
    verb = "would import" if dry_run else "imported"
    print(f"{verb}: {counts.get('created', 0)} created, {counts.get('updated', 0)} updated, "
          f"{counts.get('unchanged', 0)} unchanged", file=out)
    for o in body.get("orders", []):
        if o.get("outcome") != "unchanged":
            changes = f" ({', '.join(o['changes'])})" if o.get("changes") else ""
            print(f"  {o['order']}: {o['outcome']}{changes}", file=out)
    return 0
