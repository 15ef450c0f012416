"""End to end in a real headless Chromium, Debian's, as the co-parent's phone browser."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.browser import join, wait_js

pytestmark = pytest.mark.browser

PROBE = (Path(__file__).parents[1] / "support" / "probe.js").read_text()


def test_viewer_plays_h264_with_an_advancing_time_strip_and_pause_stops_it(
    running_box, chromium, tmp_path
) -> None:
    page = chromium.new_page(viewport={"width": 390, "height": 844})  # a phone, portrait
    page.add_init_script(PROBE)
    code = join(page, running_box.viewer_url)
    session = running_box.call(lambda: running_box.core.session_view())
    assert session.viewer.code == code, "the staff and the viewer see the same code"
    assert page.locator("#code").inner_text().replace(" ", "") == code
    time.sleep(1.0)
    assert page.evaluate("window.probe.stamped") == 0, "nothing plays before admission"

    running_box.press()
    wait_js(page, "window.probe.stamped >= 30")
    frames = page.evaluate("window.probe.frames.filter(f => f.stamp !== null)")
    stamps = [f["stamp"] for f in frames]
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]
    assert frames[-1]["width"] == 1280 and frames[-1]["height"] == 720
    assert page.evaluate("window.viewer.state") == "live"
    assert page.locator("#overlay").is_hidden()
    codec = page.evaluate("window.probeCodec()")
    assert codec["mimeType"].lower() == "video/h264"
    assert "profile-level-id=42e01f" in codec["fmtp"].lower()
    page.screenshot(path=str(tmp_path / "live.png"))

    running_box.press()  # pause
    wait_js(page, "window.viewer.state === 'paused'")
    assert page.locator("#message").inner_text() == "Paused"
    # a scan frame in flight as the pause came may still be presented: until the slate is
    # (frames come in order)
    wait_js(
        page,
        "(() => { const f = window.probe.frames; return f.length && "
        "f[f.length - 1].stamp === null; })()",
        timeout=10,
    )
    before = page.evaluate("window.probe.stamped")
    time.sleep(2.0)
    assert page.evaluate("window.probe.stamped") == before, "no scan frames while paused"

    running_box.press()  # resume
    wait_js(page, f"window.probe.stamped > {before + 10}")


def test_viewer_reconnects_by_itself_after_a_drop(running_box, chromium) -> None:
    page = chromium.new_page()
    page.add_init_script(PROBE)
    join(page, running_box.viewer_url)
    running_box.press()
    wait_js(page, "window.probe.stamped >= 10")

    # the box loses the viewer's connection (as when the phone's network drops)
    running_box.drop_viewers()
    wait_js(page, "window.viewer.state !== 'live'", timeout=15)
    count = page.evaluate("window.probe.stamped")
    wait_js(page, f"window.viewer.state === 'live' && window.probe.stamped > {count + 10}", 30)


def test_viewer_shows_ended_after_a_long_press(running_box, chromium) -> None:
    page = chromium.new_context().new_page()
    link = running_box.viewer_url
    join(page, link)
    running_box.long_press()
    wait_js(page, "window.viewer.state === 'ended'")
    assert "ended" in page.locator("#message").inner_text()
    # the seat is wiped and the link is dead: reopening it on this phone says how it ended at
    # once, from the outcome it kept (keyed by a hash of the room id, no secret), with no knock
    again = page.context.new_page()  # same phone, same storage
    knocks: list[str] = []
    again.on("request", lambda r: knocks.append(r.url) if "/knock" in r.url else None)
    again.goto(link)
    wait_js(again, "window.viewer && window.viewer.state === 'ended'")
    assert knocks == [], "the phone knew: nothing asked of the relay"
    kept = again.evaluate("Object.entries(localStorage)")
    room = link.split("/v/")[1].split("#")[0]
    secret = link.split("#")[1].split(".")[0]
    assert len(kept) == 1 and kept[0][0].startswith("outcome:")
    assert room not in str(kept) and secret not in str(kept), "no room id, no secret kept"
    # another phone is told by the relay (410) at once: no name asked, no knock
    other = chromium.new_context().new_page()
    states: list[str] = []
    other.on("request", lambda r: knocks.append(r.url) if "/knock" in r.url else None)
    other.goto(link)
    wait_js(other, "window.viewer && window.viewer.state !== 'connecting'")
    states.append(other.evaluate("window.viewer.state"))
    assert states == ["ended"], "told before being asked for a name"
    assert knocks == [] and other.locator("#join").is_hidden()


def test_one_seat_a_second_phone_is_refused_the_first_comes_back_after_a_reload(
    running_box, chromium
) -> None:
    link = running_box.viewer_url
    first_phone = chromium.new_context()
    first = first_phone.new_page()
    first.add_init_script(PROBE)
    join(first, link, name="First")
    running_box.press()  # admit
    wait_js(first, "window.probe.stamped >= 10")

    second = chromium.new_context().new_page()  # another phone with the same link
    second.goto(link)
    wait_js(second, "window.viewer && window.viewer.state === 'join'")
    second.click("#join-button")
    wait_js(second, "window.viewer.state === 'taken'")
    assert "already watching" in second.locator("#message").inner_text()

    first.reload()  # the seat (in IndexedDB) survives; the link's key left the address bar
    assert "#" not in first.url
    wait_js(first, "window.viewer.state === 'live' && window.probe.stamped >= 10", timeout=30)
    assert running_box.state() == "live", "the same phone came straight back, no re-admission"

    running_box.long_press()
    wait_js(first, "window.viewer.state === 'ended'")
    first.reload()  # the seat was wiped at the end; the phone remembers only how it finished
    wait_js(first, "window.viewer && window.viewer.state === 'ended'")
