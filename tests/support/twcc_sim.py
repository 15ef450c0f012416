"""The rate-control link simulator (:mod:`tests.support.ratecontrol_sim`: its scenarios, queue
model and :class:`Run`) with transport-wide feedback instead of receiver reports.

Every packet gets a transport-wide sequence number in a real :class:`SendLog`; the frame's
packets leave paced (at 8 x the target, like the box's pacer). The receiver notes each arrival
(its clock is the simulator's plus an offset) and every 100 ms writes a real transport-cc
feedback message (:func:`build_feedback`: 250 us deltas, a 64 ms reference time) covering every
packet up to the newest received; the sender parses it (:func:`parse_feedback`) and matches it
to its log (:func:`packet_results`) a one-way delay later. A receiver report with the RTT comes
every second. Probes the controller asks for are sent as extra packets over their duration,
every packet leaving meanwhile marked with the cluster. Deterministic (seeded).
"""

from __future__ import annotations

import heapq
import math
import random
from typing import Any

from appliance.stream.ladder import LADDER_1080P30
from appliance.stream.rateparams import ReceiverReport
from appliance.stream.twcc import (
    ArrivalClock,
    SendLog,
    TransportFeedback,
    build_feedback,
    packet_results,
    parse_feedback,
    split_compound,
)
from appliance.stream.twccrate import TwccController
from tests.support.ratecontrol_sim import HEADERS, PACKET, TICK, Run, Scenario, Tick

FEEDBACK_S = 0.1
#: the receiver's clock runs this far from the sender's (feedback carries only its own clock)
RECEIVER_OFFSET = 1234.5


class _Link:
    """The bottleneck: a drop-tail queue drained at the capacity, blackouts, random loss."""

    def __init__(self, s: Scenario, rng: random.Random) -> None:
        self.s, self.rng = s, rng
        ref = s.queue_ref_bps or min(c for _, c in s.capacity)
        self.limit = ref * s.queue_s / 8
        self.queue = 0.0
        self.at = 0.0
        self.owd = s.base_rtt / 2

    def send(self, t: float, nbytes: int) -> float | None:
        """When a packet sent at ``t`` arrives, or None (lost)."""
        self.queue = max(0.0, self.queue - self._drained(self.at, t))
        self.at = t
        if self.s.dark(t):
            self.queue = 0.0
            return None
        if self.queue + nbytes > self.limit:
            return None
        self.queue += nbytes
        if self.rng.random() < self.s.random_loss:
            return None
        return self._empty_at(t, self.queue) + self.owd

    def _drained(self, start: float, end: float) -> float:
        """Bytes the link can pass from ``start`` to ``end`` (the capacity changes in steps)."""
        total, at = 0.0, start
        while at < end:
            until = min(end, self._next_step(at))
            total += self.s.capacity_at(at) / 8 * (until - at)
            at = until
        return total

    def _empty_at(self, t: float, nbytes: float) -> float:
        """When ``nbytes`` queued at ``t`` have left: the queue drains at each step's capacity,
        so a drop slows what is already queued too (a gap-free FIFO, as a real one)."""
        at = t
        while True:
            rate = self.s.capacity_at(at) / 8
            until = self._next_step(at)
            if rate <= 0 and until == math.inf:
                return math.inf
            if rate * (until - at) >= nbytes:
                return at + nbytes / rate
            nbytes -= rate * (until - at)
            at = until

    def _next_step(self, t: float) -> float:
        return min((start for start, _ in self.s.capacity if start > t), default=math.inf)

    def delay(self, t: float) -> float:
        left = max(0.0, self.queue - self._drained(self.at, t))
        return self._empty_at(t, left) - t


class _Receiver:
    """Notes arrivals; writes a feedback message every ``FEEDBACK_S`` of what it has seen."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}  # unwrapped seq -> arrival (receiver's clock)
        self.next_seq = 0
        self.highest = -1
        self.count = 0

    def arrive(self, seq: int, at: float) -> None:
        self.arrived[seq] = at + RECEIVER_OFFSET
        self.highest = max(self.highest, seq)

    def feedback(self) -> bytes | None:
        if self.highest < self.next_seq:
            return None
        seqs = range(self.next_seq, self.highest + 1)
        first = min(self.arrived[s] for s in seqs if s in self.arrived)
        reference = int(first / 0.064)
        ticks = reference * 256
        deltas: list[int | None] = []
        for s in seqs:
            at = self.arrived.pop(s, None)
            if at is None:
                deltas.append(None)
                continue
            now = round(at / 0.00025)
            deltas.append(max(-32768, min(32767, now - ticks)))
            ticks += deltas[-1] or 0
        self.next_seq = self.highest + 1
        self.count += 1
        fb = TransportFeedback(1, 2, seqs[0] & 0xFFFF, reference, self.count & 0xFF, tuple(deltas))
        return build_feedback(fb)


def simulate_twcc(scenario: Scenario, controller: TwccController | None = None) -> Run:
    """Run ``controller`` (a fresh :class:`TwccController` by default) over ``scenario``."""
    s = scenario
    ctl = controller or TwccController(s.rate_params(), LADDER_1080P30, 0.0)
    rng = random.Random(s.seed)
    link, receiver, log, clock = _Link(s, rng), _Receiver(), SendLog(10.0), ArrivalClock()
    events: list[tuple[float, int, str, Any]] = []
    order = 0

    def push(t: float, kind: str, data: Any) -> None:
        nonlocal order
        heapq.heappush(events, (t, order, kind, data))
        order += 1

    probe: tuple[float, int] = (-1.0, 0)  # (until, cluster)
    sent_in_tick = 0

    def send(t: float, nbytes: int) -> None:
        nonlocal sent_in_tick
        cluster = probe[1] if t < probe[0] else 0
        log.add(nbytes, t, cluster)
        seq = log.last_seq
        sent_in_tick += nbytes
        arrival = link.send(t, nbytes)
        if arrival is not None:
            push(arrival, "pkt", seq)

    feedback_log: list[list[Any]] = []
    ticks: list[Tick] = []
    decision = ctl.update(0.0)
    next_frame, next_fb, next_rr = 0.0, FEEDBACK_S, 1.0
    delivered = 0
    for i in range(1, round(s.duration / TICK) + 1):
        t = round(i * TICK, 6)
        sent_in_tick = delivered = 0
        outgoing: list[tuple[float, int]] = []
        while next_frame < t:
            fps = decision.step.fps
            size = decision.encoder_bps / 8 / fps * rng.uniform(0.85, 1.15)
            n = max(1, math.ceil(size / PACKET))
            gap = (size / n + HEADERS) * 8 / (8 * max(decision.target_bps, 1))
            outgoing += [(next_frame + k * gap, int(size / n) + HEADERS) for k in range(n)]
            next_frame += 1.0 / fps
        for at, nbytes in sorted(outgoing):
            push(at, "send", nbytes)
        while events and events[0][0] <= t or min(next_fb, next_rr) <= t:
            et = events[0][0] if events else math.inf
            if next_fb <= et and next_fb <= next_rr:
                message = receiver.feedback()
                if message is not None and not s.dark(next_fb):
                    push(next_fb + link.owd, "fb", message)
                next_fb = round(next_fb + FEEDBACK_S, 6)
                continue
            if next_rr <= et:
                if not s.dark(next_rr):
                    rtt = s.base_rtt + link.delay(next_rr)
                    push(next_rr + link.owd, "rr", rtt)
                next_rr = round(next_rr + 1.0, 6)
                continue
            et, _, kind, data = heapq.heappop(events)
            if kind == "send":
                send(et, data)
            elif kind == "pkt":
                receiver.arrive(data, et)
                delivered += log.get(data).size if log.get(data) else 0  # type: ignore[union-attr]
            elif kind == "fb":
                payloads, _ = split_compound(data)
                results = packet_results(parse_feedback(payloads[0]), log, clock)
                feedback_log.append([round(et, 4), "twcc", len(results)])
                ctl.on_feedback(results, et)
            elif kind == "rr":
                ctl.on_receiver_report(ReceiverReport(et, 0.0, 0, 0.0, data))
            elif kind == "probe":
                send(et, data)
        ctl.on_bytes_sent(sent_in_tick, t)
        decision = ctl.update(t)
        request = ctl.take_probe()
        if request is not None:
            probe = (t + request.duration_s, request.cluster)
            n = max(1, round(request.extra_bps * request.duration_s / 8 / (PACKET + HEADERS)))
            for k in range(n):
                push(t + k * request.duration_s / n, "probe", PACKET + HEADERS)
        cap = s.capacity_at(t)
        ticks.append(
            Tick(
                t,
                sent_in_tick,
                delivered,
                cap if not s.dark(t) else 0.0,
                round(link.delay(t), 4),
                decision.target_bps,
                decision.step.name,
                decision.stalled,
            )
        )
    return Run(s, ticks, feedback_log)
