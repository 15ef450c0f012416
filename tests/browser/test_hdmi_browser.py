"""The whole box with the HDMI source (over the fake TC358743) into a real Chromium: the scan
plays, the cable's signal goes away (the viewer gets the "no signal" slate, the connection stays
up, the pages say so) and comes back, and the picture returns without the viewer reloading."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from appliance.capture import edid
from appliance.capture.fake_v4l2 import FakeTC358743
from appliance.capture.hdmi import HdmiSource
from tests.support.browser import join, wait_js

pytestmark = pytest.mark.browser

PROBE = (Path(__file__).parents[1] / "support" / "probe.js").read_text()


def status(box) -> dict:
    with urllib.request.urlopen(box.url + "/api/status", timeout=5) as response:
        return json.load(response)


def test_hdmi_signal_lost_and_back_while_a_browser_watches(box_factory, chromium) -> None:
    device = FakeTC358743("pi4", "720p60")
    source = HdmiSource(device, edid.build(), 1280, 720, 30, max_fps=30)
    box = box_factory(source=source)
    page = chromium.new_page()
    page.add_init_script(PROBE)
    join(page, box.viewer_url)

    box.press()
    wait_js(page, "window.probe.stamped >= 20")
    assert status(box)["signal"] == "present"
    frames = page.evaluate("window.probe.frames.filter(f => f.stamp !== null)")
    assert frames[-1]["width"] == 1280 and frames[-1]["height"] == 720

    device.lose_signal()
    # The slate replaces the scan: frames keep being presented, none carries the time strip.
    wait_js(
        page,
        "(() => { const f = window.probe.frames; return f.length && "
        "f[f.length - 1].stamp === null; })()",
        timeout=10,
    )
    assert status(box)["signal"] == "no-signal"
    assert status(box)["state"] == "live", "losing the signal does not change the session"
    stamped = page.evaluate("window.probe.stamped")
    time.sleep(1.5)
    assert page.evaluate("window.probe.stamped") == stamped, "no scan frames without a signal"
    assert page.evaluate("window.viewer.state") == "live"

    device.plug("720p60")
    wait_js(page, f"window.probe.stamped > {stamped + 20}", timeout=20)
    assert status(box)["signal"] == "present"
    assert page.evaluate("window.viewer.pc.connectionState") == "connected", "no reload needed"
