"""The sound in a real headless Chromium: muted until the co-parent taps "Tap for sound", then a
WebAudio analyser on the received stream finds the synthetic heartbeat's band; while paused no
audio packet arrives (the browser's own inbound-rtp counter stays flat). The page tells the box
when the sound is on: the box then lets the browser hold the picture back to meet the sound."""

from __future__ import annotations

import time
from typing import Any

import pytest

from appliance.sound import synthetic
from tests.support.browser import join, wait_js
from tests.support.wait import until

pytestmark = pytest.mark.browser

AUDIO_PACKETS = """async () => {
  let n = 0;
  (await window.viewer.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") n += s.packetsReceived;
  });
  return n;
}"""

# The loudest band of what the page plays, over about 1.5 s (WebAudio on the video's stream).
DOMINANT_HZ = """async () => {
  const ctx = new AudioContext();
  await ctx.resume();
  const source = ctx.createMediaStreamSource(document.getElementById("video").srcObject);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  source.connect(analyser);
  const sum = new Float32Array(analyser.frequencyBinCount);
  const bins = new Float32Array(analyser.frequencyBinCount);
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatFrequencyData(bins);
    bins.forEach((db, k) => { sum[k] += Math.pow(10, db / 10); });
  }
  let best = 1;
  for (let k = 1; k < sum.length; k++) if (sum[k] > sum[best]) best = k;
  const hz = best * ctx.sampleRate / analyser.fftSize;
  await ctx.close();
  return { hz, energy: sum[best] };
}"""


def test_tap_for_sound_plays_the_heartbeat_and_pause_sends_no_sound(box_factory, chromium) -> None:
    box: Any = box_factory(audio={"source": "synthetic"})
    page = chromium.new_page(viewport={"width": 390, "height": 844})
    join(page, box.viewer_url)
    time.sleep(1.0)
    assert page.evaluate(AUDIO_PACKETS) == 0, "no sound before admission"

    box.press()  # admit
    wait_js(page, "window.viewer.state === 'live' && document.body.dataset.sound === 'muted'")
    assert page.evaluate("document.getElementById('video').muted"), "muted before a tap"
    assert page.locator("#sound").inner_text() == "Tap for sound"
    page.click("#sound")  # the tap: unmuted inside its handler
    wait_js(page, "document.body.dataset.sound === 'on'")
    assert not page.evaluate("document.getElementById('video').muted")
    assert page.locator("#sound").inner_text() == "Mute"
    feedback = box.call(lambda: box.box.viewers.peers[0].feedback)
    until(lambda: feedback.sound_on, 5.0, what="the page told the box the sound is on")
    until(lambda: feedback.playout_delay == bytes([0, 0, feedback.SOUND_SYNC_MS // 10]), 5.0)
    heard = page.evaluate(DOMINANT_HZ)
    assert synthetic.BAND[0] - 60 <= heard["hz"] <= synthetic.BAND[1] + 60, heard
    assert heard["energy"] > 0

    box.press()  # pause
    wait_js(page, "window.viewer.state === 'paused'")
    time.sleep(0.5)
    before = page.evaluate(AUDIO_PACKETS)
    assert before > 50
    time.sleep(2.0)
    assert page.evaluate(AUDIO_PACKETS) == before, "no sound packet while paused"

    box.press()  # resume: the sound comes back with the picture
    wait_js(page, "window.viewer.state === 'live'")
    time.sleep(1.0)
    assert page.evaluate(AUDIO_PACKETS) > before + 20

    page.click("#sound")  # the mute toggle
    wait_js(page, "document.body.dataset.sound === 'muted'")
    assert page.locator("#sound").inner_text() == "Sound on"
    until(lambda: not feedback.sound_on, 5.0, what="the page told the box the sound is off")


SOUND_WORD = "document.getElementById('sound-quality')"


@pytest.mark.parametrize(
    ("locale", "stalled"), [("en-GB", "Sound interrupted"), ("fr-FR", "Son interrompu")]
)
def test_the_quality_meter_covers_the_sound(
    box_factory, chromium, locale: str, stalled: str
) -> None:
    """Sound packets stop while the picture goes on: the meter drops to one bar and says the
    sound is interrupted, in the page's language; the sound comes back and so does the meter."""
    box: Any = box_factory(audio={"source": "synthetic"})
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale=locale)
    page = context.new_page()
    join(page, box.viewer_url)
    box.press()  # admit
    wait_js(page, "window.viewer.quality && window.viewer.quality.sound")
    assert page.evaluate(f"{SOUND_WORD}.hidden"), "nothing to say while the sound flows"
    fanout = box.call(lambda: box.box.media.sound_fanout)
    box.call(lambda: fanout.set_open(False))  # the sound stops reaching the viewer
    quality = wait_js(page, "window.viewer.quality.sound.stalled && window.viewer.quality", 10)
    assert quality["bars"] == 1 and quality["fps"] > 5, "the picture goes on; the sound does not"
    wait_js(page, f"!{SOUND_WORD}.hidden")
    assert page.locator("#sound-quality").inner_text() == stalled
    assert stalled in page.locator("#quality").get_attribute("aria-label")
    box.call(lambda: fanout.set_open(True))
    wait_js(page, f"!window.viewer.quality.sound.stalled && {SOUND_WORD}.hidden", 10)
    context.close()
