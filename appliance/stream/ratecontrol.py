"""Sender-side rate control from RTCP feedback: a target bitrate and a picture ladder step.

aiortc has no congestion control, so the box decides its own rate from what the viewer's
browser reports back. The controller is pure (no I/O, no aiortc, time passed in) so recorded
or simulated feedback drives it in tests exactly as a live connection would.

Inputs, with the time they arrived (monotonic seconds): receiver reports
(:class:`ReceiverReport`: loss, jitter, RTT from LSR/DLSR or ``None``), REMB when the browser
sends it (iOS Safari may not: everything works without), the bytes actually sent.

The target is the smallest of:

* REMB, while fresh (``remb_timeout_s``);
* a loss-based limit, as in GCC: above ``loss_high`` (10 %) loss it is multiplied by
  ``1 - 0.5 * loss``; below ``loss_low`` (2 %) it grows; in between it holds;
* a delay-based limit: when the RTT stands well above its recent minimum (a queue building up
  at a bottleneck, or TURN over TCP) and is not already falling, it drops to ``delay_backoff``
  times the rate actually sent; it holds while such a queue drains and grows when it is gone.

Growth is multiplicative (docs/rate-control.md) and never far above the rate actually sent;
everything is clamped to ``[min_bps, max_bps]``.

No receiver report for ``stall_after_s`` (:data:`appliance.vocab.STALL_AFTER_S`) means a dead path:
the decision says ``stalled`` and the target is cut once by ``stall_backoff``; the first report
after a stall only re-arms the controller (its loss counts the blackout, not congestion), then it
ramps back.

The ladder (:mod:`appliance.stream.ladder`) turns the target into a picture step.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field

from .ladder import LADDER_1080P30, Ladder, LadderParams, LadderStep
from .rateparams import RateDecision, RateParams, ReceiverReport

__all__ = ["RateController", "RateDecision", "RateParams", "ReceiverReport"]

logger = logging.getLogger(__name__)


@dataclass
class _RttBaseline:
    """The minimum RTT over a sliding window (a monotonic deque of (time, rtt))."""

    window: float
    samples: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, now: float, rtt: float) -> None:
        while self.samples and self.samples[-1][1] >= rtt:
            self.samples.pop()
        self.samples.append((now, rtt))
        while self.samples[0][0] < now - self.window and len(self.samples) > 1:
            self.samples.popleft()

    @property
    def minimum(self) -> float | None:
        return self.samples[0][1] if self.samples else None


class RateController:
    """Turns receiver reports, REMB and the bytes sent into a :class:`RateDecision`.

    Call :meth:`on_receiver_report`, :meth:`on_remb` and :meth:`on_bytes_sent` as feedback
    arrives and packets leave, and :meth:`update` every few hundred milliseconds (it also
    notices a dead path). Not thread-safe: use it from the event loop.
    """

    def __init__(
        self,
        params: RateParams | None = None,
        ladder: LadderParams = LADDER_1080P30,
        now: float = 0.0,
    ) -> None:
        self.params = p = params or RateParams()
        self._ladder = Ladder(ladder)
        self._loss_limit = float(p.start_bps)
        self._delay_limit = float(p.max_bps)
        self._target = float(p.start_bps)
        self._remb: tuple[float, int] | None = None  # (arrived, bit/s)
        self._sent: deque[tuple[float, int]] = deque()
        self._sent_bytes = 0
        self._rtt = _RttBaseline(p.rtt_window_s)
        self._last_rtt: float | None = None
        self._last_report: float | None = None
        self._last_heard: float | None = None  # merged reports (on_report_heard) count here
        self._first_sent: float | None = None  # a first report is due stall_after_s after
        self._stalled = False
        self._resync = False  # the next report follows a stall: it only re-arms
        self._congested_at: tuple[float, float] | None = None  # (when, the rate then)
        self._recover_to: float | None = None  # the rate held before a stall
        self._last_decrease = -math.inf
        self._early_at = -math.inf  # the last cut on the NACKs' early loss
        self._lossy_reports = 0
        self._probe: tuple[float, float, float] | None = None  # (started, rate before, RTT then)
        self._last_probe = -math.inf
        #: steady random loss a queue probe found (no queue behind it): the loss thresholds
        #: are raised by it for ``congestion_memory_s``, so a lossy radio link can still grow
        self._background_loss: tuple[float, float] | None = None  # (when, loss)
        self._recent_loss: deque[float] = deque(maxlen=4)
        self._decision = self._decide(now)

    # -- inputs ---------------------------------------------------------------------------------

    def on_bytes_sent(self, nbytes: int, now: float) -> None:
        """Count ``nbytes`` of RTP leaving at ``now`` (packet sizes as sent, headers included)."""
        if self._first_sent is None and nbytes > 0:
            self._first_sent = now
        self._sent.append((now, nbytes))
        self._sent_bytes += nbytes
        self._trim_sent(now)

    def on_remb(self, bitrate: int, now: float) -> None:
        """The browser's receiver estimated maximum bitrate."""
        self._remb = (now, max(0, int(bitrate)))

    def on_receiver_report(self, report: ReceiverReport) -> None:
        """One receiver report block for the video stream."""
        p, now = self.params, report.at
        gap = p.max_report_gap_s if self._last_report is None else now - self._last_report
        gap = min(max(gap, 0.0), p.max_report_gap_s)
        self._last_report = now
        if report.rtt is not None and report.rtt >= 0:
            self._rtt.add(now, report.rtt)
        previous_rtt, self._last_rtt = self._last_rtt, report.rtt
        if self._stalled or self._resync:
            logger.info("receiver reports again: resuming at %d kbit/s", self._target // 1000)
            self._stalled = self._resync = False
            return
        sent = self.sent_bps(now)
        self._apply_loss(report.fraction_lost, gap, sent, now)
        self._apply_delay(report.rtt, previous_rtt, gap, sent, now)
        self._probe_queue(report.fraction_lost, report.rtt, sent, now)
        self._decision = self._decide(now)

    def on_loss_seen(self, loss: float, now: float) -> bool:
        """Heavy loss the viewer's NACKs show before its next receiver report (a capacity drop):
        the loss limit falls at once to the rate that got through, times ``delay_backoff``, but
        at most by half per cut (the loss of the first moments overstates it: a cut's
        retransmissions and keyframes are still in the queue), and the next report's loss
        (which counts the same packets) does not cut it again. Returns whether it cut."""
        p = self.params
        if (
            loss < p.early_loss
            or self._stalled
            or self._resync
            or now - self._last_decrease < self._decrease_interval()
        ):
            return False
        before = self._target
        sent = self.sent_bps(now) or before
        cut = max(p.min_bps, 0.5 * before, min(before, sent) * (1 - loss) * p.delay_backoff)
        if cut >= before:
            return False
        self._loss_limit = cut
        self._early_at = now
        self._note_congestion(now, before)
        logger.info(
            "NACKs for %.0f%% of packets: loss limit %d -> %d kbit/s",
            loss * 100,
            int(before) // 1000,
            int(cut) // 1000,
        )
        self._decision = self._decide(now)
        return True

    def on_report_heard(self, now: float) -> None:
        """A report that shows packets arriving but is merged into a later one: the path is
        alive (it keeps a stall from being declared), nothing else changes."""
        if not self._stalled and not self._resync:
            self._last_heard = now

    # -- output ---------------------------------------------------------------------------------

    def update(self, now: float) -> RateDecision:
        """The decision at ``now``; notices a dead path (no report for ``stall_after_s``)."""
        p = self.params
        last = self._last_report if self._last_report is not None else self._first_sent
        if last is not None and self._last_heard is not None:
            last = max(last, self._last_heard)
        if not self._stalled and last is not None and now - last >= p.stall_after_s:
            self._stalled = True
            self._resync = True
            if self._recover_to is None or self._target > self._recover_to:
                self._recover_to = self._target
            cut = max(p.min_bps, self._target * p.stall_backoff)
            self._loss_limit = min(self._loss_limit, cut)
            self._delay_limit = min(self._delay_limit, cut)
            logger.warning(
                "no receiver report for %.1f s: path stalled, %d kbit/s",
                now - last,
                int(cut) // 1000,
            )
        self._decision = self._decide(now)
        return self._decision

    @property
    def decision(self) -> RateDecision:
        """The last decision (from :meth:`update` or a report)."""
        return self._decision

    @property
    def target_bps(self) -> int:
        """The current target bitrate on the wire."""
        return self._decision.target_bps

    @property
    def step(self) -> LadderStep:
        """The current ladder step."""
        return self._decision.step

    @property
    def stalled(self) -> bool:
        """True while no receiver report has come for ``stall_after_s``."""
        return self._stalled

    def sent_bps(self, now: float) -> int:
        """The rate actually sent over the last ``send_window_s``."""
        self._trim_sent(now)
        return int(self._sent_bytes * 8 / self.params.send_window_s)

    # -- the limits -----------------------------------------------------------------------------

    def _apply_loss(self, loss: float, gap: float, sent: int, now: float) -> None:
        p = self.params
        self._recent_loss.append(loss)
        background = self._background_loss
        if background is not None and now - background[0] > p.congestion_memory_s:
            self._background_loss = background = None
        extra = background[1] if background is not None else 0.0
        if loss > p.loss_high + extra:
            if now - self._early_at <= gap + p.early_window_s:
                return  # this report counts the loss an early cut already answered
            if now - self._last_decrease >= self._decrease_interval():
                before = self._loss_limit
                basis = min(self._loss_limit, sent) if sent else self._loss_limit
                self._loss_limit = max(p.min_bps, basis * (1 - 0.5 * loss))
                self._note_congestion(now, before)
                logger.info(
                    "loss %.0f%%: loss limit %d -> %d kbit/s",
                    loss * 100,
                    int(before) // 1000,
                    int(self._loss_limit) // 1000,
                )
        elif loss < p.loss_low + extra:
            self._loss_limit = self._grow(self._loss_limit, gap, sent, now)

    def _apply_delay(
        self, rtt: float | None, previous: float | None, gap: float, sent: int, now: float
    ) -> None:
        p = self.params
        base = self._rtt.minimum
        if self._probe is not None:
            return  # probing for a standing queue: the delay limit is held down
        if rtt is None or base is None:
            self._delay_limit = self._grow(self._delay_limit, gap, sent, now)
            return
        excess = rtt - base
        if excess <= max(p.delay_threshold_s, p.delay_threshold_ratio * base):
            self._delay_limit = self._grow(self._delay_limit, gap, sent, now)
            return
        draining = previous is not None and rtt < previous - 0.25 * excess
        if draining or now - self._last_decrease < self._decrease_interval():
            return  # the queue is already going down: hold
        before = min(self._delay_limit, self._target)
        basis = min(before, sent) if sent else before
        if previous is not None and gap > 0 and rtt > previous:
            # a queue growing by (rtt - previous) in ``gap`` seconds is fed at (1 + slope) times
            # the rate it drains at, which is the link's capacity
            basis = min(basis, basis / (1 + (rtt - previous) / gap))
        self._delay_limit = max(p.min_bps, basis * p.delay_backoff)
        self._note_congestion(now, before)
        logger.info(
            "RTT %.0f ms over a %.0f ms baseline: delay limit %d -> %d kbit/s",
            rtt * 1000,
            base * 1000,
            int(before) // 1000,
            int(self._delay_limit) // 1000,
        )

    def _probe_queue(self, loss: float, rtt: float | None, sent: int, now: float) -> None:
        """Find a standing queue the RTT baseline cannot see (it was full from the first report).

        A full drop-tail queue and random loss look alike in a receiver report: steady loss of a
        few percent, a flat RTT. Sending less for a moment tells them apart: a queue drains and
        the RTT falls (the baseline learns the real minimum, the delay limit takes over), random
        loss does not care (the rate comes back).
        """
        p = self.params
        probe = self._probe
        if probe is not None:
            started, before, rtt_then = probe
            if rtt is not None and rtt < rtt_then - p.delay_threshold_s:
                self._probe = None
                self._note_congestion(now, before)
                logger.info(
                    "queue probe: RTT %.0f -> %.0f ms, a standing queue; staying at %d kbit/s",
                    rtt_then * 1000,
                    rtt * 1000,
                    int(self._delay_limit) // 1000,
                )
            elif now - started >= p.probe_s:
                self._probe = None
                self._delay_limit = max(self._delay_limit, before)
                level = sorted(self._recent_loss)[len(self._recent_loss) // 2]
                self._background_loss = (now, min(level, p.loss_high))
                logger.info(
                    "queue probe: RTT unchanged, back to %d kbit/s; %.1f%% loss is background",
                    int(before) // 1000,
                    level * 100,
                )
            return
        self._lossy_reports = self._lossy_reports + 1 if loss >= p.loss_low else 0
        if (
            rtt is None
            or self._lossy_reports < p.probe_after_reports
            or now - self._last_probe < p.probe_interval_s
        ):
            return
        self._lossy_reports = 0
        self._last_probe = now
        rate = min(self._loss_limit, self._delay_limit, float(p.max_bps))
        delivered = sent * (1 - loss) if sent else rate
        self._probe = (now, rate, rtt)
        self._delay_limit = max(p.min_bps, min(rate, delivered) * p.delay_backoff)
        logger.info("steady loss at a flat RTT: probing for a standing queue")

    def _grow(self, limit: float, gap: float, sent: int, now: float) -> float:
        p = self.params
        if limit >= p.max_bps:
            return float(p.max_bps)
        rate = self._growth_rate(limit, now)
        grown = limit * (1 + rate) ** gap
        if sent:
            grown = min(grown, max(limit, p.sent_headroom * sent))
        return min(grown, float(p.max_bps))

    def _growth_rate(self, limit: float, now: float) -> float:
        p = self.params
        if self._recover_to is not None:
            if limit < p.near_band * self._recover_to:
                return p.startup_growth
            self._recover_to = None
        congested = self._congested_at
        if congested is not None and now - congested[0] > p.congestion_memory_s:
            self._congested_at = congested = None
        if congested is None:
            return p.startup_growth if self._last_decrease == -math.inf else p.growth
        if limit >= p.near_band * congested[1]:
            if limit > congested[1] / p.near_band:
                self._congested_at = None  # well past it: the link has more room now
                return p.growth
            return p.near_growth
        return p.growth

    def _note_congestion(self, now: float, rate: float) -> None:
        self._last_decrease = now
        self._recover_to = None
        self._congested_at = (now, rate)

    def _decrease_interval(self) -> float:
        """At most one decrease per RTT plus 300 ms (the same congestion is reported twice)."""
        return 0.3 + (self._last_rtt or 0.0)

    # -- helpers --------------------------------------------------------------------------------

    def _decide(self, now: float) -> RateDecision:
        p = self.params
        remb = self._remb
        fresh_remb = remb[1] if remb is not None and now - remb[0] <= p.remb_timeout_s else None
        target = min(self._loss_limit, self._delay_limit, float(p.max_bps))
        if fresh_remb is not None and fresh_remb < target:
            target = float(fresh_remb)
            # the other limits were not tested above the REMB: when it goes, start near it
            ceiling = max(float(p.min_bps), p.sent_headroom * fresh_remb)
            self._loss_limit = min(self._loss_limit, ceiling)
            self._delay_limit = min(self._delay_limit, ceiling)
        self._target = max(float(p.min_bps), target)
        # a queue probe's dip lasts a moment: the picture does not step down for it
        probing = self._probe[1] if self._probe is not None else 0.0
        step = self._ladder.update(max(self._target, min(probing, target / p.delay_backoff)), now)
        return RateDecision(
            target_bps=int(self._target),
            encoder_bps=int(self._target * (1 - p.overhead)),
            step=step,
            stalled=self._stalled,
            loss_limit_bps=int(self._loss_limit),
            delay_limit_bps=int(self._delay_limit),
            remb_bps=fresh_remb,
            sent_bps=self.sent_bps(now),
            rtt=self._last_rtt,
            rtt_min=self._rtt.minimum,
        )

    def _trim_sent(self, now: float) -> None:
        horizon = now - self.params.send_window_s
        while self._sent and self._sent[0][0] <= horizon:
            self._sent_bytes -= self._sent.popleft()[1]
