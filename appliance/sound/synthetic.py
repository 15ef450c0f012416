"""A fetal-heartbeat Doppler-like sound, for the demo, the tests and the benchmarks.

About 140 beats a minute; each beat is a "whoosh-whoosh" (a systolic and a weaker diastolic
hump) on a carrier sweeping from 700 Hz down to about 530 Hz: the sound's energy is in the
:data:`BAND`. The left channel carries the forward flow, the right a weaker, lower copy (a
Doppler unit puts the two directions of flow in the two channels). A click (a 1 ms half-sine
pulse on both channels) starts every whole second of the wall clock (:data:`CLICK_PERIOD_S`),
the instants a benchmark finds again in what a browser plays (the clock the time strip uses).

:func:`render` is a pure function of the absolute sample index (samples since the epoch at
48 kHz), so any block can be made alone and a test knows where each click is.
"""

from __future__ import annotations

import threading
import time

import av
import numpy as np

from .base import CHANNELS, FRAME_SAMPLES, RATE, CapturedSound, SoundSignal

BEATS_PER_MINUTE = 140
BEAT_SAMPLES = round(RATE * 60 / BEATS_PER_MINUTE)
#: Where the heartbeat's energy is (Hz): the carrier sweeps inside it.
BAND = (500.0, 750.0)
CLICK_PERIOD_S = 1
CLICK_SAMPLES = RATE // 1000  # 1 ms
LEVEL = 0.35  # of full scale: room for the click and the two humps
CLICK_LEVEL = 0.9


def render(start: int, count: int) -> np.ndarray:
    """``count`` stereo samples (int16, shape ``(count, 2)``) from absolute sample ``start``."""
    index = np.arange(start, start + count, dtype=np.int64)
    tb = (index % BEAT_SAMPLES) / RATE  # seconds into the beat
    envelope = np.exp(-(((tb - 0.08) / 0.035) ** 2)) + 0.6 * np.exp(-(((tb - 0.23) / 0.04) ** 2))
    phase = 2 * np.pi * (700.0 * tb - 200.0 * tb**2)  # 700 Hz sweeping down, 400 Hz/s
    forward = envelope * np.sin(phase)
    reverse = 0.5 * envelope * np.sin(0.8 * phase)
    out = np.empty((count, CHANNELS))
    out[:, 0] = LEVEL * forward
    out[:, 1] = LEVEL * reverse
    into_click = index % (RATE * CLICK_PERIOD_S)
    clicking = into_click < CLICK_SAMPLES
    if clicking.any():
        pulse = CLICK_LEVEL * np.sin(np.pi * into_click[clicking] / CLICK_SAMPLES)
        out[clicking, 0] = pulse
        out[clicking, 1] = pulse
    return np.round(out * 32767).astype(np.int16)


def click_instants(start: int, count: int) -> list[int]:
    """The absolute sample indices where a click starts in ``[start, start + count)``."""
    period = RATE * CLICK_PERIOD_S
    first = -(-start // period) * period
    return list(range(first, start + count, period))


def to_frame(samples: np.ndarray) -> av.AudioFrame:
    """Interleaved int16 stereo samples as an ``av.AudioFrame`` (s16, 48 kHz)."""
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate = RATE
    return frame


class SyntheticSound:
    """Implements :class:`~appliance.sound.base.SoundSource`: 20 ms blocks at the wall clock's
    pace, each stamped with the time of its first sample."""

    signal = SoundSignal.PRESENT  # always hears itself

    def __init__(self) -> None:
        self._next = 0  # absolute index of the next block's first sample
        self._start_mono = 0.0
        self._blocks = 0
        self._closed = threading.Event()

    def open(self) -> None:
        now = time.time()
        self._start_mono = time.monotonic()
        self._next = int(now * RATE) // FRAME_SAMPLES * FRAME_SAMPLES
        self._blocks = 0
        self._closed.clear()

    def read(self, timeout: float) -> CapturedSound | None:
        due = self._start_mono + self._blocks * FRAME_SAMPLES / RATE
        wait = due - time.monotonic()
        if wait > timeout:
            self._closed.wait(timeout)
            return None
        if wait > 0 and self._closed.wait(wait):
            return None
        start = self._next
        self._next += FRAME_SAMPLES
        self._blocks += 1
        return CapturedSound(to_frame(render(start, FRAME_SAMPLES)), start / RATE)

    def close(self) -> None:
        self._closed.set()
