"""On a real Raspberry Pi 4/5 with the TC358743: run with ``pytest -m hw tests/hw``.

Deselected everywhere else (marker ``hw``). Each test skips when its device is missing, so a Pi 5
runs the capture tests and skips the hardware encoder. Connect an HDMI source sending one of the
EDID's modes before running; the appliance service must be stopped (``systemctl stop appliance``).
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import av
import numpy as np
import pytest

from appliance.board import Board, detect
from appliance.capture import edid, timestrip, v4l2
from appliance.capture.base import CapturedFrame, SignalState
from appliance.capture.bridge import V4L2Bridge, find_bridge
from appliance.capture.hdmi import HdmiSource
from appliance.encode.base import NAL_IDR, NAL_PPS, NAL_SPS, nal_types

pytestmark = pytest.mark.hw


@pytest.fixture
def nodes():
    found = find_bridge()
    if found is None:
        pytest.skip("no TC358743 video node")
    return found


def board_edid() -> bytes:
    if detect() is Board.PI5:
        return edid.build(edid.PI5_MODES, "RGB888")
    return edid.build(edid.PI4_MODES, "UYVY")


def test_edid_round_trip_and_timings(nodes) -> None:
    bridge = V4L2Bridge(nodes.video, nodes.subdev, nodes.media)
    info = bridge.open()
    try:
        assert info.capabilities & v4l2.CAP_VIDEO_CAPTURE
        bridge.set_edid(board_edid())
        assert bridge.get_edid() == board_edid()
        time.sleep(2)  # the source reads the EDID after hotplug
        try:
            t = bridge.query_dv_timings()
        except OSError as exc:
            if exc.errno not in (errno.ENOLINK, errno.ENOLCK):
                raise
            pytest.skip(f"no signal ({v4l2.errno_name(exc)}): connect a source")
        assert t.width in (640, 1024, 1280, 1920) and not t.interlaced
        assert bridge.cable_present() is True
    finally:
        bridge.close()


def test_hdmi_source_streams_native_frames(nodes) -> None:
    bridge = V4L2Bridge(nodes.video, nodes.subdev, nodes.media)
    src = HdmiSource(bridge, board_edid())
    src.open()
    try:
        frames: list[CapturedFrame] = []
        t0 = time.monotonic()
        while len(frames) < 60 and time.monotonic() - t0 < 10:
            f = src.read(1.0)
            if f is not None and not f.slate:
                frames.append(f)
        if src.signal is not SignalState.PRESENT:
            pytest.skip(f"signal {src.signal.value}: connect a source")
        rate = len(frames) / (time.monotonic() - t0)
        assert rate > src.fps * 0.8, f"{rate:.1f} fps of {src.fps}"
        f = frames[-1]
        assert (f.frame.width, f.frame.height) == (src.width, src.height)
        luma = f.frame.to_ndarray()[: f.frame.height]
        assert 5 < float(np.mean(luma)) < 250  # a picture, not all black or white
        # with the synthetic phantom (or a browser page with the time strip) as the source:
        stamp = timestrip.read(luma)
        if stamp is not None:
            assert timestrip.latency_ms(stamp, f.captured_at) < 200
    finally:
        src.close()


def test_hardware_encoder_on_video11() -> None:
    if not Path("/dev/video11").exists():
        pytest.skip("no /dev/video11 (not a Pi 4)")
    from appliance.encode.hardware import HardwareEncoder

    enc = HardwareEncoder(1920, 1080, 30, 4_000_000, 1.0)
    dec = av.CodecContext.create("h264", "r")
    try:
        packets = []
        for i in range(70):
            buf = np.full((1080 * 3 // 2, 1920), 128, np.uint8)
            buf[:1080] = (np.arange(1920) + i) % 220 + 16
            timestrip.draw(buf[:1080], 1000 + i)
            if i == 45:
                enc.request_keyframe()
            if i == 50:
                enc.bitrate = 2_000_000
            packets += enc.encode(av.VideoFrame.from_ndarray(buf, format="yuv420p"), i * 3000)
        keys = [i for i, p in enumerate(packets) if p.is_keyframe]
        assert 0 in keys and 30 in keys and 45 in keys, keys  # start, I period, forced
        for i in keys:
            types = nal_types(bytes(packets[i]))
            assert types[:2] == [NAL_SPS, NAL_PPS] and NAL_IDR in types
        frames = [f for p in packets for f in dec.decode(p)]
        assert timestrip.read(frames[10].to_ndarray()[:1080]) == 1010
        # a new size restarts with SPS/PPS/IDR
        (p,) = enc.encode(
            av.VideoFrame.from_ndarray(np.zeros((1024 * 3 // 2, 1280), np.uint8), format="yuv420p"),
            80 * 3000,
        )
        assert p.is_keyframe and NAL_SPS in nal_types(bytes(p))
    finally:
        enc.close()
