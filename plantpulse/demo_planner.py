"""The demo's planner: posts ``demo_plan``'s orders to central's API, as a planner or an ERP would.

``seed_orders`` posts the plan at the demo's start; ``planner`` then keeps ``demo_plan.OPEN_TARGET``
orders open by releasing the next one whenever fewer are (an order is done or was cancelled). I/O
only; what is planned is ``plantpulse.demo_plan`` (pure). ``make demo`` runs both (plantpulse/demo.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from plantpulse import demo_plan

Say = Callable[[str, str], None]  # (who, line): the demo's log, prefixed per process
PLANNER_INTERVAL = 10.0  # seconds between the planner's looks at the open orders


class PlanRefusedError(Exception):
    """Central refused an order of the demo plan (the message says which and why)."""


async def seed_orders(say: Say, url: str, write_key: str, now: float) -> list[str]:
    """Post the demo plan through central's API, as a planner would; returns the order ids."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {write_key}"}, timeout=30) as api:
        ids = []
        for body in demo_plan.seed(now):
            answer = await api.post("/api/v1/orders", json=body)
            if answer.status_code != 201:
                raise PlanRefusedError(
                    f"central refused the demo order {body['id']}: {answer.status_code} {answer.text}")
            ids.append(body["id"])
    say("planner", f"planned {len(ids)} orders: {', '.join(ids)}")
    return ids


async def planner(say: Say, url: str, write_key: str, first: int, *, interval: float = PLANNER_INTERVAL) -> None:
    """Release one more order (``demo_plan.order``) whenever fewer than ``OPEN_TARGET`` are open."""
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
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                if not failing:  # once per episode, not every look
                    say("planner", f"cannot plan now ({exc}); trying again")
                failing = True
