"""Software H.264 with PyAV's libx264: for the Pi 5 (no hardware encoder) and for PCs.

Constrained Baseline (no B-frames, CAVLC), ``ultrafast`` + ``zerolatency`` (no lookahead, sliced
threads, one frame in, one frame out), SPS/PPS repeated before every IDR, a keyframe every
``keyframe_interval`` seconds as a backstop (the config's ``encode.keyframe_interval``) and
whenever :meth:`request_keyframe` is called (the policy: :mod:`appliance.encode.keyframes`).

The bitrate changes live, without a keyframe: FFmpeg's libx264 wrapper hands a new
``bit_rate`` to ``x264_encoder_reconfig`` before the next frame, and x264 takes it as long as
VBV was on from the start *and* the codec context's own ``rc_max_rate``/``rc_buffer_size`` match
x264's (so they are given as the ``maxrate``/``bufsize`` options, not in ``x264-params``, or the
wrapper switches VBV off on the first frame and every later bitrate is ignored), and x264 is
opened with its bitrate equal to the VBV maxrate (otherwise its rate control remembers the whole
past and takes tens of seconds to follow a new rate: measured). PyAV cannot
change ``rc_max_rate`` on an open context, so the VBV is sized once for ``max_bitrate`` at half
the frame rate (see :meth:`SoftwareEncoder.set_frame_divisor`); only a rate above that reopens
the encoder (with an IDR), as a new frame size does.
"""

from __future__ import annotations

import logging
import threading
from fractions import Fraction

import av
from av.video.codeccontext import VideoCodecContext

from ..errors import DeviceError
from .base import VIDEO_TIME_BASE
from .keyframes import gop_frames

logger = logging.getLogger(__name__)


class SoftwareEncoder:
    """libx264 through PyAV, implementing :class:`~appliance.encode.base.Encoder`."""

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        bitrate: int,
        keyframe_interval: float,
        threads: int = 2,
        max_bitrate: int | None = None,
    ) -> None:
        self._fps = fps
        self._bitrate = bitrate
        self._max_bitrate = max(bitrate, max_bitrate or bitrate)
        self._divisor = 1
        self._live_rate = False
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
        # Live (no IDR) up to max_bitrate; above it the VBV is too small: reopen, with an IDR.
        with self._lock:
            if value != self._bitrate:
                self._bitrate = value
                if value > self._max_bitrate:
                    self._max_bitrate = value
                    self._reopen = True
                    self._keyframe_requested = True
                else:
                    self._live_rate = True

    @property
    def frame_divisor(self) -> int:
        """The caller keeps one frame in this many (1 or 2: the ladder's half-rate step)."""
        return self._divisor

    def set_frame_divisor(self, divisor: int) -> None:
        """Tell the encoder the caller now drops frames so one in ``divisor`` comes through.

        x264 budgets bits per frame at the frame rate it was opened with, not by timestamps:
        the rate it is given is scaled by ``divisor`` so the bitrate stays the same. No IDR.
        """
        if divisor not in (1, 2):
            raise ValueError("the frame divisor is 1 or 2")
        with self._lock:
            if divisor != self._divisor:
                self._divisor = divisor
                self._live_rate = True

    def request_keyframe(self) -> None:
        with self._lock:
            self._keyframe_requested = True

    def encode(self, frame: av.VideoFrame, pts: int) -> list[av.Packet]:
        with self._lock:
            force = self._keyframe_requested
            self._keyframe_requested = False
            reopen = self._reopen
            self._reopen = False
            live, self._live_rate = self._live_rate, False
        if reopen or (frame.width, frame.height) != self._size:
            self._open(frame.width, frame.height)
            force = True
        codec = self._codec
        if codec is None:
            raise DeviceError("the software encoder is closed")
        if live:
            codec.bit_rate = self._bitrate * self._divisor  # x264 reconfigures before this frame
            logger.debug("software encoder: %d kbit/s live", self._bitrate // 1000)
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
        gop = gop_frames(self._fps, self._keyframe_interval)
        # A VBV buffer of about one frame keeps every frame near the mean size: no burst that
        # would sit in the pacer or the viewer's jitter buffer. Sized for max_bitrate at half
        # the frame rate (x264's per-frame budget doubles then), so both change live.
        vbv_kbit = max(1, 2 * self._max_bitrate // 1000)
        buf_kbit = max(1, int(vbv_kbit / self._fps * 1.1))
        codec = av.CodecContext.create("libx264", "w")
        codec.width = width
        codec.height = height
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.framerate = Fraction(self._fps).limit_denominator(1001)
        # Opened at the VBV's maxrate (x264 then keeps a short rate-control memory, as in CBR,
        # and follows a new rate within frames); the real rate is set live before frame one.
        codec.bit_rate = vbv_kbit * 1000
        codec.gop_size = gop
        codec.max_b_frames = 0
        codec.thread_count = self._threads
        codec.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "forced-idr": "1",
            # in the codec context, not x264-params: see the module's docstring
            "maxrate": f"{vbv_kbit}k",
            "bufsize": f"{buf_kbit}k",
            "x264-params": (
                f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1:aud=0"
                f":nal-hrd=none:annexb=1:sliced-threads=1"
            ),
        }
        try:
            codec.open()
        except av.error.FFmpegError as exc:  # pragma: no cover - libx264 missing in PyAV
            raise DeviceError(f"cannot open libx264: {exc}") from exc
        self._codec = codec
        self._size = (width, height)
        with self._lock:
            self._live_rate = True
        logger.info(
            "software encoder %dx%d at %.3g fps, %d kbit/s, keyframe every %d frames",
            width,
            height,
            self._fps,
            self._bitrate // 1000,
            gop,
        )
