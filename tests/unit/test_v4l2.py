"""The ctypes V4L2 layer against the kernel's own numbers (linux/videodev2.h, LP64: arm64 and x86-64)."""

from __future__ import annotations

import errno
import os
from ctypes import sizeof
from pathlib import Path

import pytest

from appliance.capture import bridge, v4l2

# Printed by a C program compiled against linux/videodev2.h and linux/v4l2-subdev.h (x86-64; the
# generic ioctl encoding and LP64 struct layouts are the same on 64-bit ARM).
KERNEL_IOCTLS = {
    "VIDIOC_QUERYCAP": 0x80685600,
    "VIDIOC_S_EDID": 0xC0285629,
    "VIDIOC_G_EDID": 0xC0285628,
    "VIDIOC_SUBDEV_S_EDID": 0xC0285629,
    "VIDIOC_SUBDEV_G_EDID": 0xC0285628,
    "VIDIOC_QUERY_DV_TIMINGS": 0x80845663,
    "VIDIOC_S_DV_TIMINGS": 0xC0845657,
    "VIDIOC_G_DV_TIMINGS": 0xC0845658,
    "VIDIOC_SUBDEV_QUERY_DV_TIMINGS": 0x80845663,
    "VIDIOC_SUBDEV_S_DV_TIMINGS": 0xC0845657,
    "VIDIOC_SUBDEV_G_DV_TIMINGS": 0xC0845658,
    "VIDIOC_S_FMT": 0xC0D05605,
    "VIDIOC_G_FMT": 0xC0D05604,
    "VIDIOC_REQBUFS": 0xC0145608,
    "VIDIOC_QUERYBUF": 0xC0585609,
    "VIDIOC_QBUF": 0xC058560F,
    "VIDIOC_DQBUF": 0xC0585611,
    "VIDIOC_EXPBUF": 0xC0405610,
    "VIDIOC_STREAMON": 0x40045612,
    "VIDIOC_STREAMOFF": 0x40045613,
    "VIDIOC_SUBSCRIBE_EVENT": 0x4020565A,
    "VIDIOC_DQEVENT": 0x80885659,
    "VIDIOC_S_CTRL": 0xC008561C,
    "VIDIOC_G_CTRL": 0xC008561B,
    "VIDIOC_S_EXT_CTRLS": 0xC0205648,
}

KERNEL_SIZES = {
    v4l2.Capability: 104,
    v4l2.Edid: 40,
    v4l2.DvTimingsStruct: 132,
    v4l2.BtTimings: 124,
    v4l2.Format: 208,
    v4l2.PixFormat: 48,
    v4l2.PixFormatMplane: 192,
    v4l2.RequestBuffers: 20,
    v4l2.Buffer: 88,
    v4l2.Plane: 64,
    v4l2.ExportBuffer: 64,
    v4l2.EventSubscription: 32,
    v4l2.Event: 136,
    v4l2.Control: 8,
    v4l2.ExtControls: 32,
    v4l2.ExtControl: 20,
}

KERNEL_OFFSETS = [
    (v4l2.Format, "fmt", 8),
    (v4l2.Buffer, "timestamp", 24),
    (v4l2.Buffer, "sequence", 56),
    (v4l2.Buffer, "m", 64),
    (v4l2.Buffer, "length", 72),
    (v4l2.Buffer, "reserved2", 76),
    (v4l2.Event, "u", 8),
    (v4l2.Event, "pending", 72),
    (v4l2.Event, "timestamp", 80),
    (v4l2.Event, "id", 96),
    (v4l2.DvTimingsStruct, "u", 4),
    (v4l2.BtTimings, "pixelclock", 16),
    (v4l2.BtTimings, "flags", 64),
    (v4l2.ExtControls, "controls", 24),
    (v4l2.ExtControl, "u", 12),
    (v4l2.Plane, "m", 8),
    (v4l2.Plane, "data_offset", 16),
]

KERNEL_CONSTANTS = {
    "CID_MPEG_VIDEO_BITRATE": 0x009909CF,
    "CID_MPEG_VIDEO_H264_PROFILE": 0x00990A6B,
    "CID_MPEG_VIDEO_H264_LEVEL": 0x00990A67,
    "CID_MPEG_VIDEO_REPEAT_SEQ_HEADER": 0x009909E2,
    "CID_MPEG_VIDEO_FORCE_KEY_FRAME": 0x009909E5,
    "CID_MPEG_VIDEO_H264_I_PERIOD": 0x00990A66,
    "CID_MPEG_VIDEO_BITRATE_MODE": 0x009909CE,
    "CID_MPEG_VIDEO_GOP_SIZE": 0x009909CB,
    "H264_LEVEL_4_0": 11,
    "H264_LEVEL_4_2": 13,
    "PIX_FMT_UYVY": 0x59565955,
    "PIX_FMT_BGR24": 0x33524742,
    "PIX_FMT_RGB24": 0x33424752,
    "PIX_FMT_H264": 0x34363248,
    "PIX_FMT_YUV420": 0x32315559,
    "EVENT_SOURCE_CHANGE": 5,
    "BUF_FLAG_KEYFRAME": 8,
    "CAP_VIDEO_M2M_MPLANE": 0x4000,
    "BUF_TYPE_VIDEO_OUTPUT_MPLANE": 10,
    "BUF_TYPE_VIDEO_CAPTURE_MPLANE": 9,
    "MEMORY_DMABUF": 4,
}


@pytest.mark.parametrize(("name", "value"), sorted(KERNEL_IOCTLS.items()))
def test_ioctl_numbers_match_the_kernel(name: str, value: int) -> None:
    assert getattr(v4l2, name) == value, f"{name} = {getattr(v4l2, name):#x}, kernel {value:#x}"


@pytest.mark.parametrize(
    ("struct", "size"), KERNEL_SIZES.items(), ids=lambda x: getattr(x, "__name__", str(x))
)
def test_struct_sizes_match_the_kernel(struct: type, size: int) -> None:
    assert sizeof(struct) == size


@pytest.mark.parametrize(("struct", "field", "offset"), KERNEL_OFFSETS)
def test_field_offsets_match_the_kernel(struct: type, field: str, offset: int) -> None:
    assert getattr(struct, field).offset == offset


@pytest.mark.parametrize(("name", "value"), sorted(KERNEL_CONSTANTS.items()))
def test_constants_match_the_kernel(name: str, value: int) -> None:
    assert getattr(v4l2, name) == value


def test_fourcc_round_trip() -> None:
    assert v4l2.fourcc_str(v4l2.PIX_FMT_UYVY) == "UYVY"
    assert v4l2.fourcc("H264") == v4l2.PIX_FMT_H264


def test_dv_timings_round_trip_through_the_struct() -> None:
    from appliance.capture.edid import MODES

    for t in MODES.values():
        s = t.to_struct()
        assert s.type == v4l2.DV_BT_656_1120
        assert v4l2.DvTimings.from_struct(s) == t
    assert round(MODES["1080p50"].fps, 3) == 50.0
    assert round(MODES["1280x1024p60"].fps, 2) == 60.02
    assert str(MODES["720p60"]) == "1280x720p60.00"


def test_an_ioctl_on_a_non_v4l2_node_raises_the_kernels_errno() -> None:
    node = v4l2.VideoNode(os.devnull)
    try:
        with pytest.raises(OSError) as info:
            node.querycap()
        assert info.value.errno == errno.ENOTTY
        with pytest.raises(OSError):
            node.query_dv_timings()
        with pytest.raises(ValueError, match="128-byte"):
            node.set_edid(b"\x00" * 100)
    finally:
        node.close()
        node.close()  # idempotent


def test_a_missing_node_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        v4l2.VideoNode(str(tmp_path / "video0"))
    b = bridge.V4L2Bridge(str(tmp_path / "video0"))
    with pytest.raises(FileNotFoundError):
        b.open()
    b.close()


def _sysfs(root: Path, nodes: dict[str, str]) -> None:
    for node, name in nodes.items():
        d = root / "sys/class/video4linux" / node
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")


def test_find_bridge_pi4(tmp_path: Path) -> None:
    _sysfs(
        tmp_path,
        {
            "video0": "unicam-image",
            "video1": "unicam-embedded",
            "video10": "bcm2835-codec-decode",
            "v4l-subdev0": "tc358743 10-000f",
        },
    )
    nodes = bridge.find_bridge(tmp_path)
    assert nodes == bridge.BridgeNodes(str(tmp_path / "dev/video0"), None, None)


def test_find_bridge_pi5_with_subdevice_and_media(tmp_path: Path) -> None:
    _sysfs(
        tmp_path,
        {
            "video0": "rp1-cfe-csi2_ch0",
            "video4": "rp1-cfe-fe_image0",
            "v4l-subdev0": "csi2",
            "v4l-subdev2": "tc358743 4-000f",
        },
    )
    (tmp_path / "sys/class/video4linux/video0/device/media2").mkdir(parents=True)
    nodes = bridge.find_bridge(tmp_path)
    assert nodes == bridge.BridgeNodes(
        str(tmp_path / "dev/video0"),
        str(tmp_path / "dev/v4l-subdev2"),
        str(tmp_path / "dev/media2"),
    )


def test_find_bridge_nothing_there(tmp_path: Path) -> None:
    assert bridge.find_bridge(tmp_path) is None
    _sysfs(tmp_path, {"video0": "uvcvideo"})
    assert bridge.find_bridge(tmp_path) is None
    # an explicit path from the config wins
    assert bridge.find_bridge(tmp_path, video="/dev/video7").video == "/dev/video7"  # type: ignore[union-attr]


def test_driver_bound(tmp_path: Path) -> None:
    assert bridge.driver_bound(tmp_path) == []
    drv = tmp_path / "sys/bus/i2c/drivers/tc358743"
    (drv / "10-000f").mkdir(parents=True)
    (drv / "bind").write_text("")
    assert bridge.driver_bound(tmp_path) == ["10-000f"]


def test_pi5_media_graph_commands() -> None:
    ran: list[list[str]] = []
    b = bridge.V4L2Bridge("/dev/video0", "/dev/v4l-subdev2", "/dev/media2", "media-ctl", ran.append)  # type: ignore[arg-type]
    b._bridge_entity = "tc358743 4-000f"
    b._configure_graph(1280, 1024)
    assert ran[0] == [
        "media-ctl",
        "-d",
        "/dev/media2",
        "-V",
        "'tc358743 4-000f':0 [fmt:RGB888_1X24/1280x1024 field:none colorspace:srgb]",
    ]
    assert any("'csi2':4 -> 'rp1-cfe-csi2_ch0':0 [1]" in " ".join(c) for c in ran)
