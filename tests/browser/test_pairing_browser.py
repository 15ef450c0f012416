"""The pairing page itself in Debian's headless Chromium, served over HTTPS by the box's own
server (cheroot, the box's kind of self-signed certificate) with the in-memory backend of
tests/unit/test_pairing_page.py: log in, open a session, the QR code on the screen and on the card
decodes (from its pixels) to the link the backend gave, the card prints as one A6 page, the live
status follows the backend, the mask editor draws, lists, deletes and saves rectangles, the event
log shows and exports; French by the browser's language; usable at 320 px; no CSP violation and
no request outside the page's origin."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from appliance.capture.synthetic import SyntheticSource
from appliance.crypto import load_or_create_tls
from appliance.httpd.server import WebServer
from appliance.web.app import create_app
from tests.support.browser import wait_js
from tests.unit.test_pairing_page import HASH, LINK, PASSWORD, Backend

pytestmark = pytest.mark.browser

A6_POINTS = (105 / 25.4 * 72, 148 / 25.4 * 72)  # 297.6 x 419.5


def preview_jpeg() -> bytes:
    source = SyntheticSource(1280, 720, 30)
    source.open()
    captured = source.read(1.0)
    assert captured is not None
    image = captured.frame.to_image()
    image.thumbnail((640, 640))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70)
    return out.getvalue()


class Served:
    def __init__(self, backend: Backend, server: WebServer) -> None:
        self.backend = backend
        self.server = server
        self.url = server.url("127.0.0.1") + "/pairing/"
        self.origin = server.url("127.0.0.1")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    backend = Backend()
    backend.jpeg = preview_jpeg()
    tls = load_or_create_tls(tmp_path, ["127.0.0.1", "localhost"])
    app = create_app(backend, password_hash=HASH, secure_cookies=True, room_name="salle-2")
    server = WebServer(app, "127.0.0.1", 0, certfile=str(tls.cert), keyfile=str(tls.key))
    server.start()
    try:
        yield Served(backend, server)
    finally:
        server.stop()


class Watch:
    """What a browser context did: its requests and any CSP complaint."""

    def __init__(self, context: Any) -> None:
        self.requests: list[str] = []
        self.console: list[str] = []
        context.on("request", lambda r: self.requests.append(r.url))
        context.on("page", self.page)

    def page(self, page: Any) -> None:
        page.on("console", lambda m: self.console.append(m.text))

    def check(self, origin: str) -> None:
        outside = [u for u in self.requests if not u.startswith((origin + "/", "blob:", "data:"))]
        assert outside == [], f"requests outside the page's origin: {outside}"
        csp = [m for m in self.console if "Content Security Policy" in m]
        assert csp == [], f"CSP violations: {csp}"


def new_context(chromium: Any, **kwargs: Any) -> tuple[Any, Watch]:
    context = chromium.new_context(ignore_https_errors=True, **kwargs)
    return context, Watch(context)


def log_in(page: Any, served: Served) -> None:
    page.goto(served.url)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    wait_js(page, "document.body.dataset.state === 'idle'")


def decode_qr(locator: Any) -> str:
    png = locator.screenshot()
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1, "one QR code, readable from its pixels"
    return str(results[0].text)


def state_is(page: Any, state: str) -> None:
    wait_js(page, f"document.body.dataset.state === {state!r}")


def test_staff_log_in_open_a_session_scan_its_qr_and_follow_the_viewer(
    served: Served, chromium: Any
) -> None:
    context, watch = new_context(chromium, viewport={"width": 800, "height": 1280})
    page = context.new_page()
    log_in(page, served)
    (cookie,) = [c for c in context.cookies() if c["name"] == "pairing"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/pairing"

    page.click("#open")  # no consent ticked: the browser refuses to submit
    page.wait_for_timeout(300)
    assert served.backend.calls == [] and page.locator("#new-session").is_visible()
    page.check("#consent")
    page.fill("#valid", "45")
    page.click("#open")
    state_is(page, "ready")
    assert served.backend.calls == ["open:True:45"]
    wait_js(
        page,
        "document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0",
    )
    assert page.locator("#qr").bounding_box()["width"] >= 300, "the QR code is large"
    assert decode_qr(page.locator("#qr")) == LINK, "the QR code holds the backend's link"
    assert page.locator("#expires").inner_text() == page.evaluate(
        "new Date(2e9 * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', hour12: false})"
    )

    served.backend.knock("Alex", "123456")
    state_is(page, "waiting")
    assert page.locator("#code").inner_text() == "123 456"
    assert page.locator("#viewer-name").inner_text() == "Alex"
    assert page.locator("#admit").is_visible() and page.locator("#refuse").is_visible()
    page.click("#admit")
    state_is(page, "live")
    page.click("#pause")
    state_is(page, "paused")
    served.backend.signal = "no-signal"
    wait_js(page, "!document.getElementById('signal-text').hidden")
    assert "signal" in page.locator("#signal-text").inner_text()
    assert served.backend.state == "paused", "losing the signal does not change the session"
    served.backend.signal = "ok"
    page.click("#resume")
    state_is(page, "live")
    # the sound, as the box captures it: the scanner sends none, or the card is missing
    served.backend.audio = "no-audio"
    wait_js(page, "!document.getElementById('sound-text').hidden")
    assert "No sound from the scanner" in page.locator("#sound-text").inner_text()
    served.backend.audio = "no-device"
    wait_js(page, "document.getElementById('sound-text').className === 'error'")
    assert "sound card is missing" in page.locator("#sound-text").inner_text()
    for fine in ("present", "idle", "off"):  # nothing to say (and "off" is no sound at all)
        served.backend.audio = fine
        wait_js(page, "document.getElementById('sound-text').hidden")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#end")
    page.wait_for_timeout(300)
    assert served.backend.state == "live", "ending needs a confirmation"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#end")
    state_is(page, "idle")
    assert served.backend.calls == ["open:True:45", "admit", "pause", "resume", "end"]
    assert page.locator("#session").is_hidden() and page.locator("#new-session").is_visible()

    page.click("#logout")
    page.wait_for_selector("#password")
    watch.check(served.origin)


def test_the_card_prints_as_one_a6_page_with_the_qr_code(served: Served, chromium: Any) -> None:
    context, watch = new_context(chromium)
    page = context.new_page()
    log_in(page, served)
    page.check("#consent")
    page.click("#open")
    state_is(page, "ready")
    with context.expect_page() as opened:
        page.click("#print")
    card = opened.value
    card.wait_for_load_state()
    wait_js(card, "document.getElementById('card-qr').naturalWidth > 0")
    assert decode_qr(card.locator("#card-qr")) == LINK
    # the card's own stylesheet asks for A6 (Chromium's CSSOM does not show a page's size;
    # the PDF below shows it is applied)
    css = card.evaluate(
        "fetch(document.querySelector('link[rel=stylesheet]').href).then(r => r.text())"
    )
    assert re.search(r"@page\s*\{[^}]*size:\s*A6", css)
    local = card.evaluate(
        "new Date(2e9 * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', hour12: false})"
    )
    assert card.locator("time.until").all_inner_texts() == [local] * 3
    text = card.locator("#card").inner_text()
    assert "salle-2" in text and "one person" in text and "seule personne" in text
    assert "Watch the scan live" in text and "Suivez l'échographie en direct" in text

    pdf = card.pdf(prefer_css_page_size=True, print_background=True)
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert len(boxes) == 1, f"one page, got {len(boxes)}"
    width, height = (float(v) for v in boxes[0])
    assert abs(width - A6_POINTS[0]) < 2 and abs(height - A6_POINTS[1]) < 2, (width, height)
    watch.check(served.origin)


def test_the_mask_editor_draws_lists_deletes_and_saves_rectangles(
    served: Served, chromium: Any
) -> None:
    served.backend.log.record("opened", valid_minutes=90)
    served.backend.log.record("ended", reason="expired", duration_s=5400)
    context, watch = new_context(chromium, viewport={"width": 1024, "height": 1400})
    page = context.new_page()
    log_in(page, served)
    page.locator("#mask-editor").scroll_into_view_if_needed()
    wait_js(page, "document.getElementById('preview').naturalWidth > 0")
    assert page.locator("#mask-empty").is_visible()

    def draw(x0: float, y0: float, x1: float, y1: float) -> None:
        area = page.locator("#preview-wrap").bounding_box()
        page.mouse.move(area["x"] + area["width"] * x0, area["y"] + area["height"] * y0)
        page.mouse.down()
        page.mouse.move(area["x"] + area["width"] * x1, area["y"] + area["height"] * y1, steps=5)
        page.mouse.up()

    draw(0.1, 0.5, 0.3, 0.7)
    draw(0.7, 0.06, 0.96, 0.11)  # over the phantom's patient banner
    assert page.locator(".rect").count() == 2 and page.locator("#mask-list li").count() == 2
    page.locator("#mask-list li").first.locator("button").click()
    assert page.locator(".rect").count() == 1 and page.locator("#mask-list li").count() == 1
    page.click("#mask-save")
    wait_js(page, "!document.getElementById('mask-saved').hidden")
    ((x, y, w, h),) = served.backend.rects
    assert abs(x - 0.7) < 0.01 and abs(y - 0.06) < 0.01, (x, y)
    assert abs(w - 0.26) < 0.01 and abs(h - 0.05) < 0.01, (w, h)
    assert served.backend.calls == ["mask:1"]

    page.reload()
    wait_js(page, "document.querySelectorAll('#mask-list li').length === 1")

    page.locator("#event-log").scroll_into_view_if_needed()
    wait_js(page, "document.querySelectorAll('#events tr').length === 2")
    assert "session ended" in page.locator("#events").inner_text()
    with page.expect_download() as download:
        page.click("#export-csv")
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".csv")
    lines = Path(path).read_text().splitlines()
    assert lines[0].startswith("time,kind") and len(lines) == 3
    watch.check(served.origin)


def test_french_on_a_phone_sized_screen(served: Served, chromium: Any) -> None:
    context, watch = new_context(chromium, viewport={"width": 320, "height": 640}, locale="fr-FR")
    page = context.new_page()
    page.goto(served.url)
    assert "Mot de passe" in page.locator("label[for=password]").inner_text()
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    state_is(page, "idle")
    assert page.locator("#state-text").inner_text() == "Aucune séance ouverte."
    page.check("#consent")
    page.click("#open")
    state_is(page, "ready")
    served.backend.knock(None, "987654")
    state_is(page, "waiting")
    assert page.locator("#admit").inner_text() == "Admettre"
    assert page.evaluate("document.documentElement.scrollWidth") <= 320, "no sideways scrolling"
    for selector in ("#admit", "#refuse", "#end", "#qr"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 320, selector
    assert page.locator("#viewer-name-row").is_hidden(), "no name given, none shown"
    watch.check(served.origin)
