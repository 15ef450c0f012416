"""The scenarios of `make bench-network`, their targets, and the figures taken from a run.

Figures come from three records of a run: the frames the phone's page presented (the probe:
when each was shown, its time strip), the sender's series (the box's rate decisions, or the
reference sender's own samples: what it sent and its estimate) and the bottleneck's samples
(:class:`QueueSampler`: the rig's counters every 0.2 s). The last is the same for every sender:
what crossed the bottleneck (the utilisation and, with a competing download, each flow's share)
and how full its queue was (the one-way delay above the base delay: the queue's bytes at the
capacity's rate).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CONVERGED_S = 5.0  # the targets apply after this long, and this long after a capacity step
FREEZE_S = 0.5
SAMPLE_S = 0.2


@dataclass
class Scenario:
    name: str
    seconds: float
    capacity: list[tuple[float, float]] = field(default_factory=list)  # (t, Mbit/s); [] = none
    delay_ms: float = 0.0
    loss: float = 0.0
    blackout: tuple[float, float] | None = None  # (from, to) seconds
    queue_ms: float = 300.0
    tcp: bool = False  # a bulk TCP download through the same bottleneck, the whole run
    strip_remb: bool = False  # goog-remb taken out of the browser's SDP
    turn_tcp: bool = False  # the box's only path: TURN over TCP, the TCP upload capped
    reference: bool = True  # the libwebrtc line can run it


SCENARIOS = {
    "rfc8867": Scenario("rfc8867", 100, [(0, 1.0), (40, 2.5), (60, 0.6), (80, 1.0)], delay_ms=50),
    "cap1": Scenario("cap1", 40, [(0, 1.0)]),
    "noremb": Scenario("noremb", 40, [(0, 1.0)], strip_remb=True),
    "tcp": Scenario("tcp", 40, [(0, 2.0)], tcp=True),
    "turn-tcp": Scenario("turn-tcp", 40, [(0, 1.5)], turn_tcp=True, reference=False),
    "loss2": Scenario("loss2", 40, delay_ms=80, loss=2.0),
    "blackout": Scenario("blackout", 40, blackout=(15.0, 25.0)),
}

TARGETS = {
    "rfc8867": "no freeze over 0.5 s after 5 s (the drop); utilisation >= 80 %",
    "cap1": "utilisation >= 85 %; one-way delay p95 <= base + 100 ms; >= 15 fps, "
    "no freeze over 1 s after 5 s",
    "noremb": "as cap1",
    "tcp": "box 30-70 % of the capacity, >= 15 fps",
    "turn-tcp": ">= 15 fps, no freeze over 1 s after 5 s",
    "loss2": "fps >= 25, latency p95 <= 250 ms",
    "blackout": "frames within 2 s of the network's return",
}


def verdict(name: str, r: dict[str, Any]) -> str:
    """PASS or MISS against the scenario's target (TARGETS)."""
    util = r.get("delivered_utilisation", float("nan"))
    share = r.get("share", float("nan"))

    def smooth() -> bool:
        return bool(r["fps_converged"] >= 15 and r["freezes_over_1s_converged"] == 0)

    def cap1() -> bool:
        return util >= 0.85 and r.get("owd_excess_p95_ms", 1e9) <= 100 and smooth()

    checks: dict[str, Callable[[], bool]] = {
        "rfc8867": lambda: r["freezes_over_500ms_converged"] == 0 and util >= 0.8,
        "cap1": cap1,
        "noremb": cap1,
        "tcp": lambda: 0.3 <= share <= 0.7 and r["fps_converged"] >= 15,
        "turn-tcp": smooth,
        "loss2": lambda: r["fps"] >= 25 and r["latency_p95_ms"] <= 250,
        "blackout": lambda: r.get("recovery_s", 99) <= 2.0,
    }
    return "PASS" if checks[name]() else "MISS"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def capacity_at(s: Scenario, t: float) -> float | None:
    """The capacity (Mbit/s) at ``t`` seconds into the scenario, or None when uncapped."""
    now = None
    for at, mbit in s.capacity:
        if t >= at:
            now = mbit
    return now


def steady(s: Scenario, t: float) -> bool:
    """Converged: ``t`` at least CONVERGED_S after the start and after any capacity step."""
    since_step = min((t - at for at, _ in s.capacity if t >= at), default=t)
    return t >= CONVERGED_S and since_step >= CONVERGED_S


class QueueSampler(threading.Thread):
    """The bottleneck every SAMPLE_S: its queue's backlog (bytes) and what crossed it (the
    rig's delivered counters), from ``t0`` (epoch seconds)."""

    def __init__(self, net: Any, t0: float, tcp_queue: bool = False) -> None:
        super().__init__(name="queue-sampler", daemon=True)
        self.net, self.t0, self.tcp_queue = net, t0, tcp_queue
        self.rows: list[dict[str, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(SAMPLE_S):
            try:
                queue = self.net.queue_stats(tcp=self.tcp_queue)
                delivered = self.net.delivered()
            except Exception:  # noqa: BLE001 - the rig is being cleared: the run is over
                return
            self.rows.append(
                {
                    "t": round(time.time() - self.t0, 3),
                    "backlog": queue.get("backlog_bytes", 0),
                    "udp": delivered["udp"],
                    "tcp": delivered["tcp"],
                }
            )

    def stop(self) -> list[dict[str, float]]:
        self.halt.set()
        self.join(5)
        return self.rows


def bottleneck_figures(rows: list[dict[str, float]], s: Scenario, media: str) -> dict[str, Any]:
    """Utilisation of the capacity by ``media`` ("udp" or "tcp": where the sender's media is)
    and, with a competitor, each one's share; the one-way delay in steady state."""
    cap_bits = used = other = 0.0
    excess: list[float] = []
    for a, b in zip(rows, rows[1:], strict=False):
        cap = capacity_at(s, b["t"])
        if not cap or not steady(s, a["t"]) or b["t"] > s.seconds:
            continue
        cap_bits += cap * 1e6 * (b["t"] - a["t"])
        used += (b[media] - a[media]) * 8
        if s.tcp:
            other += (b["tcp"] - a["tcp"]) * 8
        excess.append(b["backlog"] * 8 / (cap * 1e6) * 1000)
    if not cap_bits:
        return {}
    out: dict[str, Any] = {
        "delivered_utilisation": (used + other) / cap_bits,
        "owd_excess_p50_ms": percentile(excess, 50),
        "owd_excess_p95_ms": percentile(excess, 95),
        "owd_p95_ms": s.delay_ms + percentile(excess, 95),
        "base_delay_ms": s.delay_ms,
    }
    if s.tcp:
        out["share"] = used / cap_bits
        out["tcp_share"] = other / cap_bits
    return out


def frame_figures(frames: list[dict[str, Any]], s: Scenario, t0: float) -> dict[str, Any]:
    """Frames shown per second, freezes, latency from the presented frames (t0: epoch s)."""
    shown = sorted(f["shown"] / 1000 - t0 for f in frames)
    shown = [t for t in shown if 0 <= t <= s.seconds]
    gaps = [(b - a, a) for a, b in zip(shown, shown[1:], strict=False)]
    after = [(g, a) for g, a in gaps if a >= CONVERGED_S]
    lat = [  # modulo 2**48 in the probe: a few ms "before" capture is a clock offset
        f["latency"] - 2**48 if f["latency"] > 2**47 else f["latency"]
        for f in frames
        if f["latency"] is not None
    ]
    out: dict[str, Any] = {
        "fps": len(shown) / s.seconds,
        "fps_converged": len([t for t in shown if t >= CONVERGED_S])
        / max(1e-9, s.seconds - CONVERGED_S),
        "freezes_over_500ms": sum(1 for g, _ in gaps if g > FREEZE_S),
        "freezes_over_500ms_converged": sum(1 for g, _ in after if g > FREEZE_S),
        "freezes_over_1s_converged": sum(1 for g, _ in after if g > 1.0),
        "longest_freeze_s": max((g for g, _ in gaps), default=float("nan")),
        "longest_freeze_converged_s": max((g for g, _ in after), default=float("nan")),
        "latency_p50_ms": percentile(lat, 50),
        "latency_p95_ms": percentile(lat, 95),
        "frames": len(shown),
        "freezes": [(round(a, 2), round(g, 2)) for g, a in gaps if g > FREEZE_S],
    }
    if s.blackout is not None:
        back = s.blackout[1]
        after_back = [t for t in shown if t >= back]
        out["recovery_s"] = (after_back[0] - back) if after_back else float("nan")
    return out


def series_figures(series: list[dict[str, Any]], s: Scenario) -> dict[str, Any]:
    """From the sender's series: the utilisation by what it sent (median over steady state)."""
    util = [
        d["sent"] / (cap * 1e6)
        for d in series
        if (cap := capacity_at(s, d["t"])) and steady(s, d["t"])
    ]
    out: dict[str, Any] = {
        "utilisation": statistics.median(util) if util else float("nan"),
        "steps": sorted({str(d["step"]) for d in series}),
        "stalled_s": sum(SAMPLE_S for d in series if d.get("stalled")),
    }
    if s.blackout is not None:
        stalled_at = [d["t"] for d in series if d.get("stalled") and d["t"] >= s.blackout[0]]
        out["noticed_s"] = (stalled_at[0] - s.blackout[0]) if stalled_at else float("nan")
    return out
