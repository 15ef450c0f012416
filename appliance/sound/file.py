"""A clip's sound track as a source (tests): any file PyAV opens, looped, at the wall clock's
pace (as a device would deliver it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import av

from ..errors import DeviceError
from .base import CapturedSound, SoundSignal


class FileSound:
    """Implements :class:`~appliance.sound.base.SoundSource` over a clip's first sound track."""

    signal = SoundSignal.PRESENT  # always hears itself

    def __init__(self, path: str) -> None:
        self._path = path
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.AudioFrame] | None = None
        self._played = 0.0  # seconds of sound handed out since open
        self._start = 0.0
        self._closed = threading.Event()
        # close() comes from the stopping thread while read() may be decoding in the sound
        # thread: FFmpeg must not see its container closed under a decode (a segfault, seen)
        self._lock = threading.Lock()

    def open(self) -> None:
        try:
            self._container = av.open(self._path)
        except (OSError, av.FFmpegError) as exc:
            raise DeviceError(f"the sound file cannot be opened: {exc}") from exc
        if not self._container.streams.audio:
            self._container.close()
            raise DeviceError("the sound file has no sound track")
        self._frames = self._decode()
        self._start = time.monotonic()
        self._played = 0.0
        self._closed.clear()

    def _decode(self) -> Iterator[av.AudioFrame]:
        container = self._container
        assert container is not None
        while True:
            got = False
            for frame in container.decode(audio=0):
                got = True
                yield frame
            if not got:
                return
            container.seek(0)

    def read(self, timeout: float) -> CapturedSound | None:
        if self._frames is None:
            return None
        wait = self._start + self._played - time.monotonic()
        if wait > timeout or (wait > 0 and self._closed.wait(wait)):
            return None
        with self._lock:
            frames = self._frames
            frame = next(frames, None) if frames is not None else None
        if frame is None:
            return None
        self._played += frame.samples / frame.sample_rate
        return CapturedSound(frame, time.time())

    def close(self) -> None:
        self._closed.set()  # a read waiting for its time returns at once
        with self._lock:
            self._frames = None
            if self._container is not None:
                self._container.close()
                self._container = None
