"""HardwareEncoder over the fake M2M device (libx264 inside): controls, keyframes, sizes, packets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from appliance import config as config_mod
from appliance.capture import timestrip, v4l2
from appliance.encode import hardware
from appliance.encode.base import NAL_IDR, NAL_PPS, NAL_SPS, VIDEO_TIME_BASE, nal_types
from appliance.encode.fake_m2m import FakeM2M
from appliance.encode.hardware import HardwareEncoder, level_for
from appliance.encode.registry import make_encoder
from appliance.errors import DeviceError


def picture(width: int, height: int, stamp: int = 0) -> av.VideoFrame:
    buf = np.full((height * 3 // 2, width), 128, np.uint8)
    buf[:height] = (np.arange(width) % 200 + 20).astype(np.uint8)[None, :]
    if width >= timestrip.WIDTH:
        timestrip.draw(buf[:height], stamp)
    return av.VideoFrame.from_ndarray(buf, format="yuv420p")


@pytest.fixture
def dev() -> FakeM2M:
    return FakeM2M()


@pytest.fixture
def enc(dev: FakeM2M) -> Iterator[HardwareEncoder]:
    e = HardwareEncoder(1280, 720, 30, 2_000_000, 1.0, device=dev)
    yield e
    e.close()


def encode_n(
    enc: HardwareEncoder, n: int, w: int = 1280, h: int = 720, start: int = 0
) -> list[av.Packet]:
    out = []
    for i in range(start, start + n):
        out += enc.encode(picture(w, h, 1000 + i), i * 3000)
    return out


def idr_with_headers(packet: av.Packet) -> bool:
    """SPS and PPS first, then (after any SEI) the IDR slice."""
    types = nal_types(bytes(packet))
    return types[:2] == [NAL_SPS, NAL_PPS] and NAL_IDR in types


def decode(packets: list[av.Packet]) -> list[av.VideoFrame]:
    dec = av.CodecContext.create("h264", "r")
    frames = [f for p in packets for f in dec.decode(av.Packet(bytes(p)))]
    return frames + list(dec.decode(None))


def test_controls_set_before_streaming(enc: HardwareEncoder, dev: FakeM2M) -> None:
    c = dev.controls
    assert c[v4l2.CID_MPEG_VIDEO_H264_PROFILE] == v4l2.H264_PROFILE_CONSTRAINED_BASELINE
    assert c[v4l2.CID_MPEG_VIDEO_H264_LEVEL] == v4l2.H264_LEVEL_4_0
    assert c[v4l2.CID_MPEG_VIDEO_REPEAT_SEQ_HEADER] == 1
    assert c[v4l2.CID_MPEG_VIDEO_H264_I_PERIOD] == 30  # 1 s at 30 fps
    assert c[v4l2.CID_MPEG_VIDEO_BITRATE] == 2_000_000
    assert all(not streaming for _, _, streaming in dev.history)
    assert dev.starts == [(1280, 720)]


def test_levels() -> None:
    assert level_for(1920, 1080, 30) == v4l2.H264_LEVEL_4_0
    assert level_for(1920, 1080, 25) == v4l2.H264_LEVEL_4_0
    assert level_for(1280, 1024, 60) == v4l2.H264_LEVEL_4_2
    assert level_for(1920, 1080, 50) == v4l2.H264_LEVEL_4_2


def test_packets_decode_with_pts_and_keyframe_flags(enc: HardwareEncoder) -> None:
    packets = encode_n(enc, 40)
    assert len(packets) == 40
    assert [p.pts for p in packets] == [i * 3000 for i in range(40)]
    assert all(p.time_base == VIDEO_TIME_BASE for p in packets)
    keys = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keys == [0, 30]  # the first frame, then every I_PERIOD
    for i in keys:  # SPS/PPS before every IDR (REPEAT_SEQ_HEADER)
        assert idr_with_headers(packets[i])
    assert all(NAL_IDR not in nal_types(bytes(p)) for i, p in enumerate(packets) if i not in keys)
    frames = decode(packets)
    assert len(frames) == 40 and (frames[0].width, frames[0].height) == (1280, 720)
    assert timestrip.read(frames[5].to_ndarray()[:720]) == 1005  # the picture survives the trip


def test_request_keyframe_forces_an_idr_on_the_next_frame(
    enc: HardwareEncoder, dev: FakeM2M
) -> None:
    encode_n(enc, 5)
    enc.request_keyframe()
    (p,) = enc.encode(picture(1280, 720), 5 * 3000)
    assert p.is_keyframe and idr_with_headers(p)
    forced = [h for h in dev.history if h[0] == v4l2.CID_MPEG_VIDEO_FORCE_KEY_FRAME]
    assert forced[-1] == (v4l2.CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1, True)
    (q,) = enc.encode(picture(1280, 720), 6 * 3000)
    assert not q.is_keyframe


def test_bitrate_changes_while_running_without_a_restart(
    enc: HardwareEncoder, dev: FakeM2M
) -> None:
    encode_n(enc, 3)
    enc.bitrate = 1_000_000
    assert enc.bitrate == 1_000_000
    encode_n(enc, 1, start=3)
    assert (v4l2.CID_MPEG_VIDEO_BITRATE, 1_000_000, True) in dev.history
    assert dev.starts == [(1280, 720)]
    enc.bitrate = 1_000_000  # unchanged: not sent again
    encode_n(enc, 1, start=4)
    assert sum(1 for h in dev.history if h[0] == v4l2.CID_MPEG_VIDEO_BITRATE and h[2]) == 1


def test_a_lower_bitrate_applies_live_in_the_fake_without_an_idr(dev: FakeM2M) -> None:
    from appliance.capture.synthetic import SyntheticSource

    enc = HardwareEncoder(1280, 720, 30, 2_000_000, 10.0, device=dev)  # no periodic IDR here
    source = SyntheticSource(1280, 720)  # speckle: enough detail to fill 2 Mbit/s

    def run(frames: range) -> list[av.Packet]:
        return [p for i in frames for p in enc.encode(source.render(1000 + i / 30), i * 3000)]

    before = run(range(20))
    mark = len(dev.history)
    enc.bitrate = 300_000
    after = run(range(20, 40))
    assert (v4l2.CID_MPEG_VIDEO_BITRATE, 300_000, True) in dev.history
    assert dev.starts == [(1280, 720)], "no restart"
    assert not any(p.is_keyframe for p in after), "no IDR"
    assert dev.history[mark:] == [(v4l2.CID_MPEG_VIDEO_BITRATE, 300_000, True)]
    mean = lambda ps: sum(p.size for p in ps) / len(ps)  # noqa: E731
    assert mean(after[5:]) < mean(before[5:]) / 2
    enc.close()


def test_half_frame_rate_doubles_the_control_live(enc: HardwareEncoder, dev: FakeM2M) -> None:
    encode_n(enc, 2)
    enc.set_frame_divisor(2)
    encode_n(enc, 1, start=2)
    assert dev.history[-1] == (v4l2.CID_MPEG_VIDEO_BITRATE, 4_000_000, True)
    enc.bitrate = 1_000_000
    encode_n(enc, 1, start=3)
    assert dev.history[-1] == (v4l2.CID_MPEG_VIDEO_BITRATE, 2_000_000, True)
    enc.set_frame_divisor(1)
    encode_n(enc, 1, start=4)
    assert dev.history[-1] == (v4l2.CID_MPEG_VIDEO_BITRATE, 1_000_000, True)
    assert dev.starts == [(1280, 720)] and enc.frame_divisor == 1
    with pytest.raises(ValueError):
        enc.set_frame_divisor(4)


def test_size_changes_restart_with_new_sps_and_idr(enc: HardwareEncoder, dev: FakeM2M) -> None:
    sizes = [(1280, 720), (1280, 1024), (1920, 1080), (1024, 768)]
    for n, (w, h) in enumerate(sizes):
        packets = encode_n(enc, 3, w, h, start=n * 3)
        assert packets[0].is_keyframe and idr_with_headers(packets[0])
        frames = decode(packets)
        assert (frames[0].width, frames[0].height) == (w, h)
    assert dev.starts == sizes
    assert dev.controls[v4l2.CID_MPEG_VIDEO_H264_LEVEL] == v4l2.H264_LEVEL_4_0


def test_other_pixel_formats_are_converted(enc: HardwareEncoder) -> None:
    rgb = picture(1280, 720).reformat(format="rgb24")
    (p,) = enc.encode(rgb, 0)
    assert p.is_keyframe and decode([p])


def test_too_wide_and_missing_device() -> None:
    with pytest.raises(DeviceError, match="max width 1920"):
        HardwareEncoder(2560, 1440, 30, 4_000_000, 2.0, device=FakeM2M())
    with pytest.raises(DeviceError, match="cannot open the hardware encoder"):
        HardwareEncoder(1280, 720, 30, 4_000_000, 2.0, device=FakeM2M(present=False))
    with pytest.raises(DeviceError, match="cannot open"):
        HardwareEncoder(1280, 720, 30, 4_000_000, 2.0, device_path="/nonexistent/video11")


def test_closed_encoder_refuses_frames(dev: FakeM2M) -> None:
    e = HardwareEncoder(640, 480, 30, 4_000_000, 2.0, device=dev)
    e.close()
    e.close()
    assert not dev.streaming
    with pytest.raises(DeviceError, match="closed"):
        e.encode(picture(640, 480), 0)


def test_i420_layout_follows_the_driver_stride() -> None:
    frame = picture(1000, 562)
    stride, rows = 1024, 576
    data = hardware._pack_i420(frame, stride, stride * rows * 3 // 2)
    y = np.frombuffer(data, np.uint8)[: stride * rows].reshape(rows, stride)
    assert (y[:562, :1000] == frame.to_ndarray()[:562]).all() and not y[:, 1000:].any()


def test_make_encoder_choice(tmp_path: Path) -> None:
    from appliance.board import Board, resolve
    from appliance.encode.software import SoftwareEncoder

    (tmp_path / "dev").mkdir()
    auto = config_mod.load_dict({"encode": {"threads": 1}})
    enc = make_encoder(auto, 640, 480, 30, resolve(auto, Board.PI4, tmp_path), tmp_path)
    assert isinstance(enc, SoftwareEncoder)  # no /dev/video11 under the root: software
    enc.close()
    hw = config_mod.load_dict({"encode": {"encoder": "hardware"}})
    with pytest.raises(DeviceError, match="does not exist"):
        make_encoder(hw, 640, 480, 30, resolve(hw, Board.PI4, tmp_path), tmp_path)
    (tmp_path / "dev/video11").write_text("")  # present, but not a V4L2 node
    r = resolve(auto, Board.PI4, tmp_path)
    assert r.encoder is config_mod.EncoderKind.HARDWARE and r.max_fps == 30
    enc = make_encoder(auto, 640, 480, 30, r, tmp_path)  # opening fails: auto falls back
    assert isinstance(enc, SoftwareEncoder)
    enc.close()
    with pytest.raises(DeviceError):
        make_encoder(hw, 640, 480, 30, resolve(hw, Board.PI4, tmp_path), tmp_path)
