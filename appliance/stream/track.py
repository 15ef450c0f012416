"""A video track whose frames are already-encoded H.264 packets."""

from __future__ import annotations

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .fanout import PacketFanout, Subscription


class EncodedVideoTrack(MediaStreamTrack):
    """``recv()`` returns ``av.Packet``: aiortc packetizes it without re-encoding.

    The first packet a viewer gets is a keyframe (with SPS/PPS); the track is silent while
    nothing is published (before going live), which keeps the viewer's picture empty.
    """

    kind = "video"

    def __init__(self, fanout: PacketFanout) -> None:
        super().__init__()
        self._sub: Subscription | None = fanout.subscribe()

    async def recv(self) -> av.Packet:
        sub = self._sub
        if sub is None or self.readyState != "live":
            raise MediaStreamError
        packet = await sub.get()
        if packet is None:
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        super().stop()
