"""`make screenshots`: PNGs of every viewer and staff screen, in French and English, into a folder
(docs/screens/). Debian's Chromium with the project's flags; no box: the viewer page runs against
the scripted relay and box of tests/support/scripted_box.py (at phone size, 390 x 844, and one
landscape), the staff page against the in-memory backend of tests/unit/test_pairing_page.py over
the box's own HTTPS server (at tablet size, 1024 x 768). Everything stays on loopback.

    python -m tests.support.screenshots docs/screens
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from appliance.core.views import SoundView
from appliance.crypto import load_or_create_tls
from appliance.httpd.server import WebServer
from appliance.web.app import create_app
from tests.support import browser
from tests.support.browser import wait_js
from tests.support.scripted_box import ScriptedBox

PHONE = {"width": 390, "height": 844}
LANDSCAPE = {"width": 844, "height": 390}
TABLET = {"width": 1024, "height": 768}
LOCALES = {"en": "en-GB", "fr": "fr-FR"}
NO_H264 = "RTCRtpReceiver.getCapabilities = () => ({ codecs: [], headerExtensions: [] });"
#: Final screens reached by the relay's answer: (name, status, error code).
ANSWERS = [
    ("unknown", 404, "unknown"),
    ("ended", 410, "ended"),
    ("expired", 410, "expired"),
    ("refused", 403, "refused"),
    ("taken", 403, "taken"),
    ("badlink", 403, "bad"),
    ("restarting", 503, ""),
]


def viewer_shots(chromium: Any, lang: str, out: Path, work: Path) -> None:
    def phone(viewport: dict[str, int] = PHONE) -> Any:
        context = chromium.new_context(viewport=viewport, locale=LOCALES[lang])
        return context.new_page()

    def shot(page: Any, name: str) -> None:
        page.wait_for_timeout(300)  # transitions settle
        page.screenshot(path=str(out / f"viewer-{name}-{lang}.png"))
        print(f"viewer-{name}-{lang}.png")  # noqa: T201 - the script's report

    def join(page: Any, link: str, name: str = "") -> None:
        page.goto(link)
        wait_js(page, "window.viewer && window.viewer.state === 'join'")
        if name:
            page.fill("#name", name)

    with ScriptedBox(work / f"box-{lang}") as box:
        page = phone()
        join(page, box.link, "Sam")
        shot(page, "join")
        box.freeze(True)  # as the real box: no picture before admission
        page.click("#join-button")
        wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
        page.wait_for_timeout(2500)
        shot(page, "waiting")
        box.freeze(False)
        box.say("live")
        wait_js(page, "window.viewer.state === 'live' && window.viewer.frames > 30", 20)
        wait_js(page, "window.viewer.quality !== null")
        shot(page, "live")
        box.say("live", talkback=True)  # the staff allow talk-back: the hold-to-talk button
        wait_js(page, "document.body.dataset.talk === 'allowed'")
        shot(page, "live-talkback")
        box.say("live")
        page.click("#zoom")  # Enlarge: the scan fills the portrait screen's height
        wait_js(page, "document.body.classList.contains('zoomed')")
        shot(page, "live-fill")
        page.click("#zoom")
        box.say("live", step="half-rate")
        wait_js(page, "!document.getElementById('step').hidden")
        box.freeze()
        wait_js(page, "window.viewer.state === 'delayed'", 10)
        page.wait_for_timeout(800)
        shot(page, "delayed")
        box.freeze(False)
        box.say("paused")
        wait_js(page, "window.viewer.state === 'paused'")
        shot(page, "paused")
        box.say("live", step="smaller")
        wait_js(page, "window.viewer.state === 'live'", 10)
        page.set_viewport_size(LANDSCAPE)
        page.wait_for_timeout(500)
        shot(page, "live-landscape")
        wait_js(page, "document.body.classList.contains('controls-hidden')", 6)
        shot(page, "live-landscape-controls-hidden")
        box.say("ended", reason="released")
        wait_js(page, "window.viewer.state === 'released'")
        page.set_viewport_size(PHONE)
        shot(page, "released")
        page.context.close()
        box.first_status = {"type": "status", "state": "waiting"}

        page = phone()
        join(page, box.link)
        page.click("#join-button")
        wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
        page.click("#cancel")
        wait_js(page, "window.viewer.state === 'cancelled'")
        shot(page, "cancelled")
        page.context.close()

        page = phone()  # "Send this link" where neither Web Share nor the clipboard is there
        page.add_init_script(
            "delete Navigator.prototype.share;"
            " Object.defineProperty(navigator, 'clipboard', { value: undefined });"
        )
        join(page, box.link)
        page.click("#share-button")
        shot(page, "share")
        page.context.close()

        for name, status, code in ANSWERS:
            box.relay.refusal = (status, code)
            page = phone()
            if status in (404, 410):  # said at once, before a name is asked
                page.goto(box.link)
            else:
                join(page, box.link)
                page.click("#join-button")
            wait_js(page, f"window.viewer && window.viewer.state === {name!r}", 20)
            shot(page, name)
            page.context.close()
        box.relay.refusal = None

        page = phone()
        page.goto(box.link.split("#")[0])
        wait_js(page, "window.viewer && window.viewer.state === 'nokey'")
        shot(page, "nokey")
        page.context.close()

        page = phone()
        page.add_init_script(NO_H264)
        page.goto(box.link)
        wait_js(page, "window.viewer && window.viewer.state === 'unsupported'")
        shot(page, "unsupported")
        page.context.close()


def expiring_shot(chromium: Any, lang: str, out: Path, work: Path) -> None:
    """The picture in the session's last minutes: "This session ends at HH:MM"."""
    with ScriptedBox(work / f"box-expiring-{lang}", expires_in=240) as box:
        page = chromium.new_context(viewport=PHONE, locale=LOCALES[lang]).new_page()
        page.goto(box.link)
        wait_js(page, "window.viewer && window.viewer.state === 'join'")
        page.click("#join-button")
        wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
        box.say("live")
        wait_js(page, "window.viewer.state === 'live' && window.viewer.frames > 30", 20)
        wait_js(page, "!document.getElementById('ends').hidden")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / f"viewer-expiring-{lang}.png"))
        print(f"viewer-expiring-{lang}.png")  # noqa: T201 - the script's report
        page.context.close()


def staff_shots(chromium: Any, lang: str, out: Path, work: Path) -> None:
    from tests.unit.test_pairing_page import HASH, PASSWORD, Backend

    backend = Backend()
    tls = load_or_create_tls(work / f"tls-{lang}", ["127.0.0.1", "localhost"])
    app = create_app(backend, password_hash=HASH, secure_cookies=True, room_name="salle-2")
    server = WebServer(app, "127.0.0.1", 0, certfile=str(tls.cert), keyfile=str(tls.key))
    server.start()
    try:
        context = chromium.new_context(
            viewport=TABLET,
            locale=LOCALES[lang],
            timezone_id="Europe/Paris",
            ignore_https_errors=True,
        )
        page = context.new_page()
        url = server.url("127.0.0.1") + "/pairing/"

        def shot(name: str, full: bool = False) -> None:
            page.wait_for_timeout(1300)  # one poll
            page.screenshot(path=str(out / f"staff-{name}-{lang}.png"), full_page=full)
            print(f"staff-{name}-{lang}.png")  # noqa: T201 - the script's report

        page.goto(url)
        shot("login")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        wait_js(page, "document.body.dataset.state === 'idle'")
        shot("idle")
        page.check("#consent")
        page.click("#open")
        wait_js(page, "document.body.dataset.state === 'ready'")
        wait_js(page, "document.getElementById('qr').naturalWidth > 0")
        shot("ready")
        page.click("#qr-help")  # a touch: the knock sound is on
        backend.knock("Alex", "482913")
        wait_js(page, "document.body.dataset.state === 'waiting'")
        shot("knock")
        page.click("#admit")
        wait_js(page, "document.body.dataset.state === 'live'")
        shot("live")
        switches = {"scanner": True, "microphone": True, "talkback": True}
        backend.sound = SoundView(switches, scanner=True, microphone=True)  # the room is heard
        wait_js(page, "document.body.dataset.microphone === 'live'")
        shot("live-hearing")
        backend.sound = None
        backend.stalled(True)
        wait_js(page, "!document.getElementById('viewer-reconnecting').hidden")
        shot("viewer-reconnecting")
        backend.stalled(False)
        backend.left(75)
        backend.expiring, backend.extend_to = True, Backend.EXPIRES + 3600
        wait_js(page, "!document.getElementById('viewer-left').hidden")
        shot("viewer-left-expiring")
        backend.expiring, backend.extend_to = False, None
        backend.knock("Alex", "482913")  # back, watching
        backend.state = "live"
        wait_js(page, "document.getElementById('viewer-left').hidden")
        backend.stuck = True  # the box stops answering under a live page
        wait_js(page, "!document.getElementById('box-gone').hidden", 10)
        shot("box-gone")
        backend.stuck = False
        wait_js(page, "document.getElementById('box-gone').hidden", 10)
        page.locator("#mask-editor").scroll_into_view_if_needed()
        area = page.locator("#preview-wrap").bounding_box()
        page.mouse.move(area["x"] + 30, area["y"] + 20)
        page.mouse.down()
        page.mouse.move(area["x"] + 200, area["y"] + 60, steps=4)
        page.mouse.up()
        page.wait_for_timeout(300)
        page.locator("#mask-editor").screenshot(path=str(out / f"staff-mask-unsaved-{lang}.png"))
        print(f"staff-mask-unsaved-{lang}.png")  # noqa: T201
        backend.extra_events = [
            {"at": 1_750_000_000, "kind": "knock", "returning": False},
            {"at": 1_750_000_100, "kind": "admitted", "after_s": 100},
            {"at": 1_750_005_400, "kind": "ended", "reason": "expired", "duration_s": 5400},
        ]
        page.locator("#event-log").scroll_into_view_if_needed()
        wait_js(page, "document.getElementById('events').rows.length >= 3", 10)
        page.locator("#event-log").screenshot(path=str(out / f"staff-events-{lang}.png"))
        print(f"staff-events-{lang}.png")  # noqa: T201
        with context.expect_page() as opened:
            page.click("#print")
        card = opened.value
        card.wait_for_load_state()
        wait_js(card, "document.getElementById('card-qr').naturalWidth > 0")
        card.emulate_media(media="print")
        card.locator("#card").screenshot(path=str(out / f"staff-card-{lang}.png"))
        print(f"staff-card-{lang}.png")  # noqa: T201
        card.close()
        backend.end("expired", 1_750_005_400)
        page.evaluate("window.scrollTo(0, 0)")
        wait_js(page, "!document.getElementById('ended').hidden")
        shot("ended-reason")
        context.close()
    finally:
        server.stop()


def main(folder: str = "docs/screens") -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    from appliance.stream.compat import confine_host_addresses
    from tests.support.browser import CHROMIUM

    confine_host_addresses(("127.0.0.1",))  # the scripted box's ICE on loopback only

    with (
        tempfile.TemporaryDirectory() as tmp,
        sync_playwright() as pw,
    ):
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=browser.CHROMIUM_ARGS
        )
        try:
            for lang in ("en", "fr"):
                viewer_shots(chromium, lang, out, Path(tmp))
                expiring_shot(chromium, lang, out, Path(tmp))
                staff_shots(chromium, lang, out, Path(tmp))
        finally:
            chromium.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
