"""Lip sync by design: a sender report names the RTP time of the sample *captured* at its NTP
time, whatever the delay between capture and send (aiortc's own names the send time)."""

from __future__ import annotations

import fractions
import time
from typing import Any

import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpPacket, RtcpSenderInfo, RtcpSrPacket, RtpPacket, is_rtcp

from appliance.sound import synthetic
from appliance.sound.opus import OpusEncoder
from appliance.stream import lipsync

ENCODER_DELAY = 0.080  # seconds between capture and the packet reaching the sender


def _ntp(seconds: float) -> int:
    whole = int(seconds)
    return ((whole + lipsync.NTP_UNIX_OFFSET) << 32) | int((seconds - whole) * (1 << 32))


def test_the_map_names_the_capture_instant_across_the_wrap() -> None:
    mapping = lipsync.CaptureMap(lipsync.AUDIO_CLOCK)
    sr = RtcpSrPacket(ssrc=1, sender_info=RtcpSenderInfo(_ntp(1000.5), 77, 1, 1))
    mapping.sender_report(sr)
    assert sr.sender_info.rtp_timestamp == 77, "left alone until the origin is known"
    packet = av.Packet(b"x")
    lipsync.stamp(packet, 1000.0)
    mapping.received(packet)
    mapping.packed(960)
    mapping.before_next((2**32 - 100 + 960) % 2**32)  # the origin wraps
    assert mapping.origin == 2**32 - 100
    # half a second after the packet's capture: 24000 ticks further
    assert mapping.rtp_at(_ntp(1000.5)) == (2**32 - 100 + 960 + 24_000) % 2**32
    mapping.sender_report(sr)
    assert sr.sender_info.rtp_timestamp == 24_860 and mapping.rewritten == 1
    unstamped = av.Packet(b"y")
    mapping.received(unstamped)
    mapping.packed(1920)  # no capture instant: the anchor stays the stamped packet
    assert mapping.rtp_at(_ntp(1000.0)) == 860


def test_opus_packets_carry_the_capture_instant_of_their_first_sample() -> None:
    encoder = OpusEncoder()
    t0 = 1_700_000_000.0
    seen: list[tuple[int, float]] = []
    for k in range(4):
        frame = synthetic.to_frame(synthetic.render(k * 960, 960))
        for packet in encoder.encode(frame, t0 + k * 0.020):
            captured = lipsync.captured_at(packet)
            assert captured is not None
            seen.append((packet.pts or 0, captured))
    assert seen
    for pts, captured in seen:  # pts counts libopus's pre-skip: the same line throughout
        assert captured == pytest.approx(t0 + pts / 48_000, abs=1e-6)


class _DelayedTrack(MediaStreamTrack):
    """H.264 packets at 30 per second, each reaching the sender ``ENCODER_DELAY`` after it was
    captured; then the end."""

    kind = "video"

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.captured: list[float] = []

    async def recv(self) -> av.Packet:
        k = len(self.captured)
        if k == self.count:
            raise MediaStreamError
        packet = av.Packet(b"\x00\x00\x00\x01\x65" + bytes(200))
        packet.pts = k * 3000
        packet.time_base = fractions.Fraction(1, 90_000)
        captured = time.time() - ENCODER_DELAY
        lipsync.stamp(packet, captured)
        self.captured.append(captured)
        return packet


async def _report(synced: bool) -> float:
    """Send a few packets and one sender report; the report's error on the last packet's
    capture instant, in seconds."""
    pc = RTCPeerConnection()
    track = _DelayedTrack(6)
    sender: Any = pc.addTransceiver(track, direction="sendonly").sender
    wire: list[bytes] = []

    async def send_rtp(data: bytes) -> None:
        wire.append(data)

    sender.transport._send_rtp = send_rtp
    if synced:
        lipsync.sync_to_capture(sender, lipsync.VIDEO_CLOCK)
    try:
        codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90_000, payloadType=102)
        await sender._run_rtp(codec)
        # the report exactly as aiortc's _run_rtcp builds it
        sr = RtcpSrPacket(
            ssrc=sender._ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=sender._RTCRtpSender__ntp_timestamp,
                rtp_timestamp=sender._RTCRtpSender__rtp_timestamp,
                packet_count=6,
                octet_count=0,
            ),
        )
        await sender._send_rtcp([sr])
    finally:
        await pc.close()
    rtp = [RtpPacket.parse(d) for d in wire if not is_rtcp(d)]
    assert len(rtp) == 6
    (report,) = [p for d in wire if is_rtcp(d) for p in RtcpPacket.parse(d)]
    assert isinstance(report, RtcpSrPacket)
    info = report.sender_info
    last = rtp[-1].timestamp
    # what a receiver concludes: the last packet's sample was captured at NTP - (R - ts)/rate
    ticks = (info.rtp_timestamp - last) % 2**32
    ticks = ticks - 2**32 if ticks > 2**31 else ticks
    implied = lipsync.ntp_seconds(info.ntp_timestamp) - ticks / 90_000
    return implied - track.captured[-1]


async def test_reports_map_rtp_time_to_the_capture_instant() -> None:
    assert abs(await _report(synced=True)) < 0.002


async def test_without_it_the_encoders_delay_becomes_an_offset() -> None:
    assert await _report(synced=False) == pytest.approx(ENCODER_DELAY, abs=0.015)
