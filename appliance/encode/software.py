"""Software H.264 with PyAV's libx264: for the Pi 5 (no hardware encoder) and for PCs.

Constrained Baseline (no B-frames, CAVLC), ``ultrafast`` + ``zerolatency`` (no lookahead, sliced
threads, one frame in, one frame out), SPS/PPS repeated before every IDR, a keyframe every
``keyframe_interval`` seconds as a backstop and whenever :meth:`request_keyframe` is called.
"""

from __future__ import annotations

import logging
import threading
from fractions import Fraction

import av
from av.video.codeccontext import VideoCodecContext

from ..errors import DeviceError
from .base import VIDEO_TIME_BASE

logger = logging.getLogger(__name__)


class SoftwareEncoder:
    """libx264 through PyAV, implementing :class:`~appliance.encode.base.Encoder`."""

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        bitrate: int = 4_000_000,
        keyframe_interval: float = 2.0,
        threads: int = 2,
    ) -> None:
        self._fps = fps
        self._bitrate = bitrate
        self._keyframe_interval = keyframe_interval
        self._threads = threads
        self._lock = threading.Lock()
        self._keyframe_requested = False
        self._reopen = False
        self._codec: VideoCodecContext | None = None
        self._size = (width, height)
        self._open(width, height)

    @property
    def bitrate(self) -> int:
        return self._bitrate

    @bitrate.setter
    def bitrate(self, value: int) -> None:
        # libx264 takes a new rate only on re-open through PyAV; it happens on the next IDR.
        with self._lock:
            if value != self._bitrate:
                self._bitrate = value
                self._reopen = True
                self._keyframe_requested = True

    def request_keyframe(self) -> None:
        with self._lock:
            self._keyframe_requested = True

    def encode(self, frame: av.VideoFrame, pts: int) -> list[av.Packet]:
        with self._lock:
            force = self._keyframe_requested
            self._keyframe_requested = False
            reopen = self._reopen
            self._reopen = False
        if reopen or (frame.width, frame.height) != self._size:
            self._open(frame.width, frame.height)
            force = True
        codec = self._codec
        if codec is None:
            raise DeviceError("the software encoder is closed")
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = av.video.frame.PictureType.I if force else av.video.frame.PictureType.NONE
        packets = list(codec.encode(frame))
        for packet in packets:
            packet.time_base = VIDEO_TIME_BASE
        return packets

    def close(self) -> None:
        self._codec = None

    def _open(self, width: int, height: int) -> None:
        gop = max(1, round(self._fps * self._keyframe_interval))
        # A VBV buffer of about one frame keeps every frame near the mean size: no burst that
        # would sit in the pacer or the viewer's jitter buffer.
        vbv_kbit = max(1, self._bitrate // 1000)
        buf_kbit = max(1, int(vbv_kbit / self._fps * 1.5))
        codec = av.CodecContext.create("libx264", "w")
        codec.width = width
        codec.height = height
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.framerate = Fraction(self._fps).limit_denominator(1001)
        codec.bit_rate = self._bitrate
        codec.gop_size = gop
        codec.max_b_frames = 0
        codec.thread_count = self._threads
        codec.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "forced-idr": "1",
            "x264-params": (
                f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1:aud=0"
                f":vbv-maxrate={vbv_kbit}:vbv-bufsize={buf_kbit}:nal-hrd=none:annexb=1"
                f":sliced-threads=1"
            ),
        }
        try:
            codec.open()
        except av.error.FFmpegError as exc:  # pragma: no cover - libx264 missing in PyAV
            raise DeviceError(f"cannot open libx264: {exc}") from exc
        self._codec = codec
        self._size = (width, height)
        logger.info(
            "software encoder %dx%d at %.3g fps, %d kbit/s, keyframe every %d frames",
            width,
            height,
            self._fps,
            self._bitrate // 1000,
            gop,
        )
