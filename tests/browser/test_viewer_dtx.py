"""DTX in a real headless Chromium: a clip of tone, silence, tone. While it is silent the box
sends a 1-byte DTX frame every 400 ms instead of a packet every 20 ms (the browser's own
inbound-rtp counter), Chromium takes them as DTX, not as losses to conceal, and the tone is
heard again as soon as it comes back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.browser import join, wait_js
from tests.support.media import write_clip

pytestmark = pytest.mark.browser

RATE = 48_000
TONE_S, SILENCE_S = 3.0, 5.0

STATS = """async () => {
  let out = null;
  (await window.viewer.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") out = {
      packets: s.packetsReceived, concealed: s.concealedSamples,
      silent: s.silentConcealedSamples, samples: s.totalSamplesReceived,
      level: s.audioLevel };
  });
  return out;
}"""


def _clip(path: Path) -> Path:
    """A WAV: a 1 kHz tone, then digital silence (the scanner's Doppler stopped)."""
    t = np.arange(int(TONE_S * RATE)) / RATE
    tone = (np.sin(2 * np.pi * 1000 * t) * 10_000).astype(np.int16)
    mono = np.concatenate([tone, np.zeros(int(SILENCE_S * RATE), np.int16)])
    return write_clip(path, np.stack([mono, mono], axis=1), rate=RATE)


def test_silence_sends_dtx_frames_and_the_tone_comes_back_at_once(
    box_factory, chromium, tmp_path: Path
) -> None:
    box: Any = box_factory(audio={"source": "file", "file": str(_clip(tmp_path / "c.wav"))})
    page = chromium.new_page(viewport={"width": 390, "height": 844})
    join(page, box.viewer_url)
    box.press()  # admit: the clip starts
    wait_js(page, "window.viewer.state === 'live'")
    page.click("#sound")
    seen: list[tuple[float, dict[str, float]]] = []
    start = time.monotonic()
    # the clip started at admission, before this clock: its silence is found in what is heard
    # (its start, the first quiet sample after the tone), and the windows placed on it
    while time.monotonic() - start < TONE_S + SILENCE_S + 3.0:  # the tone, silence, the tone
        stats = page.evaluate(STATS)
        if stats:
            seen.append((time.monotonic() - start, stats))
        time.sleep(0.25)

    def window(lo: float, hi: float) -> tuple[float, dict[str, float]]:
        """(seconds, growth of each counter) between the samples nearest ``lo`` and ``hi``."""
        inside = [(t, s) for t, s in seen if lo <= t <= hi]
        (t0, a), (t1, b) = inside[0], inside[-1]
        return t1 - t0, {k: b[k] - a[k] for k in ("packets", "concealed")}

    loud_at = min(t for t, s in seen if s["level"] > 0.1)
    silent_at = min(t for t, s in seen if t > loud_at and s["level"] < 0.01)
    seconds, loud = window(max(loud_at, silent_at - TONE_S + 0.5), silent_at - 0.5)
    assert seconds >= 1.0 and loud["packets"] / seconds > 40, seen  # one every 20 ms: the tone
    # the level lags the packets (the jitter buffer, the sampling): the window ends a second
    # before the tone's packets come back
    seconds, quiet = window(silent_at + 1.0, silent_at + SILENCE_S - 1.0)
    assert quiet["packets"] / seconds < 4.5, seen  # one every 400 ms (2.5/s) while silent
    assert quiet["concealed"] < 0.1 * RATE, seen  # DTX, not losses concealed
    heard = min(t for t, s in seen if t > silent_at and s["level"] > 0.1)
    # the tone is heard again at once: when the clip brings it back, within a sample or two
    assert heard - (silent_at + SILENCE_S) < 0.75, seen
