"""Rate control from transport-wide feedback: the send-side estimator (GCC) behind the same
interface as :class:`appliance.stream.ratecontrol.RateController`, so the viewers' loop, the
ladder and the keyframe rules work on its target unchanged. Pure: no I/O, time passed in.

Inputs: each feedback message's packets (:class:`~appliance.stream.twcc.PacketResult`: send time,
size, arrival on the browser's clock or lost), the bytes sent, the RTT from receiver reports.

* **Acknowledged bitrate**: the bytes the browser got over the last half second of its clock.
* **Delay-based estimate** (:mod:`appliance.stream.gcc`): inter-group delay variation, trendline,
  adaptive threshold, AIMD: the queue is seen *growing*, before anything is lost.
* **Loss-based bound** (GCC's): loss over the last >= 20 packets above 10 % multiplies it by
  ``1 - 0.5 x loss`` (once per RTT + 300 ms); below 2 % it grows 8 %/s; between, it holds.
  Only packets sent since the delay-based estimate's last cut count: those lost before it went
  to the queue that cut answered (at a capacity drop the two would otherwise cut twice).
* **Probing**: while the estimate is under the maximum and nothing has overused for a while, a
  short burst at twice the estimate (:meth:`take_probe`: the peer sends retransmissions of recent
  packets through the pacer); the rate the browser received the burst at, when higher, becomes
  the estimate (unless the delay rose since it was sent and 1.5 x the acknowledged bitrate is
  below it: the capacity dropped meanwhile): after a drop the rate comes back in seconds.
* **Stall**: no feedback showing a packet received for ``stall_after_s`` since the first packet
  sent after the last one (a box sending nothing hears nothing, and is not stalled): the same
  dead path as the receiver-report controller's (target halved, ``stalled``); the first
  feedback after it re-arms the detector.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from .gcc import AimdRate, InterArrival, Trendline, Usage
from .ladder import LADDER_1080P30, Ladder, LadderParams, LadderStep
from .rateparams import RateDecision, RateParams, ReceiverReport
from .twcc import PacketResult

logger = logging.getLogger(__name__)

#: the acknowledged bitrate's window (the browser's clock)
ACKED_WINDOW_S = 0.5
#: loss is judged over at least this many packets
LOSS_MIN_PACKETS = 20
#: a probe lasts this long (and at least PROBE_MIN_PACKETS packets' worth)
PROBE_S = 0.04
PROBE_MIN_PACKETS = 5
#: after a successful probe the next comes this soon; after one that found no room, this late
PROBE_AGAIN_S = 1.0
PROBE_RETRY_S = 4.0
#: no probe within this of an overuse
PROBE_QUIET_S = 2.0


@dataclass(frozen=True)
class ProbeRequest:
    """Send ``extra_bps`` above the media for ``duration_s``, the packets marked ``cluster``."""

    cluster: int
    rate_bps: int  # what the media and the probe's packets together should leave at
    extra_bps: int
    duration_s: float


class AckedBitrate:
    """The bytes acknowledged over the last ``window`` seconds of arrival time."""

    def __init__(self, window: float = ACKED_WINDOW_S) -> None:
        self.window = window
        self._packets: deque[tuple[float, int]] = deque()
        self._bytes = 0

    def add(self, arrival: float, size: int) -> None:
        self._packets.append((arrival, size))
        self._bytes += size
        newest = max(arrival, self._packets[-1][0])
        while self._packets and self._packets[0][0] < newest - self.window:
            self._bytes -= self._packets.popleft()[1]

    def bps(self) -> float | None:
        """None until half a window of arrivals is known."""
        if len(self._packets) < 2 or self._packets[-1][0] - self._packets[0][0] < self.window / 2:
            return None
        return self._bytes * 8 / self.window

    def reset(self) -> None:
        self._packets.clear()
        self._bytes = 0


class TwccController:
    """GCC on transport-wide feedback, with :class:`RateController`'s interface."""

    def __init__(
        self,
        params: RateParams | None = None,
        ladder: LadderParams = LADDER_1080P30,
        now: float = 0.0,
    ) -> None:
        self.params = p = params or RateParams()
        self._ladder = Ladder(ladder)
        self._aimd = AimdRate(p.start_bps, p.min_bps, p.max_bps)
        self._arrivals = InterArrival()
        self._trend = Trendline()
        self._acked = AckedBitrate()
        self._loss_limit = float(p.max_bps)
        self._lost = self._expected = 0
        self._last_loss_cut = -math.inf
        self._last_loss_at: float | None = None
        self._sent: deque[tuple[float, int]] = deque()
        self._sent_bytes = 0
        #: when the first packet not yet covered by feedback left (None: all covered)
        self._unheard_since: float | None = None
        self._last_feedback: float | None = None
        self._stalled = self._resync = False
        self._rtt: float | None = None
        self._last_overuse = -math.inf
        self._cluster = 0
        self._probe_due = now + PROBE_AGAIN_S
        self._pending_probe: ProbeRequest | None = None
        self._probes: dict[int, tuple[float, ProbeRequest, list[PacketResult]]] = {}
        self.probes_sent = self.probes_raised = 0
        self._decision = self._decide(now)

    # -- inputs ---------------------------------------------------------------------------------

    def on_feedback(self, results: Sequence[PacketResult], now: float) -> None:
        """One feedback message's packets (in sequence order)."""
        received = sorted(
            ((r.arrival, r) for r in results if r.arrival is not None), key=lambda ar: ar[0]
        )
        for r in results:
            if r.sent.probe and r.sent.probe in self._probes:
                self._probes[r.sent.probe][2].append(r)
        if not received:
            self._count_loss(results, now)
            return
        self._last_feedback = now
        self._unheard_since = None
        if self._stalled or self._resync:
            logger.info(
                "transport-cc feedback again: resuming at %d kbit/s", self.target_bps // 1e3
            )
            self._stalled = self._resync = False
            self._arrivals = InterArrival()
            self._acked.reset()
            return
        usage = self._trend.usage
        for arrival, r in received:
            self._acked.add(arrival, r.sent.size)
            delta = self._arrivals.add(r.sent.sent_at, arrival, r.sent.size)
            if delta is not None:
                usage = self._trend.update(delta)
        acked = self._acked.bps()
        before = self._aimd.bps
        self._aimd.rtt = self._rtt if self._rtt is not None else 0.1
        self._aimd.update(usage, acked, now)
        if usage is Usage.OVERUSING:
            self._last_overuse = now
            if self._aimd.bps < before:
                logger.info(
                    "delay rising: estimate %d -> %d kbit/s (acknowledged %s)",
                    int(before) // 1000,
                    int(self._aimd.bps) // 1000,
                    f"{int(acked) // 1000} kbit/s" if acked is not None else "unknown",
                )
        self._count_loss(results, now)
        self._decision = self._decide(now)

    def on_receiver_report(self, report: ReceiverReport) -> None:
        """Only the RTT is used (the feedback carries loss and delay, ten times a second)."""
        if report.rtt is not None and report.rtt >= 0:
            self._rtt = report.rtt

    def on_remb(self, bitrate: int, now: float) -> None:
        """Ignored: with transport-cc the browser estimates nothing itself."""

    def on_loss_seen(self, loss: float, now: float) -> bool:
        """Ignored: the feedback shows each loss within ~100 ms anyway."""
        return False

    def on_report_heard(self, now: float) -> None:
        """Ignored: liveness comes from the feedback."""

    def on_bytes_sent(self, nbytes: int, now: float) -> None:
        if self._unheard_since is None and nbytes > 0:
            self._unheard_since = now
        self._sent.append((now, nbytes))
        self._sent_bytes += nbytes
        self._trim_sent(now)

    # -- probing --------------------------------------------------------------------------------

    def take_probe(self) -> ProbeRequest | None:
        """The probe to send now, if one is due (once)."""
        probe, self._pending_probe = self._pending_probe, None
        return probe

    def _schedule_probe(self, now: float) -> None:
        p = self.params
        estimate = self._aimd.bps
        if (
            self._pending_probe is not None
            or self._probes
            or now < self._probe_due
            or now - self._last_overuse < PROBE_QUIET_S
            or estimate >= 0.95 * p.max_bps
            or self._stalled
            or self._last_feedback is None
        ):
            return
        rate = min(float(p.max_bps), 2 * estimate)
        extra = rate - max(estimate, self.sent_bps(now))
        if extra <= 0:
            return
        duration = max(PROBE_S, PROBE_MIN_PACKETS * 1200 * 8 / extra)
        self._cluster = self._cluster % 0xFFFF + 1
        probe = ProbeRequest(self._cluster, int(rate), int(extra), duration)
        self._pending_probe = probe
        self._probes[probe.cluster] = (now, probe, [])
        self._probe_due = now + PROBE_RETRY_S
        self.probes_sent += 1

    def _evaluate_probes(self, now: float) -> None:
        wait = (self._rtt or 0.1) + 0.5
        for cluster, (at, probe, results) in list(self._probes.items()):
            if now - at < probe.duration_s + wait:
                continue
            del self._probes[cluster]
            rate = _probe_rate(results)
            if rate is None:
                continue
            acked = self._acked.bps()
            if self._last_overuse >= at and (acked is None or rate > 1.5 * acked):
                # the queue grew since it was sent and what gets through now is far below what
                # it found: the capacity dropped meanwhile, and its rate is gone
                continue
            if rate >= 0.7 * probe.rate_bps:
                self._probe_due = min(self._probe_due, now + PROBE_AGAIN_S)
            if rate > self._aimd.bps:
                logger.info(
                    "probe at %d kbit/s: received at %d, estimate %d -> %d kbit/s",
                    probe.rate_bps // 1000,
                    int(rate) // 1000,
                    int(self._aimd.bps) // 1000,
                    int(rate) // 1000,
                )
                self._aimd.set_estimate(rate, now)
                self._loss_limit = max(self._loss_limit, min(rate, float(self.params.max_bps)))
                self.probes_raised += 1

    # -- output ---------------------------------------------------------------------------------

    def update(self, now: float) -> RateDecision:
        """The decision at ``now``: notices a dead path, schedules and judges probes."""
        p = self.params
        # packets went out and nothing was heard of them (a box that sends nothing, paused or
        # between states, gets no feedback and is not stalled)
        last = self._unheard_since
        if not self._stalled and last is not None and now - last >= p.stall_after_s:
            self._stalled = self._resync = True
            cut = max(p.min_bps, self._aimd.bps * p.stall_backoff)
            self._aimd.set_estimate(cut, now)
            self._probes.clear()
            logger.warning(
                "nothing heard of the packets sent over %.1f s: path stalled, %d kbit/s",
                now - last,
                int(cut) // 1000,
            )
        self._evaluate_probes(now)
        self._schedule_probe(now)
        self._decision = self._decide(now)
        return self._decision

    @property
    def decision(self) -> RateDecision:
        return self._decision

    @property
    def target_bps(self) -> int:
        return self._decision.target_bps

    @property
    def step(self) -> LadderStep:
        return self._decision.step

    @property
    def stalled(self) -> bool:
        return self._stalled

    @property
    def usage(self) -> Usage:
        """The delay detector's last verdict."""
        return self._trend.usage

    def sent_bps(self, now: float) -> int:
        self._trim_sent(now)
        return int(self._sent_bytes * 8 / self.params.send_window_s)

    # -- helpers --------------------------------------------------------------------------------

    def _count_loss(self, results: Sequence[PacketResult], now: float) -> None:
        p = self.params
        # packets sent before the delay-based estimate's last cut were lost to the queue that
        # cut answered: counting them would cut a second time for the same overuse
        cut = self._aimd.last_decrease
        if cut is not None:
            results = [r for r in results if r.sent.sent_at >= cut]
        self._expected += len(results)
        self._lost += sum(1 for r in results if r.arrival is None)
        if self._expected < LOSS_MIN_PACKETS:
            return
        loss = self._lost / self._expected
        self._lost = self._expected = 0
        last, self._last_loss_at = self._last_loss_at, now
        dt = min(now - last, 1.0) if last is not None else 0.0
        if loss > p.loss_high:
            if now - self._last_loss_cut >= 0.3 + (self._rtt or 0.1):
                before = min(self._loss_limit, self._aimd.bps)
                self._loss_limit = max(float(p.min_bps), before * (1 - 0.5 * loss))
                self._last_loss_cut = now
                logger.info(
                    "loss %.0f%%: loss bound %d -> %d kbit/s",
                    loss * 100,
                    int(before) // 1000,
                    int(self._loss_limit) // 1000,
                )
        elif loss < p.loss_low:
            base = min(self._loss_limit, max(self._aimd.bps, float(p.min_bps)))
            grown = base * (1.08**dt) + 1000 * dt
            self._loss_limit = min(float(p.max_bps), max(self._loss_limit, grown))

    def _decide(self, now: float) -> RateDecision:
        p = self.params
        target = max(float(p.min_bps), min(self._aimd.bps, self._loss_limit, float(p.max_bps)))
        step = self._ladder.update(target, now)
        return RateDecision(
            target_bps=int(target),
            encoder_bps=int(target * (1 - p.overhead)),
            step=step,
            stalled=self._stalled,
            loss_limit_bps=int(self._loss_limit),
            delay_limit_bps=int(self._aimd.bps),
            remb_bps=None,
            sent_bps=self.sent_bps(now),
            rtt=self._rtt,
            rtt_min=None,
        )

    def _trim_sent(self, now: float) -> None:
        horizon = now - self.params.send_window_s
        while self._sent and self._sent[0][0] <= horizon:
            self._sent_bytes -= self._sent.popleft()[1]


def _probe_rate(results: list[PacketResult]) -> float | None:
    """The rate a probe cluster got through at: the lower of its send and receive rates (each
    over its packets but the last sent / the first received); None when too few arrived."""
    got = sorted((r.arrival, r.sent.sent_at, r.sent.size) for r in results if r.arrival is not None)
    if len(got) < PROBE_MIN_PACKETS or len(got) < 0.8 * len(results):
        return None
    by_send = sorted(got, key=lambda g: g[1])
    send_span = by_send[-1][1] - by_send[0][1]
    receive_span = got[-1][0] - got[0][0]
    if send_span < 0.001 or receive_span < 0.001:
        return None
    send_rate = sum(g[2] for g in by_send[:-1]) * 8 / send_span
    receive_rate = sum(g[2] for g in got[1:]) * 8 / receive_span
    return min(send_rate, receive_rate)
