"""`make bench-sound`: the sound's capture-to-ear latency, the audio/video offset, and what the
sound costs the box, in headless Chromium on loopback.

The box runs as its own process (`appliance run --demo`, through bench.netbox), its synthetic
sound clicking on every whole second of the wall clock and its picture showing the click marker
on the frame captured just after (capture/timestrip.py). Chromium joins as the co-parent, is
admitted (Enter), taps "Tap for sound" (the page's own logic), and for ``--seconds``:

- the received sound goes through an AudioWorklet that reports each click's onset (the first
  sample above :data:`ONSET_LEVEL`, far above the heartbeat); its context time is mapped to the
  wall clock with ``AudioContext.getOutputTimestamp()`` (when that sample reaches the output):
  **capture-to-ear latency** = that instant minus the whole second the click was made at;
- the probe (tests/support/probe.js) notes every presented frame, its time strip and its marker:
  the **audio/video offset** of a click = its ear latency minus the glass-to-glass latency of its
  marker frame (positive: the sound comes late); the raw gap between the onset heard and the
  marker frame shown is reported beside it;
- the box's CPU (% of one core, whole process) and peak RSS.

The same run without sound (``audio.source = off``) gives the baseline: the sound's added CPU and
RSS. Prints a table, writes JSON and a PNG plot under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.run import PROBE, ROOT, Box, machine, percentile
from tests.support.browser import join, wait_js

TARGETS = {"ear_p50_ms": 120.0, "av_offset_abs_p95_ms": 40.0}
#: A click's onset: a decoded sample above this (the click peaks near 0.85 after Opus, the
#: heartbeat below 0.36).
ONSET_LEVEL = 0.55
WORKLET = """
class Onset extends AudioWorkletProcessor {
  constructor() { super(); this.last = -1e12; }
  process(inputs) {
    const input = inputs[0];
    if (input && input.length) {
      for (let i = 0; i < input[0].length; i++) {
        let v = 0;
        for (const ch of input) v = Math.max(v, Math.abs(ch[i]));
        const frame = currentFrame + i;
        if (v > LEVEL && frame - this.last > sampleRate / 2) {
          this.last = frame;
          this.port.postMessage({ frame, level: v });
        }
      }
    }
    return true;
  }
}
registerProcessor("onset", Onset);
"""

# The worklet on the video's stream (the page's own), its onsets on the wall clock.
LISTEN = """async (code) => {
  const ctx = new AudioContext({ latencyHint: "interactive" });
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  await ctx.audioWorklet.addModule(url);
  const source = ctx.createMediaStreamSource(document.getElementById("video").srcObject);
  const node = new AudioWorkletNode(ctx, "onset");
  const silent = ctx.createGain();
  silent.gain.value = 0;
  source.connect(node); node.connect(silent); silent.connect(ctx.destination);
  window.benchOnsets = [];
  node.port.onmessage = (e) => {
    const out = ctx.getOutputTimestamp();
    const heard = performance.timeOrigin + out.performanceTime
      + (e.data.frame / ctx.sampleRate - out.contextTime) * 1000;
    window.benchOnsets.push({ heard, level: e.data.level });
  };
  await ctx.resume();
  window.benchAudio = ctx;
  return { rate: ctx.sampleRate, base: ctx.baseLatency, output: ctx.outputLatency || 0 };
}"""


# The sound's receive side, cumulative: the jitter buffer's delay and the concealed samples.
AUDIO_STATS = """async () => {
  let out = null;
  (await window.viewer.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") out = {
      delay: s.jitterBufferDelay, emitted: s.jitterBufferEmittedCount,
      concealed: s.concealedSamples, samples: s.totalSamplesReceived };
  });
  return out;
}"""


# Chromium's own estimate of what it plays now, per track: the capture instant (on the box's
# clock, through the sender reports' mapping) of the sample or frame being played out.
PLAYOUT = """async () => {
  const out = { now: performance.timeOrigin + performance.now() };
  (await window.viewer.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.estimatedPlayoutTimestamp)
      out[s.kind] = s.estimatedPlayoutTimestamp - 2208988800000;  // NTP ms -> Unix ms
  });
  return out;
}"""


@dataclass
class Click:
    second: int  # the whole second (ms since the epoch) the click was made at
    ear_ms: float  # capture -> onset at the output
    video_ms: float | None = None  # its marker frame's glass-to-glass latency
    offset_ms: float | None = None  # ear - video: positive when the sound is late
    raw_ms: float | None = None  # onset heard - marker frame shown


@dataclass
class Load:
    cpu_pct: float = 0.0  # of one core, the box's whole process
    rss_mb: float = 0.0  # peak


@dataclass
class Result:
    size: str
    seconds: float
    settle: float = 3.0  # seconds live before the window
    clicks: list[Click] = field(default_factory=list)
    markers_seen: int = 0
    onsets: int = 0
    with_sound: Load = field(default_factory=Load)
    without_sound: Load = field(default_factory=Load)
    audio_context: dict[str, float] = field(default_factory=dict)
    jitter_buffer_ms: float = 0.0  # the sound's mean jitter-buffer delay over the window
    concealed_pct: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-min load average, before and after
    #: (audio, video) playout latency by Chromium's estimatedPlayoutTimestamp, once a second
    playout: list[tuple[float, float]] = field(default_factory=list)


def pair(onsets: list[dict[str, Any]], frames: list[dict[str, Any]]) -> list[Click]:
    """Each heard click with its second, and with its marker frame when one was shown."""
    markers: dict[int, dict[str, Any]] = {}
    for f in frames:
        if f.get("marker") and f.get("stamp") is not None:
            markers.setdefault(int(f["stamp"]) // 1000 * 1000, f)
    clicks = []
    for onset in onsets:
        heard = float(onset["heard"])
        second = int(heard // 1000 * 1000)
        click = Click(second, heard - second)
        frame = markers.get(second)
        if frame is not None:
            click.video_ms = float(frame["shown"]) - float(frame["stamp"])
            click.offset_ms = click.ear_ms - click.video_ms
            click.raw_ms = heard - float(frame["shown"])
        clicks.append(click)
    return clicks


def watch(box: Box, seconds: float, each: Any = None) -> Load:
    """The box's CPU over ``seconds`` and its peak RSS, sampled each second (and ``each()``)."""
    box.ps.cpu_percent(None)
    start = time.monotonic()
    rss = []
    while time.monotonic() - start < seconds:
        time.sleep(1.0)
        rss.append(box.ps.memory_info().rss)
        if each is not None:
            each()
    return Load(box.ps.cpu_percent(None), max(rss) / 2**20)


def live_page(chromium: Any, box: Box) -> tuple[Any, Any]:
    """Chromium joined, admitted and showing frames. The page's CSP would refuse the worklet's
    module (a blob: URL; Playwright cannot route a worklet's fetch): this context ignores it,
    the benchmark's instrument only (the CSP itself is tested with the page as shipped)."""
    context = chromium.new_context(bypass_csp=True)
    page = context.new_page()
    page.add_init_script(PROBE)
    join(page, box.line("viewer: "), name="Bench")
    box.key("")  # admit
    wait_js(page, "window.probe.frames.find(f => f.stamp !== null)", 30)
    return context, page


def with_sound(chromium: Any, box: Box, seconds: float, result: Result) -> None:
    context, page = live_page(chromium, box)
    try:
        wait_js(page, "document.body.dataset.sound === 'muted'")
        page.click("#sound")  # the tap: the page unmutes inside its handler
        wait_js(page, "document.body.dataset.sound === 'on'")
        worklet = f"const LEVEL = {ONSET_LEVEL};\n{WORKLET}"
        result.audio_context = page.evaluate(LISTEN, worklet)
        time.sleep(result.settle)  # the jitter buffers and the A/V sync find their delays
        page.evaluate("window.benchOnsets.length = 0; window.probe.frames.length = 0")
        before, load = page.evaluate(AUDIO_STATS), os.getloadavg()[0]
        result.with_sound = watch(box, seconds, lambda: playout(page, result))
        after = page.evaluate(AUDIO_STATS)
        result.load = (load, os.getloadavg()[0])
        if before and after and after["emitted"] > before["emitted"]:
            result.jitter_buffer_ms = (
                1000 * (after["delay"] - before["delay"]) / (after["emitted"] - before["emitted"])
            )
            samples = max(1, after["samples"] - before["samples"])
            result.concealed_pct = 100 * (after["concealed"] - before["concealed"]) / samples
        onsets = page.evaluate("window.benchOnsets")
        frames = page.evaluate("window.probe.frames")
        result.onsets = len(onsets)
        result.markers_seen = sum(1 for f in frames if f.get("marker"))
        result.clicks = pair(onsets, frames)
    finally:
        context.close()


def playout(page: Any, result: Result) -> None:
    seen = page.evaluate(PLAYOUT)
    if "audio" in seen and "video" in seen:
        result.playout.append((seen["now"] - seen["audio"], seen["now"] - seen["video"]))


def without_sound(chromium: Any, box: Box, seconds: float, result: Result) -> None:
    context, page = live_page(chromium, box)
    try:
        time.sleep(result.settle)
        result.without_sound = watch(box, seconds)
    finally:
        context.close()


def run_box(chromium: Any, size: tuple[int, int], sound: bool, part: Any, *args: Any) -> None:
    launcher: tuple[str, ...] = ("-m", "bench.netbox", "--media", "127.0.0.1")
    launcher += () if sound else ("--no-sound",)
    with tempfile.TemporaryDirectory() as tmp:
        box = Box(*size, Path(tmp), launcher=(*launcher, "--"))
        try:
            part(chromium, box, *args)
        finally:
            box.stop()


def summarise(result: Result) -> dict[str, float]:
    ear = [c.ear_ms for c in result.clicks]
    offsets = [c.offset_ms for c in result.clicks if c.offset_ms is not None]
    raw = [c.raw_ms for c in result.clicks if c.raw_ms is not None]
    video = [c.video_ms for c in result.clicks if c.video_ms is not None]
    return {
        "clicks_expected": result.seconds,
        "clicks_heard": len(ear),
        "markers_seen": result.markers_seen,
        "ear_p50_ms": percentile(ear, 50),
        "ear_p95_ms": percentile(ear, 95),
        "video_p50_ms": percentile(video, 50),
        "av_offset_p50_ms": percentile(offsets, 50),
        "av_offset_abs_p95_ms": percentile([abs(v) for v in offsets], 95),
        "raw_gap_p50_ms": percentile(raw, 50),
        "playout_audio_p50_ms": percentile([a for a, _ in result.playout], 50),
        "playout_video_p50_ms": percentile([v for _, v in result.playout], 50),
        "playout_offset_p50_ms": percentile([a - v for a, v in result.playout], 50),
        "playout_offset_abs_p95_ms": percentile([abs(a - v) for a, v in result.playout], 95),
        "jitter_buffer_ms": result.jitter_buffer_ms,
        "concealed_pct": result.concealed_pct,
        "load_before": result.load[0],
        "load_after": result.load[1],
        "box_cpu_sound_pct": result.with_sound.cpu_pct,
        "box_cpu_silent_pct": result.without_sound.cpu_pct,
        "added_cpu_pct": result.with_sound.cpu_pct - result.without_sound.cpu_pct,
        "box_rss_sound_mb": result.with_sound.rss_mb,
        "box_rss_silent_mb": result.without_sound.rss_mb,
        "added_rss_mb": result.with_sound.rss_mb - result.without_sound.rss_mb,
    }


def table(summary: dict[str, float], verdict: dict[str, str]) -> str:
    rows = [
        ("clicks heard / seconds measured", "clicks_heard"),
        ("marker frames shown", "markers_seen"),
        ("capture-to-ear latency p50 (ms)", "ear_p50_ms"),
        ("capture-to-ear latency p95 (ms)", "ear_p95_ms"),
        ("marker frames' glass-to-glass p50 (ms)", "video_p50_ms"),
        ("A/V offset p50 (ms, + = sound late)", "av_offset_p50_ms"),
        ("|A/V offset| p95 (ms)", "av_offset_abs_p95_ms"),
        ("onset heard - marker shown p50 (ms)", "raw_gap_p50_ms"),
        ("Chromium's playout estimate: sound p50 (ms)", "playout_audio_p50_ms"),
        ("Chromium's playout estimate: picture p50 (ms)", "playout_video_p50_ms"),
        ("Chromium's playout estimate: offset p50 (ms)", "playout_offset_p50_ms"),
        ("Chromium's playout estimate: |offset| p95 (ms)", "playout_offset_abs_p95_ms"),
        ("sound's jitter buffer, mean (ms)", "jitter_buffer_ms"),
        ("concealed samples (%)", "concealed_pct"),
        ("machine load (1 min), at start", "load_before"),
        ("box CPU with sound (% core)", "box_cpu_sound_pct"),
        ("box CPU without sound (% core)", "box_cpu_silent_pct"),
        ("sound's added CPU (% core)", "added_cpu_pct"),
        ("box RSS with sound (MiB)", "box_rss_sound_mb"),
        ("box RSS without sound (MiB)", "box_rss_silent_mb"),
        ("sound's added RSS (MiB)", "added_rss_mb"),
    ]
    lines = ["| measure | value | target |", "|---|---|---|"]
    for label, key in rows:
        target = TARGETS.get(key)
        mark = f"<= {target:g}: {verdict[key]}" if target is not None else ""
        value = summary[key]
        text = f"{value:.0f} / {summary['clicks_expected']:.0f}" if key == "clicks_heard" else ""
        lines.append(f"| {label} | {text or f'{value:.1f}'} | {mark} |")
    return "\n".join(lines)


def plot(result: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label, values in (
        ("capture-to-ear (sound)", [c.ear_ms for c in result.clicks]),
        ("glass-to-glass (marker frames)", [c.video_ms for c in result.clicks if c.video_ms]),
    ):
        values = sorted(values)
        if values:
            left.plot(values, [i / len(values) for i in range(len(values))], label=label)
    left.axvline(TARGETS["ear_p50_ms"], color="grey", ls=":", label="ear p50 target")
    left.set_xlabel("latency in Chromium (ms)")
    left.set_ylabel("fraction of clicks")
    left.legend()
    left.grid(alpha=0.3)
    offsets = [c.offset_ms for c in result.clicks if c.offset_ms is not None]
    right.hist(offsets, bins=20, color="tab:green")
    for x in (-TARGETS["av_offset_abs_p95_ms"], TARGETS["av_offset_abs_p95_ms"]):
        right.axvline(x, color="grey", ls="--")
    right.set_xlabel("A/V offset per click (ms, + = sound late)")
    right.set_ylabel("clicks")
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.sound", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before the window")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))

    from playwright.sync_api import sync_playwright

    from appliance.stream.compat import confine_host_addresses
    from tests.support import browser

    confine_host_addresses(("127.0.0.1",))
    result = Result(args.size, args.seconds, args.settle)
    with sync_playwright() as pw:
        chromium = browser.launch(pw)
        try:
            print(f"{args.size} with sound, {args.seconds:g} s ...", flush=True)
            run_box(chromium, (width, height), True, with_sound, args.seconds, result)
            print(f"{args.size} without sound, {args.seconds:g} s ...", flush=True)
            run_box(chromium, (width, height), False, without_sound, args.seconds, result)
        finally:
            chromium.close()
    summary = summarise(result)
    verdict = {k: ("PASS" if summary[k] <= t else "MISS") for k, t in TARGETS.items()}
    text = table(summary, verdict)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = {
        "when": stamp,
        "machine": machine(),
        "size": args.size,
        "seconds": args.seconds,
        "settle": args.settle,
        "targets": TARGETS,
        "summary": summary,
        "verdicts": verdict,
        "audio_context": result.audio_context,
        "clicks": [asdict(c) for c in result.clicks],
        "playout": result.playout,
    }
    (args.out / f"sound-{stamp}.json").write_text(json.dumps(out, indent=2))
    (args.out / "sound-latest.json").write_text(json.dumps(out, indent=2))
    plot(result, args.out / "sound.png")
    print(f"wrote {args.out / f'sound-{stamp}.json'} and {args.out / 'sound.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
