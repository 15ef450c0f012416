"""The rate controller's vocabulary: its settings (:class:`RateParams`), what a receiver report
says (:class:`ReceiverReport`) and what it decides (:class:`RateDecision`). The controller itself
is :mod:`appliance.stream.ratecontrol` (which re-exports these)."""

from __future__ import annotations

from dataclasses import dataclass

from ..vocab import STALL_AFTER_S
from .ladder import LadderStep


@dataclass(frozen=True)
class RateParams:
    """The controller's settings. Rates in bit/s, times in seconds, loss as a fraction."""

    min_bps: int = 300_000
    max_bps: int = 4_000_000
    start_bps: int = 2_500_000
    #: loss-based limit (GCC): decrease above ``loss_high``, grow below ``loss_low``
    loss_high: float = 0.10
    loss_low: float = 0.02
    #: multiplicative growth per second: normal, before any congestion / back to the pre-stall
    #: rate, and within ``near_band`` of the rate that last caused congestion
    growth: float = 0.08
    startup_growth: float = 0.25
    near_growth: float = 0.03
    near_band: float = 0.85
    #: how long the rate that caused congestion is remembered
    congestion_memory_s: float = 30.0
    #: a limit grows to at most this many times the rate actually sent
    sent_headroom: float = 1.5
    #: delay-based limit: overuse when RTT > min RTT + max(threshold, ratio * min RTT)
    delay_threshold_s: float = 0.05
    delay_threshold_ratio: float = 0.25
    delay_backoff: float = 0.85
    #: the minimum RTT is taken over this window
    rtt_window_s: float = 60.0
    #: queue probe: after this many reports in a row with loss >= ``loss_low``, the rate drops
    #: by ``delay_backoff`` for up to ``probe_s``; if the RTT falls, a standing queue was there
    #: (and the RTT baseline was wrong); if not, the rate comes back. One per ``probe_interval_s``.
    probe_after_reports: int = 3
    probe_s: float = 2.5
    probe_interval_s: float = 30.0
    #: early loss (the viewer's NACKs, between reports): this share of the packets sent over
    #: ``early_window_s`` (ending an RTT ago) asked for again cuts the rate at once to what got
    #: through, times ``delay_backoff``; RFC 3550's one report a second is too late for a drop
    early_loss: float = 0.25
    early_window_s: float = 0.5
    early_min_packets: int = 20
    #: no receiver report for this long: the path is dead (the one stall time)
    stall_after_s: float = STALL_AFTER_S
    stall_backoff: float = 0.5
    remb_timeout_s: float = 3.0
    #: the rate actually sent is measured over this window
    send_window_s: float = 1.0
    #: growth is credited for at most this long per report (reports ~1 s apart)
    max_report_gap_s: float = 2.0
    #: RTP, UDP, SRTP and retransmission overhead: the encoder gets target * (1 - overhead)
    overhead: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.min_bps <= self.start_bps <= self.max_bps:
            raise ValueError("rate control needs 0 < min_bps <= start_bps <= max_bps")
        if not 0 <= self.loss_low <= self.loss_high <= 1:
            raise ValueError("rate control needs 0 <= loss_low <= loss_high <= 1")
        if not 0 < self.delay_backoff < 1 or not 0 < self.stall_backoff <= 1:
            raise ValueError("back-off factors must be in (0, 1)")
        if not 0 <= self.overhead < 1:
            raise ValueError("overhead must be in [0, 1)")


@dataclass(frozen=True)
class ReceiverReport:
    """What one RTCP receiver report block says about the box's video stream.

    ``fraction_lost`` is the report's 8-bit field divided by 256, ``jitter`` is in seconds (the
    report's RTP-clock value / 90000), ``rtt`` in seconds or ``None``.
    """

    at: float
    fraction_lost: float
    cumulative_lost: int = 0
    jitter: float = 0.0
    rtt: float | None = None


@dataclass(frozen=True)
class RateDecision:
    """The controller's output: what to send, and why."""

    target_bps: int  # on the wire
    encoder_bps: int  # for the encoder: the target less the packet overhead
    step: LadderStep
    stalled: bool
    loss_limit_bps: int
    delay_limit_bps: int
    remb_bps: int | None  # the REMB in force (fresh), if any
    sent_bps: int  # measured over the last ``send_window_s``
    rtt: float | None  # the last RTT reported
    rtt_min: float | None  # the baseline the delay limit compares it with
