"""A scripted relay and box for the viewer page, on loopback, without a real box.

:class:`ScriptedRelay` is the viewer's half of the relay transport (docs/protocol.md) for one room,
serving the packaged viewer files, with a scripted box behind it; it can answer every request
with a refusal instead (``refuse``), as the real relay does for a mistyped, finished or damaged
link or a restarting box. :class:`ScriptedBox` is that box: it opens knocks with the real seal,
answers with an aiortc peer that streams the synthetic phantom (with its time strip) in H.264, and
says on the page's data channel whatever status a test or the screenshots want, including what the
core does not send yet (the picture's step, an end's reason)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)

from appliance.capture.synthetic import SyntheticSource
from appliance.crypto import BoxIdentity
from appliance.relay.viewer import LANG_DIR, VIEWER_CSP, VIEWER_DIR, languages
from appliance.session import seal

Box = Callable[[str, dict[str, Any]], None]


class ScriptedRelay:
    """The viewer's half of the relay transport, one room, with a scripted box behind it:
    ``box(kind, wire)`` is called for every knock and message from the page."""

    def __init__(self, room: str, box: Box) -> None:
        self.room = room
        self.box = box
        self.received: list[tuple[str, dict[str, Any]]] = []
        #: (status, error code) every viewer request gets instead of an answer, when set (the
        #: room's status too, when it says the room is gone or the relay is unreachable).
        self.refusal: tuple[int, str] | None = None
        #: A 404 says the relay just restarted (its box may open the room again).
        self.restarted = False
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

            def _refused(self) -> bool:
                if relay.refusal is None or not self.path.startswith("/api/"):
                    return False
                status, code = relay.refusal
                if self.path == f"/api/rooms/{relay.room}" and status not in (404, 410, 503):
                    return False  # the room's status: open (it is the box that refuses)
                answer: dict[str, Any] = {"error": code}
                if status == 404 and relay.restarted:
                    answer["restarted"] = True
                self._reply(status, json.dumps(answer).encode())
                return True

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                if self._refused():
                    return
                if re.fullmatch(r"/v/[A-Za-z0-9_-]+", url.path):  # any room: the page decides
                    self._reply(200, (VIEWER_DIR / "index.html").read_bytes(), "text/html")
                elif (m := re.fullmatch(r"/v/([a-z0-9]+\.(?:js|css))", url.path)) and (
                    VIEWER_DIR / m[1]
                ).is_file():
                    kind = "text/css" if m[1].endswith(".css") else "text/javascript"
                    self._reply(200, (VIEWER_DIR / m[1]).read_bytes(), kind)
                elif url.path == "/v/lang/":
                    self._reply(200, json.dumps({"languages": languages()}).encode())
                elif (m := re.fullmatch(r"/v/lang/([a-z-]+\.json)", url.path)) and (
                    LANG_DIR / m[1]
                ).is_file():
                    self._reply(200, (LANG_DIR / m[1]).read_bytes())
                elif url.path == f"/api/rooms/{relay.room}":
                    self._reply(204)
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
                body = self.rfile.read(length)
                if self._refused():
                    return
                wire = json.loads(json.loads(body)["blob"])
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


class PhantomTrack(VideoStreamTrack):
    """The synthetic phantom at 30 frames per second, stamped with the time strip; ``frozen``
    holds frames back (the connection stays up: a picture that stops, not a drop)."""

    def __init__(self, width: int = 960, height: int = 540) -> None:
        super().__init__()
        self.source = SyntheticSource(width, height, 30)
        self.frozen = False

    async def recv(self) -> av.VideoFrame:
        while self.frozen:  # noqa: ASYNC110 - set from the test's thread, polled here
            await asyncio.sleep(0.05)
        pts, time_base = await self.next_timestamp()
        frame = await asyncio.to_thread(self.source.render, time.time())
        frame.pts, frame.time_base = pts, Fraction(time_base)
        return frame


class ScriptedBox:
    """A box the test drives: the real seal over a :class:`ScriptedRelay`, an aiortc peer that
    streams :class:`PhantomTrack`, and :meth:`say` for the status on the page's data channel."""

    def __init__(self, state_dir: Path, expires_in: int = 3600) -> None:
        self.identity = BoxIdentity.load_or_create(state_dir)
        self.room = seal.new_room_id()
        self.secret = seal.new_secret()
        self.expires = int(time.time()) + expires_in
        self.codes: list[str] = []
        self.seats: list[bytes] = []
        self.byes = 0
        self.leaves = 0
        self.relay = ScriptedRelay(self.room, self._box)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._peers: list[RTCPeerConnection] = []
        self._tracks: list[PhantomTrack] = []
        self._frozen = False
        self._channel: Any = None
        self._handshake: seal.BoxHandshake | None = None
        #: What the box says as soon as the page's channel opens.
        self.first_status: dict[str, Any] = {"type": "status", "state": "waiting"}

    @property
    def link(self) -> str:
        return seal.link(self.relay.origin, self.room, self.secret, self.identity.key_hash)

    def __enter__(self) -> ScriptedBox:
        self._thread.start()
        self.relay.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.relay.__exit__()
        for pc in self._peers:
            self._run(pc.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- what a test does ---------------------------------------------------------------------------

    def say(self, state: str, **extra: Any) -> None:
        """A status on the data channel: ``say("live", step="smaller")`` (sent when the page's
        channel opens if it is not open yet)."""
        self.first_status = {"type": "status", "state": state, **extra}
        message = json.dumps(self.first_status)

        def send() -> None:
            if self._channel is not None and self._channel.readyState == "open":
                self._channel.send(message)

        self._loop.call_soon_threadsafe(send)

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or restart) the frames without touching the connection."""
        self._frozen = frozen  # tracks made later start the same way
        for track in self._tracks:
            track.frozen = frozen

    def drop(self) -> None:
        """Close the page's connection from the box's side, as a network drop (or the box's
        restart) would."""
        for pc in list(self._peers):
            self._run(pc.close())

    def end(self, reason: str) -> None:
        """A sealed ``end`` through the relay, as the box sends when it ends a session."""
        assert self._handshake is not None
        self.relay.send(self._handshake.seal({"type": "end", "reason": reason}))

    # -- the box's side of the handshake ----------------------------------------------------------

    async def _new_peer(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._peers.append(pc)

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            self._channel = channel

            @channel.on("open")
            def on_open() -> None:
                channel.send(json.dumps(self.first_status))

            if channel.readyState == "open":
                on_open()

        return pc

    async def _answer(self, pc: RTCPeerConnection, offer: str) -> str:
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        track = PhantomTrack()
        track.frozen = self._frozen
        self._tracks.append(track)
        pc.addTrack(track)
        for transceiver in pc.getTransceivers():
            if transceiver.kind != "video":
                continue  # the page's sound: this scripted box sends none
            codecs = RTCRtpSender.getCapabilities("video").codecs
            transceiver.setCodecPreferences(
                [c for c in codecs if c.mimeType.lower() in ("video/h264", "video/rtx")]
            )
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    def _box(self, kind: str, wire: dict[str, Any]) -> None:
        if kind == "knock":
            knock = seal.open_knock(self.room, self.secret, self.identity.key_hash, wire)
            pc = self._run(self._new_peer())
            cert = pc._RTCPeerConnection__certificates[0]  # what appliance.stream.peers reads
            fp = next(f for f in cert.getFingerprints() if f.algorithm == "sha-256")
            self._handshake = seal.BoxHandshake(
                self.room,
                self.secret,
                self.identity,
                knock,
                bytes.fromhex(fp.value.replace(":", "")),
            )
            self.seats.append(knock.seat_pub)
            self.relay.send(self._handshake.reply([], self.expires))
            return
        assert self._handshake is not None
        body = self._handshake.open(wire)
        if body.get("type") == "bye":
            self.byes += 1
        if body.get("type") == "leave":
            self.leaves += 1
        if body.get("type") != "offer":
            return
        sdp = self._run(self._answer(self._peers[-1], body["sdp"]))
        self.relay.send(self._handshake.answer(sdp))
        self.codes.append(self._handshake.code(seal.sdp_fingerprint(body["sdp"])))
