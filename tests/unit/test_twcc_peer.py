"""Per viewer: the rate follows the send-side estimator when the browser negotiated transport-cc,
the receiver-report controller otherwise; the status says which. The estimator's probe goes out
as retransmissions of recent packets, outside the retransmission budget."""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection

from appliance.config import StreamConfig
from appliance.encode.keyframes import KeyframePolicy
from appliance.stream.fanout import PacketFanout
from appliance.stream.feedback import LinkSettings, RateMode, SenderFeedback
from appliance.stream.ratecontrol import RateController, RateParams
from appliance.stream.twcc import SendLog, TransportFeedback
from appliance.stream.twcc_compat import TransportCc, send_probe
from appliance.stream.twccrate import ProbeRequest, TwccController
from appliance.stream.viewers import Viewers
from tests.support.media import RecordingMedia


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def _feedback_for(
    log: SendLog, first: int, arrivals_ms: list[float], count: int
) -> TransportFeedback:
    """A message reporting packets ``first``.. arriving at ``arrivals_ms`` (ms, browser clock)."""
    deltas: list[int | None] = []
    ticks = 0
    for at in arrivals_ms:
        now = round(at * 4)
        deltas.append(now - ticks)
        ticks = now
    return TransportFeedback(1, 2, first & 0xFFFF, 0, count & 0xFF, tuple(deltas))


def test_with_transport_cc_a_growing_queue_brings_the_target_down_before_any_loss() -> None:
    clock = Clock()
    feedback = SenderFeedback(RateParams(start_bps=4_000_000), clock=clock)
    assert feedback.mode is RateMode.RECEIVER_REPORTS
    assert isinstance(feedback.controller, RateController)
    log = SendLog()
    feedback.use_transport_cc(log)
    assert feedback.mode is RateMode.TRANSPORT_CC
    assert isinstance(feedback.controller, TwccController)
    start = feedback.update().target_bps
    # 4 Mbit/s sent into a 2 Mbit/s link: every packet arrives later than the last by twice
    # its send gap; reported every 100 ms, nothing lost
    arrival, seq, sent_at = 0.0, 0, clock.now
    for message in range(30):
        first, arrivals = seq, []
        for _ in range(40):  # 40 packets of 1250 bytes: 100 ms at 4 Mbit/s
            log.add(1250, sent_at)
            feedback.on_sent(1250)
            sent_at += 0.0025
            arrival += 0.005
            arrivals.append(arrival * 1000)
            seq += 1
        clock.now = sent_at + 0.02
        feedback.on_transport_feedback(_feedback_for(log, first, arrivals, message), clock.now)
    decision = feedback.update()
    assert decision.target_bps < 0.6 * start, decision
    assert decision.target_bps < 2_200_000, "near what got through (2 Mbit/s)"


def test_a_probe_passes_the_retransmission_budget_by_its_own_credit() -> None:
    clock = Clock()
    feedback = SenderFeedback(RateParams(), clock=clock)
    while feedback.allow_rtx(1200):
        pass  # the budget is spent
    feedback.grant_probe(2400)
    assert feedback.allow_rtx(1200) and feedback.allow_rtx(1200)
    assert not feedback.allow_rtx(1200)
    assert feedback.take_probe() is None  # receiver reports: no probing


class _Packet:
    def __init__(self, seq: int) -> None:
        self.sequence_number = seq
        self.payload = b"x" * 1170


class _Sender:
    def __init__(self, rtx: int | None) -> None:
        self._RTCRtpSender__rtp_history = {s: _Packet(s) for s in range(100, 140)}
        self._RTCRtpSender__rtx_payload_type = rtx
        self.resent: list[tuple[int, int]] = []
        self.twcc: TransportCc | None = None

    async def _retransmit(self, seq: int) -> None:
        assert self.twcc is not None
        self.resent.append((seq, self.twcc.probe))


async def test_a_probe_resends_the_newest_packets_marked_with_its_cluster() -> None:
    sender, twcc = _Sender(rtx=97), TransportCc()
    granted: list[int] = []
    sender.twcc = twcc
    # 2 Mbit/s above the media for 20 ms: 5000 bytes, five packets of 1200
    sent = await send_probe(sender, twcc, 7, 2_000_000, 0.02, granted.append)
    assert sent == 5
    assert sender.resent == [(139, 7), (138, 7), (137, 7), (136, 7), (135, 7)]
    assert granted == [1200] * 5
    assert twcc.probe == 0, "packets after the probe are not marked"
    no_rtx = _Sender(rtx=None)
    assert await send_probe(no_rtx, twcc, 8, 2_000_000, 0.02, granted.append) == 0


async def test_a_real_sender_has_what_probing_uses() -> None:
    pc = RTCPeerConnection()
    try:
        sender: Any = pc.addTransceiver("video", direction="sendonly").sender
        assert isinstance(sender._RTCRtpSender__rtp_history, dict)
        assert sender._RTCRtpSender__rtx_payload_type is None  # until negotiated
        assert callable(sender._retransmit)
    finally:
        await pc.close()


async def test_the_status_says_which_feedback_the_rate_follows() -> None:
    media = RecordingMedia()
    viewers = Viewers(
        (),
        media,
        PacketFanout(KeyframePolicy()),
        on_left=lambda peer: None,
        link=LinkSettings.from_config(StreamConfig(), 4_000_000, (1280, 720, 30.0)),
    )
    peer = viewers.make()
    try:
        assert await viewers.adopt(peer)
        viewers.tell({"type": "status", "state": "live"})
        viewers.control_once()
        assert peer._status is not None
        assert peer._status["rate_control"] == "receiver-reports"
        assert peer.feedback is not None
        peer.feedback.use_transport_cc(SendLog())
        viewers.control_once()
        assert peer._status["rate_control"] == "transport-cc"
        assert peer._status["state"] == "live" and peer._status["step"] == "full"
    finally:
        await viewers.close_all()


def test_the_estimator_asks_for_a_probe_through_the_feedback() -> None:
    clock = Clock()
    feedback = SenderFeedback(RateParams(start_bps=1_000_000), clock=clock)
    log = SendLog()
    feedback.use_transport_cc(log)
    log.add(1200, clock.now)
    clock.now += 0.05
    feedback.on_transport_feedback(_feedback_for(log, 0, [1.0], 0), clock.now)
    clock.now += 1.5
    feedback.update()
    probe = feedback.take_probe()
    assert isinstance(probe, ProbeRequest)
    assert 2_000_000 <= probe.rate_bps <= 2_100_000, "twice the estimate"
    assert probe.extra_bps > 0
