"""One viewer's feedback loop: what aiortc's sender hears and sends (tapped in
:mod:`appliance.stream.compat`) turned into the rate controller's inputs, and the pacer.

* **RTT** from our own bookkeeping: the time each sender report left, by its LSR; a receiver
  report echoing that LSR gives ``now - sent_at - DLSR`` (aiortc keeps only its last SR and
  smooths its own RTT).
* **One report a second**: a browser sends a receiver report with each NACK (compound RTCP),
  so several a second on a lossy link; the controller expects RFC 3550's one a second. Reports
  closer than ``MIN_REPORT_S`` are merged: the loss over the merged interval comes from the
  cumulative counters (lost / expected), the RTT from the latest.
* **Dead path**: a receiver report whose highest sequence number has not moved although packets
  were sent since the last one says nothing got through (a browser keeps reporting for seconds
  after the media stops). Such a report is not passed on, so the controller's stall detection
  (no report for 3 s) sees the path die whichever way it died.
* **Early loss**: a browser NACKs a missing packet within a few milliseconds of the gap, long
  before its next receiver report. The share of the packets sent over a short window (ending
  with the newest packet the NACK names, after the last such cut) that were NACKed is the loss
  the controller acts on at once (:meth:`RateController.on_loss_seen`): a capacity drop is
  answered in a round trip, not in a second.
* **Pacing** (:class:`Pacer`): a token bucket at a multiple of the target rate with a burst of a
  few milliseconds, so a frame's packets leave spread out rather than in one burst into the
  bottleneck's queue.

Everything runs on the event loop; time is read from ``clock`` (monotonic seconds).
"""

from __future__ import annotations

import enum
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..config import StreamConfig
from .compat import ReportBlock
from .ladder import LADDER_1080P30, LadderParams, ladder_for
from .ratecontrol import RateController, RateDecision, RateParams, ReceiverReport
from .twcc import ArrivalClock, SendLog, TransportFeedback, packet_results
from .twccrate import ProbeRequest, TwccController


class RateMode(enum.Enum):
    """Which feedback a viewer's rate follows (the status and the logs say it)."""

    #: transport-wide feedback, the send-side estimator (the browser negotiated transport-cc)
    TRANSPORT_CC = "transport-cc"
    #: receiver reports, NACKs and REMB (a browser without transport-cc)
    RECEIVER_REPORTS = "receiver-reports"


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkSettings:
    """How each viewer's link is run (from the ``[stream]`` config)."""

    #: the controller's settings; None: no rate control (the encoder keeps its configured rate)
    rate: RateParams | None = None
    ladder: LadderParams = LADDER_1080P30
    #: spread each frame's packets (the pacer) or send them as aiortc does, in one burst
    pacing: bool = True
    #: how long sent packets are kept for retransmission (NACK)
    rtx_history_s: float = 2.0
    #: the box's ICE host addresses for its peers (empty: the process-wide setting)
    ice_addresses: tuple[str, ...] = ()
    #: tell the browser how long to buffer (playout-delay extension): nothing on a clean link,
    #: enough for a retransmission (RTT + 20 ms) while packets are being lost
    playout_delay: bool = True
    #: negotiate transport-wide congestion control where the browser offers it
    transport_cc: bool = True

    @classmethod
    def from_config(
        cls, stream: StreamConfig, max_bitrate: int, picture: tuple[int, int, float]
    ) -> LinkSettings:
        """From ``[stream]``, the configured bitrate (the most rate control may use) and the
        source's width, height and frame rate (the ladder's thresholds)."""
        rate = None
        if stream.rate_control:
            low = min(stream.min_bitrate, max_bitrate)
            start = min(max_bitrate, max(low, RateParams.start_bps))
            rate = RateParams(min_bps=low, max_bps=max_bitrate, start_bps=start)
        return cls(
            rate=rate,
            ladder=ladder_for(*picture),
            pacing=stream.pacing,
            rtx_history_s=stream.rtx_history,
            ice_addresses=stream.ice_addresses,
            playout_delay=stream.playout_delay,
            transport_cc=stream.transport_cc,
        )


class Pacer:
    """A token bucket: packets leave at up to ``factor`` x the target rate, ``burst_s`` of it
    (at least ``min_burst`` bytes) at once. It spreads bursts and never becomes the bottleneck:
    no packet waits more than ``max_delay_s`` (a debt beyond that is forgiven), and the caller
    gives it the larger of the target and the rate really sent.

    Below ``full_at_bps`` the factor shrinks with the target, to ``low_factor`` at least (8 x
    from 2.5 Mbit/s up, the start rate; 2.5 x from 0.78 down): a slow bottleneck's queue holds
    few bytes (300 ms at 0.6 Mbit/s is 22.5 kB, about a keyframe at that rate), so a keyframe
    sent at 8 x the rate into it loses its tail, whose retransmissions the budget refuses and
    ask for the next keyframe (RFC 8867's drop at 720p: six keyframes in 2.5 s and a 2.8 s freeze).
    On a fast link, and at the start, the latency of 8 x is kept (docs/rate-control.md)."""

    def __init__(
        self,
        target_bps: int,
        factor: float = 8.0,
        burst_s: float = 0.002,
        min_burst: int = 2500,
        max_delay_s: float = 0.010,
        clock: Callable[[], float] = time.monotonic,
        low_factor: float = 2.5,
        full_at_bps: float = 2_500_000,
    ) -> None:
        self.factor = factor
        self.low_factor = min(low_factor, factor)
        self.full_at_bps = full_at_bps
        self.burst_s = burst_s
        self.min_burst = min_burst
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._rate = 1.0  # bytes/s
        self._burst = float(min_burst)
        self.set_target(target_bps)
        self._tokens = self._burst
        self._last = clock()
        self.delayed = 0  # packets held back

    def set_target(self, target_bps: int) -> None:
        factor = max(self.low_factor, self.factor * min(1.0, target_bps / self.full_at_bps))
        self._rate = max(1.0, factor * target_bps / 8)
        self._burst = max(float(self.min_burst), self._rate * self.burst_s)

    def delay(self, nbytes: int) -> float:
        """Take ``nbytes`` from the bucket; how long to wait before sending them (seconds)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= nbytes
        if self._tokens >= 0:
            return 0.0
        self.delayed += 1
        wait = -self._tokens / self._rate
        if wait > self.max_delay_s:
            self._tokens = -self.max_delay_s * self._rate
            wait = self.max_delay_s
        return wait


class SenderFeedback:
    """Feeds one sender's RTCP and bytes into a :class:`RateController`."""

    #: sender reports remembered for RTT (aiortc sends one about every second)
    KEEP_SR = 32
    #: reports closer together than this are merged into one for the controller
    MIN_REPORT_S = 0.8

    def __init__(
        self,
        params: RateParams,
        ladder: LadderParams = LADDER_1080P30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._ladder = ladder
        self.controller: RateController | TwccController = RateController(
            params, ladder, now=clock()
        )
        self.mode = RateMode.RECEIVER_REPORTS
        self._send_log: SendLog | None = None
        self._arrival_clock = ArrivalClock()
        self._probe_credit = 0
        self._sr_sent: OrderedDict[int, float] = OrderedDict()
        self._last_highest: int | None = None
        self._bytes_total = 0
        self._bytes_at_report = 0
        self._fed: tuple[float, int, int] | None = None  # (when, highest seq, lost) last passed
        self._rtt_pending: float | None = None
        self.reports = 0  # passed on
        self.silent_reports = 0  # dropped: nothing got through since the last
        self.remb_bps: int | None = None
        self.rtt: float | None = None
        self.nacked = 0  # packets the viewer asked for again
        self.rtx_packets = 0  # retransmissions sent
        self.rtx_refused = 0  # over the retransmission budget
        #: not sent: of a packet sent before the last keyframe (which the viewer decodes from)
        self.rtx_stale = 0
        self._keyframe_at: float | None = None
        self._refused_taken = 0
        self._rtx_tokens = 0.0
        self._rtx_at = clock()
        self.bytes_sent = 0
        self._nacked_seen = (0, -1e9)  # (nacked count, when it last grew)
        # the picture's packets of the last KEEP_SENT_S: sequence number -> when sent, and the
        # ones NACKed at least once; counted after the last early cut only
        self._sent_at: OrderedDict[int, float] = OrderedDict()
        self._nacked_at: dict[int, float] = {}
        self._early_cut_at = -1e9
        self.early_cuts = 0
        self.playout_delay = b"\x00\x00\x00"  # min = max = 0 ms
        #: the co-parent has the sound on (the page says so): the browser may hold the picture
        #: back, up to SOUND_SYNC_MS, to meet the sound (lip sync)
        self.sound_on = False

    def use_transport_cc(self, send_log: SendLog) -> None:
        """The browser negotiated transport-cc: the rate follows the send-side estimator on the
        feedback about the packets in ``send_log`` from now on (call before media flows)."""
        params = self.controller.params
        self.controller = TwccController(params, self._ladder, now=self._clock())
        self.mode = RateMode.TRANSPORT_CC
        self._send_log = send_log

    def on_transport_feedback(self, feedback: TransportFeedback, now: float) -> None:
        """One transport-cc feedback message (``now``: when it arrived)."""
        controller = self.controller
        if self._send_log is None or not isinstance(controller, TwccController):
            return
        controller.on_feedback(packet_results(feedback, self._send_log, self._arrival_clock), now)

    def take_probe(self) -> ProbeRequest | None:
        """A probe the estimator wants sent now (transport-cc only)."""
        controller = self.controller
        return controller.take_probe() if isinstance(controller, TwccController) else None

    def grant_probe(self, nbytes: int) -> None:
        """The next ``nbytes`` of retransmissions are a probe's: outside the budget."""
        self._probe_credit += nbytes

    # -- from the taps --------------------------------------------------------------------------

    def on_sr_sent(self, lsr: int) -> None:
        self._sr_sent[lsr] = self._clock()
        self._sr_sent.move_to_end(lsr)
        while len(self._sr_sent) > self.KEEP_SR:
            self._sr_sent.popitem(last=False)

    def on_report(self, block: ReportBlock) -> None:
        now = self._clock()
        rtt: float | None = None
        sent_at = self._sr_sent.get(block.lsr) if block.lsr else None
        if sent_at is not None:
            rtt = now - sent_at - block.dlsr / 65536
            if rtt < 0:
                rtt = None
        moved = self._last_highest is None or block.highest_sequence != self._last_highest
        self._last_highest = block.highest_sequence
        if not moved and self._bytes_total > self._bytes_at_report:
            self.silent_reports += 1
            return
        self._bytes_at_report = self._bytes_total
        if rtt is not None:
            self.rtt = self._rtt_pending = rtt
        fed = self._fed
        fraction = block.fraction_lost / 256
        if fed is not None:
            if now - fed[0] < self.MIN_REPORT_S:
                self.controller.on_report_heard(now)
                return  # merged into the next one
            expected = block.highest_sequence - fed[1]
            if expected > 0:
                fraction = min(1.0, max(0.0, (block.packets_lost - fed[2]) / expected))
        self._fed = (now, block.highest_sequence, block.packets_lost)
        self.reports += 1
        rtt, self._rtt_pending = self._rtt_pending, None
        self.controller.on_receiver_report(
            ReceiverReport(
                at=now,
                fraction_lost=fraction,
                cumulative_lost=block.packets_lost,
                jitter=block.jitter / 90_000,
                rtt=rtt,
            )
        )

    def on_remb(self, bitrate: int) -> None:
        self.remb_bps = bitrate
        self.controller.on_remb(bitrate, self._clock())

    def on_nack(self, seqs: Sequence[int]) -> None:
        self.nacked += len(seqs)
        newest: float | None = None
        for seq in seqs:
            at = self._sent_at.get(seq)
            if at is not None:
                self._nacked_at[seq] = at
                newest = at if newest is None else max(newest, at)
        if newest is not None:
            self._early_loss(newest)

    def on_sent(
        self, nbytes: int, rtx: bool = False, seq: int | None = None, keyframe: bool = False
    ) -> None:
        now = self._clock()
        if keyframe and not rtx:
            self._keyframe_at = now
        self._bytes_total += nbytes
        self.bytes_sent += nbytes
        if rtx:
            self.rtx_packets += 1
        elif seq is not None:
            self._sent_at[seq] = now
            self._sent_at.move_to_end(seq)
            while next(iter(self._sent_at.values())) < now - self.KEEP_SENT_S:
                old, _ = self._sent_at.popitem(last=False)
                self._nacked_at.pop(old, None)
        self.controller.on_bytes_sent(nbytes, now)

    #: how long sent packets' sequence numbers are kept for the early loss
    KEEP_SENT_S = 2.0

    def _early_loss(self, end: float) -> None:
        """The loss among the packets sent over ``early_window_s`` up to ``end``: when the newest
        packet this NACK names was sent (the viewer has judged every packet up to it; a later
        one may still be in a queue, which the RTT of the last report would not tell)."""
        p = self.controller.params
        now = self._clock()
        start = max(end - p.early_window_s, self._early_cut_at)
        sent = sum(1 for at in self._sent_at.values() if start <= at <= end)
        if sent < p.early_min_packets:
            return
        nacked = sum(1 for at in self._nacked_at.values() if start <= at <= end)
        if self.controller.on_loss_seen(nacked / sent, now):
            self._early_cut_at = now
            self.early_cuts += 1

    #: retransmissions may use this share of the target rate (a bucket of half a second)
    RTX_SHARE = 0.25

    def allow_rtx(self, nbytes: int, original: int | None = None) -> bool:
        """Whether a retransmission of ``nbytes`` (of the packet numbered ``original``) fits the
        budget (RTX_SHARE of the target). One of a packet sent before the last keyframe is
        never sent, and is not refused either: the viewer decodes from that keyframe, and a
        refusal would ask for another (at a capacity drop, a keyframe every half second while
        the first was still on its way)."""
        if self._probe_credit >= nbytes:
            self._probe_credit -= nbytes
            return True
        sent = self._sent_at.get(original) if original is not None else None
        if sent is not None and self._keyframe_at is not None and sent < self._keyframe_at:
            self.rtx_stale += 1
            return False
        now = self._clock()
        rate = self.RTX_SHARE * self.controller.target_bps / 8
        self._rtx_tokens = min(rate * 0.5, self._rtx_tokens + (now - self._rtx_at) * rate)
        self._rtx_at = now
        if self._rtx_tokens < nbytes:
            self.rtx_refused += 1
            return False
        self._rtx_tokens -= nbytes
        return True

    def take_refused(self) -> int:
        """Retransmissions refused since the last call."""
        refused, self._refused_taken = self.rtx_refused - self._refused_taken, self.rtx_refused
        return refused

    #: how long after the last NACK the browser keeps a retransmission's worth of buffer
    NACK_MEMORY_S = 5.0
    #: with the sound on, how long the browser may hold the picture back to meet the sound
    #: (its A/V sync cannot delay a picture whose maximum playout delay is 0)
    SOUND_SYNC_MS = 300

    def _update_playout_delay(self, now: float) -> None:
        count, since = self._nacked_seen
        if self.nacked != count:
            self._nacked_seen = count, since = self.nacked, now
        if now - since <= self.NACK_MEMORY_S and self.rtt is not None:
            low = min(40, round((self.rtt + 0.02) * 100))  # 10 ms units, at most 400 ms
            high = min(4095, low + 50)
        else:
            low, high = 0, (self.SOUND_SYNC_MS // 10 if self.sound_on else 0)
        self.playout_delay = ((low << 12) | high).to_bytes(3, "big")

    # -- output ---------------------------------------------------------------------------------

    def update(self) -> RateDecision:
        now = self._clock()
        self._update_playout_delay(now)
        return self.controller.update(now)
