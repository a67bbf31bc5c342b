"""The orders and schedule pages in a real headless Chromium against a real central (issue 14).

The at-risk test runs the whole path: a simulated Modbus PLC, a real gateway (``python -m edge
run``), mosquitto, central with its order book and projector, and the page; a fault injected in
the simulator must turn the order "at risk" on the page, with the machine and the cause. One
browser per module; every wait is a condition with a deadline.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, expect

from tests.central.pagekit import FAULTS, READ_KEY, WRITE_KEY, api_keys, chromium, noon_zone, open_page, shoot
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.services import CentralProcess, EdgeProcess, modbus_machine

pytestmark = pytest.mark.browser
SOON = 25_000  # ms
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
    zone = noon_zone()  # it is about noon there: the shift runs, its break is ahead
    shifts = {"timezone": zone, "shifts": [{"name": "day", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                            "start": "06:00", "end": "22:00",
                                            "breaks": [{"start": "15:00", "end": "15:30"}]}]}
    central = central_factory(mosquitto, site="s1", plant={"timezone": zone, "lines": [{"id": "l1", "shifts": shifts}],
                                                "machines": [{"id": "m1", "name": "CNC 1", "faults": FAULTS,
                                                              "line": "l1"}]},
                              orders=ORDERS, api={"keys": api_keys()})
    edge = EdgeProcess(tmp_path / "edge", mosquitto, edge_id="gw1", site="s1",
                       machines=[modbus_machine(plant, "m1")]).start()
    try:
        # 20 parts x 30 s = 10 min of work due in 40 min: on time, unless m1 is down for 2 h
        post_order(central, order("SO-1", 2400, (10, "turn", "m1", 20, 30.0)))
        post_order(central, order("SO-2", 6 * 3600, (10, "deburr", "m1", 5, 30.0)))
        post_order(central, order("SO-0", -60, (10, "saw", "m1", 1, 30.0)))  # due a minute ago: late
        page, problems = open_page(contexts(locale="en-US", viewport={"width": 1280, "height": 800}), central.url)
        page.goto(f"{central.url}/orders")
        row = page.locator('#orders tr[data-order="SO-1"]')
        expect(row).to_have_attribute("data-status", "planned", timeout=SOON)
        expect(page.locator('#orders tr[data-order="SO-2"]')).to_be_visible()
        expect(page.locator("#banner")).to_be_hidden()
        late = page.locator('#orders tr[data-order="SO-0"]')
        expect(late).to_have_attribute("data-status", "late", timeout=SOON)
        expect(late.locator(".badge")).to_have_text("Late")
        expect(page.locator("#orders tbody tr").first).to_have_attribute("data-order", "SO-0")  # late first

        plant.act("m1", "fault", {"code": 321})
        expect(row).to_have_attribute("data-status", "at_risk", timeout=SOON)
        expect(row.locator(".badge")).to_have_text("At risk")
        expect(row.locator(".why")).to_contain_text("Machine down")
        expect(row.locator(".why")).to_contain_text("m1")
        expect(page.locator("#orders tbody tr").nth(1)).to_have_attribute("data-order", "SO-1")  # then at risk

        # filters, and one order's operations
        page.get_by_label("Status").select_option("at_risk")
        expect(page.locator("#orders tbody tr")).to_have_count(1)
        row.locator("a").click()
        expect(page.locator("#detail-title")).to_contain_text("SO-1")
        expect(page.locator('#ops tr[data-op="SO-1/10"]')).to_contain_text("turn")
        expect(page.locator('#ops tr[data-op="SO-1/10"]')).to_contain_text("0/20")
        page.get_by_label("Status").select_option("")
        expect(page.locator("#orders tbody tr")).to_have_count(3)
        shoot(page, tmp_path, "orders-page.png", doc=True)

        # a TV board: no forms, no buttons, larger text, the same live list
        board = contexts(locale="zh-TW", viewport={"width": 1920, "height": 1080}).new_page()
        board.goto(f"{central.url}/orders?board=1&lang=zh-Hant")
        expect(board.locator('#orders tr[data-order="SO-1"] .badge')).to_have_text("有延遲風險", timeout=SOON)
        expect(board.locator("button:visible")).to_have_count(0)
        expect(board.locator("input:visible")).to_have_count(0)
        shoot(board, tmp_path, "orders-board.png")

        # the Gantt shows the projection: SO-1 after m1's repair, its due time marked
        gantt, more = open_page(contexts(locale="zh-CN", viewport={"width": 1280, "height": 600}), central.url)
        gantt.goto(f"{central.url}/schedule")
        expect(gantt.locator("h1")).to_have_text("排产甘特图")
        block = gantt.locator('#gantt rect[data-op="SO-1/10"]')
        expect(block).to_have_count(1, timeout=SOON)
        expect(gantt.locator('#gantt rect[data-kind="down"]')).not_to_have_count(0)
        expect(gantt.locator('#gantt g.g-due[data-order="SO-1"]')).to_have_count(1)
        expect(gantt.locator('#gantt rect[data-kind="off"]')).not_to_have_count(0)  # the break, the night
        # times in the plant's zone, whatever the browser's: the break starts at 15:00 there
        expect(gantt.locator('#gantt rect[data-kind="off"] title').first).to_contain_text("15:00")
        down = gantt.locator('#gantt rect[data-kind="down"]').first.bounding_box()
        op = block.bounding_box()
        assert down is not None and op is not None and op["x"] >= down["x"] + down["width"] - 2, (down, op)
        shoot(gantt, tmp_path, "schedule-page.png", doc=True)
        tv = contexts(locale="en-US", viewport={"width": 1920, "height": 1080}).new_page()
        tv.goto(f"{central.url}/schedule?board=1")
        expect(tv.locator('#gantt rect[data-op="SO-1/10"]')).to_have_count(1, timeout=SOON)
        expect(tv.locator("button:visible, select:visible, nav:visible")).to_have_count(0)

        # repaired: the order is on time again, on both pages, live
        page.get_by_label("Status").select_option("")
        plant.act("m1", "clear")
        expect(row).not_to_have_attribute("data-status", "at_risk", timeout=SOON)
        expect(gantt.locator('#gantt rect[data-kind="down"]')).to_have_count(0, timeout=SOON)
        assert problems == [] and more == []
    finally:
        edge.stop()


REPORT_KEY = "line-phone-report-key"
GOOD_PLAN = (
    "order,product,quantity,due,seq,operation,machine,cycle_time,setup_time,job\n"
    "SO-10,flange,50,2030-01-10 16:00,10,press,m1,6,10min,1010\n"
    "SO-10,,,,20,weld,m2,30,,\n"
)
BAD_PLAN = GOOD_PLAN + "SO-11,hub,40,not a date,10,turn,m1,45,,\n"


def test_scan_reports_import_and_rush_order_from_the_pages(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
    contexts: Callable[..., BrowserContext], tmp_path: Path,
) -> None:
    """Scan to report moves an operation's progress, once per report even when tapped twice or when
    the answer is lost and the page sends it again; a spreadsheet with a bad row shows the row's
    error and imports nothing; a rush order is inserted from the page."""
    keys = [*api_keys(), {"name": "line-phone", "role": "report",
                          "sha256": hashlib.sha256(REPORT_KEY.encode()).hexdigest()}]
    central = central_factory(mosquitto, plant={"machines": [{"id": "m1"}, {"id": "m2"},
                                                             {"id": "w1", "work_centre": "welding"},
                                                             {"id": "w2", "work_centre": "welding"}]},
                              orders=ORDERS, api={"keys": keys, "open_reads": False})
    body = order("SO-7", 86_400, (10, "assemble", "m2", 20, 60.0))
    body["operations"][0]["count_source"] = "reports"
    post_order(central, body)
    welded = order("SO-8", 86_400, (10, "weld", "w1", 4, 60.0))
    welded["operations"][0].update(machine=None, work_centre="welding", count_source="reports")
    post_order(central, welded)

    # ---- the operator's phone: a report key, the card's code typed by a keyboard-wedge scanner
    phone_context = contexts(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone, problems = open_page(phone_context, central.url)
    phone.goto(f"{central.url}/scan?key={REPORT_KEY}")
    expect(phone.locator("h1")).to_have_text("扫码报工")
    phone.get_by_label("工号").fill("A017")
    phone.get_by_label("扫描或输入工序码").fill(f"{central.url}/scan?op=SO-7%2F10")
    phone.get_by_label("扫描或输入工序码").press("Enter")
    expect(phone.locator("#op-title")).to_contain_text("assemble", timeout=SOON)
    expect(phone.locator("#op-counts")).to_contain_text("良品 0 / 20")
    phone.get_by_role("button", name="开工").click()
    expect(phone.locator("#sent li.ok")).to_have_count(1, timeout=SOON)
    expect(phone.locator("#op-meta")).to_contain_text("生产中", timeout=SOON)

    # a double tap on "good 5": counted once
    phone.locator("#good-qty").fill("5")
    phone.get_by_role("button", name="报良品").dblclick()
    expect(phone.locator("#op-counts")).to_contain_text("良品 5 / 20", timeout=SOON)
    expect(phone.locator("#sent li.ok")).to_have_count(2)

    # the answer is lost after central applied the report: the page resends it with the same id
    lost: list[str] = []

    def lose_the_answer(route: Any) -> None:
        if not lost:
            lost.append(route.request.post_data or "")
            route.fetch()  # central gets it and applies it ...
            route.abort("connectionreset")  # ... and the phone never hears back
        else:
            route.continue_()

    phone.route("**/api/v1/reports", lose_the_answer)
    phone.locator("#good-qty").fill("2")
    phone.get_by_role("button", name="报良品").click()
    expect(phone.locator("#sent li.pending")).to_contain_text("未送达", timeout=SOON)
    expect(phone.locator("#sent li.pending")).to_have_count(0, timeout=SOON)  # resent by itself
    expect(phone.locator("#op-counts")).to_contain_text("良品 7 / 20", timeout=SOON)

    # no network at all: the report waits in the phone, survives a reload, and is sent once when back
    phone.unroute("**/api/v1/reports")
    phone.route("**/api/v1/reports", lambda route: route.abort("internetdisconnected"))
    phone.locator("#good-qty").fill("1")
    phone.get_by_role("button", name="报良品").click()
    expect(phone.locator("#sent li.pending")).to_have_count(1, timeout=SOON)
    phone.reload()
    expect(phone.locator("#sent li.pending")).to_have_count(1, timeout=SOON)
    phone.unroute("**/api/v1/reports")
    expect(phone.locator("#sent li.pending")).to_have_count(0, timeout=SOON)
    expect(phone.locator("#op-counts")).to_contain_text("良品 8 / 20", timeout=SOON)
    op = central.http.get("/api/v1/orders/SO-7", headers=WRITE).json()["operations"][0]
    assert (op["good"], op["status"]) == (8, "running"), op
    assert lost and '"good":2' in lost[0].replace(" ", "")
    shoot(phone, tmp_path, "scan-page.png", doc=True)

    # the machine stands for want of material: a stop reason for the operation's machine
    phone.get_by_label("停机原因").select_option("material")
    phone.get_by_role("button", name="停机").click()
    expect(phone.locator("#sent li.ok").first).to_contain_text("m2 停机: 待料", timeout=SOON)
    stops = central.http.get("/api/v1/stops", params={"machine": "m2"}, headers=WRITE).json()["stops"]
    assert [(s["machine"], s["reason"], s["operator"]) for s in stops] == [("m2", "material", "A017")], stops

    # a work-centre operation: the operator says on which of the centre's machines it starts
    phone.get_by_label("扫描或输入工序码").fill("SO-8/10")
    phone.get_by_label("扫描或输入工序码").press("Enter")
    where = phone.get_by_label("在哪台设备（工作中心）")
    expect(where).to_be_visible(timeout=SOON)
    expect(where.locator("option")).to_have_count(2)
    where.select_option("w2")
    phone.get_by_role("button", name="开工").click()
    expect(phone.locator("#op-meta")).to_contain_text("生产中", timeout=SOON)
    weld = central.http.get("/api/v1/orders/SO-8", headers=WRITE).json()["operations"][0]
    assert weld["running_on"] == ["w2"], weld
    phone.get_by_label("扫描或输入工序码").fill("SO-7/10")
    phone.get_by_label("扫描或输入工序码").press("Enter")
    expect(phone.locator("#where-row")).to_be_hidden(timeout=SOON)

    # ---- the planner's page: the progress is there; an import with a bad row changes nothing
    planner = contexts(locale="en-US", viewport={"width": 1280, "height": 900})
    page, more = open_page(planner, central.url)
    page.goto(f"{central.url}/orders?key={WRITE_KEY}")
    row = page.locator('#orders tr[data-order="SO-7"]')
    expect(row).to_have_attribute("data-status", "running", timeout=SOON)
    expect(row).to_contain_text("40%")
    page.evaluate(f"localStorage.setItem('plantpulse.key', '{WRITE_KEY}')")
    page.locator("#import-file").set_input_files({"name": "plan.csv", "mimeType": "text/csv",
                                                   "buffer": BAD_PLAN.encode()})
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-result")).to_contain_text("Nothing was imported", timeout=SOON)
    bad = page.locator('#import-errors tr[data-row="4"]')
    expect(bad).to_contain_text("due")
    listed = central.http.get("/api/v1/orders", headers=WRITE).json()["orders"]
    assert [o["id"] for o in listed] == ["SO-7", "SO-8"], listed
    page.locator("#import-file").set_input_files({"name": "plan.csv", "mimeType": "text/csv",
                                                   "buffer": GOOD_PLAN.encode()})
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-result")).to_contain_text("created 1", timeout=SOON)
    expect(page.locator('#orders tr[data-order="SO-10"]')).to_be_visible(timeout=SOON)
    expect(page.locator("#import-errors")).to_be_hidden()

    # ---- a rush order from the page: a read key is refused (said so), the write key inserts it
    reader_page, theirs = open_page(contexts(locale="en-US"), central.url)
    reader_page.goto(f"{central.url}/orders?key={READ_KEY}")
    for field, value in (("#r-id", "NOPE-1"), ("#r-product", "shaft"), ("#r-qty", "3"), ("#r-due", "2030-01-05T12:00")):
        reader_page.locator(field).fill(value)
    for name, value in (("name", "turn"), ("machine", "m1"), ("ideal_cycle_time", "40")):
        reader_page.locator(f".r-op [name={name}]").first.fill(value)
    reader_page.get_by_role("button", name="Insert").click()
    expect(reader_page.locator("#rush-error")).to_contain_text("This key may only read", timeout=SOON)
    expect(reader_page.locator("#key-dialog")).to_be_visible()
    assert central.http.get("/api/v1/orders/NOPE-1", headers=WRITE).status_code == 404
    page.locator("#r-id").fill("RUSH-1")
    page.locator("#r-product").fill("shaft")
    page.locator("#r-qty").fill("3")
    page.locator("#r-due").fill("2030-01-05T12:00")
    first = page.locator(".r-op").first
    first.locator("[name=name]").fill("turn")
    first.locator("[name=machine]").fill("m1")
    first.locator("[name=ideal_cycle_time]").fill("40")
    page.get_by_role("button", name="Insert").click()
    expect(page.locator("#rush-ok")).to_contain_text("RUSH-1", timeout=SOON)
    expect(page.locator('#orders tr[data-order="RUSH-1"]')).to_contain_text("rush", timeout=SOON)
    expect(page.locator("#detail-title")).to_contain_text("RUSH-1")
    rush = central.http.get("/api/v1/orders/RUSH-1", headers=WRITE).json()
    assert rush["rush"] is True and rush["operations"][0]["machine"] == "m1"
    dispatch = central.http.get("/api/v1/machines/m1/dispatch", headers=WRITE).json()["operations"]
    assert [(d["order_id"], d["seq"]) for d in dispatch][:1] == [("RUSH-1", 10)], dispatch
    shoot(page, tmp_path, "orders-forms.png")

    # ---- the status board's tile of m2 shows the operation it runs, linked to its order
    status_page, seen = open_page(contexts(locale="en-US"), central.url)
    status_page.goto(f"{central.url}/?key={READ_KEY}")
    job = status_page.locator('.tile[data-machine="m2"] .job a')
    expect(job).to_have_text("SO-7/10", timeout=SOON)
    assert job.get_attribute("href") == f"/orders?order=SO-7&key={READ_KEY}"  # the board's key goes along
    job.click()
    expect(status_page.locator("#detail-title")).to_contain_text("SO-7", timeout=SOON)
    assert [p for p in seen if "outside request" in p or "script error" in p] == [], seen

    # ---- the orders on a phone: one column, nothing wider than the screen
    phone.goto(f"{central.url}/orders?key={REPORT_KEY}")
    expect(phone.locator('#orders tr[data-order="RUSH-1"]')).to_be_visible(timeout=SOON)
    width = phone.evaluate("document.documentElement.scrollWidth")
    shoot(phone, tmp_path, "orders-phone.png")
    assert width <= 400, width

    # ---- job cards: one per operation, each with its QR code
    cards, again = open_page(contexts(locale="en-US", viewport={"width": 900, "height": 700}), central.url)
    cards.goto(f"{central.url}/cards?orders=SO-10&key={READ_KEY}")
    expect(cards.locator(".jobcard")).to_have_count(2, timeout=SOON)
    expect(cards.locator('.jobcard[data-op="SO-10/20"]')).to_contain_text("weld")
    expect(cards.locator('.jobcard[data-op="SO-10/20"] img.qr')).to_have_attribute("src", re.compile("^data:image/svg"),
                                                                                 timeout=SOON)
    shoot(cards, tmp_path, "job-cards.png", doc=True)
    cards.emulate_media(media="print")  # on paper: the cards only, no header or form
    expect(cards.locator("#bar")).to_be_hidden()
    expect(cards.locator("#cards-form")).to_be_hidden()
    cards.pdf(path=tmp_path / "job-cards.pdf", format="A4")
    assert (tmp_path / "job-cards.pdf").read_bytes().startswith(b"%PDF")

    # the operator finishes the operation: the order is done, and leaves the open orders
    phone.goto(f"{central.url}/scan?op=SO-7%2F10&key={REPORT_KEY}")
    expect(phone.locator("#op-title")).to_contain_text("assemble", timeout=SOON)
    phone.get_by_role("button", name="完工").click()
    expect(phone.locator("#op-meta")).to_contain_text("完工", timeout=SOON)
    expect(page.locator('#orders tr[data-order="SO-7"]')).to_have_count(0, timeout=SOON)
    page.get_by_label("Status").select_option("done")
    expect(page.locator('#orders tr[data-order="SO-7"]')).to_have_attribute("data-status", "done", timeout=SOON)
    assert problems == [] and more == [] and again == []
    assert [p for p in theirs if "outside request" in p or "script error" in p] == [], theirs
