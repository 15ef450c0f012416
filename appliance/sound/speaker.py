"""The speakerphone's playback side, for talk-back: any ALSA playback PCM by name, through
PyAV's ``alsa`` output format (FFmpeg's libavdevice), 48 kHz stereo s16.

Samples go to the device and nowhere else: nothing is kept. The box relies on the speakerphone's
own echo cancellation (it does none). Tested here without a sound card through ALSA's userspace
plugins (a ``file`` PCM over ``null``, defined by the test only: tests/integration/
test_talkback.py); a box's config names the speakerphone's own PCM.
"""

from __future__ import annotations

import logging

import av

from ..errors import DeviceError
from .base import CHANNELS, RATE

logger = logging.getLogger(__name__)


class AlsaSpeaker:
    """Plays ``av.AudioFrame`` (any format, layout and rate) on ALSA PCM ``device``."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._container: av.container.OutputContainer | None = None
        self._stream: av.AudioStream | None = None
        self._resampler: av.AudioResampler | None = None
        self._pts = 0

    def open(self) -> None:
        try:
            container = av.open(self.device, "w", format="alsa")
            stream = container.add_stream("pcm_s16le", rate=RATE)
            stream.layout = "stereo" if CHANNELS == 2 else "mono"
        except (OSError, av.FFmpegError) as exc:
            raise DeviceError(f"the ALSA playback device {self.device!r} cannot be opened") from exc
        self._container, self._stream = container, stream
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=RATE)
        self._pts = 0

    def write(self, frame: av.AudioFrame) -> None:
        """Play ``frame`` (the device paces the writes)."""
        container, stream, resampler = self._container, self._stream, self._resampler
        if container is None or stream is None or resampler is None:
            return
        frame.pts = None
        try:
            for out in resampler.resample(frame):
                out.pts = self._pts
                self._pts += out.samples
                for packet in stream.encode(out):
                    container.mux(packet)
        except av.FFmpegError as exc:  # an underrun, or the device went away
            logger.warning("ALSA playback failed: %s", exc)

    def close(self) -> None:
        """Release the device. Idempotent."""
        container, self._container = self._container, None
        self._stream = self._resampler = None
        if container is not None:
            try:
                container.close()
            except av.FFmpegError as exc:
                logger.warning("ALSA playback did not close cleanly: %s", exc)
