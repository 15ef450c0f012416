"""The sound's parts without a device or a socket: the heartbeat's shape and clicks, the
registry by config string, the Opus encoder's packets, the fan-out's gate."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from appliance.config import ConfigError, load_dict
from appliance.config import SoundKind as Kind
from appliance.sound import synthetic
from appliance.sound.base import FRAME_SAMPLES, RATE
from appliance.sound.opus import OpusEncoder
from appliance.sound.registry import make_sound_source
from appliance.stream.sound import SoundFanout


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    return float(np.argmax(spectrum[1:]) + 1) * RATE / len(samples)


def test_the_heartbeat_beats_about_140_a_minute_in_its_band() -> None:
    start = 5 * RATE + 200  # away from a click
    left = synthetic.render(start, synthetic.BEAT_SAMPLES * 4 // 480 * 480)[:, 0]
    envelope = np.abs(left).reshape(-1, 480).max(axis=1)  # 10 ms steps
    loud = (envelope > 0.8 * synthetic.LEVEL * 32767) & (envelope < 0.5 * 32767)  # no click
    onsets = np.flatnonzero(loud[1:] & ~loud[:-1])
    beats = np.diff(onsets) * 480 / RATE  # seconds between the systolic humps
    assert len(beats) >= 3
    assert np.allclose(beats, 60 / synthetic.BEATS_PER_MINUTE, atol=0.02)
    assert synthetic.BAND[0] <= _dominant_hz(left) <= synthetic.BAND[1]
    right = synthetic.render(start, len(left))[:, 1]
    assert np.abs(right).mean() < 0.7 * np.abs(left).mean()  # the two channels differ: stereo


def test_clicks_start_on_whole_seconds() -> None:
    start = 7 * RATE - 100
    block = synthetic.render(start, 400)
    assert synthetic.click_instants(start, 400) == [7 * RATE]
    at = 100  # the click's first samples
    assert np.abs(block[at + 5 : at + synthetic.CLICK_SAMPLES - 5]).min() > 0.2 * 32767
    assert np.abs(block[:50]).max() < 0.2 * 32767


def test_a_synthetic_block_is_20_ms_of_stereo_s16() -> None:
    frame = synthetic.to_frame(synthetic.render(0, FRAME_SAMPLES))
    assert (frame.samples, frame.sample_rate, frame.format.name) == (FRAME_SAMPLES, RATE, "s16")
    assert frame.layout.nb_channels == 2


def test_the_registry_builds_by_config_string() -> None:
    cfg = load_dict({"audio": {"source": "synthetic"}})
    assert type(make_sound_source(cfg.audio)).__name__ == "SyntheticSound"
    assert load_dict({}).audio.source is Kind.OFF  # no sound unless chosen
    with pytest.raises(ConfigError, match="'audio.file' must name a clip"):
        make_sound_source(load_dict({"audio": {"source": "file"}}).audio)
    with pytest.raises(ConfigError, match="'audio.source'"):
        load_dict({"audio": {"source": "bluetooth"}})
    with pytest.raises(ConfigError, match="'audio.bitrate'"):
        load_dict({"audio": {"bitrate": 1000}})
    assert type(make_sound_source(load_dict({"audio": {"source": "alsa"}}).audio)).__name__ == (
        "AlsaSound"
    )


def test_opus_makes_one_20_ms_packet_per_block_with_fec() -> None:
    encoder = OpusEncoder(64_000)
    assert encoder.fec
    packets = []
    for i in range(10):
        packets += encoder.encode(synthetic.to_frame(synthetic.render(i * 960, 960)))
    assert len(packets) >= 9
    pts = [p.pts or 0 for p in packets]
    steps = {b - a for a, b in zip(pts, pts[1:], strict=False)}
    assert steps == {FRAME_SAMPLES}
    encoder.restart_at(RATE * 60)  # after a pause: the time moved on
    later = []
    for i in range(2):  # libopus holds one frame back
        later += encoder.encode(synthetic.to_frame(synthetic.render(i * 960, 960)))
    assert (later[-1].pts or 0) >= RATE * 60 - 960


def test_the_fanout_sends_nothing_while_its_gate_is_closed() -> None:
    async def run() -> None:
        fanout = SoundFanout(maxsize=3)
        queue = fanout.subscribe()
        packets = OpusEncoder().encode(synthetic.to_frame(synthetic.render(0, 960 * 5)))
        fanout.publish(packets[0])
        assert queue.empty() and fanout.published == 0
        fanout.set_open(True)
        for packet in packets:
            fanout.publish(packet)
        assert queue.qsize() == 3  # the newest half-second, never a backlog
        fanout.set_open(False)  # pause: what was queued is dropped
        assert queue.empty()
        fanout.unsubscribe(queue)
        assert await queue.get() is None

    asyncio.run(run())


def test_a_missing_card_is_reported_and_tried_again_not_fatal(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A USB adapter unplugged: the sound thread says ``no-device`` and opens it again later."""
    from appliance.errors import DeviceError
    from appliance.sound.base import SoundSignal
    from appliance.stream import sound as sound_mod
    from appliance.stream.pipeline import Mode
    from appliance.stream.sound import SoundPipeline
    from tests.support.wait import until

    monkeypatch.setattr(sound_mod, "REOPEN_AFTER_S", 0.05)
    plugged = False

    class Adapter(synthetic.SyntheticSound):
        def open(self) -> None:
            if not plugged:
                raise DeviceError("the ALSA capture device 'plughw:CARD=Device' cannot be opened")
            super().open()

    async def run() -> None:
        nonlocal plugged
        sound = SoundPipeline(Adapter, OpusEncoder(), SoundFanout(), asyncio.get_running_loop())
        sound.start()
        try:
            sound.set_viewers(1)
            sound.set_mode(Mode.LIVE)
            await asyncio.to_thread(until, lambda: sound.signal is SoundSignal.NO_DEVICE, 5)
            await asyncio.sleep(0.3)  # several tries, one line in the log
            assert sum("trying again" in r.getMessage() for r in caplog.records) == 1
            sound.set_mode(Mode.PAUSED)  # nothing is captured while paused: nothing to say
            await asyncio.to_thread(until, lambda: sound.signal is SoundSignal.IDLE, 5)
            plugged = True
            sound.set_mode(Mode.LIVE)
            await asyncio.to_thread(until, lambda: sound.packets_encoded > 5, 5)
            assert sound.signal is SoundSignal.PRESENT
        finally:
            await asyncio.to_thread(sound.stop)

    asyncio.run(run())


def test_a_card_that_goes_away_while_live_is_opened_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A USB adapter unplugged mid-exam: its reads end (``no-device``), the thread closes it and
    opens a fresh one; the sound comes back without a restart."""
    from appliance.sound.base import SoundSignal
    from appliance.stream import sound as sound_mod
    from appliance.stream.pipeline import Mode
    from appliance.stream.sound import SoundPipeline
    from tests.support.wait import until

    monkeypatch.setattr(sound_mod, "REOPEN_AFTER_S", 0.05)
    opened: list[Adapter] = []

    class Adapter(synthetic.SyntheticSound):
        def __init__(self) -> None:
            super().__init__()
            self.signal = SoundSignal.PRESENT
            self.closed = False
            opened.append(self)

        def read(self, timeout: float) -> synthetic.CapturedSound | None:
            if len(opened) == 1 and self._blocks >= 5:  # the first one is pulled out
                self.signal = SoundSignal.NO_DEVICE
                return None
            return super().read(timeout)

        def close(self) -> None:
            self.closed = True
            super().close()

    async def run() -> None:
        sound = SoundPipeline(Adapter, OpusEncoder(), SoundFanout(), asyncio.get_running_loop())
        sound.start()
        try:
            sound.set_viewers(1)
            sound.set_mode(Mode.LIVE)
            await asyncio.to_thread(until, lambda: len(opened) == 2, 5)
            assert opened[0].closed, "the dead capture is released before the next"
            before = sound.blocks_read
            await asyncio.to_thread(until, lambda: sound.blocks_read > before + 5, 5)
            assert sound.signal is SoundSignal.PRESENT
        finally:
            await asyncio.to_thread(sound.stop)

    asyncio.run(run())
