"""The whole story in real browsers. The staff log in to the pairing page and open a session;
the QR code on the page (decoded from its pixels, not from the page's text) is opened by the
co-parent's phone (a second Chromium context), which knocks; both screens show the same code;
the button admits; the scan plays; a long press ends it; the link is dead afterwards. The phone
makes no request outside its own origin and never sends the link's key anywhere."""

from __future__ import annotations

import io
import urllib.parse

import pytest
import zxingcpp
from PIL import Image

from tests.support.browser import join, wait_js

pytestmark = pytest.mark.browser

PASSWORD = "midwife-test-password"
PROBE = (__import__("pathlib").Path(__file__).parents[1] / "support" / "probe.js").read_text()


def staff_login(chromium, box):
    page = chromium.new_context(viewport={"width": 1024, "height": 1300}).new_page()
    page.goto(box.pairing_url)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    wait_js(page, "document.body.dataset.state === 'idle'")
    return page


def decode_qr(page) -> str:
    wait_js(
        page,
        "document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 0",
    )
    png = page.locator("#qr").screenshot()
    (result,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(result.text)


def test_staff_open_a_session_the_co_parent_scans_knocks_is_admitted_and_watches(
    box_factory, chromium
) -> None:
    box = box_factory(open_session=False, pairing={"password": PASSWORD})
    staff = staff_login(chromium, box)
    staff.check("#consent")
    staff.click("#open-form button[type=submit]")
    wait_js(staff, "document.body.dataset.state === 'ready'")
    link = decode_qr(staff)
    assert link == box.viewer_url, "the QR code holds the session's link"
    secret = link.split("#", 1)[1].split(".")[0]

    phone_context = chromium.new_context(viewport={"width": 390, "height": 844})
    requests: list[tuple[str, str]] = []
    phone_context.on("request", lambda r: requests.append((r.url, r.post_data or "")))
    phone = phone_context.new_page()
    phone.add_init_script(PROBE)
    code = join(phone, link, name="Alex")

    wait_js(staff, "document.body.dataset.state === 'waiting'")
    wait_js(staff, f"document.getElementById('code').textContent.replace(' ', '') === '{code}'")
    assert staff.locator("#viewer-name").inner_text() == "Alex"
    assert phone.evaluate("window.probe.stamped") == 0, "no picture before admission"

    box.press()  # the sonographer admits
    wait_js(phone, "window.probe.stamped >= 20")
    wait_js(staff, "document.body.dataset.state === 'live'")

    staff.click("#pause")
    wait_js(phone, "window.viewer.state === 'paused'")
    staff.click("#resume")
    wait_js(phone, "window.viewer.state === 'live'")

    box.long_press()
    wait_js(phone, "window.viewer.state === 'ended'")
    wait_js(staff, "document.body.dataset.state === 'idle'")
    again = phone_context.new_page()
    again.goto(link)  # reopening the link says how it finished, without knocking again
    wait_js(again, "window.viewer.state === 'ended'")
    assert again.locator("#join-button").is_hidden()

    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(link))
    assert requests, "the request log was recorded"
    outside = [url for url, _ in requests if not url.startswith(origin + "/")]
    assert outside == [], f"the viewer page reached outside its origin: {outside}"
    assert not any(secret in url or secret in body for url, body in requests), (
        "the key left the phone"
    )


def test_a_wrong_password_gets_nowhere(box_factory, chromium) -> None:
    box = box_factory(open_session=False, pairing={"password": PASSWORD})
    page = chromium.new_page()
    page.goto(box.pairing_url)
    page.fill("#password", "not it")
    page.click("button[type=submit]")
    assert page.locator("#error").is_visible()
    page.goto(box.pairing_url.rstrip("/") + "/card")
    assert page.locator("#password").is_visible(), "back to the login"


def test_staff_draw_a_privacy_mask_over_the_live_preview(box_factory, chromium) -> None:
    box = box_factory(open_session=False, pairing={"password": PASSWORD})
    staff = staff_login(chromium, box)
    wait_js(staff, "document.getElementById('preview').naturalWidth > 0", timeout=20)
    area = staff.locator("#preview-wrap").bounding_box()
    staff.mouse.move(area["x"] + area["width"] * 0.6, area["y"] + area["height"] * 0.05)
    staff.mouse.down()
    staff.mouse.move(area["x"] + area["width"] * 0.95, area["y"] + area["height"] * 0.2, steps=5)
    staff.mouse.up()
    assert staff.locator(".rect").count() == 1
    staff.click("#mask-save")
    wait_js(staff, "!document.getElementById('mask-saved').hidden")
    saved = staff.evaluate("fetch('api/mask').then(r => r.json())")["rects"]
    (x, y, w, h) = saved[0]
    assert (
        abs(x - 0.6) < 0.02
        and abs(y - 0.05) < 0.02
        and abs(w - 0.35) < 0.02
        and abs(h - 0.15) < 0.02
    )
    assert (box.tmp / "state" / "mask.json").exists(), "kept for the next start"
    # the export of the event log is a JSON download
    export = staff.evaluate("fetch('events.json').then(r => r.headers.get('content-disposition'))")
    assert "attachment" in export
