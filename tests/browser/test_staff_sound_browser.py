"""Who hears what on the staff's page, in Chromium over the box's HTTPS server with the in-memory
backend: the switches appear with a live session, each press goes to the box (``api/sound``, with
the login's CSRF token), the room microphone going on is shown loud and its switch says how to
turn it off; French too."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.core.views import SoundView
from tests.browser import test_pairing_browser as pairing_browser
from tests.browser.test_pairing_browser import Served, log_in, new_context, state_is
from tests.support.browser import wait_js

pytestmark = pytest.mark.browser

served = pairing_browser.served  # the page over HTTPS with the in-memory backend

WORDS = {
    "en": (
        "Switch the room microphone on",
        "The room microphone is ON",
        "Mute the scanner's sound",
    ),
    "fr": ("Activer le micro de la salle", "Le micro de la salle est ACTIVÉ", "Couper le son"),
}


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_staff_switch_the_room_microphone_and_see_it(
    served: Served, chromium: Any, lang: str
) -> None:
    switch_on, live_banner, mute = WORDS[lang]
    backend = served.backend
    context, _ = new_context(chromium, viewport={"width": 1024, "height": 768})
    page = context.new_page()
    log_in(page, served)
    if lang == "fr":
        page.click("button[value=fr]")
        state_is(page, "idle")
    page.check("#consent")
    page.click("#open")
    state_is(page, "ready")
    assert page.locator("#hearing").is_hidden(), "a box without sound shows no switches"
    switches = {"scanner": True, "microphone": False, "talkback": False}
    backend.sound = SoundView(switches)
    backend.knock("Alex", "482913")
    page.click("#admit")
    state_is(page, "live")
    backend.sound = SoundView(switches, scanner=True)
    wait_js(page, "!document.getElementById('hearing').hidden")
    assert page.locator("#switch-microphone").inner_text() == switch_on
    assert page.locator("#switch-scanner").inner_text().startswith(mute)
    assert page.locator("#hearing-microphone-live").is_hidden()

    page.click("#switch-microphone")
    wait_js(page, "document.body.dataset.microphone === 'live'")
    assert live_banner in page.locator("#hearing-microphone-live").inner_text()
    assert page.locator("#switch-microphone").get_attribute("aria-pressed") == "true"
    page.click("#switch-microphone")
    wait_js(page, "document.body.dataset.microphone === 'off'")
    page.click("#switch-talkback")
    wait_js(
        page, "document.getElementById('switch-talkback').getAttribute('aria-pressed') === 'true'"
    )
    assert [c for c in backend.calls if c.startswith("sound:")] == [
        "sound:microphone:True",
        "sound:microphone:False",
        "sound:talkback:True",
    ]
    context.close()
