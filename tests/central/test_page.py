"""The live machine-status page at ``/`` in a real headless Chromium against a real central.

What a person on the floor relies on: a fault turns its tile red and shows an alert within
seconds, acknowledging works (and says clearly why when it does not), a lost connection is shown
and heals on its own, and the page reads well on a phone, on a TV board and in three languages.
Every wait is a condition with a deadline (Playwright's ``expect``), generous for a busy machine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from central.api.routes.pages import PAGES, WEB
from tests.central.pagekit import FAULTS, READ_KEY, WRITE_KEY, HandGateway, api_keys, chromium
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.plant import SimulatedPlant
from tests.fixtures.procs import free_port
from tests.fixtures.services import CentralProcess, EdgeProcess, modbus_machine
from tests.fixtures.waiting import wait_until

SOON = 20_000  # ms: "within seconds", with room for two busy cores shared with other test runs
RED, GREEN = "rgb(198, 40, 40)", "rgb(27, 122, 58)"
PLANT = yaml.safe_dump({  # two machines that start running a long job and never break down on their own
    "name": "page", "seed": 5, "speed": 20, "min_state_duration": 0.3, "control_port": 0,
    "machines": [{"id": mid, "protocol": "modbus", "cycle_time": 4, "setup_time": 2, "idle_between_jobs": 1,
                  "job_quantity": [900, 900]} for mid in ("m1", "m2")],
})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """New browser contexts (own storage, locale, viewport), closed before central stops."""
    opened: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


def open_page(context: BrowserContext, origin: str) -> tuple[Page, list[str]]:
    """A page that records what must never happen: a script error, a request to another origin (a CDN)."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("request", lambda r: None if r.url.startswith(origin) else problems.append(f"outside request: {r.url}"))
    return page, problems


def tile(page: Page, machine_id: str) -> Locator:
    return page.locator(f'.tile[data-machine="{machine_id}"]')


def alert_item(page: Page, subject: str) -> Locator:
    return page.locator(f'li.alert[data-subject="{subject}"]')


def font_size(locator: Locator) -> float:
    return float(locator.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))


def active_alert(central: CentralProcess, subject: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        alerts = central.get("/api/v1/alerts", status="active", subject=subject)["alerts"]
        return next((a for a in alerts if a["status"] != "resolved"), None)

    found = wait_until(probe, SOON / 1000, what=f"an active alert for {subject} in the API")
    assert found is not None
    return found


# ---------------------------------------------------------------------------------------------
def test_page_and_its_files_are_served_from_central_only(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess]
) -> None:
    """Everything comes from central itself (a factory LAN has no internet): no CDN, no outside URL."""
    central = central_factory(mosquitto)
    page = central.http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<html lang="' in page.text
    local = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    pages = {"/", *PAGES}  # the navigation between central's own pages
    assert local and all(ref.startswith("/static/") or ref in pages for ref in local), local
    for ref in local:
        assert central.http.get(ref).status_code == 200, ref
    for path in (*PAGES, "/machines/cnc-01"):  # every page: no key (no data in it), this origin only
        answer = central.http.get(path)
        assert answer.status_code == 200 and "default-src 'self'" in answer.headers["content-security-policy"], path
        assert all(r.startswith("/static/") or r in pages or r == "#"
                   for r in re.findall(r'(?:src|href)="([^"]+)"', answer.text)), path
    assert central.http.get("/static/vendor/jsqr.js").status_code == 200
    assert central.http.get("/static/vendor/jsqr-license.txt").text.lstrip().startswith("Apache License")
    types = {"app.js": "text/javascript", "style.css": "text/css", "icon.svg": "image/svg+xml"}
    for name, kind in types.items():
        assert central.http.get(f"/static/{name}").headers["content-type"].startswith(kind)
    files = [*WEB.iterdir(), *(WEB / "pages").iterdir()]  # the static files, and the parts of the pages
    for path in sorted(p for p in files if p.is_file()):  # an XML namespace is a name, not fetched
        text = re.sub(r'xmlns="[^"]*"|"http://www\.w3\.org/2000/svg"', "", path.read_text())
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), f"outside URL in {path.name}"
    assert central.http.head("/").status_code == 200
    assert central.http.head("/orders").status_code == 200 and not central.http.head("/orders").content
    for bad in ("/static/nope.js", "/static/..%2Fapi%2Fapp.py", "/static/..%2F__init__.py", "/static/.hidden.js",
                "/static/app.py"):
        assert central.http.get(bad).status_code == 404, bad
    assert "no file 'nope.js'" in central.http.get("/static/nope.js").json()["detail"]


@pytest.mark.browser
def test_api_docs_render_with_no_internet(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
    contexts: Callable[..., BrowserContext], tmp_path: Path,
) -> None:
    """/docs (Swagger UI) and /redoc load their scripts from central itself, not a CDN (issue 14)."""
    central = central_factory(mosquitto, api={"open_reads": False, "keys": api_keys()})
    for path in ("/docs", "/redoc"):
        html = central.http.get(path).text
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert refs and all(r.startswith("/") for r in refs), (path, refs)  # no https://cdn...
        for ref in refs:
            assert central.http.get(ref).status_code == 200, ref  # no key needed for the docs' files
    context = contexts(locale="en-US")
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())  # the plant LAN
    page, problems = open_page(context, central.url)
    page.goto(f"{central.url}/docs")
    expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=SOON)
    expect(page.get_by_text("/api/v1/machines", exact=True).first).to_be_visible()
    page.screenshot(path=tmp_path / "docs.png")
    assert not [p for p in problems if "outside request" in p], problems


# ---------------------------------------------------------------------------------------------
def test_tiles_languages_phone_and_board(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
    contexts: Callable[..., BrowserContext], tmp_path: Path,
) -> None:
    machines = [
        {"id": "m1", "name": "CNC 1", "faults": FAULTS}, {"id": "m2", "name": "Press 2", "faults": FAULTS},
        {"id": "m3", "name": "Robot 3"}, {"id": "m4", "name": "Lathe 4"}, {"id": "m5", "name": "Mill 5"},
    ]
    central = central_factory(mosquitto, plant={"machines": machines}, read_key=READ_KEY,
                              api={"open_reads": False, "keys": api_keys()})
    gw1, gw2 = HandGateway(mosquitto, "gw1"), HandGateway(mosquitto, "gw2")
    try:
        gw1.online(["m1", "m2", "m5"])
        gw2.online(["m4"])
        gw1.state("m1", "running", ago=125, job="J-7")
        gw1.count("m1", 4, 1, job="J-7")
        gw1.state("m2", "fault", fault_code=321, job="J-8")
        gw1.state("m5", "offline", reason="timeout")
        gw2.state("m4", "idle")
        wait_until(lambda: central.machine("m4")["state"] == "idle", SOON / 1000, what="m4 idle")
        gw2.offline()
        wait_until(lambda: central.gateway("gw2")["online"] is False, SOON / 1000, what="gw2 offline")

        # Traditional Chinese from the browser's language; a browser clock an hour fast changes nothing
        context = contexts(locale="zh-TW", viewport={"width": 1280, "height": 900})
        page, problems = open_page(context, central.url)
        page.clock.install(time=time.time() + 3600)
        page.goto(central.url)
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
        expect(page.locator("h1")).to_have_text("設備狀態")
        # reads need a key on this central: the page says so and asks for one
        key_dialog = page.locator("#key-dialog")
        expect(page.locator("#banner")).to_have_text("檢視設備狀態需要金鑰：請按「金鑰」儲存讀取金鑰。", timeout=SOON)
        expect(key_dialog).to_be_visible()
        key_dialog.locator("#key-input").fill(READ_KEY)
        key_dialog.get_by_role("button", name="儲存").click()
        expect(key_dialog).to_be_hidden()
        expect(tile(page, "m1")).to_have_attribute("data-state", "running", timeout=SOON)
        expect(tile(page, "m1")).to_have_css("background-color", GREEN)
        expect(tile(page, "m1")).to_contain_text("J-7")
        expect(tile(page, "m1").locator(".counts")).to_have_text("今日 良品 4 · 不良 1")
        elapsed = tile(page, "m1").locator(".elapsed")
        expect(elapsed).to_have_text(re.compile(r"^[23]:\d\d$"))  # ~2:05 on central's clock, not 1:02:05
        first = elapsed.inner_text()
        expect(elapsed).not_to_have_text(first, timeout=SOON)  # it ticks
        expect(tile(page, "m2")).to_have_css("background-color", RED)
        expect(tile(page, "m2").locator(".fault")).to_have_text("故障碼 321 · 液压压力低")
        expect(tile(page, "m3")).to_have_attribute("data-state", "unknown")
        expect(tile(page, "m3")).to_contain_text("無資料")
        expect(tile(page, "m4")).to_have_class(re.compile(r"\bstale\b"))
        expect(tile(page, "m4")).to_contain_text("閘道離線：顯示最後已知狀態")
        stopped = tile(page, "m4").locator(".elapsed")
        expect(stopped).to_have_text(re.compile(r"^狀態未知，自 \d\d:\d\d$"))  # no live timer, since when
        expect(tile(page, "m1").locator(".job")).to_have_text("程式號 J-7")  # the PLC's number, not an order
        expect(tile(page, "m4")).to_have_attribute("data-state", "idle")
        expect(tile(page, "m5")).to_have_attribute("data-state", "offline")
        expect(tile(page, "m5")).to_contain_text("timeout")
        expect(alert_item(page, "m2")).to_contain_text("故障 321", timeout=SOON)  # a read key sees alerts
        page.screenshot(path=tmp_path / "page-zh-Hant.png", full_page=True)

        # the switch: English, remembered after a reload
        page.get_by_label("語言").select_option("en")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(tile(page, "m2").locator(".fault")).to_have_text("Fault 321 · hydraulic pressure low")
        page.reload()
        expect(page.locator("h1")).to_have_text("Machine status")
        expect(page.get_by_label("Language")).to_have_value("en")
        page.get_by_label("Language").select_option("zh-Hans")
        expect(tile(page, "m2").locator(".state")).to_have_text("故障")
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")

        # a wrong key is said so (and asked for again); a read key shows the machines and alerts again
        page.get_by_role("button", name="密钥").click()
        key_dialog.locator("#key-input").fill("nonsense")
        key_dialog.get_by_role("button", name="保存").click()
        expect(page.locator("#banner")).to_have_text("保存的密钥无效：请点“密钥”保存正确的密钥。", timeout=SOON)
        expect(key_dialog).to_be_visible()
        key_dialog.locator("#key-input").fill(READ_KEY)
        key_dialog.get_by_role("button", name="保存").click()
        expect(key_dialog).to_be_hidden()
        expect(page.locator("#banner")).to_be_hidden(timeout=SOON)
        expect(alert_item(page, "m2")).to_contain_text("Press 2 (m2) 故障 321：液压压力低", timeout=SOON)
        expect(page.locator("#alerts-note")).to_be_hidden()

        # a phone: one column
        phone = contexts(locale="en-US", viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
        phone.goto(f"{central.url}/?key={READ_KEY}")
        expect(phone.locator(".tile")).to_have_count(5, timeout=SOON)
        expect(phone.locator(".tile").first).to_have_attribute("data-machine", "m2")  # the one in fault first
        boxes = [box for i in range(5) if (box := phone.locator(".tile").nth(i).bounding_box()) is not None]
        assert len(boxes) == 5 and all(abs(b["x"] - boxes[0]["x"]) < 1 and b["width"] > 300 for b in boxes), boxes
        phone.screenshot(path=tmp_path / "page-phone.png", full_page=True)

        # a TV board: large tiles, no buttons, a read key in its URL
        board = contexts(locale="en-US", viewport={"width": 1920, "height": 1080}).new_page()
        board.goto(f"{central.url}/?board=1&key={READ_KEY}")
        expect(alert_item(board, "m2")).to_contain_text("hydraulic pressure low", timeout=SOON)
        expect(tile(board, "m1")).to_have_attribute("data-state", "running")
        expect(board.locator("button:visible")).to_have_count(0)
        expect(board.locator("select:visible")).to_have_count(0)
        big, small = font_size(tile(board, "m1").locator(".state")), font_size(tile(page, "m1").locator(".state"))
        assert big > 1.4 * small, (big, small)
        board.screenshot(path=tmp_path / "page-board.png")
        assert problems == []
    finally:
        gw1.close()
        gw2.close()


# ---------------------------------------------------------------------------------------------
def test_a_fault_in_the_plant_reaches_the_page_and_is_acknowledged_there(
    plant_factory: Callable[[str], SimulatedPlant], mosquitto: Mosquitto,
    central_factory: Callable[..., CentralProcess], contexts: Callable[..., BrowserContext], tmp_path: Path,
) -> None:
    """The whole path: simulated Modbus PLCs -> `python -m edge run` -> mosquitto -> central -> the page."""
    plant = plant_factory(PLANT)
    machines = [{"id": "m1", "name": "CNC 1", "faults": FAULTS}, {"id": "m2", "name": "Press 2", "faults": FAULTS}]
    central = central_factory(mosquitto, site="s1", plant={"machines": machines},
                              api={"port": free_port(), "keys": api_keys()})
    edge = EdgeProcess(tmp_path / "edge", mosquitto, edge_id="gw1", site="s1",
                       machines=[modbus_machine(plant, "m1"), modbus_machine(plant, "m2")]).start()
    try:
        page, problems = open_page(contexts(locale="en-US", viewport={"width": 1280, "height": 900}), central.url)
        page.goto(central.url)
        for mid in ("m1", "m2"):
            expect(tile(page, mid)).to_have_attribute("data-state", "running", timeout=SOON)
        expect(tile(page, "m1")).to_contain_text("Gateway gw1 · online")
        expect(page.locator("#alerts-note")).to_have_text("No open alerts")

        plant.act("m1", "fault", {"code": 321})
        expect(tile(page, "m1")).to_have_attribute("data-state", "fault", timeout=SOON)
        expect(tile(page, "m1")).to_have_css("background-color", RED)
        expect(tile(page, "m1").locator(".fault")).to_have_text("Fault 321 · hydraulic pressure low")
        item = alert_item(page, "m1")
        expect(item).to_contain_text("CNC 1 (m1) fault 321: hydraulic pressure low", timeout=SOON)
        expect(item).to_contain_text("Critical")
        alert = active_alert(central, "m1")

        # acknowledge: a wrong key (401), a read key (403), then the write key
        item.get_by_role("button", name="Acknowledge").click()
        dialog = page.locator("#ack-dialog")
        expect(dialog).to_be_visible()
        dialog.get_by_label("Your name").fill("张工")
        dialog.get_by_label("Note").fill("hydraulic hose replaced")
        error = dialog.locator("#ack-error")
        for key, message in (("wrong", "The key was not accepted"), (READ_KEY, "This key may only read")):
            dialog.get_by_label("Write key").fill(key)
            dialog.get_by_role("button", name="Acknowledge").click()
            expect(error).to_contain_text(message)
        dialog.get_by_label("Write key").fill(WRITE_KEY)
        dialog.get_by_role("button", name="Acknowledge").click()
        expect(dialog).to_be_hidden()
        expect(item).to_contain_text("Acknowledged · 张工 · hydraulic hose replaced")
        expect(item.get_by_role("button")).to_have_count(0)
        acked = central.get(f"/api/v1/alerts/{alert['id']}")
        assert (acked["status"], acked["acknowledged_by"], acked["ack_note"]) == (
            "acknowledged", "张工", "hydraulic hose replaced")
        assert page.evaluate("localStorage.getItem('plantpulse.key')") == WRITE_KEY

        # someone else acknowledges first: a clear 409; the name and key were remembered
        plant.act("m2", "fault", {"code": 321})
        other = alert_item(page, "m2")
        expect(other.get_by_role("button", name="Acknowledge")).to_be_visible(timeout=SOON)
        other.get_by_role("button", name="Acknowledge").click()
        expect(dialog.get_by_label("Your name")).to_have_value("张工")
        expect(page.locator("#ack-key-row")).to_be_hidden()
        theirs = active_alert(central, "m2")
        response = central.http.post(f"/api/v1/alerts/{theirs['id']}/ack", json={"by": "李工"},
                                     headers={"Authorization": f"Bearer {WRITE_KEY}"})
        assert response.status_code == 200, response.text
        dialog.get_by_role("button", name="Acknowledge").click()
        expect(error).to_contain_text("can no longer be acknowledged")
        expect(error).to_contain_text("already acknowledged by 李工")
        dialog.get_by_role("button", name="Cancel").click()
        expect(other).to_contain_text("Acknowledged · 李工")
        page.screenshot(path=tmp_path / "page.png", full_page=True)

        # central goes away: the banner; it comes back: the page recovers on its own
        banner = page.locator("#banner")
        expect(banner).to_be_hidden()
        central.stop()
        expect(banner).to_be_visible(timeout=SOON)
        expect(banner).to_have_text("Connection lost, reconnecting…")
        plant.act("m1", "clear")  # repaired while central is away: the gateway keeps it for central
        central.start()
        expect(banner).to_be_hidden(timeout=SOON)
        expect(tile(page, "m1")).to_have_attribute("data-state", "running", timeout=SOON)
        expect(tile(page, "m1")).to_have_css("background-color", GREEN)
        expect(alert_item(page, "m1")).to_have_count(0, timeout=SOON)
        expect(alert_item(page, "m2")).to_contain_text("Acknowledged · 李工")
        page.screenshot(path=tmp_path / "page-recovered.png", full_page=True)
        assert (tmp_path / "page.png").stat().st_size > 10_000
        assert problems == []
    finally:
        edge.stop()
