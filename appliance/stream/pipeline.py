"""The media thread: capture, mask, encode, hand packets to the loop.

One thread does the whole chain, so a frame crosses no queue between capture and encode (the
lowest latency and the least copying). The loop only ever sees finished packets, through the
thread-safe ``publish`` callback. The mode says what to send: nothing, the live picture, or a
slate (one keyframe a second, so the connection stays up and the last live picture is replaced).

The rate controller's decision arrives through :meth:`MediaPipeline.set_rate` (from the loop):
the encoder's bitrate and the ladder's step, applied before the next frame. At the half-rate
step every other frame is dropped before the encoder; at the smaller step frames are scaled
(the encoder restarts at the new size with one IDR; the buffers the old size freed are then
handed back to the system: :func:`appliance.allocator.release_free_memory`, without which the
box's RSS steps up with the restarts of a long exam). Keyframe requests arrive through
:meth:`MediaPipeline.keyframe` with their reason; the policy (:mod:`appliance.encode.keyframes`)
decides which skip the limiter, and the thread forces what is due before each frame.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable

import av
import numpy as np

from .. import allocator
from ..capture import slate
from ..capture.base import CapturedFrame, Source
from ..encode.base import VIDEO_TIME_BASE, Encoder, EncoderFactory
from ..encode.keyframes import KeyframePolicy, KeyframeReason
from ..state import State
from . import lipsync
from .ladder import LadderStep

logger = logging.getLogger(__name__)

FrameFilter = Callable[[av.VideoFrame], av.VideoFrame]


class Mode(enum.Enum):
    OFF = "off"  # send nothing (no session, or not admitted yet)
    LIVE = "live"  # the scan
    PAUSED = "paused"  # the "paused" slate: privacy blackout, connection kept


def mode_for(state: State) -> Mode:
    """What the media thread sends in each session state."""
    return {State.LIVE: Mode.LIVE, State.PAUSED: Mode.PAUSED}.get(state, Mode.OFF)


SLATE_PERIOD = 1.0  # seconds between slate keyframes
#: The staff's preview is at most this wide (and as high as the picture's shape gives).
PREVIEW_WIDTH = 640


def preview_picture(frame: av.VideoFrame, width: int = PREVIEW_WIDTH) -> np.ndarray:
    """``frame`` as a small RGB array of its own (height x width x 3), for the staff's preview.

    Made in the media thread only: a frame's conversions share one libswscale context, so two
    threads converting the same frame at once crash the process. The array shares nothing with
    the frame, so any thread may read it."""
    if frame.width > width:
        height = max(2, round(frame.height * width / frame.width) // 2 * 2)
        small = frame.reformat(width=width, height=height, format="rgb24")
    else:
        small = frame.reformat(format="rgb24")
    return np.array(small.to_ndarray(), copy=True)


class MediaPipeline:
    """Runs ``source`` -> ``frame_filter`` (the privacy mask) -> encoder -> ``publish``."""

    def __init__(
        self,
        source: Source,
        make_encoder: EncoderFactory,
        publish: Callable[[av.Packet], None],
        frame_filter: FrameFilter | None = None,
        *,
        keyframes: KeyframePolicy | None = None,
        keep_time_strip: bool = False,
    ) -> None:
        self._source = source
        self._make_encoder = make_encoder
        self._publish = publish
        self._filter = frame_filter
        self._encoder: Encoder | None = None
        self._mode = Mode.OFF
        self._wanted = threading.Event()  # there is a viewer to send to
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pts_origin = time.monotonic()
        self._preview_wanted = False
        #: The last picture from the scanner, before the mask, for the staff's mask editor: an
        #: RGB array of its own (see :func:`preview_picture`), replaced, never modified.
        self._preview: np.ndarray | None = None
        self.previews_made = 0
        self.frames_encoded = 0
        self.keyframes_encoded = 0
        self.frames_dropped = 0  # by the half-rate step
        self.memory_releases = 0  # after a change of the encoded size
        self._encoded_size: tuple[int, int] | None = None
        #: the keyframe policy (shared with the fan-out, which asks it directly)
        self.keyframes = keyframes or KeyframePolicy()
        # (encoder bitrate or None, step or None): set on the loop, applied in the thread
        self._rate: tuple[int | None, LadderStep | None] = (None, None)
        self._frame_index = 0
        #: pts -> capture instant of the frames in the encoder (a few; see :meth:`_encode`)
        self._captured: dict[int, float] = {}
        #: scaled frames keep the source's time strip (the synthetic source's, for measuring)
        self._keep_time_strip = keep_time_strip

    # -- control, from any thread ---------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        with self._wake:
            if mode is not self._mode:
                self._mode = mode
                self.keyframe(KeyframeReason.MODE)
                self._wake.notify_all()

    def set_viewers(self, count: int) -> None:
        """Encode only while someone watches: no viewer, no CPU spent."""
        with self._wake:
            if count > 0:
                self._wanted.set()
            else:
                self._wanted.clear()
            self._wake.notify_all()

    def set_frame_filter(self, frame_filter: FrameFilter | None) -> None:
        """Replace the privacy mask; the next frame is masked by the new one."""
        self._filter = frame_filter

    def preview(self, timeout: float = 2.0) -> np.ndarray | None:
        """A fresh unmasked picture from the scanner (read by the media thread even when nothing
        is being sent), or the last one if none comes in time; None without a signal. A small
        RGB array of its own, made by the media thread (:func:`preview_picture`): one for each
        call, so callers bound how often they ask. Never encoded, never stored."""
        with self._wake:
            self._preview_wanted = True
            self._wake.notify_all()
            self._wake.wait_for(lambda: not self._preview_wanted, timeout)
            return self._preview

    def keyframe(self, reason: KeyframeReason) -> None:
        """Ask for an IDR for ``reason`` (any thread): the policy says whether it is forced on
        the next frame or waits for the limiter (:mod:`appliance.encode.keyframes`)."""
        self.keyframes.keyframe(reason)

    def set_rate(self, bitrate: int, step: LadderStep) -> None:
        """The rate controller's decision: applied before the next frame (from any thread)."""
        self._rate = (bitrate, step)

    @property
    def step(self) -> LadderStep | None:
        """The picture step in force (None before any rate decision)."""
        return self._rate[1]

    @property
    def source(self) -> Source:
        return self._source

    @property
    def encoder(self) -> Encoder | None:
        return self._encoder

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="media", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and release source and encoder. Idempotent."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._source.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None

    # -- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._source.open()
            last_slate = 0.0
            while True:
                with self._wake:
                    while (
                        not self._stopping
                        and not self._preview_wanted
                        and (self._mode is Mode.OFF or not self._wanted.is_set())
                    ):
                        self._wake.wait()
                    if self._stopping:
                        return
                    mode = self._mode
                    sending = mode is not Mode.OFF and self._wanted.is_set()
                if not sending:  # only the staff's preview asked for a frame
                    self._read_preview()
                    continue
                if mode is Mode.LIVE:
                    captured = self._source.read(timeout=0.5)
                    if captured is None:
                        continue
                    frame = captured.frame
                    if self._preview_wanted:
                        self._keep_preview(captured)
                    if self._drop_this_frame():
                        continue
                    if captured.slate:
                        self.keyframe(KeyframeReason.SLATE)
                    elif self._filter is not None:
                        frame = self._filter(frame)
                    self._encode(frame, captured.captured_at)
                else:  # PAUSED: a slate keyframe every SLATE_PERIOD, nothing from the scanner
                    if self._preview_wanted:
                        self._read_preview()
                    now = time.monotonic()
                    if now - last_slate < SLATE_PERIOD:
                        with self._wake:
                            self._wake.wait(SLATE_PERIOD - (now - last_slate))
                        continue
                    last_slate = now
                    w, h = self._source.width, self._source.height
                    self.keyframe(KeyframeReason.SLATE)
                    self._encode(slate.render(slate.SlateKind.PAUSED, w, h), time.time())
        except Exception:
            logger.exception("media pipeline failed")
            raise
        finally:
            self._source.close()

    def _read_preview(self) -> None:
        captured = self._source.read(timeout=0.5)
        if captured is not None:
            self._keep_preview(captured)
        else:
            with self._wake:  # none in time: the caller gets the last one
                self._preview_wanted = False
                self._wake.notify_all()

    def _keep_preview(self, captured: CapturedFrame) -> None:
        """The staff asked for a picture: convert this one here, in the media thread."""
        picture = None if captured.slate else preview_picture(captured.frame)
        with self._wake:
            self._preview = picture
            self.previews_made += picture is not None
            self._preview_wanted = False
            self._wake.notify_all()

    def _ensure_encoder(self, width: int, height: int) -> Encoder:
        if self._encoder is None:
            self._encoder = self._make_encoder(width, height, self._source.fps)
            self._encoder.request_keyframe()
        return self._encoder

    def _drop_this_frame(self) -> bool:
        """At the half-rate step, every other frame never reaches the encoder."""
        step = self._rate[1]
        self._frame_index += 1
        if step is not None and step.frame_divisor > 1 and self._frame_index % 2:
            self.frames_dropped += 1
            return True
        return False

    def _scaled(self, frame: av.VideoFrame) -> av.VideoFrame:
        step = self._rate[1]
        if step is None or step.scale >= 1.0:
            return frame
        width, height = step.size(frame.width, frame.height)
        scaled = frame.reformat(width=width, height=height, format="yuv420p")
        if self._keep_time_strip:
            from ..capture import timestrip

            src = frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
            h, w = min(timestrip.HEIGHT, height), min(timestrip.WIDTH, width)
            luma = scaled.to_ndarray(format="yuv420p")
            luma[:h, :w] = src.to_ndarray(format="yuv420p")[:h, :w]
            return av.VideoFrame.from_ndarray(luma, format="yuv420p")
        return scaled

    def _apply_rate(self, encoder: Encoder) -> None:
        bitrate, step = self._rate
        if bitrate is not None and bitrate != encoder.bitrate:
            encoder.bitrate = bitrate
        if step is not None:
            encoder.set_frame_divisor(step.frame_divisor)

    def _encode(self, frame: av.VideoFrame, captured_at: float) -> None:
        """Encode ``frame``; every packet carries its frame's capture instant (lip sync: an
        encoder with a delay hands back an earlier frame's packet, found again by its pts)."""
        frame = self._scaled(frame)
        encoder = self._ensure_encoder(frame.width, frame.height)
        self._apply_rate(encoder)
        now = time.monotonic()
        if self.keyframes.take(now):
            encoder.request_keyframe()
        pts = int((now - self._pts_origin) / VIDEO_TIME_BASE)
        captured = self._captured
        captured[pts] = captured_at
        for packet in encoder.encode(frame, pts):
            lipsync.stamp(packet, captured.get(packet.pts or 0, captured_at))
            if packet.is_keyframe:
                self.keyframes_encoded += 1
                self.keyframes.encoded_keyframe(now)
            self._publish(packet)
        self.frames_encoded += 1
        while len(captured) > 8:
            del captured[next(iter(captured))]
        size = (frame.width, frame.height)
        if size != self._encoded_size:
            if self._encoded_size is not None:  # the old size's buffers are free now
                allocator.release_free_memory()
                self.memory_releases += 1
            self._encoded_size = size
