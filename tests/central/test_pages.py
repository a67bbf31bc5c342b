"""The machine, scan and job-card pages in a real headless Chromium against a real central (issue 14).

One browser for the whole module (starting Chromium is the slow part); every test opens its own
contexts and closes them before its central stops. Central is fed by a hand-made gateway over a
real broker (tests/central/pagekit.py), so a day with faults, setups and parts exists at once.
Every test keeps a PNG in its temporary folder; ``PLANTPULSE_DOC_IMAGES=1`` also writes the
pictures of docs/img (docs/pages.md, "Screenshots").
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.central.pagekit import (
    FAULTS,
    READ_KEY,
    WRITE_KEY,
    HandGateway,
    api_keys,
    chromium,
    noon_zone,
    open_page,
    qr_video,
    shoot,
)
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.procs import free_port
from tests.fixtures.services import CentralProcess
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.browser
SOON = 20_000  # ms
CAMERA_CODE = "http://plant.example:8080/scan?op=SO-9%2F20"  # what a job card's QR code holds


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One Chromium for the module, whose camera films a job card's QR code (a fake device)."""
    video = qr_video(CAMERA_CODE, tmp_path_factory.mktemp("camera") / "qr.y4m")
    args = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]
    with chromium(args) as b:
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


def plant(zone: str) -> dict[str, Any]:
    return {"timezone": zone, "machines": [
        {"id": "m1", "name": "CNC 1", "faults": FAULTS, "ideal_cycle_time": 30},
        {"id": "m2", "name": "Press 2", "faults": FAULTS},
    ]}


# ---------------------------------------------------------------------------------------------
def test_machine_page_day_pareto_oee_languages_and_live_state(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
    contexts: Callable[..., BrowserContext], tmp_path: Path,
) -> None:
    central = central_factory(mosquitto, plant=plant(noon_zone()), read_key=READ_KEY,
                              api={"open_reads": False, "keys": api_keys(), "port": free_port()})
    gw = HandGateway(mosquitto, "gw1")
    try:
        gw.online(["m1", "m2"])
        # m1's morning: running since 00:30, a 10-minute fault 321, running, a 5-minute setup, a 4-minute
        # fault 321, running, then idle for want of material (in a zone where it is now about noon)
        for ago, state, fields in ((41_400, "running", {}), (3000, "fault", {"fault_code": 321}), (2400, "running", {}),
                                   (1500, "setup", {}), (1200, "running", {}), (700, "fault", {"fault_code": 321}),
                                   (460, "running", {}), (200, "idle", {})):
            gw.state("m1", state, ago=ago, job="J-7", **fields)
        gw.count("m1", 40, 2, job="J-7")
        # the operator says why m1 stands idle: waiting for material
        stop = {"client_id": "stop-1", "operator": "A017", "machine": "m1", "reason": "material",
                "start": time.time() - 200}
        answer = central.http.post("/api/v1/stops", json=stop, headers={"Authorization": f"Bearer {WRITE_KEY}"})
        assert answer.status_code == 201, answer.text
        wait_until(lambda: central.get("/api/v1/machines/m1/day")["reliability"]["failures"] == 2, SOON / 1000,
                   what="m1's day with its two failures")
        day = central.get("/api/v1/machines/m1/day")
        fault = day["causes"][0]
        assert (fault["category"], fault["code"], fault["stops"]) == ("fault", 321, 2), day["causes"]
        assert fault["text"] == FAULTS[321] and abs(fault["seconds"] - 840) < 5, fault
        assert [c["category"] for c in day["causes"]][:2] == ["fault", "setup"], day["causes"]
        assert day["causes"][-1]["cumulative"] == 1.0
        assert 0 < day["oee"]["availability"] < 1 and day["oee"]["quality"] == round(40 / 42, 4)

        context = contexts(locale="en-US", viewport={"width": 1280, "height": 1000})
        page, problems = open_page(context, central.url)
        page.goto(f"{central.url}/machines/m1?key={READ_KEY}")
        expect(page.locator("#m-name")).to_contain_text("CNC 1", timeout=SOON)
        expect(page.locator("#m-state")).to_have_attribute("data-state", "idle", timeout=SOON)
        rows = page.locator("#causes tbody tr")
        expect(rows.first).to_have_attribute("data-cause", "fault-321", timeout=SOON)
        expect(rows.first).to_contain_text("Fault 321 · hydraulic pressure low")
        expect(rows.first.locator("td").nth(2)).to_have_text("2")
        expect(page.locator("#causes")).to_contain_text("Setup")
        expect(page.locator('#causes tr[data-cause="reason-material"]')).to_contain_text("Idle · Waiting for material")
        expect(page.locator("#pareto svg rect")).to_have_count(len(day["causes"]))
        expect(page.locator("#timeline rect.tl-fault")).to_have_count(2)
        expect(page.locator("#timeline rect.tl-setup")).to_have_count(1)
        expect(page.locator("#k-oee")).to_have_text(re.compile(r"^\d+\.\d%$"))
        expect(page.locator("#k-quality")).to_have_text("95.2%")
        expect(page.locator("#k-mttr")).to_have_text(re.compile(r"^7m 0\ds$"))  # (600 + 240) s / 2 failures
        expect(page.locator("#k-parts")).to_have_text("40 / 2")
        expect(page.locator("#dispatch-note")).not_to_be_empty()
        shoot(page, tmp_path, "machine-page.png", doc=True)

        # live: a fault on the machine shows at once, and its figures follow
        gw.state("m1", "fault", fault_code=321, job="J-7")
        expect(page.locator("#m-state")).to_have_attribute("data-state", "fault", timeout=SOON)
        expect(page.locator("#m-state")).to_contain_text("hydraulic pressure low")
        expect(page.locator("#timeline rect.tl-fault")).to_have_count(3, timeout=SOON)

        # languages: simplified and traditional Chinese, fault texts in Chinese
        page.get_by_label("Language").select_option("zh-Hans")
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        expect(page.locator("#oee-title")).to_have_text("今日 OEE")
        expect(rows.first).to_contain_text("故障码 321 · 液压压力低")
        page.get_by_label("语言").select_option("zh-Hant")
        expect(page.locator("#pareto-title")).to_have_text("停機原因（柏拉圖）")
        expect(page.locator("nav a.here")).to_have_count(0)
        shoot(page, tmp_path, "machine-page-zh-Hant.png")

        # a phone: one column, nothing wider than the screen
        phone = contexts(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
        phone.goto(f"{central.url}/machines/m1?key={READ_KEY}")
        expect(phone.locator("#causes tbody tr").first).to_contain_text("液压压力低", timeout=SOON)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, width
        shoot(phone, tmp_path, "machine-phone.png")

        # a TV board: no controls, larger figures
        board = contexts(locale="zh-CN", viewport={"width": 1920, "height": 1080}).new_page()
        board.goto(f"{central.url}/machines/m1?board=1&key={READ_KEY}")
        expect(board.locator("#causes tbody tr").first).to_contain_text("液压压力低", timeout=SOON)
        expect(board.locator("button:visible, select:visible, nav:visible")).to_have_count(0)
        big = board.locator("#k-oee").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        small = page.locator("#k-oee").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert big > 1.3 * small, (big, small)
        shoot(board, tmp_path, "machine-board.png")

        # central goes away: the banner; it comes back: the page recovers on its own
        banner = page.locator("#banner")
        expect(banner).to_be_hidden()
        central.stop()
        expect(banner).to_have_text("連線中斷，正在重新連線…", timeout=SOON)
        gw.state("m1", "running", job="J-7")  # repaired while central is away
        central.start()
        expect(banner).to_be_hidden(timeout=SOON)
        expect(page.locator("#m-state")).to_have_attribute("data-state", "running", timeout=SOON)

        # an unknown machine: said clearly, no script error
        page.goto(f"{central.url}/machines/nope?key={READ_KEY}&lang=en")
        expect(page.locator("#m-note")).to_contain_text("no machine 'nope'", timeout=SOON)
        assert problems == []
    finally:
        gw.close()


# ---------------------------------------------------------------------------------------------
def test_scan_page_reads_codes_from_a_scanner_and_the_camera_and_qr_codes_decode(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
    contexts: Callable[..., BrowserContext], tmp_path: Path,
) -> None:
    """The scanning half of scan-to-report: a keyboard-wedge scanner (types the code and Enter),
    the camera (Chromium's fake camera films a QR code, decoded by BarcodeDetector or the vendored
    jsQR), and central's QR codes decoded back by jsQR in the browser."""
    central = central_factory(mosquitto, plant=plant("UTC"))
    context = contexts(locale="en-US", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context.grant_permissions(["camera"], origin=central.url)
    page, problems = open_page(context, central.url)
    page.goto(f"{central.url}/scan")
    expect(page.locator("h1")).to_have_text("Scan to report")
    expect(page.locator("#operator")).to_be_focused()
    page.locator("#operator").fill("A017")
    page.locator("#code").fill("nonsense")
    page.locator("#code").press("Enter")
    expect(page.locator("#send-note")).to_contain_text("Not an operation's code")

    # the scanner types an address from a card (order ids may hold slashes) and Enter
    page.locator("#code").fill(f"{central.url}/scan?op=SO%2F7-1%2F30")
    page.locator("#code").press("Enter")
    expect(page.locator("#op-card")).to_have_attribute("data-op", "SO/7-1/30")
    expect(page.locator("#op-title")).to_contain_text("SO/7-1 / 30")
    page.locator("#code").fill("SO-8/10")
    page.locator("#code").press("Enter")
    expect(page.locator("#op-card")).to_have_attribute("data-op", "SO-8/10")
    assert page.evaluate("new URL(location.href).searchParams.get('op')") == "SO-8/10"

    # the camera: the fake device films a card's code (http://127.0.0.1 is a secure context)
    page.get_by_role("button", name="Camera").click()
    expect(page.locator("#op-card")).to_have_attribute("data-op", "SO-9/20", timeout=SOON)
    expect(page.locator("#video")).to_be_hidden()

    # central's QR code (the job cards') decodes with the vendored decoder
    text = f"{central.url}/scan?op=SO-1001%2F20"
    assert "<svg" in central.http.get("/api/v1/qr", params={"text": text}).text
    decoded = page.evaluate("""async (text) => {
        await new Promise((ok, bad) => { const s = document.createElement("script"); s.src = "/static/vendor/jsqr.js";
            s.onload = ok; s.onerror = bad; document.head.append(s); });
        const svg = await (await fetch("/api/v1/qr?scale=6&text=" + encodeURIComponent(text))).text();
        const img = new Image();
        img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
        await img.decode();
        const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
        const ctx = c.getContext("2d"); ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, c.width, c.height);
        ctx.drawImage(img, 0, 0);
        const found = jsQR(ctx.getImageData(0, 0, c.width, c.height).data, c.width, c.height);
        return found && found.data;
    }""", text)
    assert decoded == text
    assert central.http.get("/api/v1/qr", params={"text": ""}).status_code == 422
    assert central.http.get("/api/v1/qr", params={"text": "x" * 401}).status_code == 422
    shoot(page, tmp_path, "scan-page.png")
    assert [p for p in problems if "outside request" in p or "script error" in p] == [], problems


def test_central_over_https_gives_phones_a_secure_context_for_the_camera(
    mosquitto: Mosquitto, central_factory: Callable[..., CentralProcess],
    contexts: Callable[..., BrowserContext], tmp_path: Path,
) -> None:
    """Phones reach central by its LAN address, where only HTTPS is a secure context (the camera needs
    one): central serves HTTPS with the site's certificate (api.tls_cert/tls_key); on plain HTTP the
    page says why the camera is off and the scanner or keyboard still work."""
    from plantpulse.tls import provision_tls

    provision_tls(tmp_path / "tls", ["localhost", "127.0.0.1"])
    central = central_factory(mosquitto, plant=plant("UTC"),
                              api={"tls_cert": str(tmp_path / "tls" / "server.crt"),
                                   "tls_key": str(tmp_path / "tls" / "server.key")})
    assert central.url.startswith("https://127.0.0.1:"), central.url
    context = contexts(locale="en-US", ignore_https_errors=True)  # the phone trusts the site CA (docs/scan.md)
    page, problems = open_page(context, central.url)
    page.goto(f"{central.url}/scan")
    expect(page.locator("h1")).to_have_text("Scan to report")
    assert page.evaluate("window.isSecureContext") is True
    expect(page.locator("#banner")).to_be_hidden(timeout=SOON)  # the stream works over HTTPS too

    # plain HTTP on a LAN address is not a secure context: said so, the keyboard path still works
    plain = contexts(locale="zh-CN", ignore_https_errors=True)
    plain.add_init_script("Object.defineProperty(window, 'isSecureContext', { value: false })")
    phone, more = open_page(plain, central.url)
    phone.goto(f"{central.url}/scan")
    phone.get_by_role("button", name="摄像头").click()
    expect(phone.locator("#camera-note")).to_contain_text("摄像头需要 HTTPS")
    phone.locator("#code").fill("SO-1/10")
    phone.locator("#code").press("Enter")
    expect(phone.locator("#op-card")).to_have_attribute("data-op", "SO-1/10")
    assert problems == [] and more == []
