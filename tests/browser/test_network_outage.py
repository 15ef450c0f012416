"""A real Chromium viewer through a 10 s blackout of the box's media (bench/netem): the picture comes
back by itself on the same seat, without a new knock or admission; meanwhile the page knows it is
reconnecting and never shows "waiting to be let in"; the box notices the dead path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bench.netem import Impairment, run_probe
from tests.support.browser import join, wait_js
from tests.support.rig import needs_rig, require_rig
from tests.support.wait import until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_rig,
]

PROBE = (Path(__file__).parents[1] / "support" / "probe.js").read_text()
#: Every state and reconnecting flag the page goes through, polled in the page.
STATES = """
(() => {
  window.seen = [];
  setInterval(() => {
    const v = window.viewer;
    if (!v) return;
    const now = v.state + (v.reconnecting ? "+reconnecting" : "");
    if (window.seen[window.seen.length - 1] !== now) window.seen.push(now);
  }, 50);
})();
"""


def _knocks(box: Any) -> int:
    return sum(1 for e in box.box_events() if e.get("kind") == "knock")


def test_a_10_s_blackout_resumes_by_itself_on_the_same_seat(box_factory, chromium) -> None:
    require_rig()
    box = box_factory(stream={"ice_addresses": ["127.0.0.2"], "ice_servers": []})
    with Impairment(max_seconds=120) as net:
        net.blackout()
        assert run_probe(2.0, 0.5).received == 0, "the blackout holds"
        net.restore()
        page = chromium.new_page()
        page.add_init_script(PROBE)
        page.add_init_script(STATES)
        join(page, box.viewer_url)
        box.press()
        wait_js(page, "window.probe.stamped >= 30", 20)
        knocks = _knocks(box)
        peer = box.call(lambda: box.box.viewers.peers[0])

        net.blackout()
        dark = time.monotonic()
        until(lambda: box.call(lambda: peer.stalled), 6.0, 0.05, "the box noticing")
        noticed = time.monotonic() - dark
        assert noticed <= 3.5, f"the box noticed the dead path after {noticed:.1f} s"
        wait_js(page, "window.viewer.reconnecting === true", 8)
        time.sleep(max(0.0, 10.0 - (time.monotonic() - dark)))
        before = page.evaluate("window.probe.stamped")
        net.restore()
        back = time.time()
        wait_js(page, f"window.probe.stamped > {before + 30}", 20)
        first = page.evaluate(
            f"window.probe.frames.find(f => f.stamp !== null && f.stamp > {back * 1000})"
        )
        recovery = first["shown"] / 1000 - back
        assert recovery < 5.0, f"the first fresh frame {recovery:.1f} s after the return"
        wait_js(page, "window.viewer.reconnecting === false", 10)

        seen = page.evaluate("window.seen")
        live_at = seen.index("live")
        assert not any(s.startswith("admission") for s in seen[live_at:]), seen
        assert box.state() == "live"
        assert _knocks(box) == knocks, "no new knock: the same connection came back"
        assert box.call(lambda: box.box.viewers.peers[0]) is peer
        print(f"noticed {noticed:.1f} s; first fresh frame {recovery:.2f} s after; {seen}")
