"""The V4L2 structures as ctypes, laid out as ``linux/videodev2.h`` has them on LP64 Linux.

64-bit ARM and x86-64 lay them out alike; ``tests/test_v4l2.py`` checks every size and the
offsets that matter against the kernel's values. Only what :mod:`.v4l2` needs is here.
"""

from __future__ import annotations

from ctypes import (
    POINTER,
    Structure,
    Union,
    c_char,
    c_int32,
    c_int64,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_ulong,
    c_void_p,
)


class Capability(Structure):
    _fields_ = [
        ("driver", c_char * 16),
        ("card", c_char * 32),
        ("bus_info", c_char * 32),
        ("version", c_uint32),
        ("capabilities", c_uint32),
        ("device_caps", c_uint32),
        ("reserved", c_uint32 * 3),
    ]


class Edid(Structure):
    _fields_ = [
        ("pad", c_uint32),
        ("start_block", c_uint32),
        ("blocks", c_uint32),
        ("reserved", c_uint32 * 5),
        ("edid", POINTER(c_uint8)),
    ]


class Fract(Structure):
    _fields_ = [("numerator", c_uint32), ("denominator", c_uint32)]


class BtTimings(Structure):
    _pack_ = 1
    _fields_ = [
        ("width", c_uint32),
        ("height", c_uint32),
        ("interlaced", c_uint32),
        ("polarities", c_uint32),
        ("pixelclock", c_uint64),
        ("hfrontporch", c_uint32),
        ("hsync", c_uint32),
        ("hbackporch", c_uint32),
        ("vfrontporch", c_uint32),
        ("vsync", c_uint32),
        ("vbackporch", c_uint32),
        ("il_vfrontporch", c_uint32),
        ("il_vsync", c_uint32),
        ("il_vbackporch", c_uint32),
        ("standards", c_uint32),
        ("flags", c_uint32),
        ("picture_aspect", Fract),
        ("cea861_vic", c_uint8),
        ("hdmi_vic", c_uint8),
        ("reserved", c_uint8 * 46),
    ]


class _DvTimingsUnion(Union):
    _pack_ = 1
    _fields_ = [("bt", BtTimings), ("reserved", c_uint32 * 32)]


class DvTimingsStruct(Structure):
    _pack_ = 1
    _anonymous_ = ("u",)
    _fields_ = [("type", c_uint32), ("u", _DvTimingsUnion)]


class PixFormat(Structure):
    _fields_ = [
        ("width", c_uint32),
        ("height", c_uint32),
        ("pixelformat", c_uint32),
        ("field", c_uint32),
        ("bytesperline", c_uint32),
        ("sizeimage", c_uint32),
        ("colorspace", c_uint32),
        ("priv", c_uint32),
        ("flags", c_uint32),
        ("ycbcr_enc", c_uint32),
        ("quantization", c_uint32),
        ("xfer_func", c_uint32),
    ]


class PlanePixFormat(Structure):
    _pack_ = 1
    _fields_ = [("sizeimage", c_uint32), ("bytesperline", c_uint32), ("reserved", c_uint16 * 6)]


class PixFormatMplane(Structure):
    _pack_ = 1
    _fields_ = [
        ("width", c_uint32),
        ("height", c_uint32),
        ("pixelformat", c_uint32),
        ("field", c_uint32),
        ("colorspace", c_uint32),
        ("plane_fmt", PlanePixFormat * 8),
        ("num_planes", c_uint8),
        ("flags", c_uint8),
        ("ycbcr_enc", c_uint8),
        ("quantization", c_uint8),
        ("xfer_func", c_uint8),
        ("reserved", c_uint8 * 7),
    ]


class _FormatUnion(Union):
    # v4l2_window holds pointers, so the union is pointer-aligned: ``fmt`` sits at offset 8.
    _fields_ = [
        ("pix", PixFormat),
        ("pix_mp", PixFormatMplane),
        ("raw_data", c_uint8 * 200),
        ("_align", c_void_p),
    ]


class Format(Structure):
    _fields_ = [("type", c_uint32), ("fmt", _FormatUnion)]


class RequestBuffers(Structure):
    _fields_ = [
        ("count", c_uint32),
        ("type", c_uint32),
        ("memory", c_uint32),
        ("capabilities", c_uint32),
        ("flags", c_uint8),
        ("reserved", c_uint8 * 3),
    ]


class Timeval(Structure):
    _fields_ = [("tv_sec", c_int64), ("tv_usec", c_int64)]


class Timespec(Structure):
    _fields_ = [("tv_sec", c_int64), ("tv_nsec", c_int64)]


class Timecode(Structure):
    _fields_ = [
        ("type", c_uint32),
        ("flags", c_uint32),
        ("frames", c_uint8),
        ("seconds", c_uint8),
        ("minutes", c_uint8),
        ("hours", c_uint8),
        ("userbits", c_uint8 * 4),
    ]


class _PlaneM(Union):
    _fields_ = [("mem_offset", c_uint32), ("userptr", c_ulong), ("fd", c_int32)]


class Plane(Structure):
    _fields_ = [
        ("bytesused", c_uint32),
        ("length", c_uint32),
        ("m", _PlaneM),
        ("data_offset", c_uint32),
        ("reserved", c_uint32 * 11),
    ]


class _BufferM(Union):
    _fields_ = [
        ("offset", c_uint32),
        ("userptr", c_ulong),
        ("planes", POINTER(Plane)),
        ("fd", c_int32),
    ]


class Buffer(Structure):
    _fields_ = [
        ("index", c_uint32),
        ("type", c_uint32),
        ("bytesused", c_uint32),
        ("flags", c_uint32),
        ("field", c_uint32),
        ("timestamp", Timeval),
        ("timecode", Timecode),
        ("sequence", c_uint32),
        ("memory", c_uint32),
        ("m", _BufferM),
        ("length", c_uint32),
        ("reserved2", c_uint32),
        ("request_fd", c_int32),
    ]


class ExportBuffer(Structure):
    _fields_ = [
        ("type", c_uint32),
        ("index", c_uint32),
        ("plane", c_uint32),
        ("flags", c_uint32),
        ("fd", c_int32),
        ("reserved", c_uint32 * 11),
    ]


class EventSubscription(Structure):
    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("flags", c_uint32),
        ("reserved", c_uint32 * 5),
    ]


class _EventUnion(Union):
    # v4l2_event_ctrl has 64-bit members: the union is 8-aligned, so ``u`` sits at offset 8.
    _fields_ = [("data", c_uint8 * 64), ("src_change", c_uint32), ("_align", c_int64)]


class Event(Structure):
    _fields_ = [
        ("type", c_uint32),
        ("u", _EventUnion),
        ("pending", c_uint32),
        ("sequence", c_uint32),
        ("timestamp", Timespec),
        ("id", c_uint32),
        ("reserved", c_uint32 * 8),
    ]


class Control(Structure):
    _fields_ = [("id", c_uint32), ("value", c_int32)]


class _ExtControlValue(Union):
    _pack_ = 1
    _fields_ = [("value", c_int32), ("value64", c_int64), ("ptr", c_void_p)]


class ExtControl(Structure):
    _pack_ = 1
    _anonymous_ = ("u",)
    _fields_ = [
        ("id", c_uint32),
        ("size", c_uint32),
        ("reserved2", c_uint32),
        ("u", _ExtControlValue),
    ]


class ExtControls(Structure):
    _fields_ = [
        ("which", c_uint32),
        ("count", c_uint32),
        ("error_idx", c_uint32),
        ("request_fd", c_int32),
        ("reserved", c_uint32),
        ("controls", POINTER(ExtControl)),
    ]
