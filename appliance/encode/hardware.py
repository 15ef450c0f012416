"""The Pi 4's hardware H.264 encoder: the V4L2 memory-to-memory node (bcm2835-codec).

:class:`HardwareEncoder` implements :class:`~appliance.encode.base.Encoder` on top of an
:class:`M2MDevice`: :class:`V4L2M2MDevice` is the real one (multi-planar output and capture
queues, the sequence picamera2's ``V4L2Encoder`` uses), :class:`~appliance.encode.fake_m2m.FakeM2M`
stands in for tests. Settings: Constrained Baseline, level 4.0 (4.2 above 1080p30's macroblock
rate), SPS/PPS before every IDR (``REPEAT_SEQ_HEADER``), an IDR every ``keyframe_interval``
seconds (the config's backstop; the policy: :mod:`appliance.encode.keyframes`) and on
:meth:`~HardwareEncoder.request_keyframe` (``FORCE_KEY_FRAME``), the bitrate changed while
running (``VIDEO_BITRATE`` through ``S_CTRL`` while streaming: no restart, no IDR).
The encoder is 1920 pixels wide at most; a new frame size restarts it.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
from dataclasses import dataclass
from typing import Any, Protocol, cast

import av
import numpy as np

from ..capture import v4l2
from ..capture.v4l2 import DeviceInfo
from ..errors import DeviceError
from .base import NAL_IDR, VIDEO_TIME_BASE, nal_types
from .keyframes import gop_frames

logger = logging.getLogger(__name__)

MAX_WIDTH = 1920
LEVEL_4_0_MBPS = 245_760  # macroblocks per second level 4.0 allows (1080p30 needs 244,800)
OUTPUT_BUFFERS = 4
CAPTURE_BUFFERS = 4
CAPTURE_SIZE = 1 << 20  # one encoded frame at most


@dataclass(frozen=True)
class EncodedBuffer:
    data: bytes
    keyframe: bool
    timestamp: int  # the timestamp given with the frame, copied through by the driver


class M2MDevice(Protocol):
    """What the encoder needs from the M2M node. Errors are ``OSError`` with the errno."""

    def open(self) -> DeviceInfo: ...

    def set_control(self, cid: int, value: int) -> None: ...

    def start(self, width: int, height: int) -> tuple[int, int]:
        """S_FMT (YU12 in, H264 out), buffers, STREAMON; returns (bytesperline, sizeimage)."""

    def encode(self, data: bytes, timestamp: int, timeout: float) -> list[EncodedBuffer]:
        """Queue one raw frame; return whatever encoded buffers are ready within ``timeout``."""

    def stop(self) -> None: ...

    def close(self) -> None: ...


def level_for(width: int, height: int, fps: float) -> int:
    """The H.264 level control value for ``width`` x ``height`` at ``fps``."""
    mbps = ((width + 15) // 16) * ((height + 15) // 16) * fps
    return v4l2.H264_LEVEL_4_0 if mbps <= LEVEL_4_0_MBPS else v4l2.H264_LEVEL_4_2


class HardwareEncoder:
    """H.264 through an :class:`M2MDevice`, implementing :class:`~appliance.encode.base.Encoder`."""

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        bitrate: int,
        keyframe_interval: float,
        device: M2MDevice | None = None,
        device_path: str = "/dev/video11",
    ) -> None:
        self._device: M2MDevice = device or V4L2M2MDevice(device_path)
        self._fps = fps
        self._bitrate = bitrate
        self._keyframe_interval = keyframe_interval
        self._lock = threading.Lock()
        self._keyframe_requested = True
        self._bitrate_changed = False
        self._divisor = 1
        self._size = (0, 0)
        self._layout = (0, 0)
        self._closed = False
        try:
            info = self._device.open()
        except OSError as exc:
            raise DeviceError(f"cannot open the hardware encoder {device_path}: {exc}") from exc
        logger.info("hardware encoder: %s", info.card or info.driver)
        self._start(width, height)

    @property
    def bitrate(self) -> int:
        return self._bitrate

    @bitrate.setter
    def bitrate(self, value: int) -> None:
        with self._lock:
            if value != self._bitrate:
                self._bitrate = value
                self._bitrate_changed = True  # applied live before the next frame, no IDR

    @property
    def frame_divisor(self) -> int:
        """The caller keeps one frame in this many (1 or 2: the ladder's half-rate step)."""
        return self._divisor

    def set_frame_divisor(self, divisor: int) -> None:
        """Tell the encoder the caller now passes one frame in ``divisor``.

        The encoder's rate control budgets bits per frame at the frame rate it assumes, so the
        control is given ``bitrate x divisor`` to keep the bitrate (live, no IDR). To be checked
        on a Pi 4: docs/rate-control.md.
        """
        if divisor not in (1, 2):
            raise ValueError("the frame divisor is 1 or 2")
        with self._lock:
            if divisor != self._divisor:
                self._divisor = divisor
                self._bitrate_changed = True

    def request_keyframe(self) -> None:
        with self._lock:
            self._keyframe_requested = True

    def encode(self, frame: av.VideoFrame, pts: int) -> list[av.Packet]:
        if self._closed:
            raise DeviceError("the hardware encoder is closed")
        if (frame.width, frame.height) != self._size:
            logger.info("frame size %dx%d: restarting the encoder", frame.width, frame.height)
            self._device.stop()
            self._start(frame.width, frame.height)
        with self._lock:
            force, self._keyframe_requested = self._keyframe_requested, False
            bitrate_changed, self._bitrate_changed = self._bitrate_changed, False
        try:
            if bitrate_changed:
                self._device.set_control(v4l2.CID_MPEG_VIDEO_BITRATE, self._bitrate * self._divisor)
            if force:
                self._device.set_control(v4l2.CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1)
            data = _pack_i420(frame, *self._layout)
            out = self._device.encode(data, pts, timeout=1.0)
        except OSError as exc:
            raise DeviceError(f"hardware encoder failed: {exc}") from exc
        packets = []
        for buf in out:
            packet = av.Packet(buf.data)
            packet.pts = packet.dts = buf.timestamp
            packet.time_base = VIDEO_TIME_BASE
            packet.is_keyframe = buf.keyframe or NAL_IDR in nal_types(buf.data)
            packets.append(packet)
        return packets

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._device.stop()
            self._device.close()

    def _start(self, width: int, height: int) -> None:
        if width > MAX_WIDTH or width % 2 or height % 2:
            raise DeviceError(f"the hardware encoder cannot take {width}x{height} (max width 1920)")
        dev = self._device
        gop = gop_frames(self._fps, self._keyframe_interval)
        try:
            controls = [
                (v4l2.CID_MPEG_VIDEO_H264_PROFILE, v4l2.H264_PROFILE_CONSTRAINED_BASELINE),
                (v4l2.CID_MPEG_VIDEO_H264_LEVEL, level_for(width, height, self._fps)),
                (v4l2.CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 1),
                (v4l2.CID_MPEG_VIDEO_H264_I_PERIOD, gop),
                (v4l2.CID_MPEG_VIDEO_BITRATE, self._bitrate * self._divisor),
            ]
            for cid, value in controls:
                dev.set_control(cid, value)
            self._layout = dev.start(width, height)
        except OSError as exc:
            raise DeviceError(
                f"cannot start the hardware encoder at {width}x{height}: {exc}"
            ) from exc
        self._size = (width, height)
        with self._lock:
            self._keyframe_requested = True
            self._bitrate_changed = False
        logger.info(
            "hardware encoder %dx%d at %.3g fps, %d kbit/s, IDR every %d frames",
            width,
            height,
            self._fps,
            self._bitrate // 1000,
            gop,
        )


def _pack_i420(frame: av.VideoFrame, stride: int, size: int) -> bytes:
    """The frame as the encoder's YU12 buffer: ``stride``-wide rows, planes padded in height."""
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    w, h = frame.width, frame.height
    rows = size * 2 // (3 * stride)  # the luma plane's height as the driver lays it out
    out = np.zeros(size, np.uint8)
    y = out[: stride * rows].reshape(rows, stride)
    u = out[stride * rows : stride * rows * 5 // 4].reshape(rows // 2, stride // 2)
    v = out[stride * rows * 5 // 4 : stride * rows * 3 // 2].reshape(rows // 2, stride // 2)
    for plane, dst, pw, ph in zip(
        frame.planes, (y, u, v), (w, w // 2, w // 2), (h, h // 2, h // 2), strict=True
    ):
        src = np.frombuffer(cast(Any, plane), np.uint8).reshape(-1, plane.line_size)
        dst[:ph, :pw] = src[:ph, :pw]
    return out.tobytes()


# -- the real device ------------------------------------------------------------------------------

_OUT = v4l2.BUF_TYPE_VIDEO_OUTPUT_MPLANE
_CAP = v4l2.BUF_TYPE_VIDEO_CAPTURE_MPLANE


class V4L2M2MDevice:
    """bcm2835-codec's encoder node: YU12 frames in (mmap), H.264 out (mmap)."""

    def __init__(self, path: str = "/dev/video11") -> None:
        self._path = path
        self._node: v4l2.VideoNode | None = None
        self._out_maps: list[mmap.mmap] = []
        self._cap_maps: list[mmap.mmap] = []
        self._free: list[int] = []
        self._streaming = False

    @property
    def node(self) -> v4l2.VideoNode:
        if self._node is None:
            raise OSError(9, "the encoder is not open")
        return self._node

    def open(self) -> DeviceInfo:
        if not os.path.exists(self._path):
            raise FileNotFoundError(2, "no such device", self._path)
        self._node = v4l2.VideoNode(self._path)
        info = self._node.querycap()
        if not info.capabilities & v4l2.CAP_VIDEO_M2M_MPLANE:
            self.close()
            raise OSError(19, f"{self._path} ({info.driver}) is not a multi-planar M2M device")
        return info

    def set_control(self, cid: int, value: int) -> None:
        self.node.set_control(cid, value)

    def start(self, width: int, height: int) -> tuple[int, int]:
        node = self.node
        fmt = v4l2.Format(type=_OUT)
        mp = fmt.fmt.pix_mp
        mp.width, mp.height, mp.pixelformat, mp.field = width, height, v4l2.PIX_FMT_YUV420, 1
        mp.colorspace, mp.num_planes = v4l2.COLORSPACE_SMPTE170M, 1
        mp.plane_fmt[0].bytesperline = (width + 31) // 32 * 32
        got = node.set_format(fmt).fmt.pix_mp
        layout = (int(got.plane_fmt[0].bytesperline), int(got.plane_fmt[0].sizeimage))
        fmt = v4l2.Format(type=_CAP)
        mp = fmt.fmt.pix_mp
        mp.width, mp.height, mp.pixelformat, mp.field = width, height, v4l2.PIX_FMT_H264, 1
        mp.num_planes = 1
        mp.plane_fmt[0].sizeimage = CAPTURE_SIZE
        node.set_format(fmt)
        self._out_maps = self._map(_OUT, OUTPUT_BUFFERS)
        self._cap_maps = self._map(_CAP, CAPTURE_BUFFERS)
        self._free = list(range(len(self._out_maps)))
        for i in range(len(self._cap_maps)):
            node.queue(_mbuf(_CAP, i)[0])
        node.stream_on(_OUT)
        node.stream_on(_CAP)
        self._streaming = True
        return layout

    def _map(self, buf_type: int, count: int) -> list[mmap.mmap]:
        node = self.node
        got = node.request_buffers(buf_type, v4l2.MEMORY_MMAP, count)
        maps = []
        for i in range(got):
            buf, planes = _mbuf(buf_type, i)
            node.query_buffer(buf)
            maps.append(node.mmap(planes[0].m.mem_offset, planes[0].length))
        return maps

    def encode(self, data: bytes, timestamp: int, timeout: float) -> list[EncodedBuffer]:
        node = self.node
        self._reclaim()
        if not self._free:
            raise OSError(16, "no free encoder input buffer")  # EBUSY: the encoder is stuck
        index = self._free.pop(0)
        self._out_maps[index][: len(data)] = data
        buf, planes = _mbuf(_OUT, index)
        planes[0].bytesused = planes[0].length = len(data)
        buf.timestamp.tv_sec, buf.timestamp.tv_usec = divmod(timestamp, 1_000_000)
        node.queue(buf)
        out: list[EncodedBuffer] = []
        ready, _, _ = node.wait(timeout)
        while ready:
            cap, cplanes = _mbuf(_CAP, 0)
            if node.dequeue(cap) is None:
                break
            used = cplanes[0].bytesused
            data_out = bytes(self._cap_maps[cap.index][:used])
            ts = cap.timestamp.tv_sec * 1_000_000 + cap.timestamp.tv_usec
            node.queue(_mbuf(_CAP, cap.index)[0])
            if used:
                out.append(EncodedBuffer(data_out, bool(cap.flags & v4l2.BUF_FLAG_KEYFRAME), ts))
            ready, _, _ = node.wait(0)
        return out

    def _reclaim(self) -> None:
        while True:
            buf, _ = _mbuf(_OUT, 0)
            if self.node.dequeue(buf) is None:
                return
            self._free.append(buf.index)

    def stop(self) -> None:
        node = self._node
        if node is None:
            return
        if self._streaming:
            self._streaming = False
            for t in (_OUT, _CAP):
                try:
                    node.stream_off(t)
                except OSError as exc:
                    logger.debug("STREAMOFF: %s", exc)
        for m in self._out_maps + self._cap_maps:
            m.close()
        for t, maps in ((_OUT, self._out_maps), (_CAP, self._cap_maps)):
            if maps:
                try:
                    node.request_buffers(t, v4l2.MEMORY_MMAP, 0)
                except OSError as exc:
                    logger.debug("REQBUFS 0: %s", exc)
        self._out_maps, self._cap_maps, self._free = [], [], []

    def close(self) -> None:
        self.stop()
        if self._node is not None:
            self._node.close()
            self._node = None


def _mbuf(buf_type: int, index: int) -> tuple[v4l2.Buffer, Any]:
    """A multi-planar buffer with one plane (the plane array must outlive the ioctl)."""
    planes = (v4l2.Plane * 1)()
    buf = v4l2.Buffer(index=index, type=buf_type, memory=v4l2.MEMORY_MMAP, length=1)
    buf.m.planes = cast(Any, planes)  # ctypes keeps the array alive in buf._objects
    return buf, planes
