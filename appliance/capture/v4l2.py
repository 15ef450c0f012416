"""A small ctypes layer over the V4L2 ioctls the appliance uses, and nothing more.

The structures (in :mod:`.v4l2_structs`) mirror ``linux/videodev2.h`` and ``linux/v4l2-subdev.h``
for LP64 Linux (64-bit ARM and x86-64 lay them out alike); ``tests/test_v4l2.py`` checks every
size, offset and ioctl number against the kernel's values. :class:`VideoNode` wraps one open
``/dev/video*`` or ``/dev/v4l-subdev*`` node: each method is one ioctl, errors become
:class:`OSError` with the kernel's errno (``ENOLINK``: no signal, ``ENOLCK``: no lock,
``ERANGE``: timings out of range).
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import select
from ctypes import c_int32, c_uint8, sizeof
from dataclasses import dataclass
from typing import Any

from . import v4l2_structs as _s

# The structures, under the names callers use (v4l2.Format, v4l2.Buffer, ...).
Capability = _s.Capability
Edid = _s.Edid
Fract = _s.Fract
BtTimings = _s.BtTimings
DvTimingsStruct = _s.DvTimingsStruct
PixFormat = _s.PixFormat
PlanePixFormat = _s.PlanePixFormat
PixFormatMplane = _s.PixFormatMplane
Format = _s.Format
RequestBuffers = _s.RequestBuffers
Timeval = _s.Timeval
Timespec = _s.Timespec
Timecode = _s.Timecode
Plane = _s.Plane
Buffer = _s.Buffer
ExportBuffer = _s.ExportBuffer
EventSubscription = _s.EventSubscription
Event = _s.Event
Control = _s.Control
ExtControl = _s.ExtControl
ExtControls = _s.ExtControls

# -- constants (videodev2.h, v4l2-controls.h) ---------------------------------------------------


def fourcc(code: str) -> int:
    """The V4L2 pixel-format number of a four-character code such as ``"UYVY"``."""
    a, b, c, d = (ord(ch) for ch in code)
    return a | b << 8 | c << 16 | d << 24


def fourcc_str(value: int) -> str:
    return "".join(chr((value >> s) & 0xFF) for s in (0, 8, 16, 24))


PIX_FMT_UYVY = fourcc("UYVY")
PIX_FMT_RGB24 = fourcc("RGB3")  # bytes R, G, B (libcamera and DRM call this "BGR888")
PIX_FMT_BGR24 = fourcc("BGR3")  # bytes B, G, R
PIX_FMT_YUV420 = fourcc("YU12")
PIX_FMT_H264 = fourcc("H264")

BUF_TYPE_VIDEO_CAPTURE = 1
BUF_TYPE_VIDEO_OUTPUT = 2
BUF_TYPE_VIDEO_CAPTURE_MPLANE = 9
BUF_TYPE_VIDEO_OUTPUT_MPLANE = 10
MEMORY_MMAP = 1
MEMORY_DMABUF = 4
FIELD_NONE = 1
COLORSPACE_SMPTE170M = 1
COLORSPACE_REC709 = 3
COLORSPACE_SRGB = 8

CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
CAP_VIDEO_M2M_MPLANE = 0x00004000
CAP_VIDEO_M2M = 0x00008000
CAP_STREAMING = 0x04000000
CAP_DEVICE_CAPS = 0x80000000

BUF_FLAG_KEYFRAME = 0x00000008
BUF_FLAG_ERROR = 0x00000040

EVENT_SOURCE_CHANGE = 5
EVENT_SRC_CH_RESOLUTION = 1
DV_BT_656_1120 = 0
DV_VSYNC_POS_POL = 0x1
DV_HSYNC_POS_POL = 0x2

CTRL_CLASS_CODEC = 0x00990000
CID_MPEG_VIDEO_GOP_SIZE = CTRL_CLASS_CODEC | 0x900 + 203
CID_MPEG_VIDEO_BITRATE_MODE = CTRL_CLASS_CODEC | 0x900 + 206
CID_MPEG_VIDEO_BITRATE = CTRL_CLASS_CODEC | 0x900 + 207
CID_MPEG_VIDEO_REPEAT_SEQ_HEADER = CTRL_CLASS_CODEC | 0x900 + 226
CID_MPEG_VIDEO_FORCE_KEY_FRAME = CTRL_CLASS_CODEC | 0x900 + 229
CID_MPEG_VIDEO_H264_LEVEL = CTRL_CLASS_CODEC | 0x900 + 359
CID_MPEG_VIDEO_H264_I_PERIOD = CTRL_CLASS_CODEC | 0x900 + 358
CID_MPEG_VIDEO_H264_PROFILE = CTRL_CLASS_CODEC | 0x900 + 363
CID_DV_RX_POWER_PRESENT = 0x00A00900 + 100  # V4L2_CID_DV_CLASS_BASE + 100: +5 V seen
#: The TC358743's private controls (include/media/i2c/tc358743.h): V4L2_CID_USER_TC358743_BASE
#: = V4L2_CID_USER_BASE + 0x1080; the HDMI audio's sampling rate in Hz (0 without a signal),
#: then whether audio samples come in (the driver updates both on its audio interrupts).
CID_TC358743_AUDIO_SAMPLING_RATE = 0x00980900 + 0x1080
CID_TC358743_AUDIO_PRESENT = CID_TC358743_AUDIO_SAMPLING_RATE + 1
H264_PROFILE_CONSTRAINED_BASELINE = 1
H264_LEVEL_4_0 = 11
H264_LEVEL_4_2 = 13
BITRATE_MODE_CBR = 1

# -- ioctl numbers (asm-generic/ioctl.h, the same on arm64 and x86-64) ---------------------------

_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, nr: int, struct: Any) -> int:
    return direction << 30 | sizeof(struct) << 16 | ord("V") << 8 | nr


def _ior(nr: int, struct: Any) -> int:
    return _ioc(_IOC_READ, nr, struct)


def _iow(nr: int, struct: Any) -> int:
    return _ioc(_IOC_WRITE, nr, struct)


def _iowr(nr: int, struct: Any) -> int:
    return _ioc(_IOC_READ | _IOC_WRITE, nr, struct)


VIDIOC_QUERYCAP = _ior(0, Capability)
VIDIOC_G_FMT = _iowr(4, Format)
VIDIOC_S_FMT = _iowr(5, Format)
VIDIOC_REQBUFS = _iowr(8, RequestBuffers)
VIDIOC_QUERYBUF = _iowr(9, Buffer)
VIDIOC_QBUF = _iowr(15, Buffer)
VIDIOC_EXPBUF = _iowr(16, ExportBuffer)
VIDIOC_DQBUF = _iowr(17, Buffer)
VIDIOC_STREAMON = _iow(18, c_int32)
VIDIOC_STREAMOFF = _iow(19, c_int32)
VIDIOC_G_CTRL = _iowr(27, Control)
VIDIOC_S_CTRL = _iowr(28, Control)
VIDIOC_G_EDID = _iowr(40, Edid)
VIDIOC_S_EDID = _iowr(41, Edid)
VIDIOC_S_EXT_CTRLS = _iowr(72, ExtControls)
VIDIOC_S_DV_TIMINGS = _iowr(87, DvTimingsStruct)
VIDIOC_G_DV_TIMINGS = _iowr(88, DvTimingsStruct)
VIDIOC_DQEVENT = _ior(89, Event)
VIDIOC_SUBSCRIBE_EVENT = _iow(90, EventSubscription)
VIDIOC_QUERY_DV_TIMINGS = _ior(99, DvTimingsStruct)
# A subdevice node takes the same structures under the same numbers (v4l2-subdev.h), and the
# event ioctls are shared outright.
VIDIOC_SUBDEV_G_EDID = VIDIOC_G_EDID
VIDIOC_SUBDEV_S_EDID = VIDIOC_S_EDID
VIDIOC_SUBDEV_S_DV_TIMINGS = VIDIOC_S_DV_TIMINGS
VIDIOC_SUBDEV_G_DV_TIMINGS = VIDIOC_G_DV_TIMINGS
VIDIOC_SUBDEV_QUERY_DV_TIMINGS = VIDIOC_QUERY_DV_TIMINGS


# -- plain values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DvTimings:
    """The part of ``v4l2_bt_timings`` that matters here; round-trips through the struct."""

    width: int
    height: int
    pixelclock: int  # Hz
    hfrontporch: int
    hsync: int
    hbackporch: int
    vfrontporch: int
    vsync: int
    vbackporch: int
    polarities: int = DV_VSYNC_POS_POL | DV_HSYNC_POS_POL
    interlaced: bool = False

    @property
    def total_width(self) -> int:
        return self.width + self.hfrontporch + self.hsync + self.hbackporch

    @property
    def total_height(self) -> int:
        return self.height + self.vfrontporch + self.vsync + self.vbackporch

    @property
    def fps(self) -> float:
        return self.pixelclock / (self.total_width * self.total_height)

    def to_struct(self) -> DvTimingsStruct:
        s = DvTimingsStruct(type=DV_BT_656_1120)
        for name in (
            "width",
            "height",
            "pixelclock",
            "hfrontporch",
            "hsync",
            "hbackporch",
            "vfrontporch",
            "vsync",
            "vbackporch",
            "polarities",
        ):
            setattr(s.bt, name, getattr(self, name))
        s.bt.interlaced = int(self.interlaced)
        return s

    @classmethod
    def from_struct(cls, s: DvTimingsStruct) -> DvTimings:
        bt = s.bt
        return cls(
            bt.width,
            bt.height,
            bt.pixelclock,
            bt.hfrontporch,
            bt.hsync,
            bt.hbackporch,
            bt.vfrontporch,
            bt.vsync,
            bt.vbackporch,
            bt.polarities,
            bool(bt.interlaced),
        )

    def __str__(self) -> str:
        return f"{self.width}x{self.height}{'i' if self.interlaced else 'p'}{self.fps:.2f}"


@dataclass(frozen=True)
class DeviceInfo:
    driver: str
    card: str
    bus_info: str
    capabilities: int  # the node's own capabilities (device_caps when the driver gives them)


# -- one open node --------------------------------------------------------------------------------


class VideoNode:
    """One open V4L2 video or subdevice node; each method is one ioctl."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def ioctl(self, request: int, arg: Any) -> Any:
        """Run one ioctl, retrying on EINTR; errors raise OSError with the kernel's errno."""
        while True:
            try:
                fcntl.ioctl(self.fd, request, arg)
                return arg
            except InterruptedError:
                continue

    def querycap(self) -> DeviceInfo:
        cap = self.ioctl(VIDIOC_QUERYCAP, Capability())
        caps = cap.device_caps if cap.capabilities & CAP_DEVICE_CAPS else cap.capabilities
        return DeviceInfo(
            cap.driver.decode(errors="replace"),
            cap.card.decode(errors="replace"),
            cap.bus_info.decode(errors="replace"),
            caps,
        )

    def set_edid(self, data: bytes, pad: int = 0) -> None:
        if not data or len(data) % 128:
            raise ValueError("an EDID is a whole number of 128-byte blocks")
        buf = (c_uint8 * len(data)).from_buffer_copy(data)
        self.ioctl(VIDIOC_S_EDID, Edid(pad=pad, blocks=len(data) // 128, edid=buf))

    def get_edid(self, pad: int = 0, blocks: int = 2) -> bytes:
        buf = (c_uint8 * (128 * blocks))()
        edid = self.ioctl(VIDIOC_G_EDID, Edid(pad=pad, blocks=blocks, edid=buf))
        return bytes(buf)[: 128 * edid.blocks]

    def query_dv_timings(self) -> DvTimings:
        return DvTimings.from_struct(self.ioctl(VIDIOC_QUERY_DV_TIMINGS, DvTimingsStruct()))

    def set_dv_timings(self, timings: DvTimings) -> None:
        self.ioctl(VIDIOC_S_DV_TIMINGS, timings.to_struct())

    def get_control(self, cid: int) -> int:
        return int(self.ioctl(VIDIOC_G_CTRL, Control(id=cid)).value)

    def set_control(self, cid: int, value: int) -> None:
        self.ioctl(VIDIOC_S_CTRL, Control(id=cid, value=value))

    def set_format(self, fmt: Format) -> Format:
        return self.ioctl(VIDIOC_S_FMT, fmt)  # the driver writes back what it chose

    def get_format(self, buf_type: int) -> Format:
        return self.ioctl(VIDIOC_G_FMT, Format(type=buf_type))

    def request_buffers(self, buf_type: int, memory: int, count: int) -> int:
        return int(self.ioctl(VIDIOC_REQBUFS, RequestBuffers(count, buf_type, memory)).count)

    def query_buffer(self, buf: Buffer) -> Buffer:
        return self.ioctl(VIDIOC_QUERYBUF, buf)

    def queue(self, buf: Buffer) -> None:
        self.ioctl(VIDIOC_QBUF, buf)

    def dequeue(self, buf: Buffer) -> Buffer | None:
        """DQBUF; ``None`` when no buffer is ready (the node is non-blocking)."""
        try:
            return self.ioctl(VIDIOC_DQBUF, buf)
        except BlockingIOError:
            return None

    def export_buffer(self, buf_type: int, index: int, plane: int = 0) -> int:
        """EXPBUF: a DMABUF file descriptor for buffer ``index`` (the caller closes it)."""
        flags = os.O_RDONLY | os.O_CLOEXEC
        exp = ExportBuffer(type=buf_type, index=index, plane=plane, flags=flags)
        return int(self.ioctl(VIDIOC_EXPBUF, exp).fd)

    def stream_on(self, buf_type: int) -> None:
        self.ioctl(VIDIOC_STREAMON, c_int32(buf_type))

    def stream_off(self, buf_type: int) -> None:
        self.ioctl(VIDIOC_STREAMOFF, c_int32(buf_type))

    def subscribe(self, event_type: int) -> None:
        self.ioctl(VIDIOC_SUBSCRIBE_EVENT, EventSubscription(type=event_type))

    def dequeue_event(self) -> Event | None:
        try:
            return self.ioctl(VIDIOC_DQEVENT, Event())
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # no event pending
                return None
            raise

    def mmap(self, offset: int, length: int) -> mmap.mmap:
        return mmap.mmap(
            self.fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, 0, offset
        )

    def wait(self, timeout: float, output: bool = False) -> tuple[bool, bool, bool]:
        """select(): (a capture buffer is ready, an output buffer is done, an event is pending).

        All three are False on timeout. ``output`` also waits for the output queue (M2M).
        """
        fd = self.fd
        r, w, x = select.select([fd], [fd] if output else [], [fd], timeout)
        return bool(r), bool(w), bool(x)


def errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, str(exc.errno))
