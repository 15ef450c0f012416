"""One transport-wide sequence counter per transport, stamped on every RTP packet of every
sender that negotiated it (the picture, the sound, retransmissions), read back by aiortc's own
header extension parser; each packet's size and send time logged, the log bounded."""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtcpRrPacket, RtpPacket

from appliance.stream import compat
from appliance.stream.twcc import SendLog
from appliance.stream.twcc_compat import TWCC_URI, stamp_transport

TWCC_ID = 4
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)

    async def _handle_rtcp_data(self, data: bytes) -> None:
        pass


class FakeSender:
    def __init__(self, transport: FakeTransport, ssrc: int, rtx_ssrc: int) -> None:
        self.transport = transport
        self._ssrc = ssrc
        self._rtx_ssrc = rtx_ssrc


def _extensions_map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=2, uri=ABS_SEND_TIME),
                RTCRtpHeaderExtensionParameters(id=TWCC_ID, uri=TWCC_URI),
            ]
        )
    )
    return extensions


def _packet(ssrc: int, seq: int, payload: bytes = b"x" * 100) -> bytes:
    packet = RtpPacket(payload_type=102, sequence_number=seq, timestamp=1234, ssrc=ssrc)
    packet.payload = payload
    packet.extensions.abs_send_time = 0x123456
    return packet.serialize(_extensions_map())


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_every_packet_of_every_sender_on_the_transport_gets_the_next_number() -> None:
    transport, clock = FakeTransport(), Clock()
    video = FakeSender(transport, ssrc=1111, rtx_ssrc=2222)
    audio = FakeSender(transport, ssrc=3333, rtx_ssrc=4444)
    twcc = stamp_transport(video, TWCC_ID, clock)
    assert stamp_transport(audio, TWCC_ID, clock) is twcc  # one counter per transport
    for ssrc in (1111, 3333, 1111, 2222, 3333):  # picture, sound, picture, retransmission, sound
        await transport._send_rtp(_packet(ssrc, 7))
        clock.now += 0.001
    parsed = [RtpPacket.parse(d, _extensions_map()) for d in transport.sent]
    assert [p.extensions.transport_sequence_number for p in parsed] == [0, 1, 2, 3, 4]
    # aiortc's own extensions survive, the payload too
    assert all(p.extensions.abs_send_time == 0x123456 for p in parsed)
    assert all(p.payload == b"x" * 100 for p in parsed)
    assert [p.ssrc for p in parsed] == [1111, 3333, 1111, 2222, 3333]
    logged = [twcc.log.get(i) for i in range(5)]
    assert [p.size if p else None for p in logged] == [len(d) for d in transport.sent]
    assert [round(p.sent_at, 3) if p else None for p in logged] == [
        100.0,
        100.001,
        100.002,
        100.003,
        100.004,
    ]


async def test_a_sender_that_did_not_negotiate_it_and_rtcp_are_left_alone() -> None:
    transport = FakeTransport()
    video = FakeSender(transport, ssrc=1111, rtx_ssrc=2222)
    twcc = stamp_transport(video, TWCC_ID, Clock())
    sound = _packet(3333, 1)  # an m-line whose offer had no TWCC (older Firefox's audio)
    report = bytes(RtcpRrPacket(ssrc=1111))
    await transport._send_rtp(sound)
    await transport._send_rtp(report)
    await transport._send_rtp(_packet(1111, 9))
    assert transport.sent[:2] == [sound, report]
    # no number was spent on them: the browser would count a gap as a lost packet
    assert (
        RtpPacket.parse(transport.sent[2], _extensions_map()).extensions.transport_sequence_number
        == 0
    )
    assert RtcpPacket.parse(transport.sent[1])  # still RTCP
    assert twcc.stamped == 1 and len(twcc.log) == 1


def test_the_log_keeps_numbers_past_the_wrap_and_forgets_by_age_and_count() -> None:
    log = SendLog(max_age_s=1.0, max_packets=100)
    for i in range(70_000):
        assert log.add(1000, i * 0.001) == i & 0xFFFF
    assert len(log) == 100  # bounded by count
    newest = log.last_seq
    assert newest == 69_999
    assert log.unwrap(69_999 & 0xFFFF) == 69_999
    assert log.unwrap((69_950) & 0xFFFF) == 69_950
    assert log.get(69_950) is not None and log.get(69_950).seq == 69_950  # type: ignore[union-attr]
    assert log.get(69_899) is None  # forgotten
    log.add(1000, 100.0)  # much later: everything older than a second goes
    assert len(log) == 1


async def test_a_real_sender_and_transport_have_what_stamping_patches() -> None:
    pc = RTCPeerConnection()
    try:
        sender: Any = pc.addTransceiver("video", direction="sendonly").sender
        assert hasattr(sender.transport, "_send_rtp")
        assert hasattr(sender.transport, "_handle_rtcp_data")
        assert isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int)
        twcc = stamp_transport(sender, TWCC_ID)
        assert sender.transport._appliance_twcc is twcc
        assert compat._abs_send_time_id(sender) == 0
    finally:
        await pc.close()
