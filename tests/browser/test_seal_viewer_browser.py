"""The viewer page (viewer.js + seal.js) in Chromium against a scripted relay and box on
loopback: what the page does when the box's messages are forged, rewritten or replaced, and that
the code it shows is the one it computed. The whole system is tested end to end elsewhere; here
the box is a script, so it can misbehave on purpose."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from appliance.crypto import BoxIdentity
from appliance.relay.viewer import VIEWER_CSP, VIEWER_DIR
from appliance.session import seal
from tests.support.browser import wait_js

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


class ScriptedRelay:
    """The viewer's half of the relay transport (docs/protocol.md), one room, with a scripted box
    behind it: ``box(kind, wire)`` is called for every knock and message from the page."""

    def __init__(self, room: str, box: Box) -> None:
        self.room = room
        self.box = box
        self.received: list[tuple[str, dict[str, Any]]] = []
        #: Box → viewer messages per client (each knock is a new client, as on the relay).
        self._out: dict[str, list[tuple[int, str]]] = {}
        self._current = ""
        self._cond = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def send(self, wire: dict[str, Any]) -> None:
        """Box → the client that knocked last."""
        with self._cond:
            queue = self._out[self._current]
            queue.append((len(queue) + 1, json.dumps(wire)))
            self._cond.notify_all()

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.received]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(
                self, status: int, body: bytes = b"", kind: str = "application/json"
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Security-Policy", VIEWER_CSP)
                self.send_header("Cache-Control", "no-store")
                if body:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                if url.path == f"/v/{relay.room}":
                    self._reply(200, (VIEWER_DIR / "index.html").read_bytes(), "text/html")
                elif (m := re.fullmatch(r"/v/([a-z]+\.(?:js|css))", url.path)) and (
                    VIEWER_DIR / m[1]
                ).is_file():
                    kind = "text/css" if m[1].endswith(".css") else "text/javascript"
                    self._reply(200, (VIEWER_DIR / m[1]).read_bytes(), kind)
                elif url.path == f"/api/rooms/{relay.room}/messages":
                    query = parse_qs(url.query)
                    after = int(query.get("after", ["0"])[0])
                    deadline = time.monotonic() + min(float(query.get("wait", ["0"])[0]), 1.0)
                    client = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    with relay._cond:
                        queue = relay._out.get(client, [])
                        while not (out := [m for m in queue if m[0] > after]):
                            left = deadline - time.monotonic()
                            if left <= 0:
                                break
                            relay._cond.wait(left)
                    body = {"messages": [{"n": n, "blob": b} for n, b in out], "seat": True}
                    self._reply(200, json.dumps(body).encode())
                else:
                    self._reply(404, b'{"error": "not-found"}')

            def do_POST(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                wire = json.loads(json.loads(self.rfile.read(length))["blob"])
                kind = "knock" if url.path.endswith("/knock") else "message"
                relay.received.append((kind, wire))
                if kind == "knock":
                    with relay._cond:
                        relay._current = f"client-{len(relay._out)}"
                        relay._out[relay._current] = []
                    self._reply(202, json.dumps({"client": relay._current}).encode())
                else:
                    self._reply(204)
                try:
                    relay.box(kind, wire)
                except seal.SealError:
                    pass  # dropped, as the box does (a bye from an earlier connection, say)

        return Handler

    def __enter__(self) -> ScriptedRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


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
            codes.append(handshake.code(seal.dtls_fingerprint(offer["sdp"])))

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
