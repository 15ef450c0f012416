"""`make bench-talkback`: talk-back's latency, the phone's voice to the box's speaker, in headless
Chromium on loopback (issue 16's target: played at the box within 250 ms).

The box runs as its own process (`appliance run --demo` with ``[room] speaker`` set, through
bench.talkbox), its speaker an ALSA PCM of this benchmark's: ALSA's ``file`` plugin over ``null``
writing into /dev/null, so the real playback path runs (PyAV's ``alsa`` output, libasound) and
no sample is kept anywhere. Chromium's microphone is its fake device playing a WAV this benchmark
writes: a short 1 kHz burst every second, silence between.

Chromium joins as the co-parent and is admitted (Enter); the staff log in to their page (the
demo's password) and allow talk-back with its switch; the co-parent holds "Hold to talk" (the
page's own button: the first hold asks for the microphone) for ``--seconds``. Meanwhile:

- at the phone, an AudioWorklet on the page's microphone track (the very track its sender sends)
  reports each burst's onset, mapped to the wall clock (the message's arrival, less how far the
  audio clock has gone past the onset's sample);
- at the box, bench.talkbox notes when each burst's onset is handed to the speaker's PCM.

Latency = box instant - phone instant, per burst. Prints a table, writes JSON and a PNG plot
under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from bench.run import ROOT, Box, machine, percentile
from bench.sound import WORKLET
from tests.support.browser import join, wait_js

TARGET_P50_MS = 250.0
RATE = 48_000
PERIOD_S = 1.0  # one burst a second
BURST_S = 0.03
#: An onset: a sample above this level (the burst is made at 0.5 of full scale, silence between).
LEVEL = 0.1

# The worklet on the microphone's own track (the one the page's sender sends), its onsets on the
# wall clock: when the message came, less how far the audio clock has gone past the sample.
LISTEN = """async (code) => {
  const sender = window.viewer.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
  const ctx = new AudioContext({ latencyHint: "interactive" });
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  await ctx.audioWorklet.addModule(url);
  const source = ctx.createMediaStreamSource(new MediaStream([sender.track]));
  const node = new AudioWorkletNode(ctx, "onset");
  const silent = ctx.createGain();
  silent.gain.value = 0;
  source.connect(node); node.connect(silent); silent.connect(ctx.destination);
  window.benchOnsets = [];
  node.port.onmessage = (e) => {
    const now = performance.timeOrigin + performance.now();
    const behind = Math.max(0, ctx.currentTime - e.data.frame / ctx.sampleRate);
    window.benchOnsets.push({ t: now - behind * 1000, level: e.data.level });
  };
  await ctx.resume();
  window.benchAudio = ctx;
  return { rate: ctx.sampleRate, base: ctx.baseLatency };
}"""


def clicks_wav(path: Path) -> None:
    """Chromium's fake microphone: a 30 ms 1 kHz burst at the start of every second, looped."""
    n = int(RATE * PERIOD_S)
    t = np.arange(int(RATE * BURST_S)) / RATE
    samples = np.zeros(n * 4, dtype=np.float64)
    for k in range(4):
        samples[k * n : k * n + len(t)] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((samples * 32767).astype("<i2").tobytes())


def asoundrc(path: Path) -> None:
    """The speaker ``benchspk``: the ``file`` plugin over ``null``, writing into /dev/null."""
    path.write_text(
        'pcm.benchspk {\n  type file\n  slave.pcm { type null }\n  file "/dev/null"\n'
        '  format "raw"\n}\n'
    )


def banner(box: Box, timeout: float = 30) -> dict[str, str]:
    """The demo's pairing page, its password and the viewer's link, in whatever order."""
    assert box.proc.stdout is not None
    wanted = {"pairing: ": "", "pairing password (this run only): ": "", "viewer: ": ""}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(wanted.values()):
        text = box.proc.stdout.readline()
        if not text:
            break
        for prefix in wanted:
            if text.startswith(prefix):
                wanted[prefix] = text[len(prefix) :].strip()
    if not all(wanted.values()):
        raise RuntimeError(f"the demo did not print {[k for k, v in wanted.items() if not v]}")
    return {
        "pairing": wanted["pairing: "],
        "password": wanted["pairing password (this run only): "],
        "viewer": wanted["viewer: "],
    }


def allow_talkback(chromium: Any, pairing: str, password: str) -> Any:
    """The staff's page, logged in, the session live: talk-back allowed with its switch."""
    context = chromium.new_context()
    page = context.new_page()
    page.goto(pairing)
    page.fill("#password", password)
    page.click("button[type=submit]")
    wait_js(page, "document.body.dataset.state === 'live'", 30)
    wait_js(page, "!document.getElementById('switch-talkback').hidden")
    page.click("#switch-talkback")
    return context


def hold_and_listen(chromium: Any, box: Box, seconds: float) -> dict[str, Any]:
    links = banner(box)
    # bypass_csp: the worklet's blob: module, the benchmark's instrument (bench.sound)
    viewer = chromium.new_context(bypass_csp=True, viewport={"width": 390, "height": 844})
    page = viewer.new_page()
    join(page, links["viewer"], name="Bench")
    box.key("")  # admit
    wait_js(page, "window.viewer.state === 'live'", 30)
    staff = allow_talkback(chromium, links["pairing"], links["password"])
    try:
        wait_js(page, "document.body.dataset.talk === 'allowed'")
        page.hover("#talk")
        page.mouse.down()  # held: the first hold asks for the microphone
        wait_js(page, "document.body.dataset.talk === 'talking'")
        context = page.evaluate(LISTEN, f"const LEVEL = {LEVEL};\n{WORKLET}")
        time.sleep(seconds)
        onsets = page.evaluate("window.benchOnsets")
        page.mouse.up()
        return {"onsets": onsets, "audio_context": context}
    finally:
        staff.close()
        viewer.close()


def pair(phone: list[float], box: list[float]) -> list[float]:
    """Each burst's latency (ms): from its onset at the phone to the first onset at the box
    within the next period."""
    latencies = []
    for p in phone:
        later = [b for b in box if p < b < p + PERIOD_S * 0.95]
        if later:
            latencies.append((min(later) - p) * 1000)
    return latencies


def run(chromium: Any, seconds: float, size: tuple[int, int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        asoundrc(work / "asoundrc")
        instants = work / "instants.jsonl"
        instants.touch()
        env = {**os.environ, "ALSA_CONFIG_PATH": str(work / "asoundrc")}
        launcher: tuple[str, ...] = ("-m", "bench.talkbox", "--instants", str(instants), "--")
        launcher += ("--media", "127.0.0.1", "--")
        box = Box(*size, work, '[room]\\nspeaker = "benchspk"', launcher=launcher, env=env)
        try:
            seen = hold_and_listen(chromium, box, seconds)
        finally:
            box.stop()
        at_box = [json.loads(line)["t"] for line in instants.read_text().splitlines()]
    phone = [float(o["t"]) / 1000 for o in seen["onsets"]]  # ms on the page, s at the box
    # the last burst may still be on its way when the button is let go
    phone = [p for p in phone if p < max(phone, default=0) - 0.5] if phone else []
    seen.update(phone=phone, box=at_box, latencies=pair(phone, at_box))
    return seen


def summarise(seen: dict[str, Any], seconds: float) -> dict[str, float]:
    latencies = seen["latencies"]
    return {
        "seconds": seconds,
        "bursts_at_phone": len(seen["phone"]),
        "bursts_at_box": len(seen["box"]),
        "bursts_paired": len(latencies),
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "latency_max_ms": max(latencies, default=float("nan")),
    }


def table(summary: dict[str, float], verdict: str) -> str:
    rows = [
        ("bursts heard at the phone / at the box / paired", ""),
        ("phone -> box speaker latency p50 (ms)", "latency_p50_ms"),
        ("phone -> box speaker latency p95 (ms)", "latency_p95_ms"),
        ("phone -> box speaker latency max (ms)", "latency_max_ms"),
    ]
    lines = ["| measure | value | target |", "|---|---|---|"]
    for label, key in rows:
        if not key:
            counts = (summary[k] for k in ("bursts_at_phone", "bursts_at_box", "bursts_paired"))
            lines.append(f"| {label} | {' / '.join(f'{c:.0f}' for c in counts)} | |")
            continue
        mark = f"<= {TARGET_P50_MS:g}: {verdict}" if key == "latency_p50_ms" else ""
        lines.append(f"| {label} | {summary[key]:.1f} | {mark} |")
    return "\n".join(lines)


def plot(latencies: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    ordered = sorted(latencies)
    if ordered:
        left.plot(ordered, [i / len(ordered) for i in range(len(ordered))])
    left.axvline(TARGET_P50_MS, color="grey", ls=":", label="target (250 ms)")
    left.set_xlabel("phone's microphone -> box's speaker (ms)")
    left.set_ylabel("fraction of bursts")
    left.legend()
    left.grid(alpha=0.3)
    right.plot(range(len(latencies)), latencies, marker=".")
    right.axhline(TARGET_P50_MS, color="grey", ls=":")
    right.set_xlabel("burst (one a second, button held)")
    right.set_ylabel("latency (ms)")
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.talkback", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))

    from playwright.sync_api import sync_playwright

    from appliance.stream.compat import confine_host_addresses
    from tests.support import browser

    confine_host_addresses(("127.0.0.1",))
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bursts.wav"
        clicks_wav(wav)
        fake = [
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}",
        ]
        with sync_playwright() as pw:
            chromium = browser.launch(pw, args=fake)
            try:
                print(f"talk-back held {args.seconds:g} s ...", flush=True)
                seen = run(chromium, args.seconds, (width, height))
            finally:
                chromium.close()
    summary = summarise(seen, args.seconds)
    verdict = "PASS" if summary["latency_p50_ms"] <= TARGET_P50_MS else "MISS"
    print(table(summary, verdict))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = {
        "when": stamp,
        "machine": machine(),
        "seconds": args.seconds,
        "target_p50_ms": TARGET_P50_MS,
        "summary": summary,
        "verdict": verdict,
        "audio_context": seen["audio_context"],
        "latencies_ms": seen["latencies"],
        "phone_instants": seen["phone"],
        "box_instants": seen["box"],
    }
    (args.out / f"talkback-{stamp}.json").write_text(json.dumps(out, indent=2))
    (args.out / "talkback-latest.json").write_text(json.dumps(out, indent=2))
    plot(seen["latencies"], args.out / "talkback.png")
    print(f"wrote {args.out / f'talkback-{stamp}.json'} and {args.out / 'talkback.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
