"""The mask editor's preview as a JPEG shared by every tablet, made at most once per interval.

Each pairing page asks for ``preview.jpg`` every second or two while its mask editor is on
screen, and any number of pages may be open. The picture comes from the media thread as an array
of its own (the media port's :meth:`~appliance.stream.ports.MediaControl.preview`); one request
at a time asks for it and makes the JPEG, and every request within the interval gets that same
JPEG. A request that arrives while the next one is being made gets the last one instead of
waiting.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

#: At most one new preview per this many seconds, whatever the number of tablets.
PREVIEW_INTERVAL = 0.75
#: How long a request waits for the first preview before answering "no picture".
FIRST_WAIT = 5.0


def to_jpeg(picture: np.ndarray, quality: int = 70) -> bytes:
    out = io.BytesIO()
    Image.fromarray(picture, "RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


class SharedPreview:
    """``take()`` (the media thread's picture, or None without a signal) as a shared JPEG."""

    def __init__(
        self,
        take: Callable[[], np.ndarray | None],
        interval: float = PREVIEW_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._take = take
        self.interval = interval
        self._clock = clock
        self._making = threading.Lock()  # held by the one request that makes the next JPEG
        self._jpeg: bytes | None = None
        self._made_at: float | None = None
        #: How many JPEGs were made (each from one picture of the media thread).
        self.made = 0

    def jpeg(self) -> bytes | None:
        """The latest preview as JPEG bytes, None when the scanner gives no picture."""
        if not self._making.acquire(blocking=False):
            if self._made_at is not None:
                return self._jpeg  # another request is making the next one
            if not self._making.acquire(timeout=FIRST_WAIT):
                return None
        try:
            made_at = self._made_at
            if made_at is not None and self._clock() - made_at < self.interval:
                return self._jpeg
            picture = self._take()
            self._jpeg = None if picture is None else to_jpeg(picture)
            self._made_at = self._clock()
            self.made += picture is not None
            return self._jpeg
        finally:
            self._making.release()
