"""A viewer made of a real aiortc peer and the Python side of the seal: it scans the link, knocks
at the relay, checks the box's signed reply, offers like the phone page and decodes what arrives.

It speaks docs/protocol.md over the relay's HTTP API exactly as the phone's viewer.js does; the
adversarial tests reach into its steps to tamper with them.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from appliance.capture import timestrip
from appliance.config import IceServer
from appliance.session import seal
from appliance.stream import compat_sound
from appliance.stream.peers import ice_configuration


@dataclass
class Received:
    frame: av.VideoFrame
    stamp: int | None
    arrived: float


class Refused(ConnectionRefusedError):
    """The relay or the box said no: ``reason`` is the relay's error code."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass
class Relay:
    """The viewer's side of the relay transport (docs/protocol.md, "Relay transport")."""

    origin: str
    room: str
    token: str = ""
    after: int = 0
    cafile: str | None = None

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.origin + path, data, headers, method=method)
        context = ssl.create_default_context(cafile=self.cafile) if self.cafile else None
        try:
            with urllib.request.urlopen(request, timeout=40, context=context) as response:  # noqa: S310
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, {"error": raw.decode(errors="replace")}

    async def knock(self, wire: dict[str, Any]) -> None:
        status, body = await asyncio.to_thread(
            self._request, "POST", f"/api/rooms/{self.room}/knock", {"blob": json.dumps(wire)}
        )
        if status != 202:
            raise Refused(status, (body or {}).get("error", ""))
        self.token = body["client"]

    async def send(self, wire: dict[str, Any]) -> None:
        status, body = await asyncio.to_thread(
            self._request, "POST", f"/api/rooms/{self.room}/messages", {"blob": json.dumps(wire)}
        )
        if status != 204:
            raise Refused(status, (body or {}).get("error", ""))

    async def receive(self, timeout: float = 20.0) -> dict[str, Any]:
        """The next message from the box (long-polling)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wait = max(1, min(10, int(deadline - time.monotonic())))
            status, body = await asyncio.to_thread(
                self._request,
                "GET",
                f"/api/rooms/{self.room}/messages?after={self.after}&wait={wait}",
            )
            if status != 200:
                raise Refused(status, (body or {}).get("error", ""))
            for message in body["messages"]:
                self.after = max(self.after, message["n"])
                return json.loads(message["blob"])
        raise TimeoutError("no message from the box")


def parse_link(link: str) -> tuple[str, str, str]:
    """(origin, room, fragment) from a viewer link as the QR code holds it."""
    parts = urllib.parse.urlsplit(link)
    room = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return f"{parts.scheme}://{parts.netloc}", room, parts.fragment


@dataclass
class AiortcViewer:
    link: str
    name: str | None = "Sam"
    seat_key: Any = None
    cafile: str | None = None
    pc: RTCPeerConnection | None = None
    statuses: list[str] = field(default_factory=list)
    track: Any = None
    code: str | None = None
    handshake: Any = None
    relay: Relay | None = None
    reply: Any = None
    #: ask for the sound too (an audio transceiver in the offer, as the viewer page does)
    audio: bool = False
    audio_track: Any = None
    #: offer the room's m-line too (sendrecv: the room microphone in, talk-back out), as the
    #: viewer page does; ``voice`` is the track sent on it (None: nothing sent)
    room_line: bool = False
    voice: Any = None
    room_track: Any = None
    channel: Any = None

    def __post_init__(self) -> None:
        self.origin, self.room, fragment = parse_link(self.link)
        self.secret, self.box_key_hash = seal.parse_fragment(fragment)

    async def knock(self) -> None:
        """Steps (a) and (b): knock, then check and open the box's signed reply."""
        self.handshake = seal.ViewerHandshake(
            self.room, self.secret, self.box_key_hash, seat_key=self.seat_key, name=self.name
        )
        self.seat_key = self.handshake.seat_key
        self.relay = Relay(self.origin, self.room, cafile=self.cafile)
        await self.relay.knock(self.handshake.knock())
        self.reply = self.handshake.open_reply(await self.relay.receive())

    async def connect(self) -> None:
        """The whole handshake, then wait for the video track."""
        await self.knock()
        servers = tuple(
            IceServer(tuple(s["urls"]), s.get("username", ""), s.get("credential", ""))
            for s in self.reply.ice_servers
        )
        config = ice_configuration(servers)
        self.pc = RTCPeerConnection(config)
        channel = self.channel = self.pc.createDataChannel("status")

        @channel.on("message")
        def on_message(message: str) -> None:
            status = json.loads(message)
            self.statuses.append(status["state"])
            self.code = status.get("code", self.code)

        got_track = asyncio.get_running_loop().create_future()

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                if self.room_line and self.audio_track is not None:
                    self.room_track = track
                else:
                    self.audio_track = track
            elif not got_track.done():
                got_track.set_result(track)

        self.pc.addTransceiver("video", direction="recvonly")
        if self.audio or self.room_line:
            self.pc.addTransceiver("audio", direction="recvonly")
        if self.room_line:
            room = self.pc.addTransceiver(self.voice or "audio", direction="sendrecv")
            compat_sound.bundle_with_offer(room)  # aiortc's own bundling leaves it out
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription.sdp
        assert self.relay is not None
        await self.relay.send(self.handshake.offer(offer))
        answer = self.handshake.open_answer(await self.relay.receive())
        self.code = self.handshake.code(seal.sdp_fingerprint(offer))
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self.track = await asyncio.wait_for(got_track, 10)

    async def frames(self, count: int, timeout: float = 10.0) -> list[Received]:
        out: list[Received] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                frame = await asyncio.wait_for(self.track.recv(), left)
            except (TimeoutError, MediaStreamError):
                break
            luma = frame.to_ndarray(format="gray")
            out.append(Received(frame, timestrip.read(luma), time.time()))
        return out

    async def audio_packets(self, which: int = 0) -> int:
        """RTP packets received for the sound so far (the receiver's inbound-rtp stats): the
        scanner's (``which`` 0), or the room microphone's (1)."""
        assert self.pc is not None
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if len(audio) <= which:
            return 0
        stats = await audio[which].receiver.getStats()
        return sum(
            int(getattr(s, "packetsReceived", 0)) for s in stats.values() if s.type == "inbound-rtp"
        )

    async def room_packets(self) -> int:
        """RTP packets received from the room microphone so far."""
        return await self.audio_packets(1)

    def talk(self, on: bool) -> None:
        """Hold (or let go of) the talk button, as the page says it on the data channel."""
        assert self.channel is not None
        self.channel.send(json.dumps({"type": "talk", "on": on}))

    def codec(self) -> str:
        assert self.pc is not None
        transceiver = self.pc.getTransceivers()[0]
        return str(transceiver._codecs[0].mimeType)

    async def hang_up(self) -> None:
        """Say bye through the sealed channel, then close."""
        if self.relay is not None and self.handshake is not None:
            await self.relay.send(self.handshake.seal({"type": "bye"}))
        await self.close()

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
