"""A tiny deterministic link simulator for the rate controller, and its recorded traces.

The sender's "encoder" sends frames at the controller's encoder rate (at the ladder step's frame
rate, sizes varying +-15 %), cut into 1200-byte packets. The bottleneck drains at the link's
capacity through a drop-tail queue of ``queue_s`` seconds at the capacity it was sized for;
random loss, if any, comes after the queue. The receiver keeps RFC 3550's counters and sends a
receiver report about every second (fraction lost quantized to 8 bits, jitter, and the RTT the
sender would compute from LSR/DLSR: the base RTT plus the queueing delay an SR met), with REMB
when the scenario has one. Blackouts drop every packet and every report. A seeded generator
makes every run the same.

Run ``python -m tests.support.ratecontrol_sim`` to rewrite the recorded traces in
``tests/data/ratecontrol/`` (after tuning the controller).
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from appliance.stream.ladder import LADDER_1080P30
from appliance.stream.ratecontrol import RateController, RateDecision, RateParams, ReceiverReport

TRACES = Path(__file__).parents[1] / "data" / "ratecontrol"
TICK = 0.1  # the controller's update period
PACKET = 1200  # bytes of payload per RTP packet
HEADERS = 50  # RTP + UDP + SRTP + IP bytes per packet
M = 1_000_000


class Controller(Protocol):
    def on_bytes_sent(self, nbytes: int, now: float) -> None: ...

    def on_remb(self, bitrate: int, now: float) -> None: ...

    def on_receiver_report(self, report: ReceiverReport) -> None: ...

    def update(self, now: float) -> RateDecision: ...


@dataclass(frozen=True)
class Scenario:
    """A link: capacity over time (steps), queue, base RTT, random loss, blackouts, REMB."""

    name: str
    description: str
    duration: float
    capacity: tuple[tuple[float, float], ...]  # (from time, bit/s), first at 0
    base_rtt: float = 0.04
    queue_s: float = 0.3  # at the queue's reference capacity (the cap)
    queue_ref_bps: float | None = None  # default: the lowest capacity
    random_loss: float = 0.0
    blackouts: tuple[tuple[float, float], ...] = ()
    remb: tuple[tuple[float, float | None], ...] = ()  # (from time, bit/s or None)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 1

    def capacity_at(self, t: float) -> float:
        return _step_value(self.capacity, t) or 0.0

    def remb_at(self, t: float) -> float | None:
        return _step_value(self.remb, t) if self.remb else None

    def dark(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.blackouts)

    def rate_params(self) -> RateParams:
        return RateParams(**self.params)


def _step_value(steps: tuple[tuple[float, Any], ...], t: float) -> Any:
    value = steps[0][1]
    for start, v in steps:
        if t >= start:
            value = v
    return value


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "clean_4m", "a clean link a little above the 4 Mbit/s maximum", 40, ((0, 4.4 * M),)
        ),
        Scenario(
            "cap_2m",
            "a 2 Mbit/s bottleneck with a 300 ms drop-tail queue, starting at 4 Mbit/s",
            60,
            ((0, 2 * M),),
            params={"start_bps": 4 * M},
        ),
        Scenario(
            "cap_1m",
            "a 1 Mbit/s bottleneck with a 300 ms drop-tail queue, starting at 4 Mbit/s",
            60,
            ((0, 1 * M),),
            params={"start_bps": 4 * M},
        ),
        Scenario(
            "step_4_1_4",
            "capacity 4.4 -> 1 -> 4.4 Mbit/s (300 ms queue at 1 Mbit/s)",
            100,
            ((0, 4.4 * M), (20, 1 * M), (40, 4.4 * M)),
        ),
        Scenario(
            "random_loss",
            "2 % random loss, 80 ms RTT, plenty of capacity",
            60,
            ((0, 6 * M),),
            base_rtt=0.08,
            random_loss=0.02,
        ),
        Scenario(
            "blackout",
            "a clean 4.4 Mbit/s link, dead from 20 s to 30 s",
            60,
            ((0, 4.4 * M),),
            blackouts=((20, 30),),
        ),
        Scenario(
            "remb_low",
            "a clean link, REMB at 1.2 Mbit/s until 30 s, then no REMB",
            60,
            ((0, 6 * M),),
            remb=((0, 1.2 * M), (30, None)),
        ),
        Scenario(
            "deep_queue",
            "2 Mbit/s with a 3 s queue (TURN over TCP): delay, never loss",
            60,
            ((0, 2 * M),),
            queue_s=3.0,
            params={"start_bps": 4 * M},
        ),
    )
}


@dataclass
class Tick:
    """What happened in one controller period."""

    t: float
    sent: int  # bytes sent this tick
    delivered: int  # bytes that reached the viewer this tick
    capacity: float
    queue_delay: float
    target: int
    step: str
    stalled: bool


@dataclass
class Run:
    """One simulation: the ticks and the feedback events the sender saw."""

    scenario: Scenario
    ticks: list[Tick]
    #: [t, "rr", fraction_lost, cumulative_lost, jitter, rtt] or [t, "remb", bit/s]
    feedback: list[list[Any]]

    def window(self, start: float, end: float) -> list[Tick]:
        return [k for k in self.ticks if start <= k.t < end]

    def mean_target(self, start: float, end: float) -> float:
        w = self.window(start, end)
        return sum(k.target for k in w) / len(w)

    def delivered_bps(self, start: float, end: float) -> float:
        w = self.window(start, end)
        return sum(k.delivered for k in w) * 8 / (len(w) * TICK)

    def first(self, pred: Callable[[Tick], bool], after: float = 0.0) -> float | None:
        return next((k.t for k in self.ticks if k.t >= after and pred(k)), None)

    def to_json(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "scenario": s.name,
            "description": s.description,
            "generated_by": "python -m tests.support.ratecontrol_sim",
            "params": s.params,
            "ticks_columns": [
                "t",
                "sent",
                "delivered",
                "capacity",
                "queue_delay",
                "target",
                "step",
                "stalled",
            ],
            "ticks": [
                [k.t, k.sent, k.delivered, k.capacity, k.queue_delay, k.target, k.step, k.stalled]
                for k in self.ticks
            ],
            "feedback_columns": ["t", "rr", "fraction_lost", "cumulative_lost", "jitter", "rtt"],
            "feedback": self.feedback,
        }


def simulate(scenario: Scenario, controller: Controller | None = None) -> Run:
    """Run ``controller`` (a fresh :class:`RateController` by default) over ``scenario``."""
    s = scenario
    ctl: Controller = controller or RateController(s.rate_params(), LADDER_1080P30, 0.0)
    rng = random.Random(s.seed)
    ref = s.queue_ref_bps or min(c for _, c in s.capacity)
    queue_limit = ref * s.queue_s / 8  # bytes
    owd = s.base_rtt / 2
    events: list[tuple[float, int, str, Any]] = []  # heap: (time, seq, kind, data)
    seq = 0

    def push(t: float, kind: str, data: Any) -> None:
        nonlocal seq
        heapq.heappush(events, (t, seq, kind, data))
        seq += 1

    queue = 0.0  # bytes
    queue_t = 0.0
    # receiver state (RFC 3550)
    expected = received = lost_total = 0
    jitter = 0.0
    last_transit: float | None = None
    next_rr = 1.0
    last_qdelay = 0.0
    feedback: list[list[Any]] = []
    ticks: list[Tick] = []
    decision = ctl.update(0.0)
    next_frame = 0.0
    n_ticks = round(s.duration / TICK)
    for i in range(1, n_ticks + 1):
        t = round(i * TICK, 6)
        start = t - TICK
        sent = delivered = 0
        cap = s.capacity_at(start)
        # frames in this tick
        while next_frame < t:
            ft = next_frame
            fps = decision.step.fps
            next_frame += 1.0 / fps
            size = decision.encoder_bps / 8 / fps * rng.uniform(0.85, 1.15)
            n = max(1, math.ceil(size / PACKET))
            for _ in range(n):
                nbytes = int(size / n) + HEADERS
                sent += nbytes
                cap = s.capacity_at(ft)
                queue = max(0.0, queue - cap / 8 * (ft - queue_t))
                queue_t = ft
                if s.dark(ft):
                    push(ft + owd, "lost", None)
                    queue = 0.0
                    continue
                if queue + nbytes > queue_limit:
                    push(ft + owd, "lost", None)
                    continue
                queue += nbytes
                qdelay = queue * 8 / cap
                last_qdelay = qdelay
                if rng.random() < s.random_loss:
                    push(ft + owd + qdelay, "lost", None)
                else:
                    push(ft + owd + qdelay, "pkt", (nbytes, ft, owd + qdelay))
        # the receiver and the reports, in time order
        while True:
            nt = min(events[0][0] if events else math.inf, next_rr)
            if nt > t:
                break
            if events and events[0][0] <= next_rr:
                et, _, kind, data = heapq.heappop(events)
                if kind == "pkt":
                    nbytes, sent_at, transit = data
                    expected += 1
                    received += 1
                    delivered += nbytes
                    if last_transit is not None:
                        jitter += (abs(transit - last_transit) - jitter) / 16
                    last_transit = transit
                elif kind == "lost":
                    expected += 1
                elif kind == "fb":
                    ctl_feed(ctl, data, feedback)
                continue
            rr_t = next_rr
            next_rr = round(next_rr + rng.uniform(0.8, 1.2), 4)
            lost = expected - received
            lost_total += lost
            fraction = min(255, lost * 256 // expected) / 256 if expected else 0.0
            expected = received = 0
            if s.dark(rr_t):
                continue  # the report is lost too
            rtt = s.base_rtt + last_qdelay + rng.uniform(-0.002, 0.002)
            at = round(rr_t + owd, 4)
            push(at, "fb", [at, "rr", fraction, lost_total, round(jitter, 6), round(rtt, 4)])
            remb = s.remb_at(rr_t)
            if remb is not None:
                push(at, "fb", [at, "remb", int(remb)])
        queue = max(0.0, queue - cap / 8 * (t - queue_t))
        queue_t = t
        ctl.on_bytes_sent(sent, t)
        decision = ctl.update(t)
        ticks.append(
            Tick(
                t,
                sent,
                delivered,
                cap if not s.dark(t) else 0.0,
                round(queue * 8 / cap, 4),
                decision.target_bps,
                decision.step.name,
                decision.stalled,
            )
        )
    return Run(s, ticks, feedback)


def ctl_feed(ctl: Controller, event: list[Any], log: list[list[Any]] | None = None) -> None:
    """Give one recorded feedback event to ``ctl``."""
    if log is not None:
        log.append(event)
    if event[1] == "rr":
        t, _, fraction, cumulative, jitter, rtt = event
        ctl.on_receiver_report(ReceiverReport(t, fraction, cumulative, jitter, rtt))
    else:
        ctl.on_remb(event[2], event[0])


def replay(trace: dict[str, Any], controller: Controller | None = None) -> Run:
    """Drive a controller open-loop with a recorded trace's feedback and bytes sent."""
    s = SCENARIOS[trace["scenario"]]
    ctl: Controller = controller or RateController(
        RateParams(**trace["params"]), LADDER_1080P30, 0.0
    )
    ctl.update(0.0)
    feedback = list(trace["feedback"])
    ticks = []
    j = 0
    for t, sent, delivered, cap, qd, _target, _step, _stalled in trace["ticks"]:
        while j < len(feedback) and feedback[j][0] <= t:
            ctl_feed(ctl, feedback[j])
            j += 1
        ctl.on_bytes_sent(sent, t)
        d = ctl.update(t)
        ticks.append(Tick(t, sent, delivered, cap, qd, d.target_bps, d.step.name, d.stalled))
    return Run(s, ticks, feedback)


def load(name: str) -> dict[str, Any]:
    return json.loads((TRACES / f"{name}.json").read_text())


def write_all() -> None:
    TRACES.mkdir(parents=True, exist_ok=True)
    for name, scenario in SCENARIOS.items():
        run = simulate(scenario)
        (TRACES / f"{name}.json").write_text(
            json.dumps(run.to_json(), separators=(",", ":")) + "\n"
        )


if __name__ == "__main__":
    write_all()
