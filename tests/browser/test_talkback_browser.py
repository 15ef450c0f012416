"""Talk-back in a real headless Chromium, its microphone Chromium's fake device playing a known
tone from a WAV this test writes (``--use-file-for-fake-audio-capture``); the box's speaker is
ALSA's ``file`` plugin over ``null``, writing into this test's temporary directory (a test-only
sink: a box's config names its speakerphone).

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
from tests.support import browser
from tests.support.browser import join, wait_js
from tests.support.wait import until

pytestmark = pytest.mark.browser

RATE = 48_000
VOICE_HZ = 660
ROOM_SENDER = "window.viewer.pc.getTransceivers()[2].sender"


@pytest.fixture
def speaker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    played = tmp_path / "played.raw"
    conf = tmp_path / "asoundrc"
    conf.write_text(
        f'pcm.roomspk {{\n  type file\n  slave.pcm {{ type null }}\n  file "{played}"\n'
        '  format "raw"\n}\n'
    )
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    return played


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
    time.sleep(0.5)
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
