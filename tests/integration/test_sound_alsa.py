"""The ``alsa`` sound source through ALSA's real userspace code path, with no sound card: a
``file`` PCM with an ``infile`` over a ``null`` slave, defined in an asoundrc this test writes
(PyAV's own libasound reads ``ALSA_CONFIG_PATH``; it knows no PCM the file does not define, so
the slave is an inline ``{ type null }``). A known tone goes in; the source, and the Opus path
after it, give the same tone back."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from appliance.config import load_dict
from appliance.sound.alsa import AlsaSound
from appliance.sound.base import RATE
from appliance.sound.opus import TIME_BASE, OpusEncoder
from appliance.sound.registry import make_sound_source

TONE_HZ = 1000


@pytest.fixture
def tone_pcm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ALSA capture PCM named ``tone`` that plays 2 s of a 1 kHz stereo tone (s16le)."""
    t = np.arange(RATE * 2) / RATE
    tone = (np.sin(2 * np.pi * TONE_HZ * t) * 12_000).astype("<i2")
    raw = tmp_path / "tone.raw"
    raw.write_bytes(np.stack([tone, tone // 2], axis=1).tobytes())
    conf = tmp_path / "asoundrc"
    conf.write_text(
        'pcm.tone {\n  type file\n  slave.pcm { type null }\n  file "/dev/null"\n'
        f'  infile "{raw}"\n  format "raw"\n}}\n'
    )
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    return "tone"


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    return float(np.argmax(spectrum[1:]) + 1) * RATE / len(samples)


def _capture(source: AlsaSound, seconds: float) -> list[av.AudioFrame]:
    frames: list[av.AudioFrame] = []
    samples = 0
    source.open()
    try:
        while samples < seconds * RATE:
            captured = source.read(timeout=1.0)
            assert captured is not None, "the ALSA PCM gave nothing"
            frames.append(captured.frame)
            samples += captured.frame.samples
    finally:
        source.close()
    return frames


def test_the_alsa_source_captures_the_tone_through_alsa(tone_pcm: str) -> None:
    source = make_sound_source(load_dict({"audio": {"source": "alsa", "device": tone_pcm}}).audio)
    assert isinstance(source, AlsaSound)
    frames = _capture(source, 0.5)
    assert frames[0].sample_rate == RATE and frames[0].layout.nb_channels == 2
    stereo = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in frames])
    assert abs(_dominant_hz(stereo[:, 0]) - TONE_HZ) < 5
    assert np.abs(stereo[:, 1]).max() < np.abs(stereo[:, 0]).max()  # the channels kept apart


def test_the_tone_survives_opus(tone_pcm: str) -> None:
    encoder = OpusEncoder(64_000)
    packets = [p for f in _capture(AlsaSound(tone_pcm), 0.5) for p in encoder.encode(f)]
    decoder = av.CodecContext.create("libopus", "r")
    decoded = []
    for packet in packets:
        packet.time_base = TIME_BASE
        decoded += [f.to_ndarray().reshape(-1) for f in decoder.decode(packet)]
    pcm = np.concatenate(decoded).astype(float)
    channels = decoder.layout.nb_channels
    left = pcm.reshape(-1, channels)[:, 0] if channels > 1 else pcm
    assert abs(_dominant_hz(left[RATE // 10 :]) - TONE_HZ) < 5


def test_a_missing_pcm_is_a_device_error(tone_pcm: str) -> None:
    from appliance.errors import DeviceError

    with pytest.raises(DeviceError, match="cannot be opened"):
        AlsaSound("no-such-pcm").open()


def test_the_usb_kind_captures_its_card_by_name(
    tone_pcm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``usb`` opens ``plughw:CARD=<audio.card>``: the asoundrc defines ``plughw`` with ALSA's own
    argument syntax, as alsa.conf does, over the same tone."""
    conf = tmp_path / "asoundrc"
    conf.write_text(
        conf.read_text().replace(
            "pcm.tone {",
            "pcm.plughw {\n  @args [ CARD DEV ]\n  @args.CARD { type string }\n"
            "  @args.DEV { type integer default 0 }",
        )
    )
    config = load_dict({"audio": {"source": "usb", "card": "Device"}})
    source = make_sound_source(config.audio)
    assert isinstance(source, AlsaSound)
    assert source.device == "plughw:CARD=Device,DEV=0"
    frames = _capture(source, 0.3)
    stereo = np.concatenate([f.to_ndarray().reshape(-1, 2) for f in frames])
    assert abs(_dominant_hz(stereo[:, 0]) - TONE_HZ) < 5


def test_the_usb_kind_names_the_key_and_the_fix() -> None:
    from appliance.config import salvage
    from appliance.errors import ConfigError

    with pytest.raises(ConfigError, match="'audio.card' must name the USB sound card") as caught:
        make_sound_source(load_dict({"audio": {"source": "usb"}}).audio)
    assert "arecord -l" in str(caught.value) and caught.value.key == "audio.card"
    with pytest.raises(ConfigError, match="'audio.card' has invalid value 'hw:1'") as caught:
        load_dict({"audio": {"source": "usb", "card": "hw:1"}})
    assert "not a PCM like 'hw:1'" in str(caught.value)
    _, problems, warnings = salvage({"audio": {"source": "usb", "crad": "Device"}})
    assert not problems
    assert [w.key for w in warnings] == ["audio.crad"]
    assert "did you mean 'audio.card'?" in str(warnings[0])
