"""What the staff's page says about the seat, in English and French (in-memory backend): a fresh
knock is connecting, not "dropped"; a code that replaced an earlier one says so, with its time;
another phone turned away while the seat was held is mentioned."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from appliance.core.views import ViewerView
from tests.browser import test_pairing_browser as pairing_browser
from tests.browser.test_pairing_browser import Served, state_is
from tests.browser.test_staff_page_browser import opened, tablet
from tests.support.browser import wait_js

pytestmark = pytest.mark.browser

served = pairing_browser.served

WORDS = {
    "en": {"turned": "Another phone tried to join", "new": "New code since"},
    "fr": {"turned": "Un autre téléphone a essayé", "new": "Nouveau code depuis"},
}


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_staff_see_a_new_code_and_a_phone_turned_away(
    served: Served, chromium: Any, lang: str
) -> None:
    page, _ = tablet(chromium, served, lang)
    opened(page, served)
    # a fresh knock: seated, the handshake under way, never connected
    served.backend.state = "waiting"
    served.backend.viewer = ViewerView("Alex", None, False, False, connecting=True)
    state_is(page, "waiting")
    page.wait_for_timeout(1200)  # a poll or more
    assert page.locator("#viewer-offline").is_hidden(), "connecting, not 'connection dropped'"

    at = int(time.time())
    served.backend.viewer = ViewerView("Alex", "123456", False, True, code_at=at, code_renewed=True)
    served.backend.turned_away = 1
    hhmm = datetime.fromtimestamp(at, ZoneInfo("Europe/Paris")).strftime("%H:%M")  # the tablet's
    wait_js(page, f"document.getElementById('state-text').textContent.includes({hhmm!r})")
    headline = page.locator("#state-text").inner_text()
    assert WORDS[lang]["new"] in headline and WORDS[lang]["turned"] in headline, headline

    served.backend.viewer = replace(served.backend.viewer, code_renewed=False)
    served.backend.turned_away = 0
    wait_js(page, f"!document.getElementById('state-text').textContent.includes({hhmm!r})")
    assert WORDS[lang]["turned"] not in page.locator("#state-text").inner_text()


def test_the_card_says_in_one_line_how_to_pass_the_link_on() -> None:
    from tests.unit.test_pairing_page import Backend, logged_in

    backend = Backend()
    client, headers = logged_in(backend)
    client.post("/pairing/api/open", json={"consent": True}, headers=headers)
    page = client.get("/pairing/card").get_data(as_text=True)
    assert "Send this link" in page and "Envoyer ce lien" in page, "the viewer's own control"
