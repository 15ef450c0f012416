"""Transport-wide congestion control with a real Chromium viewer: the box negotiates it, stamps
every packet, and Chromium's transport-cc feedback reaches the box, parses, and matches what the
box sent (arrival times for nearly every packet); the viewer's rate follows the send-side
estimator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from appliance.stream.feedback import RateMode
from appliance.stream.twcc import ArrivalClock, packet_results, parse_feedback, split_compound
from tests.support.browser import join, wait_js
from tests.support.wait import until

pytestmark = pytest.mark.browser

PROBE = (Path(__file__).parents[1] / "support" / "probe.js").read_text()
#: set to a directory to keep the feedback Chromium sent (tests/fixtures/ holds a few)
CAPTURE_DIR = os.environ.get("APPLIANCE_CAPTURE_TWCC", "")


def _watch(box: Any, chromium: Any) -> Any:
    page = chromium.new_page()
    page.add_init_script(PROBE)
    join(page, box.viewer_url)
    box.press()
    wait_js(page, "window.probe.stamped >= 30", 20)
    return page


def test_chromium_reports_the_arrival_of_the_packets_the_box_stamped(
    running_box: Any, chromium: Any
) -> None:
    _watch(running_box, chromium)
    peer = running_box.call(lambda: running_box.box.viewers.peers[0])
    twcc = peer.twcc
    assert twcc is not None, "Chromium offers transport-cc: the box negotiated it"
    assert peer.rate_mode is RateMode.TRANSPORT_CC
    until(
        lambda: running_box.call(lambda: (peer._status or {}).get("rate_control")),
        5,
        0.1,
        "the status saying which",
    )
    assert running_box.call(lambda: peer._status["rate_control"]) == "transport-cc"
    until(lambda: running_box.call(lambda: twcc.feedback) >= 20, 10, 0.1, "feedback")
    captured, log = running_box.call(lambda: (list(twcc.captured), twcc.log))
    assert twcc.malformed == 0
    clock = ArrivalClock()
    received = reported = 0
    for packet in captured:
        payloads, _ = split_compound(packet)
        for payload in payloads:
            message = parse_feedback(payload)
            results = running_box.call(lambda m=message: packet_results(m, log, clock))
            reported += len(results)
            received += sum(1 for r in results if r.arrival is not None)
    assert reported >= 50, f"{reported} packets reported in {len(captured)} messages"
    assert received >= 0.95 * reported, f"{received} of {reported} arrived on loopback"
    if CAPTURE_DIR:
        for i, packet in enumerate(captured):
            (Path(CAPTURE_DIR) / f"chromium-twcc-{i:02d}.bin").write_bytes(packet)
    print(f"{twcc.feedback} feedback messages, {twcc.stamped} packets stamped")
