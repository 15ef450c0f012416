"""The TC358743 HDMI-to-CSI-2 bridge as :class:`~appliance.capture.hdmi.HdmiSource` needs it.

:class:`Bridge` is the interface; :class:`V4L2Bridge` drives the real device through the ioctl
layer in :mod:`.v4l2`, and :class:`~appliance.capture.fake_v4l2.FakeTC358743` stands in for it in
tests. Two layouts exist:

- Pi 4 (unicam): everything on the bridge's video node, which passes EDID, DV timings and
  SOURCE_CHANGE events through to the bridge.
- Pi 5 (rp1-cfe): a media graph. EDID, DV timings and events go to the bridge's subdevice node
  (``/dev/v4l-subdevN``), ``media-ctl`` sets the pad formats along the graph, and the video node
  only streams.
"""

from __future__ import annotations

import logging
import mmap
import os
import select
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import v4l2
from .v4l2 import DeviceInfo, DvTimings

logger = logging.getLogger(__name__)

#: The video node's name in sysfs, per board (the bridge feeds it).
PI4_VIDEO_NAME = "unicam-image"
PI5_VIDEO_NAME = "rp1-cfe-csi2_ch0"
BRIDGE_NAME_PREFIX = "tc358743"
#: The media-bus code the Pi 5 graph carries (RGB888_1X24).
PI5_MBUS_FORMAT = "RGB888_1X24"


@dataclass(frozen=True)
class StreamFormat:
    width: int
    height: int
    pixelformat: int
    bytesperline: int
    sizeimage: int


@dataclass(frozen=True)
class RawFrame:
    """One dequeued capture buffer. ``data`` is valid until :meth:`Bridge.requeue`."""

    index: int
    data: memoryview
    sequence: int
    timestamp: float  # the driver's monotonic timestamp, seconds


class Bridge(Protocol):
    """What the HDMI source needs from the bridge. Errors are ``OSError`` with the errno."""

    def open(self) -> DeviceInfo:
        """Open the nodes; ``OSError`` (ENOENT, ENODEV...) when the bridge is missing."""

    def close(self) -> None: ...

    def set_edid(self, data: bytes) -> None: ...

    def get_edid(self) -> bytes:
        """The EDID the bridge presents now (empty when none is loaded)."""

    def cable_present(self) -> bool | None:
        """+5 V from the source seen (``V4L2_CID_DV_RX_POWER_PRESENT``), None if unknown."""

    def query_dv_timings(self) -> DvTimings:
        """The incoming timings; ENOLINK: no signal, ENOLCK: cannot lock, ERANGE: too fast."""

    def set_dv_timings(self, timings: DvTimings) -> None: ...

    def set_format(self, width: int, height: int, pixelformat: int) -> StreamFormat:
        """Set the capture format (and on a Pi 5 the media graph's pad formats)."""

    def subscribe_source_change(self) -> None: ...

    def start_streaming(self, count: int) -> None:
        """REQBUFS (mmap), QUERYBUF, mmap, QBUF every buffer, STREAMON."""

    def stop_streaming(self) -> None:
        """STREAMOFF, unmap, REQBUFS 0. Idempotent."""

    def wait(self, timeout: float) -> tuple[bool, bool]:
        """(a frame is ready, an event is pending); both False on timeout."""

    def dequeue_event(self) -> int | None:
        """The next SOURCE_CHANGE event's ``changes`` bits, or None when none is pending."""

    def dequeue_frame(self) -> RawFrame | None: ...

    def requeue(self, index: int) -> None: ...

    def export_buffer(self, index: int) -> int:
        """A DMABUF fd for capture buffer ``index`` (EXPBUF), for a zero-copy encoder."""


# -- the real device ------------------------------------------------------------------------------

Runner = Callable[[Sequence[str]], None]


def _run(argv: Sequence[str]) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=10)


class V4L2Bridge:
    """The bridge through raw V4L2 (Pi 4: ``subdev=None``; Pi 5: with the subdevice and media)."""

    def __init__(
        self,
        video: str,
        subdev: str | None = None,
        media: str | None = None,
        media_ctl: str = "media-ctl",
        run: Runner = _run,
        discover: Callable[[], BridgeNodes | None] | None = None,
    ) -> None:
        self._discover = discover
        self._video_path = video
        self._subdev_path = subdev
        self._media = media
        self._media_ctl = media_ctl
        self._run = run
        self._video: v4l2.VideoNode | None = None
        self._subdev: v4l2.VideoNode | None = None
        self._maps: list[mmap.mmap] = []
        self._streaming = False
        self._bridge_entity = ""

    @property
    def _control(self) -> v4l2.VideoNode:
        node = self._subdev or self._video
        if node is None:
            raise OSError(9, "the bridge is not open")  # EBADF
        return node

    @property
    def _node(self) -> v4l2.VideoNode:
        if self._video is None:
            raise OSError(9, "the bridge is not open")
        return self._video

    def open(self) -> DeviceInfo:
        self.close()
        if self._discover is not None:  # the nodes may appear late (driver loading, replug)
            nodes = self._discover()
            if nodes is None:
                raise FileNotFoundError(2, "no TC358743 video node found")
            self._video_path, self._subdev_path, self._media = (
                nodes.video,
                nodes.subdev,
                nodes.media,
            )
        self._video = v4l2.VideoNode(self._video_path)
        try:
            info = self._video.querycap()
            if not info.capabilities & v4l2.CAP_VIDEO_CAPTURE:
                raise OSError(19, f"{self._video_path} ({info.driver}) cannot capture")  # ENODEV
            if self._subdev_path:
                self._subdev = v4l2.VideoNode(self._subdev_path)
                self._bridge_entity = _sysfs_name(self._subdev_path) or "tc358743"
        except BaseException:
            self.close()
            raise
        return info

    def close(self) -> None:
        self.stop_streaming()
        for node in (self._subdev, self._video):
            if node is not None:
                node.close()
        self._video = self._subdev = None

    def set_edid(self, data: bytes) -> None:
        self._control.set_edid(data)

    def get_edid(self) -> bytes:
        return self._control.get_edid()

    def cable_present(self) -> bool | None:
        try:
            return bool(self._control.get_control(v4l2.CID_DV_RX_POWER_PRESENT))
        except OSError:
            return None

    def query_dv_timings(self) -> DvTimings:
        return self._control.query_dv_timings()

    def set_dv_timings(self, timings: DvTimings) -> None:
        self._control.set_dv_timings(timings)

    def set_format(self, width: int, height: int, pixelformat: int) -> StreamFormat:
        if self._subdev is not None and self._media:
            self._configure_graph(width, height)
        fmt = v4l2.Format(type=v4l2.BUF_TYPE_VIDEO_CAPTURE)
        pix = fmt.fmt.pix
        pix.width, pix.height, pix.pixelformat, pix.field = width, height, pixelformat, 1
        pix.colorspace = v4l2.COLORSPACE_SRGB if self._subdev else v4l2.COLORSPACE_SMPTE170M
        got = self._node.set_format(fmt).fmt.pix
        return StreamFormat(got.width, got.height, got.pixelformat, got.bytesperline, got.sizeimage)

    def _configure_graph(self, width: int, height: int) -> None:
        fmt = f"[fmt:{PI5_MBUS_FORMAT}/{width}x{height} field:none colorspace:srgb]"
        media = str(self._media)
        for pad in (f"'{self._bridge_entity}':0", "'csi2':0", "'csi2':4"):
            self._run([self._media_ctl, "-d", media, "-V", f"{pad} {fmt}"])
        self._run([self._media_ctl, "-d", media, "-l", f"'csi2':4 -> '{PI5_VIDEO_NAME}':0 [1]"])

    def subscribe_source_change(self) -> None:
        self._control.subscribe(v4l2.EVENT_SOURCE_CHANGE)

    def start_streaming(self, count: int) -> None:
        node = self._node
        got = node.request_buffers(v4l2.BUF_TYPE_VIDEO_CAPTURE, v4l2.MEMORY_MMAP, count)
        if got < 2:
            raise OSError(12, f"only {got} capture buffers")  # ENOMEM: CMA too small
        for i in range(got):
            buf = node.query_buffer(_buffer(i))
            self._maps.append(node.mmap(buf.m.offset, buf.length))
            node.queue(_buffer(i))
        node.stream_on(v4l2.BUF_TYPE_VIDEO_CAPTURE)
        self._streaming = True

    def stop_streaming(self) -> None:
        node = self._video
        if node is None:
            return
        if self._streaming:
            self._streaming = False
            try:
                node.stream_off(v4l2.BUF_TYPE_VIDEO_CAPTURE)
            except OSError as exc:
                logger.debug("STREAMOFF: %s", exc)
        for m in self._maps:
            m.close()
        if self._maps:
            self._maps.clear()
            try:
                node.request_buffers(v4l2.BUF_TYPE_VIDEO_CAPTURE, v4l2.MEMORY_MMAP, 0)
            except OSError as exc:
                logger.debug("REQBUFS 0: %s", exc)

    def wait(self, timeout: float) -> tuple[bool, bool]:
        video, control = self._node, self._control
        fds = [video.fd] if self._streaming else []
        r, _, x = select.select(fds, [], list({video.fd, control.fd}), timeout)
        return bool(r), bool(x)

    def dequeue_event(self) -> int | None:
        event = self._control.dequeue_event()
        if event is None:
            return None
        return int(event.u.src_change) if event.type == v4l2.EVENT_SOURCE_CHANGE else 0

    def dequeue_frame(self) -> RawFrame | None:
        buf = self._node.dequeue(_buffer(0))
        if buf is None:
            return None
        data = memoryview(self._maps[buf.index])[: buf.bytesused]
        ts = buf.timestamp.tv_sec + buf.timestamp.tv_usec / 1e6
        return RawFrame(buf.index, data, buf.sequence, ts)

    def requeue(self, index: int) -> None:
        self._node.queue(_buffer(index))

    def export_buffer(self, index: int) -> int:
        return self._node.export_buffer(v4l2.BUF_TYPE_VIDEO_CAPTURE, index)


def _buffer(index: int) -> v4l2.Buffer:
    return v4l2.Buffer(index=index, type=v4l2.BUF_TYPE_VIDEO_CAPTURE, memory=v4l2.MEMORY_MMAP)


class BridgeAudioControls:
    """The bridge's HDMI audio controls (rate, present) through its control node: the video
    node on a Pi 4 (unicam passes the bridge's controls through), the subdevice on a Pi 5.

    Implements :class:`~appliance.sound.hdmi.AudioControls`; a node of its own (V4L2 allows
    several opens), so it reads the controls while the picture streams.
    """

    def __init__(self, video: str = "", subdev: str = "", root: Path = Path("/")) -> None:
        self._video, self._subdev, self._root = video, subdev, root
        self._node: v4l2.VideoNode | None = None

    def read_audio(self) -> tuple[int, bool]:
        """(sampling rate in Hz, 0 = none; audio present); OSError when the bridge is gone."""
        if self._node is None:
            nodes = find_bridge(self._root, self._video, self._subdev)
            if nodes is None:
                raise FileNotFoundError(2, "no TC358743 video node found")
            self._node = v4l2.VideoNode(nodes.subdev or nodes.video)
        try:
            rate = self._node.get_control(v4l2.CID_TC358743_AUDIO_SAMPLING_RATE)
            present = self._node.get_control(v4l2.CID_TC358743_AUDIO_PRESENT)
        except OSError:
            self.release_audio()  # found again next time (replug, driver rebound)
            raise
        return rate, bool(present)

    def release_audio(self) -> None:
        """Close the node (found again at the next read: a replugged bridge gets a new one)."""
        if self._node is not None:
            self._node.close()
            self._node = None


# -- finding the nodes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BridgeNodes:
    video: str
    subdev: str | None
    media: str | None


def _sysfs_name(dev_path: str, root: Path = Path("/")) -> str:
    name = root / "sys/class/video4linux" / Path(dev_path).name / "name"
    try:
        return name.read_text().strip()
    except OSError:
        return ""


def find_bridge(root: Path = Path("/"), video: str = "", subdev: str = "") -> BridgeNodes | None:
    """Find the bridge's nodes from sysfs names under ``root`` (config paths win)."""
    classdir = root / "sys/class/video4linux"
    names: dict[str, str] = {}
    if classdir.is_dir():
        for entry in sorted(classdir.iterdir()):
            try:
                names[entry.name] = (entry / "name").read_text().strip()
            except OSError:
                continue
    dev = root / "dev"
    if not subdev:
        found = [n for n, v in names.items() if n.startswith("v4l-subdev") and _is_bridge(v)]
        subdev = str(dev / found[0]) if found else ""
    if not video:
        for wanted in (PI4_VIDEO_NAME, PI5_VIDEO_NAME):
            found = [n for n, v in names.items() if n.startswith("video") and v == wanted]
            if found:
                video = str(dev / found[0])
                break
        else:
            return None
    pi5 = names.get(Path(video).name) == PI5_VIDEO_NAME
    if not pi5:
        return BridgeNodes(video, None, None)
    return BridgeNodes(video, subdev or None, _media_of(root, Path(video).name))


def _is_bridge(name: str) -> bool:
    return name.startswith(BRIDGE_NAME_PREFIX)


def _media_of(root: Path, video_name: str) -> str | None:
    """The media controller node sharing the video node's parent device."""
    parent = root / "sys/class/video4linux" / video_name / "device"
    try:
        for entry in sorted(parent.iterdir()):
            if entry.name.startswith("media") and entry.name[5:].isdigit():
                return str(root / "dev" / entry.name)
    except OSError:
        pass
    return None


def driver_bound(root: Path = Path("/")) -> list[str]:
    """I2C devices bound to the tc358743 driver (e.g. ``["10-000f"]``)."""
    drv = root / "sys/bus/i2c/drivers/tc358743"
    try:
        return sorted(e.name for e in drv.iterdir() if e.name[:1].isdigit() and "-" in e.name)
    except OSError:
        return []


def exists(path: str) -> bool:
    return os.path.exists(path)
