"""The ``hdmi`` sound source against the fake bridge's audio controls, through ALSA's real
userspace code path with no sound card: the asoundrc this test writes defines ``plughw`` itself
(with the ``CARD``/``DEV`` arguments the source passes) as a ``file`` PCM with an ``infile``
over ``null``, so the source opens exactly the PCM name it opens on the box. What the scanner
"sends" is the infile: a tone recorded at the rate the fake controls report."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.capture.fake_v4l2 import FakeTC358743
from appliance.config import load_dict
from appliance.sound import hdmi
from appliance.sound.base import FRAME_SAMPLES, RATE, SoundSignal
from appliance.sound.hdmi import HdmiSound
from appliance.sound.registry import make_sound_source


class Scanner:
    """The scanner's end: the fake bridge's controls and the sound the I2S card will deliver."""

    def __init__(self, tmp_path: Path) -> None:
        self.raw = tmp_path / "scanner.raw"
        self.bridge = FakeTC358743("pi4", "1080p30")
        self.bridge.open()
        self.bridge.set_edid(bytes(256))  # hotplug high: the scanner sends

    def send(self, hz: int, rate: int, seconds: float = 3.0) -> None:
        """A ``hz`` tone sampled at ``rate``; a new file, so an old capture keeps the old one."""
        t = np.arange(int(rate * seconds)) / rate
        tone = (np.sin(2 * np.pi * hz * t) * 12_000).astype("<i2")
        fresh = self.raw.with_suffix(".new")
        fresh.write_bytes(np.stack([tone, tone], axis=1).tobytes())
        os.replace(fresh, self.raw)
        self.bridge.send_audio(rate)


@pytest.fixture
def scanner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scanner:
    conf = tmp_path / "asoundrc"
    conf.write_text(
        "pcm.plughw {\n  @args [ CARD DEV ]\n  @args.CARD { type string }\n"
        "  @args.DEV { type integer default 0 }\n  type file\n  slave.pcm { type null }\n"
        f'  file "/dev/null"\n  infile "{tmp_path / "scanner.raw"}"\n  format "raw"\n}}\n'
    )
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    monkeypatch.setattr(hdmi, "CHECK_S", 0.0)  # read the controls before every ALSA read
    return Scanner(tmp_path)


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(len(samples))))
    return float(np.argmax(spectrum[1:]) + 1) * RATE / len(samples)


def _hear(source: HdmiSound, seconds: float) -> np.ndarray:
    """``seconds`` of what the source gives (all 48 kHz stereo 20 ms blocks), left channel;
    each block stamped with its capture time, before it was read and not long before."""
    blocks: list[np.ndarray] = []
    while len(blocks) * FRAME_SAMPLES < seconds * RATE:
        captured = source.read(timeout=2.0)
        assert captured is not None, f"no sound ({source.signal.value})"
        assert 0 <= time.time() - captured.captured_at < 0.5
        frame = captured.frame
        assert (frame.sample_rate, frame.samples, frame.layout.nb_channels) == (
            RATE,
            FRAME_SAMPLES,
            2,
        )
        blocks.append(frame.to_ndarray().reshape(-1, 2)[:, 0])
    return np.concatenate(blocks)


def test_the_scanner_sound_is_captured_at_its_rate_and_resampled_to_48k(
    scanner: Scanner,
) -> None:
    scanner.send(1000, 44_100)
    source = make_sound_source(load_dict({"audio": {"source": "hdmi"}}).audio, scanner.bridge)
    assert isinstance(source, HdmiSound)
    assert source.pcm == "plughw:CARD=tc358743,DEV=0"  # dtoverlay=tc358743-audio's card
    source.open()
    try:
        assert (source.signal, source.rate) == (SoundSignal.PRESENT, 44_100)
        assert abs(_dominant_hz(_hear(source, 0.4)) - 1000) < 10  # the pitch kept
    finally:
        source.close()
    assert source.signal is SoundSignal.IDLE
    assert scanner.bridge.audio_released == 1  # the controls' node is let go between exams


def test_a_rate_change_reopens_the_card_at_the_new_rate(scanner: Scanner) -> None:
    scanner.send(1000, 44_100)
    source = HdmiSound(scanner.bridge)
    source.open()
    try:
        assert abs(_dominant_hz(_hear(source, 0.3)) - 1000) < 10
        scanner.send(2000, 32_000)  # another source: 2 kHz, at 32 kHz
        _hear(source, 0.1)  # what the resampler still held from before
        heard = _hear(source, 0.3)
        assert (source.rate, source.opened) == (32_000, 2)
        # read at 44.1 kHz the new sound would be 2756 Hz; the old capture would stay at 1 kHz
        assert abs(_dominant_hz(heard) - 2000) < 15
    finally:
        source.close()


def test_no_audio_closes_the_card_and_says_so(scanner: Scanner) -> None:
    scanner.send(1000, 48_000)
    source = HdmiSound(scanner.bridge)
    source.open()
    try:
        _hear(source, 0.1)
        scanner.bridge.stop_audio()  # the scanner's HDMI carries no sound
        assert source.read(timeout=0.2) is None
        assert (source.signal, source.rate) == (SoundSignal.NO_AUDIO, 0)
        scanner.send(1000, 48_000)  # back
        assert abs(_dominant_hz(_hear(source, 0.3)) - 1000) < 10
        assert source.signal is SoundSignal.PRESENT
        scanner.bridge.unplug()  # no signal: the driver reports rate 0
        assert source.read(timeout=0.2) is None
        assert source.signal is SoundSignal.NO_AUDIO
        scanner.bridge.remove()  # the bridge itself is gone
        assert source.read(timeout=0.2) is None
        assert source.signal is SoundSignal.NO_DEVICE
    finally:
        source.close()


def test_a_missing_card_is_no_device_not_a_crash(scanner: Scanner) -> None:
    scanner.send(1000, 48_000)
    source = HdmiSound(scanner.bridge, pcm="no-such-card")
    source.open()
    try:
        assert source.read(timeout=0.2) is None
        assert source.signal is SoundSignal.NO_DEVICE
    finally:
        source.close()


def test_the_sound_thread_follows_the_bridge_and_the_status_says_no_audio(
    scanner: Scanner,
) -> None:
    """Built as the box builds it (the seams' bridge gives the controls): while the scanner
    sends no sound nothing is sent and the status says ``no-audio``; its sound then flows."""
    import asyncio

    from appliance.assembly import build_sound
    from appliance.config import Config
    from appliance.seams import Seams
    from appliance.stream.pipeline import Mode
    from tests.support.wait import until

    scanner.bridge.stop_audio()
    scanner.send(1000, 44_100)
    scanner.bridge.stop_audio()
    config = Config().replace(audio={"source": "hdmi"})

    async def run() -> None:
        loop = asyncio.get_running_loop()
        sound = build_sound(config, loop, Seams(bridge=scanner.bridge))
        assert sound is not None
        assert sound.signal is SoundSignal.IDLE  # nothing captured before LIVE
        sound.start()
        try:
            sound.set_viewers(1)
            sound.set_mode(Mode.LIVE)
            await asyncio.to_thread(until, lambda: sound.signal is SoundSignal.NO_AUDIO, 5)
            await asyncio.sleep(0.3)
            assert sound.packets_encoded == 0
            scanner.bridge.send_audio(44_100)
            await asyncio.to_thread(until, lambda: sound.packets_encoded >= 10, 10)
            assert sound.signal is SoundSignal.PRESENT
            sound.set_mode(Mode.PAUSED)
            await asyncio.to_thread(until, lambda: sound.signal is SoundSignal.IDLE, 5)
        finally:
            await asyncio.to_thread(sound.stop)

    asyncio.run(run())
