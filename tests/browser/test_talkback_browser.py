"""Talk-back in a real headless Chromium, its microphone Chromium's fake device playing a known
tone from a WAV this test writes (``--use-file-for-fake-audio-capture``); the box's speaker is
ALSA's ``file`` plugin over ``null``, writing into this test's temporary directory (a test-only
sink: a box's config names its speakerphone).

The room microphone, switched on, plays in the page's own element for the room's sound, after
the same tap as the picture's sound; nothing arrives on its line before.

The page asks for nothing before talk-back is allowed and the button held (its room line's sender
has no track); the button appears only when allowed, says "The room hears you" while held, and
the tone reaches the speaker only then; a second hold reuses the same track (never asked again);
withdrawn, the button goes and nothing more is played."""

from __future__ import annotations

import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.core import SetSound
from appliance.hearing import SoundSwitch
from tests.integration.test_room_sound import ROOM_HZ as ROOM_CLIP_HZ
from tests.integration.test_room_sound import room_clip  # noqa: F401 - a fixture
from tests.support import browser
from tests.support.browser import join, wait_js
from tests.support.media import room_speaker
from tests.support.wait import until

pytestmark = pytest.mark.browser

RATE = 48_000
VOICE_HZ = 660
ROOM_SENDER = "window.viewer.pc.getTransceivers()[2].sender"


@pytest.fixture
def speaker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return room_speaker(tmp_path, monkeypatch)


@pytest.fixture
def fake_microphone(tmp_path: Path) -> Any:
    """Chromium with a fake microphone that plays a 660 Hz tone (pulsed, like speech, so the
    browser's noise suppression keeps it), granted without a prompt."""
    from playwright.sync_api import sync_playwright

    wav = tmp_path / "voice.wav"
    t = np.arange(RATE * 4) / RATE
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    tone = (np.sin(2 * np.pi * VOICE_HZ * t) * envelope * 12_000).astype("<i2")
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(tone.tobytes())
    args = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    with sync_playwright() as pw:
        b = browser.launch(pw, args=args)
        try:
            yield b
        finally:
            b.close()


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    return float(np.argmax(spectrum[1:]) + 1) * RATE / len(samples)


def _allow(box: Any, on: bool) -> None:
    box.run(box.core.command(SetSound(switch=SoundSwitch.TALKBACK, on=on)))


def test_the_fake_microphone_reaches_the_speaker_only_while_allowed_and_held(
    box_factory, fake_microphone, speaker: Path
) -> None:
    box: Any = box_factory(audio={"source": "synthetic"}, room={"speaker": "roomspk"})
    talkback = box.box.media.talkback
    page = fake_microphone.new_page(viewport={"width": 390, "height": 844})
    join(page, box.viewer_url)
    box.press()  # admit
    wait_js(page, "window.viewer.state === 'live'")
    time.sleep(1.0)
    assert page.locator("#talk").is_hidden(), "no talk button until the staff allow it"
    assert page.evaluate(f"{ROOM_SENDER}.track === null"), "the microphone was not asked for"
    assert talkback.received == 0 and talkback.played == 0

    _allow(box, True)
    wait_js(page, "document.body.dataset.talk === 'allowed'")
    assert page.locator("#talk").inner_text() == "Hold to talk"
    assert page.evaluate(f"{ROOM_SENDER}.track === null"), "allowed, but not asked before a hold"

    page.hover("#talk")
    page.mouse.down()  # held: the first hold asks for the microphone
    wait_js(page, "document.body.dataset.talk === 'talking'")
    assert page.locator("#talk").inner_text() == "The room hears you"
    first = page.evaluate(f"{ROOM_SENDER}.track.id")
    until(lambda: talkback.played > 75, 10, what="the voice played in the room")
    page.mouse.up()  # let go
    wait_js(page, "document.body.dataset.talk === 'allowed'")
    until(lambda: not talkback.playing, 5, what="the box took the release")
    time.sleep(0.3)  # the block the speaker thread may be writing
    released = talkback.played
    time.sleep(1.0)
    assert talkback.played == released, "nothing played once the button is let go"
    assert talkback.received > released, "the track still flows (silence), and is dropped"
    pcm = np.frombuffer(speaker.read_bytes(), dtype="<i2").reshape(-1, 2)[:, 0]
    assert len(pcm) >= RATE // 2, "the phone's voice reached the speaker"
    assert abs(_dominant_hz(pcm[RATE // 5 :]) - VOICE_HZ) < 10

    page.mouse.down()  # a second hold: the same track, never asked again
    wait_js(page, "document.body.dataset.talk === 'talking'")
    assert page.evaluate(f"{ROOM_SENDER}.track.id") == first
    until(lambda: talkback.played > released + 10, 10, what="the second hold played")
    page.mouse.up()

    _allow(box, False)  # withdrawn: the button goes, nothing more is played
    wait_js(page, "document.body.dataset.talk === 'off'")
    assert page.locator("#talk").is_hidden()
    time.sleep(0.5)
    withdrawn = talkback.played
    page.evaluate("document.getElementById('talk').hidden = false")
    page.dispatch_event("#talk", "pointerdown")  # even a button forced back on screen does nothing
    time.sleep(1.0)
    assert page.evaluate("document.body.dataset.talk") == "off"
    assert page.evaluate(f"{ROOM_SENDER}.track.enabled") is False
    page.dispatch_event("#talk", "pointerup")
    assert talkback.played == withdrawn


ROOM_PACKETS = """async () => {
  let n = 0;
  const line = window.viewer.pc.getTransceivers()[2];
  (await line.receiver.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") n += s.packetsReceived;
  });
  return n;
}"""

ROOM_HZ = """async () => {
  const ctx = new AudioContext();
  await ctx.resume();
  const source = ctx.createMediaStreamSource(document.getElementById("room-audio").srcObject);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  source.connect(analyser);
  const sum = new Float32Array(analyser.frequencyBinCount);
  const bins = new Float32Array(analyser.frequencyBinCount);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatFrequencyData(bins);
    bins.forEach((db, k) => { sum[k] += Math.pow(10, db / 10); });
  }
  let best = 1;
  for (let k = 1; k < sum.length; k++) if (sum[k] > sum[best]) best = k;
  await ctx.close();
  return best * ctx.sampleRate / analyser.fftSize;
}"""


def test_the_room_microphone_plays_in_its_own_element_only_once_switched_on(
    box_factory,
    chromium,
    room_clip,  # noqa: F811 - the fixture
) -> None:
    box: Any = box_factory(
        audio={"source": "synthetic"}, room={"microphone": "roommic"}, microphone=room_clip
    )
    page = chromium.new_page(viewport={"width": 390, "height": 844})
    join(page, box.viewer_url)
    box.press()  # admit
    wait_js(page, "window.viewer.state === 'live' && document.body.dataset.sound === 'muted'")
    page.click("#sound")  # the tap unmutes the picture's sound and the room's together
    wait_js(page, "document.body.dataset.sound === 'on'")
    assert not page.evaluate("document.getElementById('room-audio').muted")
    time.sleep(1.0)
    assert page.evaluate(ROOM_PACKETS) == 0, "the room microphone is off by default"
    box.run(box.core.command(SetSound(switch=SoundSwitch.MICROPHONE, on=True)))
    wait_js(page, "document.body.dataset.room === 'on'")
    until(lambda: page.evaluate(ROOM_PACKETS) > 25, 10, what="the room's packets")
    assert abs(page.evaluate(ROOM_HZ) - ROOM_CLIP_HZ) < 30
    assert page.locator("#talk").is_hidden(), "talk-back is another switch"
    answer = page.evaluate("window.viewer.pc.remoteDescription.sdp")
    room_line = answer.split("m=audio")[2]
    assert "a=sendonly" in room_line, "a microphone and no speaker: the room line sends only"
    assert "transport-wide-cc" in room_line, "the room's sound counts in the rate estimate"
