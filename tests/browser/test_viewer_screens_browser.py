"""The viewer page's screens at phone size (390 x 844), in English and French, in Debian's
Chromium: against a scripted relay and box (tests/support/scripted_box.py) for what the page must
show whatever the box does (no H.264, each relay answer, a restarting box, a picture that stops,
the box's step, ends and their reasons, the waiting room, portrait and landscape), and against a
whole box for a damaged link."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import wait_js
from tests.support.scripted_box import ScriptedBox
from tests.support.wait import until

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LOCALES = {"en": "en-US", "fr": "fr-FR"}
#: A browser that cannot decode H.264 (Firefox as shipped, some Android builds).
NO_H264 = """(() => {
  const real = RTCRtpReceiver.getCapabilities.bind(RTCRtpReceiver);
  RTCRtpReceiver.getCapabilities = (kind) => {
    const caps = real(kind);
    if (caps && kind === "video") caps.codecs = caps.codecs.filter((c) => !/h264/i.test(c.mimeType));
    return caps;
  };
})();"""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[ScriptedBox]:
    with ScriptedBox(tmp_path / "box") as scripted:
        yield scripted


def phone(chromium: Any, lang: str = "en", **kwargs: Any) -> Any:
    context = chromium.new_context(viewport=PHONE, locale=LOCALES[lang], **kwargs)
    return context.new_page()


def joined(page: Any, link: str) -> None:
    page.goto(link)
    wait_js(page, "window.viewer && window.viewer.state === 'join'")
    page.click("#join-button")


def frames_stopped(page: Any) -> None:
    """Wait until the page presents no more frames after :meth:`ScriptedBox.freeze`: one still in
    flight (decoding on a loaded machine) would make the page LIVE the moment the box says so."""
    seen = [-1, time.monotonic()]

    def settled() -> bool:
        frames = page.evaluate("window.viewer.frames")
        if frames != seen[0]:
            seen[:] = [frames, time.monotonic()]
        return time.monotonic() - seen[1] > 0.5

    until(settled, 10.0, 0.1, "the page presenting no more frames")


def text(page: Any) -> str:
    return str(page.locator("#message").inner_text())


def visible(page: Any, selector: str) -> bool:
    return bool(page.locator(selector).is_visible())


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_browser_without_h264_is_told_before_it_knocks(chromium, box, lang) -> None:
    page = phone(chromium, lang)
    page.add_init_script(NO_H264)
    page.goto(box.link)
    wait_js(page, "window.viewer && window.viewer.state === 'unsupported'")
    assert "#" not in page.url, "the key left the address bar on this path too"
    assert (
        text(page)
        == {
            "en": "This browser cannot play the stream",
            "fr": "Ce navigateur ne peut pas lire la vidéo",
        }[lang]
    )
    page.wait_for_timeout(500)
    assert box.relay.kinds() == [], "nothing was asked of the relay"


def test_a_browser_without_webrtc_loses_the_key_from_the_address_bar_too(chromium, box) -> None:
    page = phone(chromium)
    page.add_init_script("delete window.RTCPeerConnection;")
    page.goto(box.link)
    wait_js(page, "window.viewer && window.viewer.state === 'unsupported'")
    assert "#" not in page.url and page.evaluate("location.hash") == ""
    assert box.relay.kinds() == []


@pytest.mark.parametrize(
    ("status", "code", "state", "en", "fr"),
    [
        (404, "unknown", "unknown", "Unknown link", "Lien inconnu"),
        (410, "ended", "ended", "The session has ended", "La séance est terminée"),
        (410, "expired", "expired", "This link has expired", "Ce lien a expiré"),
        (403, "bad", "badlink", "This link cannot be verified", "Ce lien ne peut pas être vérifié"),
        (403, "refused", "refused", "did not let you in", "n'a pas accepté votre demande"),
        (403, "taken", "taken", "already watching", "regarde déjà"),
    ],
)
def test_each_relay_answer_has_its_screen(chromium, box, status, code, state, en, fr) -> None:
    for lang, words in (("en", en), ("fr", fr)):
        box.relay.refusal = (status, code)
        page = phone(chromium, lang)
        if status in (404, 410):  # a dead link says so at once: no name asked, no knock
            page.goto(box.link)
            wait_js(page, f"window.viewer && window.viewer.state === {state!r}", timeout=20)
            assert box.relay.kinds() == []
        else:
            joined(page, box.link)
            wait_js(page, f"window.viewer.state === {state!r}", timeout=20)
        assert words in text(page), (lang, text(page))
        assert not visible(page, "#bar"), "no 'live' badge without a picture"
        page.context.close()


def test_a_mistyped_link_is_unknown_at_once_not_ended(chromium, box) -> None:
    box.relay.refusal = (404, "unknown")
    page = phone(chromium)
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text))
    page.goto(box.link.replace(box.room, box.room[:-2] + "xy"))
    wait_js(page, "window.viewer && window.viewer.state !== 'connecting'")
    assert page.evaluate("window.viewer.state") == "unknown", "never 'connection lost' first"
    assert text(page) == "Unknown link" and not visible(page, "#join")
    page.reload()
    wait_js(page, "window.viewer && window.viewer.state === 'unknown'")
    assert page.evaluate("Object.keys(localStorage).length") == 0, "nothing remembered as ended"


def test_a_relay_that_just_restarted_is_given_time_to_find_the_room(chromium, box) -> None:
    box.relay.refusal, box.relay.restarted = (404, "unknown"), True
    page = phone(chromium)
    page.goto(box.link)
    wait_js(page, "window.viewer && window.viewer.state === 'join'")  # not known to be gone
    page.click("#join-button")
    wait_js(page, "window.viewer.state === 'unknown'", timeout=10)  # said, and checked again
    box.relay.refusal = None  # the box opened the room again
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code", timeout=20)


def test_a_restarting_box_is_retried_until_it_answers(chromium, box) -> None:
    box.relay.refusal = (503, "")
    page = phone(chromium, "fr")
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'restarting'")
    assert text(page) == "La salle d'examen redémarre"
    assert visible(page, "#spinner")
    box.relay.refusal = None
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code", timeout=30)
    assert page.evaluate("window.viewer.code") == box.codes[-1]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_waiting_room_the_picture_and_its_quality(chromium, box, lang) -> None:
    page = phone(chromium, lang)
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    # the waiting room: animated, the time waited, how the code is checked, a way out
    assert visible(page, "#spinner") and visible(page, "#cancel") and visible(page, "#how")
    assert page.evaluate("getComputedStyle(document.querySelector('#spinner span')).animationName")
    how = page.locator("#how").inner_text()
    assert {"en": "may check", "fr": "pourra vérifier"}[lang] in how, how
    assert "phone you" not in how and "appellera" not in how, "no promise of a phone call"
    first = page.locator("#elapsed").inner_text()
    page.wait_for_timeout(2100)
    assert page.locator("#elapsed").inner_text() != first, "the time waited goes on"
    assert not visible(page, "#bar"), "no 'live, not recorded', no full screen without a picture"
    assert not visible(page, "#badge") and not visible(page, "#fullscreen")

    # the box says live, but no frame comes: not LIVE
    box.freeze()
    frames_stopped(page)
    box.say("live")
    wait_js(page, "window.viewer.state === 'starting'")
    wait_js(page, "window.viewer.state === 'delayed'", timeout=8)
    assert not visible(page, "#bar")
    box.freeze(False)
    wait_js(page, "window.viewer.state === 'live' && window.viewer.frames > 30", timeout=20)
    assert visible(page, "#bar") and visible(page, "#badge") and visible(page, "#fullscreen")
    wait_js(page, "window.viewer.quality && window.viewer.quality.bars >= 2", timeout=10)
    assert page.locator("#quality").get_attribute("aria-label")

    # the picture stops (the connection stays up): "delayed" and one bar, the freeze counted
    box.freeze()
    wait_js(page, "window.viewer.state === 'delayed'", timeout=8)
    assert {"en": "delayed", "fr": "retardée"}[lang] in text(page)
    page.wait_for_timeout(1200)
    quality = page.evaluate("window.viewer.quality")
    assert quality["bars"] == 1 and quality["freezes"] >= 1, quality
    box.freeze(False)
    wait_js(page, "window.viewer.state === 'live'", timeout=10)

    # the box's step under a poor network
    box.say("live", step="smaller")
    wait_js(page, "!document.getElementById('step').hidden")
    assert {"en": "smaller", "fr": "plus petite"}[lang] in page.locator("#step").inner_text()

    # paused: one opaque screen over the box's own slate, no bar
    box.say("paused")
    wait_js(page, "window.viewer.state === 'paused'")
    background = page.evaluate(
        "getComputedStyle(document.getElementById('overlay')).backgroundColor"
    )
    assert background == "rgb(0, 0, 0)", "opaque: the slate's own words do not show under ours"
    assert not visible(page, "#bar") and not visible(page, "#code")


def test_portrait_hint_and_landscape_controls_that_hide(chromium, box) -> None:
    page = phone(chromium)
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    assert not visible(page, "#rotate"), "no hint without a picture"
    box.say("live")
    wait_js(page, "window.viewer.state === 'live'", timeout=20)
    assert visible(page, "#rotate"), "portrait: turn the phone"
    page.wait_for_timeout(3500)
    assert not page.evaluate("document.body.classList.contains('controls-hidden')")

    page.set_viewport_size({"width": 844, "height": 390})
    wait_js(page, "document.getElementById('rotate').hidden")
    page.wait_for_timeout(1000)
    assert visible(page, "#fullscreen"), "shown at first"
    wait_js(page, "document.body.classList.contains('controls-hidden')", timeout=5)
    wait_js(page, "getComputedStyle(document.getElementById('bar')).opacity === '0'", 3)
    page.mouse.click(400, 200)
    assert not page.evaluate("document.body.classList.contains('controls-hidden')")


def test_cancel_leaves_the_waiting_room_and_the_same_seat_comes_back(chromium, box) -> None:
    page = phone(chromium, "fr")
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    page.click("#cancel")
    wait_js(page, "window.viewer.state === 'cancelled'")
    wait_js(page, "true")
    assert text(page) == "Vous avez quitté la salle d'attente"
    for _ in range(50):
        if box.leaves:
            break
        page.wait_for_timeout(100)
    assert box.leaves == 1, "the box was told the seat is given up (sealed leave)"
    page.click("#again")
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code", timeout=20)
    assert len(box.seats) == 2 and box.seats[0] == box.seats[1], "the same seat"


@pytest.mark.parametrize(
    ("reason", "state"),
    [("released", "released"), ("refused", "refused"), ("expired", "expired")],
)
def test_the_end_s_reason_is_said_and_kept_without_a_secret(chromium, box, reason, state) -> None:
    page = phone(chromium)
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    box.say("ended", reason=reason)
    wait_js(page, f"window.viewer.state === {state!r}")
    page.goto(box.link)  # opened again: the phone says how it ended (released: it may knock)
    if state == "released":
        wait_js(page, "window.viewer && window.viewer.state !== 'connecting'")
        return
    wait_js(page, f"window.viewer && window.viewer.state === {state!r}")
    kept = str(page.evaluate("JSON.stringify(localStorage)"))
    assert box.room not in kept and "outcome:" in kept


def test_a_sealed_end_through_the_relay_is_said_too(chromium, box) -> None:
    page = phone(chromium)
    joined(page, box.link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    box.end("expired")
    wait_js(page, "window.viewer.state === 'expired'")


def damage(link: str) -> str:
    """The link with one character of its secret changed (it still parses)."""
    base, fragment = link.split("#")
    secret, key_hash = fragment.split(".")
    flipped = secret[:-3] + ("A" if secret[-3] != "A" else "B") + secret[-2:]
    return f"{base}#{flipped}.{key_hash}"


def test_a_damaged_link_does_not_cost_the_phone_its_seat(running_box, chromium) -> None:
    link = running_box.viewer_url
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    joined(page, link)
    wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
    damaged = context.new_page()
    joined(damaged, damage(link))
    wait_js(damaged, "['badlink', 'refused'].includes(window.viewer.state)", timeout=20)
    assert [e for e in running_box.box_events() if e["kind"] == "tamper"], "the box saw it"
    damaged.close()
    page.close()

    again = context.new_page()  # the link's key left the address bar: the kept seat knocks
    again.goto(link.split("#")[0])
    wait_js(again, "window.viewer && window.viewer.state === 'admission' && window.viewer.code")
    knocks = [e for e in running_box.box_events() if e["kind"] == "knock"]
    assert knocks[-1].get("returning") is True, "the same seat came back"


def test_a_damaged_link_cannot_be_verified_with_a_whole_box(running_box, chromium) -> None:
    page = phone(chromium)
    joined(page, damage(running_box.viewer_url))
    wait_js(page, "window.viewer.state === 'badlink'", timeout=20)
    assert "cannot be verified" in text(page)
