"""Any ALSA capture PCM by name, through PyAV's ``alsa`` input format (FFmpeg's libavdevice).

The base of the kinds that follow (the bridge's HDMI sound, a USB line-in or speakerphone):
they choose the PCM and watch the device; this reads it. The device paces the reads. Tested
here without a sound card through ALSA's own userspace plugins (a ``file`` PCM with an
``infile`` over ``null``: tests/integration/test_sound_alsa.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import av

from ..errors import DeviceError
from .base import CHANNELS, RATE, CapturedSound, SoundSignal

logger = logging.getLogger(__name__)


class AlsaSound:
    """Implements :class:`~appliance.sound.base.SoundSource` on ALSA PCM ``device``.

    A read that fails (the device went away: a USB adapter unplugged) ends the capture and
    says :attr:`SoundSignal.NO_DEVICE`, so the sound thread opens it again. :meth:`close` from
    another thread waits for a read in progress (one ALSA period; FFmpeg's container must not
    be closed under a read).
    """

    def __init__(self, device: str, rate: int = RATE, channels: int = CHANNELS) -> None:
        self.device = device
        self._options = {"sample_rate": str(rate), "channels": str(channels)}
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.AudioFrame] | None = None
        self.signal = SoundSignal.IDLE
        self._lock = threading.Lock()

    def open(self) -> None:
        try:
            self._container = av.open(self.device, format="alsa", options=self._options)
        except (OSError, av.FFmpegError) as exc:
            self.signal = SoundSignal.NO_DEVICE
            raise DeviceError(f"the ALSA capture device {self.device!r} cannot be opened") from exc
        self._frames = self._container.decode(audio=0)
        self.signal = SoundSignal.PRESENT

    def read(self, timeout: float) -> CapturedSound | None:
        """The next period from the device (ALSA paces it; ``timeout`` is the device's)."""
        with self._lock:
            if self._frames is None:
                return None
            try:
                frame = next(self._frames, None)
            except (OSError, av.FFmpegError) as exc:  # FFmpeg recovers overruns itself
                logger.warning("ALSA capture read failed: %s", exc)
                frame = None
            if frame is None:  # the capture ended: the device went away
                self._frames = None
                self.signal = SoundSignal.NO_DEVICE
                return None
        return CapturedSound(frame, time.time() - frame.samples / frame.sample_rate)

    def close(self) -> None:
        with self._lock:
            self._frames = None
            if self.signal is SoundSignal.PRESENT:
                self.signal = SoundSignal.IDLE
            if self._container is not None:
                self._container.close()
                self._container = None
