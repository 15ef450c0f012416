"""A viewer made of a real aiortc peer: offers like the phone page, decodes what arrives."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from appliance.capture import timestrip
from appliance.stream.peers import ice_configuration


@dataclass
class Received:
    frame: av.VideoFrame
    stamp: int | None
    arrived: float


@dataclass
class AiortcViewer:
    base_url: str
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(ice_configuration(())))
    statuses: list[str] = field(default_factory=list)
    track: Any = None
    resource: str | None = None

    async def connect(self) -> None:
        channel = self.pc.createDataChannel("status")

        @channel.on("message")
        def on_message(message: str) -> None:
            self.statuses.append(json.loads(message)["state"])

        got_track = asyncio.get_running_loop().create_future()

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            if not got_track.done():
                got_track.set_result(track)

        self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        status, headers, body = await asyncio.to_thread(
            post, self.base_url + "/whep", self.pc.localDescription.sdp
        )
        if status != 201:
            raise ConnectionRefusedError(f"offer refused: {status} {body!r}")
        self.resource = headers.get("Location")
        await self.pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
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

    def codec(self) -> str:
        transceiver = self.pc.getTransceivers()[0]
        return str(transceiver._codecs[0].mimeType)

    async def close(self) -> None:
        await self.pc.close()


def post(url: str, sdp: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(
        url, data=sdp.encode(), method="POST", headers={"Content-Type": "application/sdp"}
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()
