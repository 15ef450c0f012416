"""Every private attribute of aiortc and aioice that appliance.stream.compat touches is still there
and still behaves as compat expects: an upgrade that moves one fails here, by name, before any
stream does. No socket: a peer connection gathers nothing until its description is set."""

from __future__ import annotations

import asyncio

import aioice.ice
import aioice.turn
import aiortc.rtcrtpsender
from aiortc import RTCPeerConnection
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket, RtcpRtpfbPacket, RtpPacket

from appliance.stream import compat, compat_sound
from tests.support.wait import until_async


async def _sender() -> tuple[RTCPeerConnection, object]:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="sendonly")
    return pc, transceiver.sender


async def test_the_sender_attributes_compat_uses_exist() -> None:
    pc, sender = await _sender()
    try:
        for name in ("_handle_rtcp_packet", "_send_rtcp", "_send_keyframe", "_ssrc", "_rtx_ssrc"):
            assert hasattr(sender, name), name
        assert isinstance(sender._RTCRtpSender__rtp_history, dict)  # type: ignore[attr-defined]
        assert compat._abs_send_time_id(sender) == 0  # not negotiated yet
        assert hasattr(sender.transport, "_send_rtp")  # type: ignore[attr-defined]
        assert aiortc.rtcrtpsender.RTP_HISTORY_SIZE in (128, 1 << 16)
        assert callable(aioice.ice.StunProtocol.send_data)
        assert callable(aioice.turn.TurnClientTcpProtocol._send)
        assert compat.dtls_fingerprint(pc)
    finally:
        await pc.close()


async def test_rtcp_taps_see_reports_and_nacks_for_our_ssrc_only() -> None:
    pc, sender = await _sender()
    try:
        reports: list[compat.ReportBlock] = []
        nacks: list[list[int]] = []
        compat.tap_rtcp(sender, reports.append, lambda b: None, nacks.append)
        ssrc = sender._ssrc  # type: ignore[attr-defined]
        rr = RtcpRrPacket(
            ssrc=1,
            reports=[
                RtcpReceiverInfo(ssrc, 64, 3, 1000, 90, 0x1234, 6553),
                RtcpReceiverInfo(ssrc + 1, 0, 0, 1, 0, 0, 0),
            ],
        )
        await sender._handle_rtcp_packet(rr)  # type: ignore[attr-defined]
        assert reports == [compat.ReportBlock(64, 3, 1000, 90, 0x1234, 6553)]
        nack = RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=ssrc)
        nack.lost = [5, 6, 7]
        await sender._handle_rtcp_packet(nack)  # type: ignore[attr-defined]
        assert nacks == [[5, 6, 7]]
    finally:
        await pc.close()


async def test_the_send_tap_numbers_only_the_picture_s_own_packets() -> None:
    """Under BUNDLE the sound's packets pass the picture's transport too: counted (they take
    the link), but their sequence numbers (another sequence) are not the picture's."""
    pc, sender = await _sender()
    try:
        out: list[bytes] = []

        async def send(data: bytes) -> None:
            out.append(data)

        sender.transport._send_rtp = send  # type: ignore[attr-defined]
        seen: list[tuple[int, bool, int | None, bool]] = []
        compat.tap_rtp_out(sender, lambda *sent: seen.append(sent))
        ssrc = sender._ssrc  # type: ignore[attr-defined]
        picture = RtpPacket(payload_type=96, sequence_number=7, ssrc=ssrc).serialize()
        sound = RtpPacket(payload_type=111, sequence_number=9, ssrc=4242).serialize()
        rtx_ssrc = sender._rtx_ssrc  # type: ignore[attr-defined]
        resent = RtpPacket(payload_type=97, sequence_number=3, ssrc=rtx_ssrc).serialize()
        for data in (picture, sound, resent):
            await sender.transport._send_rtp(data)  # type: ignore[attr-defined]
        assert out == [picture, sound, resent]
        assert seen == [
            (len(picture), False, 7, False),
            (len(sound), False, None, False),
            (len(resent), True, None, False),  # a retransmission: counted, not numbered
        ]
    finally:
        await pc.close()


async def test_history_keeps_packets_by_time_and_by_full_sequence_number() -> None:
    pc, sender = await _sender()
    try:
        compat.keep_rtp_history(sender, seconds=0.1, max_packets=1000)
        history = compat.rtp_history(sender)
        for seq in range(300):  # more than aiortc's 128: all kept while young
            packet = RtpPacket(sequence_number=seq)
            history[seq % aiortc.rtcrtpsender.RTP_HISTORY_SIZE] = packet
        assert len(history) == 300 and history[5].sequence_number == 5
        await asyncio.sleep(0.15)
        history[300] = RtpPacket(sequence_number=300)
        await until_async(lambda: len(history) == 1, 1.0)
    finally:
        await pc.close()


def test_abs_send_time_is_restamped_in_place() -> None:
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=2)
    packet.extensions.abs_send_time = 0
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap

    extensions = HeaderExtensionsMap()
    uri = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
    extensions.configure(
        RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=3, uri=uri)])
    )
    data = packet.serialize(extensions)
    stamped = compat._restamp_abs_send_time(data, 3)
    assert len(stamped) == len(data) and stamped != data
    again = RtpPacket.parse(stamped, extensions)
    assert again.extensions.abs_send_time != 0
    assert compat._restamp_abs_send_time(data, 4) == data  # another id: untouched


def test_the_playout_delay_element_is_added_and_the_others_survive() -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap

    extensions = HeaderExtensionsMap()
    uris = {
        1: "urn:ietf:params:rtp-hdrext:sdes:mid",
        3: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    }
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for i, u in uris.items()]
        )
    )
    packet = RtpPacket(payload_type=96, sequence_number=7, timestamp=9, payload=b"\x65abc")
    packet.extensions.mid = "0"
    packet.extensions.abs_send_time = 0x123400
    data = packet.serialize(extensions)
    out = compat.add_extension(data, 6, b"\x00\x00\x00")
    parsed = RtpPacket.parse(out, extensions)
    assert parsed.extensions.mid == "0" and parsed.extensions.abs_send_time == 0x123400
    assert parsed.payload == b"\x65abc" and parsed.sequence_number == 7
    assert b"\x62\x00\x00\x00" in out[12:28]  # id 6, 3 bytes: min = max = 0
    plain = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, payload=b"x").serialize()
    again = RtpPacket.parse(compat.add_extension(plain, 6, b"\x00\x00\x00"))
    assert again.payload == b"x"


async def test_playout_delay_is_answered_only_when_offered() -> None:
    pc, _ = await _sender()
    try:
        transceiver = pc.getTransceivers()[0]
        offer = "a=extmap:6 " + compat.PLAYOUT_DELAY_URI + "\r\n"
        assert compat.negotiate_playout_delay(transceiver, "m=video\r\n") == 0
        assert compat.negotiate_playout_delay(transceiver, offer) == 6
        assert any(e.uri == compat.PLAYOUT_DELAY_URI for e in transceiver._headerExtensions)
    finally:
        await pc.close()


class _FakeTransport:
    def __init__(self, buffered: int) -> None:
        self.buffered = buffered
        self.written: list[bytes] = []

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str) -> object:
        return None  # no socket: the kernel's bound is the integration test's

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def sendto(self, data: bytes, addr: object = None) -> None:
        self.written.append(data)


async def test_full_send_buffers_drop_instead_of_queueing() -> None:
    compat.bound_send_buffers(turn_tcp_max=1000, udp_max=1000)
    try:
        tcp = aioice.turn.TurnClientTcpProtocol.__new__(aioice.turn.TurnClientTcpProtocol)
        tcp.transport = _FakeTransport(0)  # type: ignore[assignment]
        tcp._send(b"x" * 100)
        tcp.transport = full = _FakeTransport(5000)  # type: ignore[assignment]
        before = compat.dropped["turn_tcp"]
        tcp._send(b"x" * 100)
        assert full.written == [] and compat.dropped["turn_tcp"] == before + 1

        udp = aioice.ice.StunProtocol.__new__(aioice.ice.StunProtocol)
        udp.transport = free = _FakeTransport(0)  # type: ignore[assignment]
        await udp.send_data(b"media", ("127.0.0.1", 9))
        udp.transport = full = _FakeTransport(5000)  # type: ignore[assignment]
        await udp.send_data(b"media", ("127.0.0.1", 9))
        assert free.written == [b"media"] and full.written == []

        # a relayed candidate's protocol sends through aioice's TurnTransport, which has no
        # write buffer of its own: the data goes on to it (the box relaying over TURN)
        class Relayed:
            def __init__(self) -> None:
                self.sent: list[bytes] = []

            def sendto(self, data: bytes, addr: object) -> None:
                self.sent.append(data)

        udp.transport = relayed = Relayed()  # type: ignore[assignment]
        await udp.send_data(b"media", ("127.0.0.1", 9))
        assert relayed.sent == [b"media"]
    finally:
        compat.bound_send_buffers()


#: A browser's offer, cut to what aiortc reads: Opus then H.264, bundled, receive only.
_AV_OFFER = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=msid-semantic: WMS
m=video 9 UDP/TLS/RTP/SAVPF 102
c=IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
a=setup:actpass
a=mid:0
a=recvonly
a=rtcp-mux
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
m=audio 9 UDP/TLS/RTP/SAVPF 111 0
c=IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
a=setup:actpass
a=mid:1
a=recvonly
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:0 PCMU/8000
""".replace("\n", "\r\n")


async def _answer_with_audio(patch: bool) -> tuple[str, RTCPeerConnection]:
    from aiortc import RTCSessionDescription

    from appliance.stream.peers import h264_codecs, opus_codecs

    pc = RTCPeerConnection()
    video = pc.addTransceiver("video", direction="sendonly")
    video.setCodecPreferences(h264_codecs())
    audio = pc.addTransceiver("audio", direction="sendonly")
    audio.setCodecPreferences(opus_codecs())
    await pc.setRemoteDescription(RTCSessionDescription(_AV_OFFER, "offer"))
    if patch:
        compat_sound.opus_stereo_fec(audio)
    answer = await pc.createAnswer()
    return answer.sdp, pc


async def test_the_answer_says_opus_is_stereo_with_fec_only_through_compat() -> None:
    plain, pc = await _answer_with_audio(patch=False)
    await pc.close()
    assert "a=rtpmap:111 opus/48000/2" in plain
    assert "a=fmtp:111" not in plain  # aiortc answers its Opus without parameters
    patched, pc = await _answer_with_audio(patch=True)
    try:
        assert "a=fmtp:111 stereo=1;useinbandfec=1" in patched
        assert "PCMU" not in patched  # only Opus: the box sends finished Opus packets
        # the picture and the sound are in one media stream (aiortc: one stream id per peer)
        msids = {line.split()[0] for line in patched.splitlines() if line.startswith("a=msid:")}
        assert len(msids) == 1
        assert patched.count("a=msid:") == 2
    finally:
        await pc.close()
