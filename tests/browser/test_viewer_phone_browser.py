"""The co-parent's phone, at 390 x 844, in Debian's Chromium, against the scripted relay and box
(tests/support/scripted_box.py): passing the link on, the code made new by a reconnection, the
session's end announced, the picture enlarged without turning the phone, the notice never over
the picture, the language picked and kept, and a room known to be gone said at once."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser.test_viewer_screens_browser import LOCALES, PHONE, joined, text, visible
from tests.support.browser import wait_js
from tests.support.scripted_box import ScriptedBox

pytestmark = pytest.mark.browser


@pytest.fixture
def box(tmp_path: Path) -> Iterator[ScriptedBox]:
    with ScriptedBox(tmp_path / "box") as scripted:
        yield scripted


def phone(chromium: Any, lang: str = "en", **kwargs: Any) -> Any:
    return chromium.new_context(viewport=PHONE, locale=LOCALES[lang], **kwargs).new_page()


# -- 5: "Send this link" sends the whole link, key and all ------------------------------------------

SHARE = "navigator.share = async (data) => { window.shared = data; };"
CLIPBOARD = """delete Navigator.prototype.share;
Object.defineProperty(navigator, 'clipboard', { value: { writeText: async (t) => { window.copied = t; } } });"""
NEITHER = """delete Navigator.prototype.share;
Object.defineProperty(navigator, 'clipboard', { value: undefined });"""


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_join_screen_shares_the_whole_link_with_a_warning(chromium, box, lang) -> None:
    page = phone(chromium, lang)
    page.add_init_script(SHARE)
    page.goto(box.link)
    wait_js(page, "window.viewer && window.viewer.state === 'join'")
    assert "#" not in page.url, "the key still leaves the address bar"
    assert visible(page, "#share-button") and visible(page, "#share-warning")
    warning = page.locator("#share-warning").inner_text()
    assert {"en": "can ask to watch", "fr": "peut demander à regarder"}[lang] in warning
    page.click("#share-button")
    wait_js(page, "window.shared")
    assert page.evaluate("window.shared.url") == box.link, "the whole link, with its key"
    page.click("#join-button")
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    assert not visible(page, "#share"), "only before the key is used"


def test_without_web_share_the_link_is_copied_or_shown(chromium, box) -> None:
    page = phone(chromium)
    page.add_init_script(CLIPBOARD)
    page.goto(box.link)
    wait_js(page, "window.viewer && window.viewer.state === 'join'")
    page.click("#share-button")
    wait_js(page, "window.copied")
    assert page.evaluate("window.copied") == box.link and visible(page, "#share-copied")

    bare = phone(chromium)
    bare.add_init_script(NEITHER)
    bare.goto(box.link)
    wait_js(bare, "window.viewer && window.viewer.state === 'join'")
    bare.click("#share-button")
    assert visible(bare, "#share-link") and bare.input_value("#share-link") == box.link
    bare.click("#join-button")
    wait_js(bare, "window.viewer.state === 'admission'")
    assert bare.input_value("#share-link") == "", "the key is not left in the page"


def test_a_kept_seat_has_no_link_to_share(chromium, box) -> None:
    page = phone(chromium)
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    page.reload()  # the key left the address bar: there is no whole link any more
    wait_js(page, "window.viewer && window.viewer.state === 'admission' && window.viewer.code")
    assert not visible(page, "#share")


# -- 6: a reconnection's new code is said to be new ------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_new_connection_s_code_is_said_to_be_new(chromium, box, lang) -> None:
    page = phone(chromium, lang)
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    first = page.evaluate("window.viewer.code")
    assert not visible(page, "#new-code"), "the first code is just the code"
    page.reload()  # a reload: new keys, a new code
    wait_js(page, f"window.viewer && window.viewer.code && window.viewer.code !== '{first}'", 20)
    wait_js(page, "window.viewer.state === 'admission'")
    assert visible(page, "#new-code")
    words = {"en": "New connection: new code", "fr": "Nouvelle connexion : nouveau code"}[lang]
    assert words in page.locator("#new-code").inner_text()


# -- 9: the session's end, said in its last minutes, and moved by an extension --------------------


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_phone_is_warned_before_the_end_and_an_extension_clears_it(
    chromium, tmp_path, lang
) -> None:
    with ScriptedBox(tmp_path / "box", expires_in=200) as box:
        page = phone(chromium, lang)
        joined(page, box.link)
        wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
        wait_js(page, "!document.getElementById('ends').hidden")
        ends = page.locator("#ends").inner_text()
        end = time.strftime("%H:%M", time.localtime(box.expires))
        assert end in ends, ends
        assert {"en": "ends at", "fr": "se termine à"}[lang] in ends
        box.say("live")
        wait_js(page, "window.viewer.state === 'live'", timeout=20)
        assert visible(page, "#ends"), "over the picture too"
        box.say("live", expires=int(time.time()) + 3600)  # the staff extended the session
        wait_js(page, "document.getElementById('ends').hidden")


# -- 13: the picture enlarged without turning the phone ------------------------------------------

#: Paints the letterbox a colour the scan never has, so a screenshot shows what the picture covers.
MAGENTA = (
    "#video { background: #f0f !important; } #bar, #rotate, #notice, #ends { visibility: hidden; }"
)


def covered(page: Any) -> float:
    """The fraction of the viewport the picture covers, from a screenshot."""
    rgb = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    letterbox = int(((r > 200) & (b > 200) & (g < 60)).sum())
    return 1 - letterbox / (rgb.shape[0] * rgb.shape[1])


def test_the_picture_is_enlarged_in_portrait_to_most_of_the_screen(chromium, box) -> None:
    page = phone(chromium, bypass_csp=True)  # the test's own style marks the letterbox
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    box.say("live")
    wait_js(page, "window.viewer.state === 'live' && window.viewer.frames > 10", timeout=20)
    assert visible(page, "#zoom")
    page.add_style_tag(content=MAGENTA)
    before = covered(page)
    assert before < 0.35, f"a 16:9 scan in a portrait phone covers {before:.0%}"
    page.evaluate("document.getElementById('zoom').click()")
    wait_js(page, "document.body.classList.contains('zoomed')")
    page.wait_for_timeout(300)
    after = covered(page)
    assert after >= 0.5, f"enlarged, the picture covers {after:.0%}"
    centred = page.evaluate(
        "(() => { const s = document.getElementById('screen');"
        " return Math.abs(s.scrollLeft - (s.scrollWidth - s.clientWidth) / 2) < 2; })()"
    )
    assert centred, "the middle of the scan is on screen; the sides are a slide away"
    page.evaluate("document.getElementById('zoom').click()")
    wait_js(page, "!document.body.classList.contains('zoomed')")


# -- the notice never covers the picture (landscape, French: two lines) --------------------------


def test_in_landscape_the_notice_is_below_the_picture_not_over_it(chromium, box) -> None:
    page = phone(chromium, "fr")
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    box.say("live")
    wait_js(page, "window.viewer.state === 'live' && window.viewer.frames > 10", timeout=20)
    page.set_viewport_size({"width": 844, "height": 390})
    page.wait_for_timeout(300)
    picture_bottom, notice_top = page.evaluate(
        """(() => {
          const v = document.getElementById('video'), r = v.getBoundingClientRect();
          const scale = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
          const bottom = r.top + (r.height + v.videoHeight * scale) / 2;
          return [bottom, document.getElementById('notice').getBoundingClientRect().top];
        })()"""
    )
    assert picture_bottom <= notice_top + 0.5, (picture_bottom, notice_top)


# -- 14: the language picked on the page, kept on the phone ---------------------------------------


def test_the_language_is_picked_on_the_page_and_kept(chromium, box) -> None:
    page = phone(chromium, "en")
    page.goto(box.link)
    wait_js(page, "window.viewer && window.viewer.state === 'join'")
    options = page.eval_on_selector_all("#lang option", "os => os.map(o => o.textContent)")
    assert "English" in options and "Français" in options, "each language by its own name"
    assert page.input_value("#lang") == "en", "the browser's language by default"
    page.select_option("#lang", "fr")
    wait_js(page, "document.documentElement.lang === 'fr'")
    assert text(page) == "Suivre l'échographie en direct"
    assert page.locator("#join-button").inner_text() == "Rejoindre"
    page.click("#join-button")
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    assert text(page) == "En attente d'autorisation"
    page.reload()
    wait_js(page, "window.viewer && window.viewer.state === 'admission'")
    assert text(page) == "En attente d'autorisation", "remembered on this phone"
    assert page.input_value("#lang") == "fr"


# -- 10: a held seat hears "ended" as soon as the room is known to be gone ----------------------


def test_a_room_known_to_be_gone_is_ended_without_reconnecting_first(chromium, box) -> None:
    page = phone(chromium)
    knocks: list[str] = []
    page.on("request", lambda r: knocks.append(r.url) if r.url.endswith("/knock") else None)
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    box.say("live")
    wait_js(page, "window.viewer.state === 'live'", timeout=20)
    before = len(knocks)
    box.relay.refusal = (404, "unknown")  # the box restarted: its own relay forgot the room
    box.drop()
    wait_js(page, "window.viewer.state === 'ended'", timeout=40)
    assert len(knocks) - before <= 1, "one answer from the relay was enough"
    assert "ended" in text(page)
