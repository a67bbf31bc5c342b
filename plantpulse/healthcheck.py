"""``python -m plantpulse.healthcheck``: the container health check of every plantpulse role.

Why a module and not ``curl`` in the compose file: the slim Python image has no curl or wget,
and a check must not need a tool the image lacks. Two kinds:

* ``python -m plantpulse.healthcheck http://127.0.0.1:8080/healthz``: healthy when the URL
  answers 200 within ``--timeout`` (central's ``/healthz`` is 200 only while ingest runs and the
  broker is connected);
* ``python -m plantpulse.healthcheck --file /var/lib/plantpulse/edge/alive --max-age 30``:
  healthy when the file was rewritten within ``--max-age`` seconds (the gateway rewrites its
  ``alive`` file every second from its event loop, so a hung gateway goes stale).

Without arguments the check comes from ``$PLANTPULSE_HEALTH`` (a URL, or ``file:PATH`` with
``$PLANTPULSE_HEALTH_MAX_AGE``): one image serves every role, so the Dockerfile's HEALTHCHECK runs
this module bare and each compose service says what healthy means for it. Unset or empty: the
container has nothing to check (the one-shot secrets service, the simulators) and counts as healthy.

Exit 0 when healthy, 1 otherwise, with one line saying why (Docker shows it in ``inspect``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def check_url(url: str, timeout: float) -> str | None:
    """None when ``url`` answers 200; otherwise why not."""
    if not url.startswith(("http://", "https://")):
        return f"{url}: only http:// and https:// URLs can be checked"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}: {exc.read(300).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url} answered {status}"


def check_file(path: Path, max_age: float, now: float | None = None) -> str | None:
    """None when ``path`` was modified within ``max_age`` seconds; otherwise why not."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    return None if age <= max_age else f"{path} is {age:.0f} s old (more than {max_age:g} s)"


def touch(path: Path | None) -> None:
    """Mark a process alive for ``--file`` checks (a loop calls it after each round that worked).

    Synchronous on purpose: a metadata write, cheap enough for an event loop; None does nothing."""
    if path is not None:
        path.touch()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m plantpulse.healthcheck", description=__doc__.splitlines()[0])
    p.add_argument("url", nargs="?", help="healthy when this URL answers 200, e.g. http://127.0.0.1:8080/healthz")
    p.add_argument("--file", type=Path, help="healthy when this file is fresh, e.g. the gateway's data_dir/alive")
    p.add_argument("--max-age", type=float, default=30.0, help="seconds, with --file (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds, with a URL (default: %(default)s)")
    args = p.parse_args(argv)
    if args.url is not None and args.file is not None:
        p.error("give a URL or --file, not both")
    if args.url is None and args.file is None:
        spec = os.environ.get("PLANTPULSE_HEALTH", "").strip()
        if not spec:
            print("nothing to check here (PLANTPULSE_HEALTH is not set)")
            return 0
        if spec.startswith("file:"):
            args.file = Path(spec.removeprefix("file:"))
            args.max_age = float(os.environ.get("PLANTPULSE_HEALTH_MAX_AGE", args.max_age))
        else:
            args.url = spec
    problem = check_url(args.url, args.timeout) if args.url else check_file(args.file, args.max_age)
    print(problem or "healthy")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
