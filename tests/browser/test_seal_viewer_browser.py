"""The viewer page (viewer.js + seal.js) in Chromium against a scripted relay and box on
loopback: what the page does when the box's messages are forged, rewritten or replaced, and that
the code it shows is the one it computed. The whole system is tested end to end elsewhere; here
the box is a script, so it can misbehave on purpose."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from appliance.crypto import BoxIdentity
from appliance.session import seal
from tests.support.browser import wait_js
from tests.support.scripted_box import ScriptedRelay

pytestmark = pytest.mark.browser

Box = Callable[[str, dict[str, Any]], None]

#: How many seat records the page keeps in IndexedDB.
SEATS = """new Promise((resolve) => {
  const open = indexedDB.open("appliance-viewer", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("seats");
  open.onsuccess = () => {
    const count = open.result.transaction("seats").objectStore("seats").count();
    count.onsuccess = () => { resolve(count.result); open.result.close(); };
  };
})"""


@pytest.fixture
def session(tmp_path: Path) -> tuple[BoxIdentity, str, bytes]:
    return BoxIdentity.load_or_create(tmp_path / "box"), seal.new_room_id(), seal.new_secret()


def open_link(chromium: Any, relay: ScriptedRelay, secret: bytes, key_hash: bytes) -> Any:
    page = chromium.new_page()
    page.goto(seal.link(relay.origin, relay.room, secret, key_hash))
    wait_js(page, "window.viewer && window.viewer.state === 'join'")
    assert "#" not in page.url
    page.fill("#name", "Sam")
    page.click("#join-button")
    return page


def test_a_reply_signed_by_another_key_stops_the_page_before_any_offer(
    chromium, session, tmp_path
) -> None:
    identity, room, secret = session
    impostor = BoxIdentity.load_or_create(tmp_path / "impostor")

    def box(kind: str, wire: dict[str, Any]) -> None:
        if kind == "knock":
            knock = seal.open_knock(room, secret, identity.key_hash, wire)
            forged = seal.BoxHandshake(room, secret, impostor, knock, bytes(32)).reply([], 1)
            relay.send({**forged, "box": seal.b64u(identity.public_point)})

    with ScriptedRelay(room, box) as relay:
        page = open_link(chromium, relay, secret, identity.key_hash)
        wait_js(page, "window.viewer.state === 'badlink'")
        assert page.locator("#message").inner_text() == "This link cannot be verified"
        time.sleep(0.5)
        assert relay.kinds() == ["knock"], "no offer, no second knock"
        assert page.evaluate("window.viewer.pc") is None


def test_an_answer_for_another_certificate_stops_the_page(chromium, session) -> None:
    identity, room, secret = session
    state: dict[str, Any] = {}

    def box(kind: str, wire: dict[str, Any]) -> None:
        if kind == "knock":
            knock = seal.open_knock(room, secret, identity.key_hash, wire)
            state["box"] = seal.BoxHandshake(room, secret, identity, knock, bytes([7] * 32))
            relay.send(state["box"].reply([], 2_000_000_000))
        else:
            offer = state["box"].open(wire)
            assert offer["type"] == "offer" and "a=fingerprint:sha-256" in offer["sdp"]
            rewritten = "v=0\r\na=fingerprint:sha-256 " + ":".join(["08"] * 32) + "\r\n"
            relay.send(
                state["box"].seal(
                    {"type": "answer", "sdp": rewritten, "commit_nonce": seal.b64u(bytes(32))}
                )
            )

    with ScriptedRelay(room, box) as relay:
        page = open_link(chromium, relay, secret, identity.key_hash)
        wait_js(page, "window.viewer.state === 'badlink'")
        assert page.evaluate("window.viewer.code") is None, "no code for an unverified answer"
        assert relay.kinds() == ["knock", "message"]


def test_an_end_in_place_of_the_answer_shows_its_page_and_wipes_the_seat(chromium, session) -> None:
    identity, room, secret = session
    state: dict[str, Any] = {}

    def box(kind: str, wire: dict[str, Any]) -> None:
        if kind == "knock":
            knock = seal.open_knock(room, secret, identity.key_hash, wire)
            state["box"] = seal.BoxHandshake(room, secret, identity, knock, bytes(32))
            relay.send(state["box"].reply([], 2_000_000_000))
        else:
            state["box"].open(wire)
            relay.send(state["box"].seal({"type": "end", "reason": "refused"}))

    with ScriptedRelay(room, box) as relay:
        page = open_link(chromium, relay, secret, identity.key_hash)
        wait_js(page, "window.viewer.state === 'refused'")
        page.reload()  # the fragment is gone, and so is the seat: the page says how it ended
        wait_js(page, "window.viewer.state === 'refused'")
        assert page.evaluate(SEATS) == 0, "the seat was wiped"
        assert relay.kinds().count("knock") == 1, "no knock after the end"


def test_the_page_shows_the_code_it_computed_and_comes_back_with_the_same_seat(
    chromium, session
) -> None:
    identity, room, secret = session
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    run = lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result(10)  # noqa: E731
    peers: list[RTCPeerConnection] = []
    handshakes: list[tuple[seal.BoxHandshake, bytes]] = []
    codes: list[str] = []

    async def new_peer() -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.append(pc)
        return pc

    async def answer(pc: RTCPeerConnection, offer: str) -> str:
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    def box(kind: str, wire: dict[str, Any]) -> None:
        if kind == "knock":
            knock = seal.open_knock(room, secret, identity.key_hash, wire)
            pc = run(new_peer())
            cert = pc._RTCPeerConnection__certificates[0]  # what appliance.stream.peers reads
            fp = next(f for f in cert.getFingerprints() if f.algorithm == "sha-256")
            handshake = seal.BoxHandshake(
                room, secret, identity, knock, bytes.fromhex(fp.value.replace(":", ""))
            )
            handshakes.append((handshake, knock.seat_pub))
            relay.send(handshake.reply([], int(time.time()) + 3600))
        else:
            handshake = handshakes[-1][0]
            offer = handshake.open(wire)
            if offer["type"] != "offer":
                return
            sdp = run(answer(peers[-1], offer["sdp"]))
            relay.send(handshake.answer(sdp))
            codes.append(handshake.code(seal.sdp_fingerprint(offer["sdp"])))

    try:
        with ScriptedRelay(room, box) as relay:
            page = open_link(chromium, relay, secret, identity.key_hash)
            wait_js(page, "window.viewer.state === 'admission' && window.viewer.code")
            assert page.evaluate("window.viewer.code") == codes[-1]
            shown = page.locator("#code").inner_text()
            assert re.fullmatch(r"\d{3} \d{3}", shown) and shown.replace(" ", "") == codes[-1]

            page.reload()  # iOS discarded the tab: no fragment now, the seat knocks again
            wait_js(page, f"window.viewer.code && window.viewer.code !== {codes[0]!r}")
            assert len(handshakes) == 2 and handshakes[0][1] == handshakes[1][1], "same seat"
            assert page.evaluate("window.viewer.code") == codes[-1]
            assert [k for k in relay.kinds() if k == "knock"] == ["knock", "knock"]
            page.close()
    finally:
        for pc in peers:
            run(pc.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
