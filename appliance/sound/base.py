"""The interface every sound source implements, and the sound's fixed format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import av

#: Everything sent is 48 kHz stereo, in 20 ms frames (Opus's own rate and the WebRTC default).
RATE = 48_000
CHANNELS = 2
FRAME_SAMPLES = 960  # 20 ms at 48 kHz


@dataclass(frozen=True)
class CapturedSound:
    """A block of samples from a source.

    ``frame`` is an ``av.AudioFrame`` in any format, layout and rate (the encoder resamples);
    ``captured_at`` is the wall-clock time of its first sample, in seconds since the epoch.
    """

    frame: av.AudioFrame
    captured_at: float


class SoundSource(Protocol):
    """A sound source. ``read()`` blocks (in the sound thread) until the next block."""

    def open(self) -> None:
        """Acquire the device; may raise :class:`~appliance.errors.DeviceError`."""

    def read(self, timeout: float) -> CapturedSound | None:
        """The next block, or ``None`` if none came within ``timeout`` seconds."""

    def close(self) -> None:
        """Release the device. Idempotent."""
