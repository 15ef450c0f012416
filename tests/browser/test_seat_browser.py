"""The one seat, freed by the phone that holds it, in real browsers against a whole box: phone A
taps Cancel in the waiting room, and phone B, turned away while A held the seat, gets in by
itself (no reload) with a code of its own; the staff's status says that another phone tried."""

from __future__ import annotations

import pytest

from tests.support.browser import join, wait_js

pytestmark = pytest.mark.browser


def test_a_cancel_frees_the_seat_for_the_phone_that_was_turned_away(running_box, chromium) -> None:
    link = running_box.viewer_url
    first = chromium.new_context(viewport={"width": 390, "height": 844}).new_page()
    code_a = join(first, link, name="A")

    second = chromium.new_context(viewport={"width": 390, "height": 844}).new_page()
    second.goto(link)
    wait_js(second, "window.viewer && window.viewer.state === 'join'")
    second.fill("#name", "B")
    second.click("#join-button")
    wait_js(second, "window.viewer.state === 'taken'", timeout=20)
    view = running_box.call(lambda: running_box.core.session_view())
    assert view.turned_away == 1, "the staff see that another phone tried to join"
    assert view.viewer.name == "A" and view.viewer.code == code_a

    first.click("#cancel")
    wait_js(first, "window.viewer.state === 'cancelled'")
    # B was never reloaded: its "taken" screen knocks again quietly and gets in
    wait_js(second, "window.viewer.state === 'admission' && window.viewer.code", timeout=40)
    code_b = second.evaluate("window.viewer.code")
    view = running_box.call(lambda: running_box.core.session_view())
    assert view.viewer.name == "B" and view.viewer.code == code_b != code_a
    assert view.turned_away == 0, "B holds the seat now"
    assert running_box.state() == "waiting"

    first.click("#again")  # A's key no longer owns the seat
    wait_js(first, "window.viewer.state === 'taken'", timeout=20)
    running_box.press()  # the staff admit B
    wait_js(second, "['live', 'starting'].includes(window.viewer.state)", timeout=20)
