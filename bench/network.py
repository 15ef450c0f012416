"""`make bench-network`: the stream over a bad network in headless Chromium, the box on its own.

For each picture size and each scenario the box (`bench.netbox`: the demo with its media on
127.0.0.2) is started afresh, the impairment is set on box -> phone and measured with the rig's
probe, Chromium joins and is admitted, and for the scenario's length the benchmark records every
presented frame (requestVideoFrameCallback: presentation time and the time strip), the box's rate
decisions and the capacity. Scenarios:

* ``rfc8867``: RFC 8867 section 5.1, capacity 1.0 -> 2.5 -> 0.6 -> 1.0 x 1 Mbit/s at
  0/40/60/80 s of 100 s, 50 ms one way, 300 ms drop-tail queue;
* ``cap1``: 1 Mbit/s, 300 ms queue;
* ``loss2``: 2 % random loss, 80 ms RTT (80 ms one way on box -> phone; the other way is clean);
* ``blackout``: 10 s of nothing from the box, 15 s in.

Measured: frames shown per second, freezes (gaps between presented frames over 500 ms: count,
longest), latency p50/p95, bitrate sent against capacity over time and the utilisation in
steady state, and for the blackout the time from the network's return to the next frame. Prints
a table, writes JSON and a PNG under bench/results/. Root, inside a loopback-only namespace
(bench/network.sh makes one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.run import Box

ROOT = Path(__file__).resolve().parent.parent
PROBE = (ROOT / "tests" / "support" / "probe.js").read_text()
CONVERGED_S = 5.0  # the targets apply after this long
FREEZE_S = 0.5


@dataclass
class Scenario:
    name: str
    seconds: float
    capacity: list[tuple[float, float]] = field(default_factory=list)  # (t, Mbit/s); [] = none
    delay_ms: float = 0.0
    loss: float = 0.0
    blackout: tuple[float, float] | None = None  # (from, to) seconds
    queue_ms: float = 300.0


SCENARIOS = {
    "rfc8867": Scenario("rfc8867", 100, [(0, 1.0), (40, 2.5), (60, 0.6), (80, 1.0)], delay_ms=50),
    "cap1": Scenario("cap1", 40, [(0, 1.0)]),
    "loss2": Scenario("loss2", 40, delay_ms=80, loss=2.0),
    "blackout": Scenario("blackout", 40, blackout=(15.0, 25.0)),
}


#: Chromium's own counters for the video it received (getStats inbound-rtp).
INBOUND_STATS = """(async () => {
  const out = {};
  for (const s of (await window.viewer.pc.getStats()).values()) {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      for (const k of ["framesDecoded", "framesDropped", "framesReceived", "nackCount",
                       "pliCount", "firCount", "packetsLost", "packetsReceived", "freezeCount",
                       "jitterBufferDelay", "jitterBufferEmittedCount", "keyFramesDecoded"])
        out[k] = s[k];
    }
  }
  return out;
})()"""


class NetBox(Box):
    """The box as its own process (bench.netbox: its media on 127.0.0.2, its rate decisions
    logged), driven through its terminal like bench.run's."""

    def __init__(
        self,
        width: int,
        height: int,
        workdir: Path,
        fps: int = 30,
        extra: str = "",
        memory: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """``memory``: bench.netbox's memory probe options (``--memory`` and its file, ...);
        ``env``: added to the box's environment."""
        self.decisions = workdir / "decisions.jsonl"
        launcher: tuple[str, ...] = ("-m", "bench.netbox", "--media", "127.0.0.2")
        launcher += ("--decisions", str(self.decisions), *memory, "--")
        super().__init__(
            width,
            height,
            workdir,
            extra,
            fps=fps,
            launcher=launcher,
            stderr=open(workdir / "box.log", "w"),  # noqa: SIM115 - closed with the process
            env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        )

    def read_decisions(self, since: float) -> list[dict[str, Any]]:
        if not self.decisions.exists():
            return []
        rows = [json.loads(x) for x in self.decisions.read_text().splitlines() if x.strip()]
        return [r for r in rows if r["t"] >= since]


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


def join_live(chromium: Any, box: NetBox, link: str) -> tuple[Any, Any]:
    from tests.support.browser import join, wait_js

    context = chromium.new_context()
    page = context.new_page()
    page.add_init_script(PROBE)
    join(page, link, name="Bench")
    box.key("")  # admit
    wait_js(page, "window.probe.frames.find(f => f.stamp !== null)", 30)
    return context, page


def impair(net: Any, s: Scenario, start: float) -> list[threading.Timer]:
    """Start the scenario's impairment at ``start`` (monotonic); returns the timers to cancel."""
    timers: list[threading.Timer] = []
    if s.capacity and len(s.capacity) > 1:
        net.profile(s.capacity, duration_s=s.seconds + 5, queue_ms=s.queue_ms)
    if s.blackout is not None:
        for at, what in ((s.blackout[0], net.blackout), (s.blackout[1], net.restore)):
            timer = threading.Timer(max(0.0, start + at - time.monotonic()), what)
            timer.daemon = True
            timer.start()
            timers.append(timer)
    return timers


def set_static(net: Any, s: Scenario) -> None:
    if s.capacity:
        net.cap(s.capacity[0][1], s.queue_ms)
    if s.loss:
        net.loss(s.loss)
    if s.delay_ms:
        net.delay(s.delay_ms)


def measure(
    frames: list[dict[str, Any]], decisions: list[dict[str, Any]], s: Scenario, t0: float
) -> dict[str, Any]:
    """The scenario's figures from the presented frames and the box's decisions (t0: epoch s)."""
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
        "freezes_over_1s_converged": sum(1 for g, _ in after if g > 1.0),
        "longest_freeze_s": max((g for g, _ in gaps), default=float("nan")),
        "longest_freeze_converged_s": max((g for g, _ in after), default=float("nan")),
        "latency_p50_ms": percentile(lat, 50),
        "latency_p95_ms": percentile(lat, 95),
        "frames": len(shown),
        "freezes": [(round(a, 2), round(g, 2)) for g, a in gaps if g > FREEZE_S],
    }
    series = [
        {
            "t": round(d["t"] - t0, 2),
            "sent": d["sent"],
            "target": d["target"],
            "step": d["step"],
            "stalled": d["stalled"],
            "rtt": d["rtt"],
            "remb": d["remb"],
            "loss_limit": d["loss_limit"],
            "delay_limit": d["delay_limit"],
        }
        for d in decisions
        if 0 <= d["t"] - t0 <= s.seconds
    ]
    out["series"] = series
    util = []
    for d in series:
        cap = capacity_at(s, d["t"])
        # steady state: converged, and 5 s after any capacity step
        since_step = min((d["t"] - at for at, _ in s.capacity if d["t"] >= at), default=0.0)
        if cap and d["t"] >= CONVERGED_S and since_step >= CONVERGED_S:
            util.append(d["sent"] / (cap * 1e6))
    out["utilisation"] = statistics.median(util) if util else float("nan")
    out["steps"] = sorted({d["step"] for d in series})
    out["stalled_s"] = sum(0.2 for d in series if d["stalled"])
    if s.blackout is not None:
        back = s.blackout[1]
        after_back = [t for t in shown if t >= back]
        out["recovery_s"] = (after_back[0] - back) if after_back else float("nan")
        stalled_at = [d["t"] for d in series if d["stalled"] and d["t"] >= s.blackout[0]]
        out["noticed_s"] = (stalled_at[0] - s.blackout[0]) if stalled_at else float("nan")
    return out


def one(chromium: Any, width: int, height: int, s: Scenario, extra: str = "") -> dict[str, Any]:
    from bench.netem import Impairment, run_probe

    with tempfile.TemporaryDirectory() as tmp, Impairment(max_seconds=s.seconds + 120) as net:
        set_static(net, s)
        probe = run_probe(4.0, 1.5).summary() if (s.capacity or s.loss or s.delay_ms) else None
        box = NetBox(width, height, Path(tmp), extra=extra)
        context = None
        try:
            link = box.line("viewer: ")
            context, page = join_live(chromium, box, link)
            page.evaluate("window.probe.frames.length = 0")
            t0, start = time.time(), time.monotonic()
            timers = impair(net, s, start)
            time.sleep(s.seconds)
            for timer in timers:
                timer.cancel()
            frames = page.evaluate("window.probe.frames")
            result = measure(frames, box.read_decisions(t0), s, t0)
            result["chromium"] = page.evaluate(INBOUND_STATS)
            result["probe"] = probe
            result["box_rss_mb"] = box.ps.memory_info().rss / 2**20
            return result
        finally:
            if context is not None:
                context.close()
            box.stop()
            keep = os.environ.get("BENCH_KEEP_LOGS")
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                log = Path(tmp) / "box.log"
                (Path(keep) / f"box-{s.name}-{width}x{height}.log").write_bytes(log.read_bytes())


TARGETS = {
    "cap1": "fps_converged >= 15, no freeze over 1 s after 5 s",
    "rfc8867": "no freeze over 1 s at the capacity drop; utilisation >= 70 %",
    "loss2": "fps >= 25, latency p95 <= 250 ms",
    "blackout": "frames within 2 s of the network's return",
}


def verdict(name: str, r: dict[str, Any]) -> str:
    ok = {
        "cap1": r["fps_converged"] >= 15 and r["freezes_over_1s_converged"] == 0,
        "rfc8867": r["freezes_over_1s_converged"] == 0 and r["utilisation"] >= 0.7,
        "loss2": r["fps"] >= 25 and r["latency_p95_ms"] <= 250,
        "blackout": r.get("recovery_s", 99) <= 2.0,
    }[name]
    return "PASS" if ok else "MISS"


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = [
        "| scenario | size | fps | freezes >0.5 s | longest (s) | >1 s after 5 s | "
        "latency p50/p95 (ms) | utilisation | steps | recovery (s) | verdict |",
        "|---" * 11 + "|",
    ]
    for name, sizes in results.items():
        for size, r in sizes.items():
            rec = r.get("recovery_s")
            lines.append(
                f"| {name} | {size} | {r['fps']:.1f} | {r['freezes_over_500ms']} | "
                f"{r['longest_freeze_s']:.2f} | {r['freezes_over_1s_converged']} | "
                f"{r['latency_p50_ms']:.0f} / {r['latency_p95_ms']:.0f} | "
                f"{r['utilisation'] * 100:.0f} % | {','.join(r['steps'])} | "
                f"{'' if rec is None else f'{rec:.2f}'} | {r['verdict']} |"
            )
    return "\n".join(lines)


def plot(results: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.8 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        s = SCENARIOS[name]
        for size, r in results[name].items():
            t = [d["t"] for d in r["series"]]
            ax.plot(t, [d["sent"] / 1e6 for d in r["series"]], label=f"{size} sent")
            ax.plot(t, [d["target"] / 1e6 for d in r["series"]], ls=":", label=f"{size} target")
        if s.capacity:
            xs, ys = [], []
            for i, (at, mbit) in enumerate(s.capacity):
                end = s.capacity[i + 1][0] if i + 1 < len(s.capacity) else s.seconds
                xs += [at, end]
                ys += [mbit, mbit]
            ax.plot(xs, ys, color="black", lw=2, label="capacity")
        if s.blackout:
            ax.axvspan(*s.blackout, color="grey", alpha=0.3, label="blackout")
        ax.set_title(name)
        ax.set_ylabel("Mbit/s")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.network", description=__doc__)
    parser.add_argument("--sizes", default="1920x1080,1280x720")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--config-extra", default="", help="TOML appended to the box's config")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]

    from playwright.sync_api import sync_playwright

    from appliance.stream.compat import confine_host_addresses
    from tests.support import browser

    confine_host_addresses(("127.0.0.1",))
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with sync_playwright() as pw:
        chromium = browser.launch(pw)
        try:
            for name in args.scenarios.split(","):
                for width, height in sizes:
                    size = f"{width}x{height}"
                    print(f"{name} at {size} ...", flush=True)
                    r = one(chromium, width, height, SCENARIOS[name], args.config_extra)
                    r["verdict"] = verdict(name, r)
                    results.setdefault(name, {})[size] = r
        finally:
            chromium.close()
    text = table(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {
        "when": stamp,
        "scenarios": {k: asdict(SCENARIOS[k]) for k in results},
        "targets": TARGETS,
        "results": results,
    }
    (args.out / f"network-{stamp}.json").write_text(json.dumps(payload, indent=1))
    (args.out / "network-latest.md").write_text(text + "\n")
    plot(results, args.out / "network.png")
    print(f"wrote {args.out / f'network-{stamp}.json'} and {args.out / 'network.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
