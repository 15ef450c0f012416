"""`make bench-network`: the stream over a bad network in headless Chromium, the box on its own,
beside libwebrtc's own congestion control on the same bottleneck.

For each picture size and each scenario the box (`bench.netbox`: the demo with its media on
127.0.0.2) is started afresh, the impairment is set on box -> phone and measured with the rig's
probe, Chromium joins and is admitted, and for the scenario's length the benchmark records every
presented frame (requestVideoFrameCallback: presentation time and the time strip), the box's rate
decisions and the bottleneck (what crossed it, how full its queue was). Then the libwebrtc
reference line (`bench.netref`: Chromium sending a canvas of the same size to Chromium, its UDP
port impaired the same way) runs the same scenario. Scenarios (`bench.netscenarios`):

* ``rfc8867``: RFC 8867 section 5.1, capacity 1.0 -> 2.5 -> 0.6 -> 1.0 x 1 Mbit/s at
  0/40/60/80 s of 100 s, 50 ms one way, 300 ms drop-tail queue;
* ``cap1``: 1 Mbit/s, 300 ms queue;
* ``noremb``: cap1 with ``goog-remb`` taken out of the browser's SDP;
* ``tcp``: 2 Mbit/s, 300 ms queue, shared with a bulk TCP download (box's side -> phone's side)
  for the whole run;
* ``turn-tcp``: the box's only path is TURN over TCP (coturn on loopback; the box's UDP is
  dropped), its upload capped at 1.5 Mbit/s with a 300 ms queue (no reference line);
* ``loss2``: 2 % random loss, 80 ms RTT (80 ms one way on box -> phone; the other way is clean);
* ``blackout``: 10 s of nothing from the box, 15 s in.

Measured: frames shown per second, freezes (gaps between presented frames over 500 ms: count,
longest), latency p50/p95, bitrate sent against capacity over time, the utilisation in steady
state (by what the sender sent, and by what crossed the bottleneck), the one-way delay's p95
above the base delay (the bottleneck queue's bytes at its rate), with the download each one's
share, and for the blackout the time from the network's return to the next frame. Prints a
table, writes JSON and a PNG under bench/results/. Root, inside a loopback-only namespace
(bench/network.sh makes one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import soundstats
from bench.netem.tcpprobe import TcpProbe, TcpProbeResult
from bench.netref import Reference
from bench.netreport import plot, table
from bench.netscenarios import (
    SCENARIOS,
    TARGETS,
    QueueSampler,
    Scenario,
    bottleneck_figures,
    frame_figures,
    series_figures,
    verdict,
)
from bench.run import Box

ROOT = Path(__file__).resolve().parent.parent
PROBE = (ROOT / "tests" / "support" / "probe.js").read_text()
MAX_BPS = 4_000_000  # the box's encode.bitrate: the most either sender may use
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
        ice_servers: list[dict[str, Any]] | None = None,
    ) -> None:
        """``memory``: bench.netbox's memory probe options (``--memory`` and its file, ...);
        ``env``: added to the box's environment; ``ice_servers``: its peers' TURN servers."""
        self.decisions = workdir / "decisions.jsonl"
        launcher: tuple[str, ...] = ("-m", "bench.netbox", "--media", "127.0.0.2")
        launcher += ("--ice-servers", json.dumps(ice_servers or []))
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


#: The viewer page's offer without goog-remb, as a browser without REMB would make it.
STRIP_REMB_JS = """(() => {
  const createOffer = RTCPeerConnection.prototype.createOffer;
  RTCPeerConnection.prototype.createOffer = async function (...args) {
    const offer = await createOffer.apply(this, args);
    return { type: offer.type, sdp: offer.sdp.replace(/a=rtcp-fb:\\d+ goog-remb\\r\\n/g, "") };
  };
})();"""


def join_live(
    chromium: Any, box: NetBox, link: str, strip_remb: bool = False, candidates: bool = False
) -> tuple[Any, Any]:
    """The viewer page joined and admitted, showing frames. ``candidates``: the page's origin
    granted the camera (never opened), so Chromium offers its host candidate: a box behind TURN
    can then permit the phone's address, as it would the server-reflexive one a phone's
    browser finds with STUN (no STUN here)."""
    from tests.support.browser import join, wait_js

    context = chromium.new_context(permissions=["camera"] if candidates else [])
    page = context.new_page()
    page.add_init_script(PROBE)
    if strip_remb:
        page.add_init_script(STRIP_REMB_JS)
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
    if s.turn_tcp:
        return  # its cap is on the TCP upload (turn_path)
    if s.capacity:
        net.cap(s.capacity[0][1], s.queue_ms)
    if s.loss:
        net.loss(s.loss)
    if s.delay_ms:
        net.delay(s.delay_ms)


def turn_path(net: Any, s: Scenario, workdir: Path, stack: contextlib.ExitStack) -> list[Any]:
    """``turn-tcp``: coturn on loopback, the box's UDP dropped, its TCP upload capped; the
    box's ice_servers (TURN over TCP, coturn's REST credentials)."""
    from appliance.relay.config import RelayConfig, TurnConfig
    from appliance.relay.turn import mint_turn
    from tests.support import turn

    port = stack.enter_context(turn.coturn(workdir / "turn"))
    url = f"turn:127.0.0.1:{port}?transport=tcp"
    servers = mint_turn(RelayConfig(turn=TurnConfig(secret=turn.SECRET, urls=(url,))), "r", 600)
    net.blackout()  # no UDP from the box's address: only TURN over TCP gets through
    net.cap_tcp(s.capacity[0][1], queue_ms=s.queue_ms, dport=port)
    return list(servers)


def run_window(
    net: Any, s: Scenario, t0: float, competitor: TcpProbe | None
) -> tuple[list[dict[str, float]], TcpProbeResult | None]:
    """The scenario's length from ``t0`` (epoch s): its impairment over time, the bottleneck
    sampled, the competing download (if any) running throughout."""
    sampler = QueueSampler(net, t0, tcp_queue=s.turn_tcp)
    sampler.start()
    timers = impair(net, s, time.monotonic())
    done: list[TcpProbeResult] = []
    flow = None
    if competitor is not None:
        flow = threading.Thread(
            target=lambda: done.append(competitor.run(s.seconds, drain_s=1.0, send_timeout=10)),
            daemon=True,
        )
        flow.start()
    time.sleep(s.seconds)
    for timer in timers:
        timer.cancel()
    if flow is not None:
        flow.join(15)
    return sampler.stop(), (done[0] if done else None)


def box_series(decisions: list[dict[str, Any]], s: Scenario, t0: float) -> list[dict[str, Any]]:
    keys = (
        *("sent", "target", "step", "stalled", "rtt", "remb", "loss_limit", "delay_limit"),
        *("nacked", "rtx", "rtx_refused", "idr", "asked"),
    )
    return [
        {"t": round(d["t"] - t0, 2), **{k: d.get(k) for k in keys}, "mode": d.get("mode", "")}
        for d in decisions
        if 0 <= d["t"] - t0 <= s.seconds
    ]


def figures(
    frames: list[dict[str, Any]],
    series: list[dict[str, Any]],
    rows: list[dict[str, float]],
    s: Scenario,
    t0: float,
    tcp: TcpProbeResult | None,
) -> dict[str, Any]:
    result = frame_figures(frames, s, t0)
    result.update(series_figures(series, s))
    result.update(bottleneck_figures(rows, s, "tcp" if s.turn_tcp else "udp"))
    result["series"] = series
    result["bottleneck"] = rows[:: max(1, len(rows) // 500)]
    if tcp is not None:
        result["tcp_flow"] = tcp.summary()
        result["tcp_flow"]["last_arrival_s"] = max((a for a, _ in tcp.arrivals), default=0.0)
    return result


def one(chromium: Any, width: int, height: int, s: Scenario, extra: str = "") -> dict[str, Any]:
    from bench.netem import Impairment, run_probe

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        net = stack.enter_context(Impairment(max_seconds=s.seconds + 120))
        set_static(net, s)
        probe = None
        if s.capacity or s.loss or s.delay_ms:
            probe = None if s.turn_tcp else run_probe(4.0, 1.5).summary()
        servers = turn_path(net, s, Path(tmp), stack) if s.turn_tcp else []
        competitor = TcpProbe() if s.tcp else None
        if competitor is not None:
            net.share_tcp(competitor.port)
        box = NetBox(width, height, Path(tmp), extra=extra, ice_servers=servers)
        stack.callback(stop_box, box, Path(tmp), f"{s.name}-{width}x{height}")
        context, page = join_live(
            chromium, box, box.line("viewer: "), s.strip_remb, candidates=s.turn_tcp
        )
        stack.callback(context.close)
        page.evaluate("window.probe.frames.length = 0")
        soundstats.start(page)  # the page's sound on, its audio counters sampled
        t0 = time.time()
        rows, tcp = run_window(net, s, t0, competitor)
        frames = page.evaluate("window.probe.frames")
        result = figures(frames, box_series(box.read_decisions(t0), s, t0), rows, s, t0, tcp)
        result["sound"] = soundstats.figures(page)
        result["sender"] = "box"
        result["modes"] = sorted({d["mode"] for d in result["series"] if d["mode"]})
        result["remb_seen"] = any(d["remb"] for d in result["series"])
        result["offer_has_remb"] = "goog-remb" in page.evaluate(
            "window.viewer.pc.localDescription.sdp"
        )
        result["chromium"] = page.evaluate(INBOUND_STATS)
        result["probe"] = probe
        result["box_rss_mb"] = box.ps.memory_info().rss / 2**20
        return result


def stop_box(box: NetBox, workdir: Path, name: str) -> None:
    box.stop()
    keep = os.environ.get("BENCH_KEEP_LOGS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"box-{name}.log").write_bytes((workdir / "box.log").read_bytes())


def one_reference(chromium: Any, width: int, height: int, s: Scenario) -> dict[str, Any]:
    """The libwebrtc line: the same scenario with Chromium sending in the box's place."""
    from bench.netem import Impairment

    ref = Reference(chromium, width, height, PROBE)
    try:
        port = ref.offer_port(MAX_BPS, s.strip_remb)
        with Impairment(src="127.0.0.1", sport=port, max_seconds=s.seconds + 120) as net:
            set_static(net, s)
            competitor = TcpProbe() if s.tcp else None
            if competitor is not None:
                net.share_tcp(competitor.port)
            ref.connect(s.strip_remb)
            ref.start_sampling()
            t0 = time.time()
            rows, tcp = run_window(net, s, t0, competitor)
            frames = ref.receiver.evaluate("window.probe.frames")
            result = figures(frames, ref.series(t0, s.seconds), rows, s, t0, tcp)
            result["sender"] = "libwebrtc"
            result["codecs"] = sorted({d["codec"] for d in result["series"] if d["codec"]})
            result["chromium"] = ref.receiver.evaluate(INBOUND_STATS)
            return result
    finally:
        ref.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.network", description=__doc__)
    parser.add_argument("--sizes", default="1920x1080,1280x720")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--config-extra", default="", help="TOML appended to the box's config")
    parser.add_argument("--no-reference", action="store_true", help="the box's lines only")
    parser.add_argument("--reference-only", action="store_true", help="libwebrtc's lines only")
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
                s = SCENARIOS[name]
                for width, height in sizes:
                    size = f"{width}x{height}"
                    runs = {}
                    if not args.reference_only:
                        print(f"{name} at {size} ...", flush=True)
                        runs[size] = one(chromium, width, height, s, args.config_extra)
                    if s.reference and not args.no_reference:
                        print(f"{name} at {size}, libwebrtc ...", flush=True)
                        runs[f"{size} libwebrtc"] = one_reference(chromium, width, height, s)
                    for key, r in runs.items():
                        r["verdict"] = verdict(name, r)
                        results.setdefault(name, {})[key] = r
        finally:
            chromium.close()
    write(results, args.out)
    return 0


def write(results: dict[str, dict[str, dict[str, Any]]], out: Path) -> None:
    text = table(results)
    print(text + "\n\n" + soundstats.table(results))
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {
        "when": stamp,
        "scenarios": {k: asdict(SCENARIOS[k]) for k in results},
        "targets": TARGETS,
        "results": results,
    }
    (out / f"network-{stamp}.json").write_text(json.dumps(payload, indent=1))
    (out / "network-latest.md").write_text(text + "\n")
    plot(results, out / "network.png")
    print(f"wrote {out / f'network-{stamp}.json'} and {out / 'network.png'}")


if __name__ == "__main__":
    sys.exit(main())
