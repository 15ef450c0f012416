"""HDMI capture through the TC358743 bridge: the box's :class:`~appliance.capture.base.Source`.

The sequence, re-run every second until it succeeds: open the nodes, load the EDID, subscribe to
``SOURCE_CHANGE``, query the incoming DV timings (``ENOLINK``: no signal or no cable, ``ENOLCK``:
no lock), apply them, set the format, start streaming. While streaming, a ``SOURCE_CHANGE`` event
restarts the sequence at once (the new size reaches the encoder, which restarts with a fresh
SPS/PPS and IDR), and a second without a frame counts as a lost signal. While there is no
picture, :meth:`HdmiSource.read` returns a "no signal" slate once a second, the first within the
frame timeout, so the viewer's session stays up and shows why the picture is gone.

Frames leave as yuv420p ``av.VideoFrame`` at their native size (1280x1024 and 1024x768 too). With
``max_fps`` set (the Pi 4 encoder manages about 30), a 50 or 60 Hz input keeps every other frame.
"""

from __future__ import annotations

import errno
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import av
import numpy as np

from . import slate, v4l2
from .base import CapturedFrame, SignalState
from .bridge import Bridge, StreamFormat
from .v4l2 import DvTimings

logger = logging.getLogger(__name__)

#: Drivers whose bridge path streams 24-bit RGB rather than UYVY (the Pi 5's).
RGB_DRIVERS = ("rp1-cfe",)
MAX_WIDTH = 1920

_MISSING = {
    SignalState.NO_DEVICE,
    SignalState.NO_CABLE,
    SignalState.NO_SIGNAL,
    SignalState.NO_LOCK,
}


class HdmiSource:
    """Frames from ``bridge``; a "no signal" slate a second while there are none.

    :param bridge: the bridge (:class:`~appliance.capture.bridge.V4L2Bridge` on the box).
    :param edid: the EDID loaded into the bridge before anything else.
    :param width, height, fps: what to report (and the slate's size) before a signal arrives.
    :param max_fps: keep every n-th frame so the rate stays at or below this (None: all).
    :param on_signal: called with each new :class:`SignalState`, from the capture thread.
    """

    def __init__(
        self,
        bridge: Bridge,
        edid: bytes,
        width: int = 1920,
        height: int = 1080,
        fps: float = 30.0,
        *,
        max_fps: float | None = None,
        pixelformat: int | None = None,
        frame_timeout: float = 1.0,
        retry_interval: float = 1.0,
        slate_interval: float = 1.0,
        buffers: int = 4,
        on_signal: Callable[[SignalState], None] | None = None,
    ) -> None:
        self._bridge = bridge
        self._edid = edid
        self._size = (width, height)
        self._fps = float(fps)
        self._max_fps = max_fps
        self._wanted_format = pixelformat
        self._pixelformat = pixelformat or v4l2.PIX_FMT_UYVY
        self._frame_timeout = frame_timeout
        self._retry_interval = retry_interval
        self._slate_interval = slate_interval
        self._buffers = buffers
        self._on_signal = on_signal
        # CHANGING until the first attempt says what is there (and ``on_signal`` hears it)
        self._signal = SignalState.CHANGING
        self._io = threading.Lock()
        self._closing = threading.Event()
        self._opened = False
        self._edid_loaded = False
        self._streaming = False
        self._format: StreamFormat | None = None
        self._timings: DvTimings | None = None
        self._divisor = 1
        self._count = 0
        self._last_frame = 0.0
        self._next_attempt = 0.0
        self._next_slate = 0.0
        self.timings_applied = 0  # how often the sequence reached streaming (for tests, doctor)

    # -- Source protocol ------------------------------------------------------------------------

    @property
    def width(self) -> int:
        return self._size[0]

    @property
    def height(self) -> int:
        return self._size[1]

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def signal(self) -> SignalState:
        return self._signal

    @property
    def timings(self) -> DvTimings | None:
        """The timings being captured, if any."""
        return self._timings if self._streaming else None

    def open(self) -> None:
        """Start the sequence. A missing bridge is not an error here: it shows as NO_DEVICE."""
        self._closing.clear()
        now = time.monotonic()
        self._next_attempt = now
        self._next_slate = now + self._slate_interval
        with self._io:
            self._attempt(now)

    def read(self, timeout: float) -> CapturedFrame | None:
        deadline = time.monotonic() + timeout
        with self._io:
            while not self._closing.is_set():
                now = time.monotonic()
                if self._streaming:
                    frame = self._read_stream(now, deadline)
                    if frame is not None:
                        return frame
                    if self._streaming and time.monotonic() >= deadline:
                        return None
                    continue
                if now >= self._next_attempt:
                    self._attempt(now)
                    if self._streaming:
                        continue
                if now >= self._next_slate:
                    self._next_slate = now + self._slate_interval
                    return self._slate()
                if now >= deadline:
                    return None
                wake = min(self._next_attempt, self._next_slate, deadline)
                self._idle(max(0.0, min(wake - now, 0.1)))
        return None

    def _idle(self, timeout: float) -> None:
        """Wait between attempts; a SOURCE_CHANGE event (signal back) cuts the wait short."""
        if not self._opened or not self._edid_loaded:
            self._closing.wait(timeout)
            return
        try:
            _, event = self._bridge.wait(timeout)
            if event and self._bridge.dequeue_event() is not None:
                self._next_attempt = time.monotonic()
        except OSError as exc:
            self._device_lost(exc)

    def close(self) -> None:
        self._closing.set()
        with self._io:
            self._stop()
            if self._opened:
                self._bridge.close()
                self._opened = False
                self._edid_loaded = False

    # -- the sequence -----------------------------------------------------------------------------

    def _attempt(self, now: float) -> None:
        self._next_attempt = now + self._retry_interval
        bridge = self._bridge
        try:
            if not self._opened:
                info = bridge.open()
                self._opened = True
                self._edid_loaded = False
                if self._wanted_format is None:
                    rgb = info.driver in RGB_DRIVERS
                    self._pixelformat = v4l2.PIX_FMT_RGB24 if rgb else v4l2.PIX_FMT_UYVY
            if not self._edid_loaded:
                bridge.set_edid(self._edid)
                bridge.subscribe_source_change()
                self._edid_loaded = True
        except OSError as exc:
            self._device_lost(exc)
            return
        try:
            timings = bridge.query_dv_timings()
        except OSError as exc:
            if exc.errno == errno.ENOLINK:
                cable = bridge.cable_present()
                self._set_signal(SignalState.NO_CABLE if cable is False else SignalState.NO_SIGNAL)
            elif exc.errno in (errno.ENOLCK, errno.ERANGE):
                if exc.errno == errno.ERANGE:
                    logger.warning("the HDMI input is out of the bridge's range")
                self._set_signal(SignalState.NO_LOCK)
            else:
                self._device_lost(exc)
            return
        if timings.interlaced or timings.width > MAX_WIDTH or timings.width % 2:
            logger.warning("unsupported HDMI input %s: check the EDID", timings)
            self._set_signal(SignalState.NO_LOCK)
            return
        self._set_signal(SignalState.CHANGING)
        try:
            bridge.set_dv_timings(timings)
            fmt = bridge.set_format(timings.width, timings.height, self._pixelformat)
            if (fmt.width, fmt.height) != (timings.width, timings.height):
                raise OSError(errno.EINVAL, f"format {fmt.width}x{fmt.height} != {timings}")
            if fmt.pixelformat not in _CONVERTERS:
                raise OSError(errno.EINVAL, f"pixel format {v4l2.fourcc_str(fmt.pixelformat)}")
            bridge.start_streaming(self._buffers)
        except OSError as exc:
            logger.warning("cannot start HDMI capture at %s: %s", timings, exc)
            self._stop()
            if exc.errno in (errno.ENODEV, errno.ENOENT, errno.EBADF):
                self._device_lost(exc)
            else:
                self._set_signal(SignalState.NO_SIGNAL)
            return
        self._streaming = True
        self._format = fmt
        self._timings = timings
        self._size = (fmt.width, fmt.height)
        self._divisor = 1
        if self._max_fps and timings.fps > self._max_fps * 1.01:
            self._divisor = math.ceil(timings.fps / self._max_fps - 0.01)
        self._fps = round(timings.fps / self._divisor, 2)
        self._count = 0
        self._last_frame = time.monotonic()
        self.timings_applied += 1
        logger.info(
            "HDMI %s captured as %s, %.3g fps out",
            timings,
            v4l2.fourcc_str(fmt.pixelformat),
            self._fps,
        )

    def _read_stream(self, now: float, deadline: float) -> CapturedFrame | None:
        bridge = self._bridge
        limit = min(deadline, self._last_frame + self._frame_timeout)
        try:
            ready, event = bridge.wait(max(0.0, min(limit - now, 0.1)))
            if event:
                changes = bridge.dequeue_event()
                if changes is not None:
                    logger.info("HDMI source changed: restarting the capture")
                    self._stop()
                    self._set_signal(SignalState.CHANGING)
                    self._next_attempt = time.monotonic()
                    return None
            if ready:
                raw = bridge.dequeue_frame()
                if raw is not None:
                    try:
                        keep = self._count % self._divisor == 0
                        self._count += 1
                        frame = _convert(raw.data, self._format) if keep else None
                    finally:
                        bridge.requeue(raw.index)
                    self._last_frame = time.monotonic()
                    if frame is None:
                        return None
                    self._set_signal(SignalState.PRESENT)
                    age = min(max(0.0, time.monotonic() - raw.timestamp), 1.0)
                    return CapturedFrame(frame=frame, captured_at=time.time() - age)
                self._closing.wait(0.005)  # readable without a buffer (POLLERR): do not spin
        except OSError as exc:  # EIO, EPIPE, ENOLINK from DQBUF: the receiver lost the input
            logger.info("HDMI capture error: %s", v4l2.errno_name(exc))
            self._stop()
            self._set_signal(SignalState.NO_SIGNAL)
            self._next_attempt = time.monotonic()
            return None
        if time.monotonic() >= self._last_frame + self._frame_timeout:
            logger.info("no HDMI frame for %.1f s: restarting the capture", self._frame_timeout)
            self._stop()
            self._set_signal(SignalState.NO_SIGNAL)
            self._next_attempt = time.monotonic() + self._retry_interval
        return None

    def _stop(self) -> None:
        if self._streaming:
            self._streaming = False
            try:
                self._bridge.stop_streaming()
            except OSError as exc:
                logger.debug("stop streaming: %s", exc)

    def _device_lost(self, exc: OSError) -> None:
        if self._signal is not SignalState.NO_DEVICE:
            logger.error("HDMI bridge unavailable (%s): run 'appliance doctor'", exc)
        self._stop()
        if self._opened:
            self._bridge.close()
            self._opened = False
        self._edid_loaded = False
        self._set_signal(SignalState.NO_DEVICE)

    def _set_signal(self, state: SignalState) -> None:
        old = self._signal
        if state is old:
            return
        self._signal = state
        logger.info("HDMI signal %s -> %s", old.value, state.value)
        if state in _MISSING and old in (SignalState.PRESENT, SignalState.CHANGING):
            self._next_slate = time.monotonic()  # the viewer learns at once
        if self._on_signal is not None:
            self._on_signal(state)

    def _slate(self) -> CapturedFrame:
        w, h = self._size
        return CapturedFrame(
            frame=slate.render(slate.SlateKind.NO_SIGNAL, w, h), captured_at=time.time(), slate=True
        )


# -- pixel conversion ----------------------------------------------------------------------------


def _convert(data: memoryview, fmt: StreamFormat | None) -> av.VideoFrame:
    assert fmt is not None
    rows = np.frombuffer(data, np.uint8, count=fmt.bytesperline * fmt.height)
    return _CONVERTERS[fmt.pixelformat](rows.reshape(fmt.height, fmt.bytesperline), fmt)


def _from_uyvy(rows: np.ndarray, fmt: StreamFormat) -> av.VideoFrame:
    """UYVY 4:2:2 to yuv420p: the luma as is, the chroma of every other line."""
    w = fmt.width
    frame = av.VideoFrame(w, fmt.height, "yuv420p")
    planes = (rows[:, 1 : 2 * w : 2], rows[0::2, 0 : 2 * w : 4], rows[0::2, 2 : 2 * w : 4])
    for plane, src in zip(frame.planes, planes, strict=True):
        dst = np.frombuffer(cast(Any, plane), np.uint8).reshape(-1, plane.line_size)
        dst[: src.shape[0], : src.shape[1]] = src
    return frame


def _from_rgb(rows: np.ndarray, fmt: StreamFormat) -> av.VideoFrame:
    rgb = rows[:, : 3 * fmt.width].reshape(fmt.height, fmt.width, 3)
    name = "rgb24" if fmt.pixelformat == v4l2.PIX_FMT_RGB24 else "bgr24"
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format=name).reformat(
        format="yuv420p"
    )


_CONVERTERS: dict[int, Callable[[np.ndarray, StreamFormat], av.VideoFrame]] = {
    v4l2.PIX_FMT_UYVY: _from_uyvy,
    v4l2.PIX_FMT_RGB24: _from_rgb,
    v4l2.PIX_FMT_BGR24: _from_rgb,
}
