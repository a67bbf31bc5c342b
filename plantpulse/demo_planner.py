"""The demo's planner: posts ``demo_plan``'s orders to central's API, as a planner or an ERP would.

``seed_orders`` posts the plan at the demo's start; ``planner`` then keeps ``demo_plan.OPEN_TARGET``
orders open by releasing the next one whenever fewer are (an order is done or was cancelled). I/O
only; what is planned is ``plantpulse.demo_plan`` (pure). ``make demo`` runs both (plantpulse/demo.py).

``python -m plantpulse.demo_planner --central URL --key-file FILE`` runs both as a process of its own:
the ``demo-planner`` service of docker compose's demo profile (docs/deployment.md). Central keeps its
store across restarts there, so the process first asks which demo orders central knows, posts only
the seed orders still missing and goes on numbering after the highest (``demo_plan.resume``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path

import httpx

from plantpulse import demo_plan
from plantpulse.healthcheck import touch

Say = Callable[[str, str], None]  # (who, line): the demo's log, prefixed per process
PLANNER_INTERVAL = 10.0  # seconds between the planner's looks at the open orders


class PlanRefusedError(Exception):
    """Central refused an order of the demo plan (the message says which and why)."""


async def seed_orders(say: Say, url: str, write_key: str, now: float,
                      only: Collection[int] | None = None) -> list[str]:
    """Post the demo plan through central's API, as a planner would; returns the order ids.

    ``only``: the numbers of the seed orders to post (default: all)."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {write_key}"}, timeout=30) as api:
        ids = []
        for body in demo_plan.seed(now):
            if only is not None and demo_plan.order_number(body["id"]) not in only:
                continue
            answer = await api.post("/api/v1/orders", json=body)
            if answer.status_code != 201:
                raise PlanRefusedError(
                    f"central refused the demo order {body['id']}: {answer.status_code} {answer.text}")
            ids.append(body["id"])
    say("planner", f"planned {len(ids)} orders: {', '.join(ids)}")
    return ids


async def planner(say: Say, url: str, write_key: str, first: int, *, interval: float = PLANNER_INTERVAL,
                  alive_file: Path | None = None) -> None:
    """Release one more order (``demo_plan.order``) whenever fewer than ``OPEN_TARGET`` are open.

    ``alive_file``: touched after every look that reached central (the container's health check)."""
    n = first
    failing = False
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {write_key}"}, timeout=30) as api:
        while True:
            await asyncio.sleep(interval)
            try:
                listed = (await api.get("/api/v1/orders", params={"status": "open"})).raise_for_status().json()
                if len(listed["orders"]) < demo_plan.OPEN_TARGET:
                    body = demo_plan.order(n, time.time())
                    (await api.post("/api/v1/orders", json=body)).raise_for_status()
                    say("planner", f"released {body['id']}: {body['product']} x {body['quantity']}")
                    n += 1
                failing = False
                touch(alive_file)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                if not failing:  # once per episode, not every look
                    say("planner", f"cannot plan now ({exc}); trying again")
                failing = True


async def known_orders(url: str, key: str) -> list[str]:
    """The id of every order central knows (any status), page by page."""
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        while True:
            answer = await api.get("/api/v1/orders", params={"status": "all", "limit": 1000, "offset": len(ids)})
            if answer.status_code in (401, 403):
                raise PlanRefusedError(f"central refused the planner's key: {answer.status_code} {answer.text}")
            page = [str(o["id"]) for o in answer.raise_for_status().json()["orders"]]
            ids += page
            if len(page) < 1000:
                return ids


async def run(say: Say, url: str, key: str, *, interval: float = PLANNER_INTERVAL, alive_file: Path | None = None,
              wait: float = 2.0) -> None:
    """Seed what is missing once central answers (retrying every ``wait`` seconds), then plan forever."""
    failing = False
    while True:
        try:
            missing, first = demo_plan.resume(await known_orders(url, key))
            break
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            if not failing:
                say("planner", f"central does not answer yet ({exc}); trying again every {wait:g} s")
            failing = True
            await asyncio.sleep(wait)
    if missing:
        await seed_orders(say, url, key, time.time(), only=missing)
    else:
        say("planner", f"central has the demo plan already; releasing from {demo_plan.order_id(first)}")
    touch(alive_file)
    await planner(say, url, key, first, interval=interval, alive_file=alive_file)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m plantpulse.demo_planner",
                                description="Post the demo plan of work orders to central and keep "
                                            f"{demo_plan.OPEN_TARGET} orders open (the demo's planner).")
    p.add_argument("--central", required=True, help="central's URL, e.g. http://central:8080")
    p.add_argument("--key-file", required=True, type=Path, help="file whose first line is a write key of central")
    p.add_argument("--interval", type=float, default=PLANNER_INTERVAL,
                   help="seconds between looks at the open orders (default: %(default)s)")
    p.add_argument("--alive-file", type=Path, help="touched after every look that reached central (health check)")
    return p


def _say(who: str, line: str) -> None:
    print(f"[{who}] {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.interval <= 0:
        print("error: --interval must be greater than 0", file=sys.stderr)
        return 2
    try:
        key = next(iter(args.key_file.read_text(encoding="utf-8").splitlines()), "").strip()
    except OSError as exc:
        print(f"error: cannot read the key from {args.key_file}: {exc.strerror}", file=sys.stderr)
        return 2
    if not key:
        print(f"error: {args.key_file} holds no key (its first line is empty)", file=sys.stderr)
        return 2

    def stop(*_: object) -> None:  # SIGTERM (docker stop) ends it like Ctrl-C: exit 0
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        asyncio.run(run(_say, args.central.rstrip("/"), key, interval=args.interval, alive_file=args.alive_file))
    except PlanRefusedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
