"""A clip as a source: any file PyAV opens, looped, paced at the configured frame rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import av

from ..errors import DeviceError
from .base import CapturedFrame, SignalState


class FileSource:
    """Plays ``path`` in a loop, scaled to ``width`` x ``height``, at ``fps``."""

    def __init__(self, path: str, width: int, height: int, fps: float) -> None:
        self._path = path
        self._w, self._h, self._fps = width, height, float(fps)
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._t0 = 0.0
        self._index = 0
        self._closed = threading.Event()

    @property
    def width(self) -> int:
        return self._w

    @property
    def height(self) -> int:
        return self._h

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def signal(self) -> SignalState:
        return SignalState.PRESENT if self._container is not None else SignalState.NO_DEVICE

    def open(self) -> None:
        try:
            self._container = av.open(self._path)
        except (OSError, av.error.FFmpegError) as exc:
            raise DeviceError(f"cannot open the clip {self._path!r}: {exc}") from exc
        if not self._container.streams.video:
            raise DeviceError(f"the clip {self._path!r} has no video stream")
        self._frames = None
        self._t0 = time.monotonic()
        self._index = 0
        self._closed.clear()

    def _next_frame(self) -> av.VideoFrame:
        assert self._container is not None
        for _ in range(2):
            if self._frames is None:
                self._container.seek(0)
                self._frames = self._container.decode(video=0)
            for frame in self._frames:
                return frame
            self._frames = None  # end of clip: loop
        raise DeviceError(f"the clip {self._path!r} has no decodable frames")

    def read(self, timeout: float) -> CapturedFrame | None:
        if self._container is None:
            self.open()
        due = self._t0 + self._index / self._fps
        wait = due - time.monotonic()
        if wait > timeout:
            self._closed.wait(timeout)
            return None
        if wait > 0 and self._closed.wait(wait):
            return None
        self._index += 1
        frame = self._next_frame().reformat(width=self._w, height=self._h, format="yuv420p")
        return CapturedFrame(frame=frame, captured_at=time.time())

    def close(self) -> None:
        self._closed.set()
        if self._container is not None:
            self._container.close()
            self._container = None
