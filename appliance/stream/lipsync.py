"""Lip sync by design: each track's RTCP sender reports map its RTP time to the instant the
frame or the sound was *captured*, not the instant it was sent.

A browser lines the picture and the sound up by their sender reports: each says "RTP time R is
wall-clock time N" for its track. aiortc writes the RTP time of the last packet it sent and the
time it sent it, so whatever happened between capture and send (the H.264 encoder's tens of
milliseconds, the sound's 20 ms blocks, pacing) becomes an offset between the two tracks. Here:

- the producers stamp every ``av.Packet`` with its capture instant (:func:`stamp`,
  ``packet.opaque``: seconds since the epoch, the clock of the time strip and of the synthetic
  sound's clicks);
- :func:`sync_to_capture` patches one aiortc sender (instance attributes only, no fork): it notes
  the capture instant and the packer's timestamp of each packet as the sender takes it, learns the
  sender's random RTP origin from the first packet it has finished sending, and rewrites each
  sender report's RTP time so that it names the sample captured at the report's NTP time.

:class:`CaptureMap` is the arithmetic, apart (unit tested). The report's NTP time is left as
aiortc wrote it, so the receiver's LSR echo and every round-trip time stay as they were.
"""

from __future__ import annotations

import logging
from typing import Any

import av
from aiortc.rtp import RtcpSrPacket

logger = logging.getLogger(__name__)

#: The RTP clocks (Hz): H.264's and Opus's.
VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
#: NTP's epoch (1900) is this many seconds before the Unix epoch.
NTP_UNIX_OFFSET = 2_208_988_800
_U32 = 1 << 32


def stamp(packet: av.Packet, captured_at: float) -> None:
    """Mark ``packet`` with the instant it was captured (seconds since the epoch)."""
    packet.opaque = captured_at


def captured_at(packet: av.Packet) -> float | None:
    """The capture instant :func:`stamp` gave ``packet``, or None."""
    value = packet.opaque
    return float(value) if isinstance(value, int | float) else None


def ntp_seconds(ntp: int) -> float:
    """A 64-bit NTP timestamp as seconds since the Unix epoch."""
    return (ntp >> 32) - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / _U32


class CaptureMap:
    """One sender's mapping from wall-clock capture time to its RTP time (``clock_rate`` Hz).

    The sender's RTP time of a packet is ``origin + t`` (mod 2**32), ``t`` being the packer's
    timestamp (the packet's pts in the codec's clock) and ``origin`` a random number aiortc keeps
    in a local variable: :meth:`before_next` learns it from the last RTP timestamp once a packet
    has been sent whole. The newest packet taken gives the anchor (its ``t`` and capture instant).
    """

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.origin: int | None = None
        self._captured: float | None = None  # the packet the track handed over last
        self._anchor: tuple[int, float] | None = None  # (packer's timestamp, capture instant)
        self._in_flight: int | None = None  # the packer's timestamp being sent
        self.rewritten = 0

    def received(self, packet: Any) -> None:
        """The track handed the sender ``packet``."""
        self._captured = captured_at(packet) if isinstance(packet, av.Packet) else None

    def packed(self, timestamp: int) -> None:
        """The sender packed the packet just received (``timestamp`` before its origin)."""
        self._in_flight = timestamp
        if self._captured is not None:
            self._anchor = (timestamp, self._captured)

    def before_next(self, last_rtp_timestamp: int) -> None:
        """The sender asks for the next packet: the last one was sent whole, so its RTP
        timestamp minus the packer's names the origin."""
        if self._in_flight is not None:
            self.origin = (last_rtp_timestamp - self._in_flight) % _U32
            self._in_flight = None

    def rtp_at(self, ntp: int) -> int | None:
        """The RTP time of the sample captured at ``ntp`` (None until both are known)."""
        if self.origin is None or self._anchor is None:
            return None
        timestamp, captured = self._anchor
        ticks = round((ntp_seconds(ntp) - captured) * self.clock_rate)
        return (self.origin + timestamp + ticks) % _U32

    def sender_report(self, packet: RtcpSrPacket) -> None:
        """Rewrite ``packet``'s RTP time to the capture instant of its NTP time."""
        rtp = self.rtp_at(packet.sender_info.ntp_timestamp)
        if rtp is not None:
            packet.sender_info.rtp_timestamp = rtp
            self.rewritten += 1


def sync_to_capture(sender: Any, clock_rate: int) -> CaptureMap:
    """Make ``sender``'s reports map RTP time to capture time (call before it sends).

    Patches, on this sender only: its track's ``recv`` (notes each packet's capture instant), its
    ``_next_encoded_frame`` (the packer's timestamp; the origin) and its ``_send_rtcp`` (the
    report rewritten before any other tap sees it go)."""
    mapping = CaptureMap(clock_rate)
    track = sender.track
    recv = track.recv

    async def recv_noting() -> Any:
        data = await recv()
        mapping.received(data)
        return data

    track.recv = recv_noting
    next_frame = sender._next_encoded_frame

    async def next_encoded_frame(codec: Any) -> Any:
        mapping.before_next(sender._RTCRtpSender__rtp_timestamp)
        frame = await next_frame(codec)
        if frame is not None:
            mapping.packed(frame.timestamp)
        return frame

    sender._next_encoded_frame = next_encoded_frame
    send_rtcp = sender._send_rtcp

    async def send_rtcp_synced(packets: list[Any]) -> None:
        for packet in packets:
            if isinstance(packet, RtcpSrPacket) and packet.ssrc == sender._ssrc:
                mapping.sender_report(packet)
        await send_rtcp(packets)

    sender._send_rtcp = send_rtcp_synced
    return mapping
