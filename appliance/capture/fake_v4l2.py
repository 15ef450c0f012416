"""A fake TC358743 behind the :class:`~appliance.capture.bridge.Bridge` interface, for tests.

It behaves like the bridge as the driver presents it: no signal until an EDID is loaded (the
driver holds hotplug low), ``ENOLINK`` without a signal, ``ENOLCK`` when it cannot lock,
``SOURCE_CHANGE`` events when the timings change or the signal goes, and frames at the mode's
rate while streaming. On a Pi 4 it captures UYVY on the video node; on a Pi 5 (``board="pi5"``)
it captures 24-bit RGB (the format UYVY could not stream in) with a padded stride, and expects
EDID and timings on its subdevice. Every frame carries the time strip of ARCHITECTURE.md, so a
test can check a frame end to end. Test code drives it with :meth:`plug`, :meth:`unplug`,
:meth:`lose_signal`, :meth:`lose_lock`, :meth:`change_mode`, :meth:`stall` and :meth:`remove`.
The scanner's sound is two controls as the driver reports them (:meth:`read_audio`: the rate,
0 without a signal, and audio present), driven with :meth:`send_audio` and :meth:`stop_audio`.
"""

from __future__ import annotations

import errno
import threading
import time
from collections import deque

import numpy as np

from . import timestrip, v4l2
from .bridge import RawFrame, StreamFormat
from .edid import MODES
from .v4l2 import DeviceInfo, DvTimings

__all__ = ["MODES", "FakeTC358743"]


class FakeTC358743:
    """The bridge with a scanner on the other end of the cable (see the module docstring)."""

    def __init__(self, board: str = "pi4", mode: str | None = "1080p30") -> None:
        if board not in ("pi4", "pi5"):
            raise ValueError("board must be 'pi4' or 'pi5'")
        self.board = board
        self.calls: list[str] = []  # the sequence of operations, for tests to assert
        self.frames_delivered = 0
        self._cond = threading.Condition()
        self._present = True  # the device node exists (driver bound)
        self._opened = False
        self._edid = b""
        self._cable = mode is not None
        self._tmds = mode is not None
        self._lock = True
        self._incoming: DvTimings | None = MODES[mode] if mode else None
        self._applied: DvTimings | None = None
        self._format: StreamFormat | None = None
        self._subscribed = False
        self._events: deque[int] = deque()
        self._streaming = False
        self._stalled = False
        self._queued: deque[int] = deque()
        self._buffers: list[np.ndarray] = []
        self._t0 = 0.0
        self._due = 0  # frames produced since STREAMON
        self._backgrounds: dict[tuple[int, int, int], np.ndarray] = {}
        self._audio_rate = 48_000  # what the scanner's HDMI audio runs at
        self._audio = mode is not None
        self.audio_released = 0

    # -- the scanner and the cable (test side, any thread) ---------------------------------------

    def plug(self, mode: str = "1080p30") -> None:
        """Connect a source sending ``mode``."""
        with self._cond:
            self._cable = self._tmds = self._lock = True
            self._incoming = MODES[mode]
            self._source_change()

    def unplug(self) -> None:
        with self._cond:
            self._cable = self._tmds = False
            self._source_change()

    def lose_signal(self) -> None:
        """The cable stays, the picture goes (scanner asleep, switching outputs)."""
        with self._cond:
            self._tmds = False
            self._source_change()

    def lose_lock(self) -> None:
        """A signal the bridge cannot lock to (bad cable, out-of-spec clock)."""
        with self._cond:
            self._lock = False
            self._source_change()

    def change_mode(self, mode: str) -> None:
        """The scanner switches resolution or rate."""
        with self._cond:
            self._tmds = self._lock = self._cable = True
            self._incoming = MODES[mode]
            self._source_change()

    def stall(self, stalled: bool = True) -> None:
        """Frames stop with no event (a wedged receiver): the source must time out."""
        with self._cond:
            self._stalled = stalled
            self._t0, self._due = time.monotonic(), 0
            self._cond.notify_all()

    def remove(self, present: bool = False) -> None:
        """The device node disappears (driver unbound, ribbon out) or comes back."""
        with self._cond:
            self._present = present
            if not present:
                self._streaming = False
            self._cond.notify_all()

    def send_audio(self, rate: int = 48_000) -> None:
        """The scanner sends sound at ``rate`` Hz (a new rate: a new source, or its setting)."""
        with self._cond:
            self._audio_rate, self._audio = rate, True

    def stop_audio(self) -> None:
        """The scanner's HDMI carries no sound (muted, or a model that sends it elsewhere)."""
        with self._cond:
            self._audio = False

    def read_audio(self) -> tuple[int, bool]:
        """The audio sampling rate and audio-present controls (the driver reads them anew)."""
        with self._cond:
            if not self._present:
                raise OSError(errno.ENODEV, "device gone")
            signal = self._cable and self._tmds and bool(self._edid)
            return (self._audio_rate if signal else 0), self._audio and signal

    def release_audio(self) -> None:
        """The real bridge closes the node it read the controls through; the fake counts it."""
        with self._cond:
            self.audio_released += 1

    def _source_change(self) -> None:
        if self._subscribed:
            self._events.append(v4l2.EVENT_SRC_CH_RESOLUTION)
        self._cond.notify_all()

    @property
    def edid(self) -> bytes:
        return self._edid

    @property
    def streaming(self) -> bool:
        return self._streaming

    # -- the Bridge interface ---------------------------------------------------------------------

    def open(self) -> DeviceInfo:
        with self._cond:
            self.calls.append("open")
            if not self._present:
                raise FileNotFoundError(errno.ENOENT, "no such device node")
            self._opened = True
            card = "unicam" if self.board == "pi4" else "rp1-cfe"
            return DeviceInfo(card, card, "platform:fake", v4l2.CAP_VIDEO_CAPTURE)

    def close(self) -> None:
        with self._cond:
            self._streaming = self._subscribed = self._opened = False
            self._events.clear()

    def _check(self, node: str) -> None:
        if not self._opened:
            raise OSError(errno.EBADF, "not open")
        if not self._present:
            raise OSError(errno.ENODEV, "device gone")
        # On a Pi 5 the video node knows nothing of EDID or timings: they live on the subdevice.
        self.calls.append(node)

    def set_edid(self, data: bytes) -> None:
        with self._cond:
            self._check("subdev:S_EDID" if self.board == "pi5" else "S_EDID")
            if len(data) % 128 or not data:
                raise OSError(errno.EINVAL, "bad EDID size")
            self._edid = bytes(data)

    def get_edid(self) -> bytes:
        with self._cond:
            self._check("subdev:G_EDID" if self.board == "pi5" else "G_EDID")
            return self._edid

    def cable_present(self) -> bool | None:
        with self._cond:
            return self._cable and bool(self._edid)

    def query_dv_timings(self) -> DvTimings:
        with self._cond:
            self._check("subdev:QUERY_DV_TIMINGS" if self.board == "pi5" else "QUERY_DV_TIMINGS")
            if not (self._edid and self._cable and self._tmds) or self._incoming is None:
                raise OSError(errno.ENOLINK, "no signal")
            if not self._lock:
                raise OSError(errno.ENOLCK, "no lock")
            return self._incoming

    def set_dv_timings(self, timings: DvTimings) -> None:
        with self._cond:
            self._check("subdev:S_DV_TIMINGS" if self.board == "pi5" else "S_DV_TIMINGS")
            if self._streaming:
                raise OSError(errno.EBUSY, "streaming")
            self._applied = timings

    def set_format(self, width: int, height: int, pixelformat: int) -> StreamFormat:
        with self._cond:
            self._check("S_FMT")
            if self._applied is not None:  # the driver adjusts to the applied timings
                width, height = self._applied.width, self._applied.height
            if self.board == "pi4":
                pixelformat, bpp, pad = v4l2.PIX_FMT_UYVY, 2, 0
            else:
                if pixelformat not in (v4l2.PIX_FMT_RGB24, v4l2.PIX_FMT_BGR24):
                    pixelformat = v4l2.PIX_FMT_RGB24
                bpp, pad = 3, 32
            stride = (width * bpp + 15) // 16 * 16 + pad
            self._format = StreamFormat(width, height, pixelformat, stride, stride * height)
            return self._format

    def subscribe_source_change(self) -> None:
        with self._cond:
            self._check("subdev:SUBSCRIBE_EVENT" if self.board == "pi5" else "SUBSCRIBE_EVENT")
            self._subscribed = True

    def start_streaming(self, count: int) -> None:
        with self._cond:
            self._check("STREAMON")
            fmt = self._format
            if fmt is None or self._applied is None:
                raise OSError(errno.EINVAL, "no format or timings set")
            self._buffers = [np.zeros(fmt.sizeimage, np.uint8) for _ in range(count)]
            self._queued = deque(range(count))
            self._streaming = True
            self._t0, self._due = time.monotonic(), 0

    def stop_streaming(self) -> None:
        with self._cond:
            if self._streaming:
                self.calls.append("STREAMOFF")
            self._streaming = False
            self._queued.clear()
            self._buffers = []

    def _delivering(self) -> bool:
        return (
            self._streaming
            and not self._stalled
            and self._tmds
            and self._lock
            and self._cable
            and self._incoming == self._applied
            and bool(self._queued)
        )

    def _next_due(self) -> float:
        assert self._applied is not None
        return self._t0 + self._due / self._applied.fps

    def wait(self, timeout: float) -> tuple[bool, bool]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._events:
                    return False, True
                now = time.monotonic()
                if self._delivering() and self._next_due() <= now:
                    return True, False
                if now >= deadline:
                    return False, False
                until = deadline
                if self._delivering():
                    until = min(until, self._next_due())
                self._cond.wait(max(0.0, until - now))

    def dequeue_event(self) -> int | None:
        with self._cond:
            return self._events.popleft() if self._events else None

    def dequeue_frame(self) -> RawFrame | None:
        with self._cond:
            if not self._delivering() or self._next_due() > time.monotonic():
                return None
            fmt = self._format
            assert fmt is not None
            index = self._queued.popleft()
            self._due += 1
            captured_at, mono = time.time(), time.monotonic()  # the driver stamps the start
            buf = self._buffers[index]
            self._paint(buf, fmt, captured_at)
            self.frames_delivered += 1
            return RawFrame(index, buf.data, self._due - 1, mono)

    def requeue(self, index: int) -> None:
        with self._cond:
            if self._streaming and index < len(self._buffers):
                self._queued.append(index)
                self._cond.notify_all()

    def export_buffer(self, index: int) -> int:
        raise OSError(errno.ENOTTY, "the fake has no DMABUF")

    # -- pictures ---------------------------------------------------------------------------------

    def _paint(self, buf: np.ndarray, fmt: StreamFormat, captured_at: float) -> None:
        key = (fmt.width, fmt.height, fmt.pixelformat)
        if key not in self._backgrounds:
            self._backgrounds[key] = _background(fmt)
        buf[:] = self._backgrounds[key]
        luma = np.full((timestrip.HEIGHT, timestrip.WIDTH), timestrip.BLACK, np.uint8)
        timestrip.draw(luma, timestrip.stamp_ms(captured_at))
        rows = buf[: fmt.bytesperline * timestrip.HEIGHT].reshape(timestrip.HEIGHT, -1)
        if fmt.pixelformat == v4l2.PIX_FMT_UYVY:
            rows[:, 1 : 2 * timestrip.WIDTH : 2] = luma
            rows[:, 0 : 2 * timestrip.WIDTH : 2] = 128
        else:
            rgb = _luma_to_rgb(luma)
            rows[:, : 3 * timestrip.WIDTH] = np.repeat(rgb, 3, axis=1)


def _luma_to_rgb(luma: np.ndarray) -> np.ndarray:
    """Grey RGB (full range) that BT.601 limited-range conversion turns back into ``luma``."""
    out = (luma.astype(np.int32) - 16) * 255 // 219
    return np.clip(out, 0, 255).astype(np.uint8)


def _background(fmt: StreamFormat) -> np.ndarray:
    """A grey ramp with a bright frame border: each size looks different, and edges show."""
    w, h = fmt.width, fmt.height
    ramp = (40 + (np.arange(w) * 160 // max(1, w - 1))).astype(np.uint8)
    luma = np.repeat(ramp[None, :], h, axis=0)
    luma[:4, :] = luma[-4:, :] = luma[:, :4] = luma[:, -4:] = 235
    out = np.zeros((h, fmt.bytesperline), np.uint8)
    if fmt.pixelformat == v4l2.PIX_FMT_UYVY:
        out[:, 1 : 2 * w : 2] = luma
        out[:, 0 : 2 * w : 2] = 128
    else:
        out[:, : 3 * w] = np.repeat(_luma_to_rgb(luma), 3, axis=1)
    return out.reshape(-1)
