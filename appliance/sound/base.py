"""The interface every sound source implements, and the sound's fixed format."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

import av

#: Everything sent is 48 kHz stereo, in 20 ms frames (Opus's own rate and the WebRTC default).
RATE = 48_000
CHANNELS = 2
FRAME_SAMPLES = 960  # 20 ms at 48 kHz


class SoundSignal(enum.Enum):
    """What the source hears now, for the staff's page (like the picture's signal state)."""

    IDLE = "idle"  # not capturing (nobody is watching, or paused)
    PRESENT = "present"  # sound is coming in
    NO_AUDIO = "no-audio"  # the scanner sends no sound (its HDMI carries none, or no signal)
    NO_DEVICE = "no-device"  # the sound card is missing (overlay, wiring, USB unplugged)


@dataclass(frozen=True)
class CapturedSound:
    """A block of samples from a source.

    ``frame`` is an ``av.AudioFrame`` in any format, layout and rate (the encoder resamples);
    ``captured_at`` is the wall-clock time of its first sample, in seconds since the epoch.
    """

    frame: av.AudioFrame
    captured_at: float


class SoundSource(Protocol):
    """A sound source. ``read()`` blocks (in the sound thread) until the next block;
    ``signal`` says what it hears (a source that always hears: :attr:`SoundSignal.PRESENT`)."""

    @property
    def signal(self) -> SoundSignal: ...

    def open(self) -> None:
        """Acquire the device; may raise :class:`~appliance.errors.DeviceError`."""

    def read(self, timeout: float) -> CapturedSound | None:
        """The next block, or ``None`` if none came within ``timeout`` seconds."""

    def close(self) -> None:
        """Release the device. Idempotent."""
