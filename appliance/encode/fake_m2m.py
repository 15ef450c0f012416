"""A fake of the Pi 4's M2M H.264 encoder node for tests, making real H.264 with libx264.

It takes the same controls and buffer layout as bcm2835-codec (YU12 with a 32-aligned stride and
16-aligned plane height in, Annex B out with the KEYFRAME flag), refuses frames wider than 1920,
and records every control it was given, so tests see what the real device would have been told.
Its own limits: the picture is always Baseline. A bitrate given while running is recorded and
applied live, as the real encoder does (x264 reconfigured before the next frame, no IDR).
"""

from __future__ import annotations

import errno
from fractions import Fraction
from typing import Any, cast

import av
import numpy as np

from ..capture import v4l2
from ..capture.v4l2 import DeviceInfo
from .hardware import MAX_WIDTH, EncodedBuffer

_VBV_MAXRATE = 20_000_000  # the highest bitrate the fake follows live

_KNOWN = {
    v4l2.CID_MPEG_VIDEO_H264_PROFILE,
    v4l2.CID_MPEG_VIDEO_H264_LEVEL,
    v4l2.CID_MPEG_VIDEO_REPEAT_SEQ_HEADER,
    v4l2.CID_MPEG_VIDEO_H264_I_PERIOD,
    v4l2.CID_MPEG_VIDEO_BITRATE,
    v4l2.CID_MPEG_VIDEO_FORCE_KEY_FRAME,
    v4l2.CID_MPEG_VIDEO_BITRATE_MODE,
}


class FakeM2M:
    """bcm2835-codec-encode, as far as :class:`~appliance.encode.hardware.HardwareEncoder` sees."""

    def __init__(self, present: bool = True) -> None:
        self.present = present
        self.controls: dict[int, int] = {}
        self.history: list[tuple[int, int, bool]] = []  # (control, value, while streaming)
        self.starts: list[tuple[int, int]] = []
        self.frames_in = 0
        self._codec: Any = None
        self._layout = (0, 0)
        self._size = (0, 0)
        self._force = False
        self._opened = False

    def open(self) -> DeviceInfo:
        if not self.present:
            raise FileNotFoundError(errno.ENOENT, "no such device", "/dev/video11")
        self._opened = True
        return DeviceInfo(
            "bcm2835-codec", "bcm2835-codec-encode", "platform:fake", v4l2.CAP_VIDEO_M2M_MPLANE
        )

    @property
    def streaming(self) -> bool:
        return self._codec is not None

    def set_control(self, cid: int, value: int) -> None:
        if not self._opened:
            raise OSError(errno.EBADF, "not open")
        if cid not in _KNOWN:
            raise OSError(errno.EINVAL, f"unknown control {cid:#x}")
        self.history.append((cid, value, self.streaming))
        if cid == v4l2.CID_MPEG_VIDEO_FORCE_KEY_FRAME:
            self._force = True
        else:
            self.controls[cid] = value
        if cid == v4l2.CID_MPEG_VIDEO_BITRATE and self._codec is not None:
            self._codec.bit_rate = value  # the real encoder takes it live too

    def start(self, width: int, height: int) -> tuple[int, int]:
        if width > MAX_WIDTH:
            raise OSError(errno.EINVAL, f"width {width} > {MAX_WIDTH}")
        c = self.controls
        if c.get(v4l2.CID_MPEG_VIDEO_H264_PROFILE) != v4l2.H264_PROFILE_CONSTRAINED_BASELINE:
            raise OSError(errno.EINVAL, "the test fake only does Constrained Baseline")
        gop = c.get(v4l2.CID_MPEG_VIDEO_H264_I_PERIOD, 60)
        repeat = c.get(v4l2.CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 0)
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.time_base = Fraction(1, 90_000)
        codec.framerate = Fraction(30)
        # VBV in the codec context and x264 opened at its maxrate: a later bit_rate applies live
        # (see appliance.encode.software)
        codec.bit_rate = _VBV_MAXRATE
        codec.gop_size = gop
        codec.max_b_frames = 0
        codec.thread_count = 1
        codec.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "forced-idr": "1",
            "maxrate": f"{_VBV_MAXRATE // 1000}k",
            "bufsize": f"{_VBV_MAXRATE // 1000 // 15}k",
            "x264-params": f"keyint={gop}:scenecut=0:repeat-headers={repeat}:annexb=1",
        }
        codec.open()
        codec.bit_rate = c.get(v4l2.CID_MPEG_VIDEO_BITRATE, 10_000_000)
        self._codec = codec
        stride = (width + 31) // 32 * 32
        rows = (height + 15) // 16 * 16
        self._layout = (stride, stride * rows * 3 // 2)
        self._size = (width, height)
        self.starts.append((width, height))
        return self._layout

    def encode(self, data: bytes, timestamp: int, timeout: float) -> list[EncodedBuffer]:
        if self._codec is None:
            raise OSError(errno.EINVAL, "not streaming")
        stride, size = self._layout
        if len(data) != size:
            raise OSError(errno.EINVAL, f"buffer of {len(data)} bytes, expected {size}")
        w, h = self._size
        rows = size * 2 // (3 * stride)
        buf = np.frombuffer(data, np.uint8)
        frame = av.VideoFrame(w, h, "yuv420p")
        planes = (
            buf[: stride * rows].reshape(rows, stride),
            buf[stride * rows : stride * rows * 5 // 4].reshape(rows // 2, stride // 2),
            buf[stride * rows * 5 // 4 :].reshape(rows // 2, stride // 2),
        )
        for plane, src, pw, ph in zip(
            frame.planes, planes, (w, w // 2, w // 2), (h, h // 2, h // 2), strict=True
        ):
            dst = np.frombuffer(cast(Any, plane), np.uint8).reshape(-1, plane.line_size)
            dst[:ph, :pw] = src[:ph, :pw]
        frame.pts = self.frames_in * 3000
        frame.time_base = Fraction(1, 90_000)
        kind = av.video.frame.PictureType
        frame.pict_type = kind.I if self._force else kind.NONE
        self._force = False
        self.frames_in += 1
        return [
            EncodedBuffer(bytes(p), bool(p.is_keyframe), timestamp)
            for p in self._codec.encode(frame)
        ]

    def stop(self) -> None:
        self._codec = None

    def close(self) -> None:
        self.stop()
        self._opened = False
