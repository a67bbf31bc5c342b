"""The orders and schedule pages in a real headless Chromium against a real central (issue 14).

The at-risk test runs the whole path: a simulated Modbus PLC, a real gateway (``python -m edge
run``), mosquitto, central with its order book and projector, and the page; a fault injected in
the simulator must turn the order "at risk" on the page, with the machine and the cause. One
browser per module; every wait is a condition with a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, expect

from tests.central.pagekit import FAULTS, WRITE_KEY, api_keys, chromium, open_page, shoot
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.services import CentralProcess, EdgeProcess, modbus_machine

pytestmark = pytest.mark.browser
SOON = 25_000  # ms
# a machine's state change re-projects at the projector's idle pace (orders.IDLE_EVERY, 30 s) when no
# order change woke it: central/orders/projector.py waits on its wake event only (see the report)
REPROJECT = 45_000
PLANT = yaml.safe_dump({  # one machine running a long job that never breaks down on its own
    "name": "orders", "seed": 5, "speed": 20, "min_state_duration": 0.3, "control_port": 0,
    "machines": [{"id": "m1", "protocol": "modbus", "cycle_time": 4, "setup_time": 2, "idle_between_jobs": 1,
                  "job_quantity": [900, 900]}],
})
# projection at once, no confirmation delay or margin: the page's reaction is what is tested
ORDERS = {"projection_interval": 0.3, "margin": 0, "confirm": 0, "hysteresis": 0, "uncertainty": 0,
          "default_repair": 7200}
WRITE = {"Authorization": f"Bearer {WRITE_KEY}"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    opened: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


def order(order_id: str, due_in: float, *ops: tuple[int, str, str, int, float]) -> dict[str, Any]:
    return {"id": order_id, "product": "bracket", "customer": "ACME", "quantity": ops[0][3],
            "due": time.time() + due_in,
            "operations": [{"seq": s, "name": n, "machine": m, "quantity": q, "ideal_cycle_time": c, "job": f"J{s}x"}
                           for s, n, m, q, c in ops]}


def post_order(central: CentralProcess, body: dict[str, Any]) -> dict[str, Any]:
    response = central.http.post("/api/v1/orders", json=body, headers=WRITE)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# ---------------------------------------------------------------------------------------------
def test_orders_page_shows_an_order_go_at_risk_when_the_simulator_faults(
    plant_factory: Callable[[str], SimulatedPlant], mosquitto: Mosquitto,
    central_factory: Callable[..., CentralProcess], contexts: Callable[..., BrowserContext], tmp_path: Path,
) -> None:
    plant = plant_factory(PLANT)
    central = central_factory(mosquitto, plant={"machines": [{"id": "m1", "name": "CNC 1", "faults": FAULTS}]},
                              orders=ORDERS, api={"keys": api_keys()})
    edge = EdgeProcess(tmp_path / "edge", mosquitto, edge_id="gw1", site="s1",
                       machines=[modbus_machine(plant, "m1")]).start()
    try:
        # 20 parts x 30 s = 10 min of work due in 40 min: on time, unless m1 is down for 2 h
        post_order(central, order("SO-1", 2400, (10, "turn", "m1", 20, 30.0)))
        post_order(central, order("SO-2", 6 * 3600, (10, "deburr", "m1", 5, 30.0)))
        page, problems = open_page(contexts(locale="en-US", viewport={"width": 1280, "height": 800}), central.url)
        page.goto(f"{central.url}/orders")
        row = page.locator('#orders tr[data-order="SO-1"]')
        expect(row).to_have_attribute("data-status", "planned", timeout=SOON)
        expect(page.locator('#orders tr[data-order="SO-2"]')).to_be_visible()
        expect(page.locator("#banner")).to_be_hidden()

        plant.act("m1", "fault", {"code": 321})
        expect(row).to_have_attribute("data-status", "at_risk", timeout=REPROJECT)
        expect(row.locator(".badge")).to_have_text("At risk")
        expect(row.locator(".why")).to_contain_text("Machine down")
        expect(row.locator(".why")).to_contain_text("m1")
        expect(page.locator("#orders tbody tr").first).to_have_attribute("data-order", "SO-1")  # most urgent first

        # filters, and one order's operations
        page.get_by_label("Status").select_option("at_risk")
        expect(page.locator("#orders tbody tr")).to_have_count(1)
        row.locator("a").click()
        expect(page.locator("#detail-title")).to_contain_text("SO-1")
        expect(page.locator('#ops tr[data-op="SO-1/10"]')).to_contain_text("turn")
        expect(page.locator('#ops tr[data-op="SO-1/10"]')).to_contain_text("0/20")
        shoot(page, tmp_path, "orders-page.png", doc=True)

        # the Gantt shows the projection: SO-1 after m1's repair, its due time marked
        gantt, more = open_page(contexts(locale="zh-CN", viewport={"width": 1280, "height": 600}), central.url)
        gantt.goto(f"{central.url}/schedule")
        expect(gantt.locator("h1")).to_have_text("排产甘特图")
        block = gantt.locator('#gantt rect[data-op="SO-1/10"]')
        expect(block).to_have_count(1, timeout=SOON)
        expect(gantt.locator('#gantt rect[data-kind="down"]')).not_to_have_count(0)
        expect(gantt.locator('#gantt g.g-due[data-order="SO-1"]')).to_have_count(1)
        down = gantt.locator('#gantt rect[data-kind="down"]').first.bounding_box()
        op = block.bounding_box()
        assert down is not None and op is not None and op["x"] >= down["x"] + down["width"] - 2, (down, op)
        shoot(gantt, tmp_path, "schedule-page.png", doc=True)

        # repaired: the order is on time again, on both pages, live
        page.get_by_label("Status").select_option("")
        plant.act("m1", "clear")
        expect(row).not_to_have_attribute("data-status", "at_risk", timeout=REPROJECT)
        expect(gantt.locator('#gantt rect[data-kind="down"]')).to_have_count(0, timeout=REPROJECT)
        assert problems == [] and more == []
    finally:
        edge.stop()
