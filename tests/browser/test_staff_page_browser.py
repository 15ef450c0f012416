"""The staff's pairing page at tablet size (1024 x 768), in English and French, in Debian's
Chromium over the box's own HTTPS server with the in-memory backend: a knock chimes and shows
"(1)" in the tab's title, Admit waits for the code, Refuse and "let another phone in" ask first,
End sits away from the everyday buttons, the viewer's drop and the expiry warning with "extend",
the instruction beside the QR code, the validity back at its default, an unsaved mask that looks
unsaved, the event log's fields in French with 24-hour times."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import test_pairing_browser as pairing_browser
from tests.browser.test_pairing_browser import Served, log_in, new_context, state_is
from tests.support.browser import wait_js
from tests.unit.test_pairing_page import Backend

pytestmark = pytest.mark.browser

served = pairing_browser.served  # the page over HTTPS with the in-memory backend

TABLET = {"width": 1024, "height": 768}
LOCALES = {"en": "en-GB", "fr": "fr-FR"}
WORDS = {
    "en": {
        "title": "Live scan sharing",
        "left": "1:15 ago",
        "until": "until",
        "reconnecting": "not reaching the viewer",
        "unseen": "Live, but",
    },
    "fr": {
        "title": "Partage de l'échographie en direct",
        "left": "il y a 1:15",
        "until": "jusqu'à",
        "reconnecting": "n'arrive plus",
        "unseen": "En direct, mais",
    },
}


def tablet(chromium: Any, served: Served, lang: str) -> tuple[Any, Any]:
    context, watch = new_context(
        chromium, viewport=TABLET, locale=LOCALES[lang], timezone_id="Europe/Paris"
    )
    page = context.new_page()
    log_in(page, served)
    return page, watch


def opened(page: Any, served: Served, minutes: str | None = None) -> None:
    page.check("#consent")
    if minutes:
        page.fill("#valid", minutes)
    page.click("#open")
    state_is(page, "ready")


def paris(unix: int) -> str:
    """``unix`` as HH:MM in the tests' time zone (Europe/Paris)."""
    import datetime as dt
    import zoneinfo

    return dt.datetime.fromtimestamp(unix, zoneinfo.ZoneInfo("Europe/Paris")).strftime("%H:%M")


def box_of(page: Any, selector: str) -> dict[str, float]:
    return dict(page.locator(selector).bounding_box())


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_knock_chimes_and_the_staff_answer_it(served: Served, chromium: Any, lang: str) -> None:
    page, watch = tablet(chromium, served, lang)
    opened(page, served)
    assert page.title().startswith(WORDS[lang]["title"])
    page.click("#qr-help")  # any touch on the page lets it make sound
    wait_js(page, "window.pairing.sound === 'running'")
    assert page.locator("#sound").is_hidden() and page.locator("#sound-on").is_visible()

    served.backend.knock("Alex", None)  # knocked, the code not there yet
    state_is(page, "waiting")
    wait_js(page, "window.pairing.chimes === 1")
    assert page.title().startswith("(1) ")
    assert page.locator("#admit").is_disabled(), "no admission before the code"
    served.backend.knock("Alex", "123456")
    wait_js(page, "!document.getElementById('admit').disabled")
    page.wait_for_timeout(1500)
    assert page.evaluate("window.pairing.chimes") == 2, "once per knock, not per poll"

    # End is away from the everyday buttons: its own row, far from Admit
    admit, end = box_of(page, "#admit"), box_of(page, "#end")
    assert end["y"] > admit["y"] + admit["height"] + 10
    assert end["x"] > admit["x"] + 300

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#refuse")
    page.wait_for_timeout(300)
    assert served.backend.state == "waiting", "refusing asks first"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#refuse")
    state_is(page, "ready")
    assert served.backend.calls[-1] == "refuse"
    wait_js(page, "!document.title.startsWith('(1)')")
    watch.check(served.origin)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_dropped_viewer_and_the_expiry_warning(served: Served, chromium: Any, lang: str) -> None:
    page, watch = tablet(chromium, served, lang)
    opened(page, served)
    served.backend.knock("Alex", "123456")
    state_is(page, "waiting")
    page.click("#admit")
    state_is(page, "live")
    assert page.locator("#viewer-reconnecting").is_hidden()
    served.backend.stalled(True)  # the picture stopped reaching the phone
    wait_js(page, "!document.getElementById('viewer-reconnecting').hidden")
    assert WORDS[lang]["reconnecting"] in page.locator("#viewer-reconnecting").inner_text()
    live = page.locator("#state-text").inner_text()
    assert WORDS[lang]["unseen"] in live, "the headline does not say the viewer sees it"
    served.backend.stalled(False)
    wait_js(page, "document.getElementById('viewer-reconnecting').hidden")
    assert WORDS[lang]["unseen"] not in page.locator("#state-text").inner_text()
    served.backend.left(75)
    wait_js(page, "!document.getElementById('viewer-left').hidden")
    assert WORDS[lang]["left"] in page.locator("#viewer-left-text").inner_text()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#release")
    page.wait_for_timeout(300)
    assert "release" not in served.backend.calls, "letting another phone in asks first"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#release")
    state_is(page, "ready")
    assert served.backend.calls[-1] == "release"

    assert page.locator("#expiring").is_hidden()
    # Extend offers a choice, each capped at the longest a session may last (here 30 min more)
    served.backend.expiring, served.backend.extend_to = True, Backend.EXPIRES + 1800
    wait_js(page, "!document.getElementById('expiring').hidden")
    until = WORDS[lang]["until"]
    assert page.locator("#extend-options button").all_inner_texts() == [
        f"+15 min ({until} {paris(Backend.EXPIRES + 900)})",
        f"+30 min ({until} {paris(Backend.EXPIRES + 1800)})",
    ], "+1 h would give no more than +30 min: not offered"
    page.click("#extend-options button >> nth=0")
    wait_js(page, "document.getElementById('expiring').hidden")
    assert served.backend.calls[-1] == "extend:15", "not straight to the maximum"
    assert page.locator("#expires").inner_text() == paris(Backend.EXPIRES + 900)
    served.backend.expiring = True  # 15 min are left to give: one choice
    wait_js(page, "!document.getElementById('expiring').hidden")
    assert page.locator("#extend-options button").all_inner_texts() == [
        f"+15 min ({until} {paris(Backend.EXPIRES + 1800)})"
    ]
    page.click("#extend-options button")
    wait_js(page, "document.getElementById('expiring').hidden")
    served.backend.expiring = True  # no further extension: the warning, no button
    wait_js(page, "!document.getElementById('expiring').hidden")
    assert page.locator("#extend").is_hidden()
    watch.check(served.origin)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_qr_instruction_validity_mask_and_event_log(
    served: Served, chromium: Any, lang: str
) -> None:
    page, watch = tablet(chromium, served, lang)
    default = page.locator("#valid").input_value()
    opened(page, served, "45")
    qr, help_ = box_of(page, "#qr"), box_of(page, "#qr-help")
    assert help_["x"] >= qr["x"] + qr["width"], "the instruction stands beside the QR code"
    assert help_["y"] < qr["y"] + qr["height"]
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#end")
    state_is(page, "idle")
    assert page.locator("#valid").input_value() == default, "back to the configured default"

    # a rectangle drawn and not saved looks it: dashed, and a banner
    page.locator("#mask-editor").scroll_into_view_if_needed()
    wait_js(page, "document.getElementById('preview').naturalWidth > 0")
    area = box_of(page, "#preview-wrap")
    page.mouse.move(area["x"] + 20, area["y"] + 20)
    page.mouse.down()
    page.mouse.move(area["x"] + 120, area["y"] + 70, steps=4)
    page.mouse.up()
    assert page.locator("#mask-unsaved").is_visible()
    style = page.evaluate("getComputedStyle(document.querySelector('#rects .rect')).outlineStyle")
    assert style == "dashed"
    page.click("#mask-save")
    wait_js(page, "document.getElementById('mask-unsaved').hidden")
    style = page.evaluate("getComputedStyle(document.querySelector('#rects .rect')).outlineStyle")
    assert style == "solid"

    # the event log in the page's language, 24-hour times (2025-06-15 15:06:40 UTC = 17:06 Paris)
    served.backend.extra_events = [
        {"at": 1_750_000_000, "kind": "ended", "reason": "expired", "duration_s": 5400},
        {"at": 1_750_000_000, "kind": "knock", "returning": False},
    ]
    page.locator("#event-log").scroll_into_view_if_needed()
    wait_js(page, "document.getElementById('events').rows.length >= 2", timeout=10)
    rows = page.locator("#events tr").all_inner_texts()
    joined = "\n".join(rows)
    assert "15/06/2025" in joined and "17:06:40" in joined and "PM" not in joined
    if lang == "fr":
        assert "séance terminée (durée : 1 h 30 min, raison : expirée)" in joined
        assert "une personne se connecte (retour : non)" in joined
    else:
        assert "session ended (lasted: 1 h 30 min, reason: expired)" in joined
        assert "a viewer knocked (coming back: no)" in joined
    watch.check(served.origin)
