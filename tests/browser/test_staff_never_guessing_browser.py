"""Issue 14, the staff's side: the pairing page never leaves anyone guessing. In Debian's
Chromium: a real box stopped under a live page (the page says so within seconds, stops claiming
live, and a button says why it did nothing; a box that answers again brings the page back);
colour follows meaning; why and when the last session ended; the language switch, kept; the
knock sound kept on after a reload, and a one-tap control when the browser holds it back; the
event log's counts named; the card's expiry labelled and kept current."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.core.views import EndedView
from tests.browser import test_pairing_browser as pairing_browser
from tests.browser.test_pairing_browser import Served, log_in, new_context, state_is
from tests.browser.test_staff_page_browser import opened, paris, tablet
from tests.support.browser import join, wait_js
from tests.unit.test_pairing_page import Backend

pytestmark = pytest.mark.browser

served = pairing_browser.served  # the page over HTTPS with the in-memory backend

PASSWORD = "staff-page-password"
GONE = {
    "en": "The box is not answering. Check it is powered and connected; this page retries by itself.",
    "fr": "Le boîtier ne répond pas.",
}


def text(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text())


def test_the_page_says_when_the_box_stops_answering_and_comes_back(
    box_factory: Any, chromium: Any
) -> None:
    box = box_factory(pairing={"password": PASSWORD})
    staff = chromium.new_context(viewport={"width": 1024, "height": 900}).new_page()
    staff.goto(box.pairing_url)
    staff.fill("#password", PASSWORD)
    staff.click("button[type=submit]")
    state_is(staff, "ready")
    phone = chromium.new_context(viewport={"width": 390, "height": 844}).new_page()
    join(phone, box.viewer_url)
    state_is(staff, "waiting")
    box.press()  # admitted: the viewer sees the scan
    state_is(staff, "live")
    assert "the viewer sees the scan" in text(staff, "#state-text")
    assert staff.locator("#box-gone").is_hidden()

    box.stop()  # the box's process is gone
    wait_js(staff, "!document.getElementById('box-gone').hidden", timeout=10)
    assert text(staff, "#box-gone") == GONE["en"]
    headline = text(staff, "#state-text")
    assert "Live" not in headline and "sees" not in headline, "it no longer claims live"
    assert "tone-bad" in (staff.locator("#state-text").get_attribute("class") or "")
    assert staff.evaluate("document.querySelector('main').classList.contains('stale')")
    assert staff.locator("#pause").is_visible(), "the stale controls are still there, greyed"
    staff.click("#pause")
    wait_js(staff, "!document.getElementById('error-text').hidden", timeout=12)
    said = text(staff, "#error-text")
    assert said.startswith("Not done: the box is not answering."), said
    assert "Failed to fetch" not in staff.locator("main").inner_text()

    phone.context.close()


def test_a_page_whose_box_stops_answering_and_comes_back_carries_on(
    served: Served, chromium: Any
) -> None:
    """A box whose core does not answer (the page gets 503s), then answers again: the page says
    so, the buttons say why they did nothing, and it carries on by itself."""
    page, watch = tablet(chromium, served, "fr")
    opened(page, served)
    served.backend.stuck = True
    wait_js(page, "!document.getElementById('box-gone').hidden", timeout=10)
    assert text(page, "#box-gone").startswith(GONE["fr"])
    assert "Inconnu" in text(page, "#state-text")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#end")
    wait_js(page, "!document.getElementById('error-text').hidden", timeout=5)
    assert text(page, "#error-text").startswith("Rien n'a été fait"), text(page, "#error-text")
    page.click("#logout")  # leaving the page says why it did not either
    page.wait_for_timeout(300)
    assert page.locator("#password").count() == 0
    assert text(page, "#error-text").startswith("Rien n'a été fait")
    served.backend.stuck = False
    state_is(page, "ready")
    wait_js(page, "document.getElementById('box-gone').hidden")
    assert page.locator("#error-text").is_hidden()
    assert not page.evaluate("document.querySelector('main').classList.contains('stale')")
    watch.check(served.origin)


TONE_OF_HEADLINE = [
    ("idle", "neutral"),
    ("ready", "neutral"),
    ("waiting", "warn"),
    ("live", "good"),
    ("live-unseen", "warn"),
    ("paused", "neutral"),
    ("error", "bad"),
]


def test_colour_follows_meaning(served: Served, chromium: Any) -> None:
    page, watch = tablet(chromium, served, "en")

    def colour(css: str) -> str:
        return str(
            page.evaluate(
                """(css) => { const probe = document.createElement('span');
                probe.style.color = css; document.body.append(probe);
                const c = getComputedStyle(probe).color; probe.remove(); return c; }""",
                css,
            )
        )

    tones = {name: colour(f"var(--{name})") for name in ("good", "warn", "bad", "neutral")}
    assert len(set(tones.values())) == 4, tones
    backend = served.backend
    for state, tone in TONE_OF_HEADLINE:
        if state in ("waiting", "live", "live-unseen"):
            backend.knock("Alex", "123456")
        backend.state = "live" if state == "live-unseen" else state
        if state == "live-unseen":
            backend.stalled(True)
        shown = "live" if state == "live-unseen" else state
        state_is(page, shown)
        page.wait_for_timeout(1200)  # one more poll: the same state, now with the viewer's news
        seen = page.evaluate("getComputedStyle(document.getElementById('state-text')).color")
        assert seen == tones[tone], f"{state}: {seen}, not {tone} ({tones[tone]})"
        assert page.locator("#state-text.tone-" + tone).count() == 1
    for selector, tone in (("#viewer-reconnecting", "warn"), ("#error-text", "bad")):
        seen = page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).color")
        assert seen == tones[tone], selector
    watch.check(served.origin)


ENDED = {
    "en": {
        "page": "The last session was ended from the pairing page at {t}.",
        "expired": "The last session expired at {t}.",
        "button": "The last session was ended with the box's button at {t}.",
    },
    "fr": {
        "page": "La dernière séance a été terminée depuis la page d'appairage à {t}.",
        "expired": "La dernière séance a expiré à {t}.",
        "button": "La dernière séance a été terminée avec le bouton du boîtier à {t}.",
    },
}


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_staff_are_told_why_and_when_the_session_ended(
    served: Served, chromium: Any, lang: str
) -> None:
    page, watch = tablet(chromium, served, lang)
    assert page.locator("#ended").is_hidden(), "nothing ended yet"
    opened(page, served)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#end")
    state_is(page, "idle")
    assert served.backend.ended is not None
    at = served.backend.ended.at
    wait_js(page, "!document.getElementById('ended').hidden")
    assert text(page, "#ended") == ENDED[lang]["page"].format(t=paris(at))
    for reason, at in (("expired", 1_750_003_600), ("button", 1_750_007_260)):
        served.backend.ended = EndedView(reason, at)
        expected = ENDED[lang][reason].format(t=paris(at))
        wait_js(page, f"document.getElementById('ended').textContent === {expected!r}")
    opened(page, served)
    assert page.locator("#ended").is_hidden(), "a new session: the old news goes"
    watch.check(served.origin)


def test_the_staff_switch_the_language_and_it_stays(served: Served, chromium: Any) -> None:
    context, watch = new_context(chromium, viewport={"width": 1024, "height": 768}, locale="fr-FR")
    page = context.new_page()
    log_in(page, served)
    assert page.evaluate("document.documentElement.lang") == "fr"
    switch = page.locator("header .lang-switch button")
    assert switch.all_inner_texts() == ["English", "Français"], "each by its own name"
    page.click("header .lang-switch button[value=en]")
    state_is(page, "idle")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert text(page, "#state-text") == "No session open."
    page.reload()
    state_is(page, "idle")
    assert text(page, "#state-text") == "No session open.", "kept after a reload"
    page.click("#logout")
    page.wait_for_selector("#password")
    assert page.evaluate("document.documentElement.lang") == "en", "and at the login"
    watch.check(served.origin)


#: A browser that holds sound back until a user gesture (as Chromium does without the test
#: flag): the context starts suspended and resumes only while the user is activating the page.
HELD_BACK_AUDIO = """
window.AudioContext = class {
  constructor() { this.state = "suspended"; this.currentTime = 0; this.listeners = []; }
  addEventListener(type, listener) { this.listeners.push(listener); }
  change(state) { this.state = state; for (const l of this.listeners) l(); }
  resume() { if (navigator.userActivation.isActive) this.change("running"); return Promise.resolve(); }
  suspend() { this.change("suspended"); return Promise.resolve(); }
};
"""


def test_the_knock_sound_stays_on_after_a_reload(served: Served, chromium: Any) -> None:
    page, watch = tablet(chromium, served, "en")
    assert page.locator("#sound").is_visible()
    page.click("#sound")
    wait_js(page, "window.pairing.sound === 'running'")
    page.reload()
    state_is(page, "idle")
    wait_js(page, "window.pairing.sound === 'running'")  # no touch needed: it was kept
    assert page.locator("#sound-on").is_visible() and page.locator("#sound").is_hidden()

    page.add_init_script(HELD_BACK_AUDIO)
    page.reload()
    state_is(page, "idle")
    blocked = page.locator("#sound-blocked")
    wait_js(page, "!document.getElementById('sound-blocked').hidden")
    assert blocked.inner_text() == (
        "The browser blocked the knock sound: tap here to turn it back on."
    )
    assert page.evaluate("window.pairing.sound") == "suspended"
    blocked.click()  # one tap
    wait_js(page, "window.pairing.sound === 'running'")
    assert blocked.is_hidden() and page.locator("#sound-on").is_visible()
    page.click("#sound-off")
    wait_js(page, "window.pairing.sound === 'suspended'")
    page.reload()
    state_is(page, "idle")
    page.click("h1")  # a touch no longer turns it on: the staff said off
    page.wait_for_timeout(300)
    assert page.evaluate("window.pairing.sound") in ("off", "suspended")
    assert page.locator("#sound").is_visible() and blocked.is_hidden()
    watch.check(served.origin)


def test_the_event_log_names_what_each_count_counts(served: Served, chromium: Any) -> None:
    served.backend.extra_events = [
        {"at": 1_750_000_000, "kind": "tamper", "what": "knock", "count": 3},
        {"at": 1_750_000_100, "kind": "mask-saved", "count": 2},
    ]
    page, watch = tablet(chromium, served, "en")
    page.locator("#event-log").scroll_into_view_if_needed()
    wait_js(page, "document.getElementById('events').rows.length >= 2", timeout=10)
    shown = text(page, "#events")
    assert "tampered message refused (messages: 3, what: a knock)" in shown
    assert "privacy mask saved (rectangles: 2)" in shown
    watch.check(served.origin)


def test_the_card_labels_its_expiry_keeps_it_current_and_breathes(
    served: Served, chromium: Any
) -> None:
    context, watch = new_context(
        chromium, viewport={"width": 800, "height": 1000}, timezone_id="Europe/Paris"
    )
    page = context.new_page()
    log_in(page, served)
    opened(page, served)
    with context.expect_page() as opening:
        page.click("#print")
    card = opening.value
    card.wait_for_load_state()
    until = text(card, "#card-until")
    assert until == f"Valable jusqu'à · Valid until : {paris(Backend.EXPIRES)}"
    served.backend.expires = Backend.EXPIRES + 1800  # the staff extended the session
    later = paris(Backend.EXPIRES + 1800)
    wait_js(card, f"document.getElementById('card-until').textContent.includes({later!r})", 10)
    assert card.locator("time.until").all_inner_texts() == [later] * 3, "every time on it"
    for lang in ("fr", "en"):
        assert card.locator(f"ul.steps[lang={lang}] li").count() == 4, "short steps, one a line"
    size, line = card.evaluate(
        "(() => { const s = getComputedStyle(document.querySelector('.steps li'));"
        " return [parseFloat(s.fontSize), parseFloat(s.lineHeight)]; })()"
    )
    assert line / size >= 1.3, "air between the lines"
    card.emulate_media(media="print")
    assert card.evaluate(
        "(() => { const c = document.getElementById('card');"
        " return c.scrollHeight <= c.clientHeight + 1; })()"
    ), "all of it fits on the A6 page"
    card.emulate_media(media="screen")
    served.backend.end()
    wait_js(card, "!document.getElementById('card-ended').hidden", 10)
    watch.check(served.origin)
