"""The software encoder: Constrained Baseline, SPS/PPS on every IDR, IDR on request, no B-frames."""

from __future__ import annotations

import time

import av
import pytest
from av.video.frame import PictureType

from appliance.capture.synthetic import SyntheticSource
from appliance.encode.base import NAL_IDR, NAL_PPS, NAL_SPS, iter_nal_units, nal_types
from appliance.encode.software import SoftwareEncoder

W, H, FPS = 1280, 720, 30


@pytest.fixture(scope="module")
def stream() -> list[tuple[int, av.Packet]]:
    """60 frames, with a keyframe requested before frame 17."""
    source = SyntheticSource(W, H, FPS)
    encoder = SoftwareEncoder(W, H, FPS, bitrate=1_500_000, keyframe_interval=10)
    out = []
    for i in range(60):
        if i == 17:
            encoder.request_keyframe()
        for packet in encoder.encode(source.render(time.time()), i * 3000):
            out.append((i, packet))
    return out


def test_one_packet_per_frame_in_order_no_b_frames(stream) -> None:
    assert [i for i, _ in stream] == list(range(60)), "zerolatency: one frame in, one out"
    pts = [p.pts for _, p in stream]
    assert pts == sorted(pts)
    decoder = av.CodecContext.create("h264", "r")
    for _, packet in stream:
        for frame in decoder.decode(packet):
            assert frame.pict_type in (PictureType.I, PictureType.P)


def test_idr_on_request_with_sps_and_pps_first(stream) -> None:
    keyframes = [i for i, p in stream if p.is_keyframe]
    assert keyframes == [0, 17], "first frame, then exactly where one was requested (GOP is 10 s)"
    for i, packet in stream:
        types = nal_types(bytes(packet))
        if i in keyframes:
            assert types[:2] == [NAL_SPS, NAL_PPS] and NAL_IDR in types
        else:
            assert NAL_SPS not in types and NAL_IDR not in types


def test_sps_says_constrained_baseline(stream) -> None:
    sps = next(u for u in iter_nal_units(bytes(stream[0][1])) if u[0] & 0x1F == NAL_SPS)
    profile_idc, constraints = sps[1], sps[2]
    assert profile_idc == 66, "Baseline"
    assert constraints & 0x40, "constraint_set1_flag: Constrained Baseline"


def test_periodic_keyframes_as_a_backstop() -> None:
    source = SyntheticSource(W, H, FPS)
    encoder = SoftwareEncoder(W, H, FPS, bitrate=1_000_000, keyframe_interval=0.5)
    keys = [
        i
        for i in range(40)
        for p in encoder.encode(source.render(time.time()), i * 3000)
        if p.is_keyframe
    ]
    assert keys == [0, 15, 30]


def test_a_new_size_restarts_with_sps_and_idr() -> None:
    encoder = SoftwareEncoder(W, H, FPS, 4_000_000, 2.0)
    encoder.encode(SyntheticSource(W, H).render(time.time()), 0)
    encoder.encode(SyntheticSource(W, H).render(time.time()), 3000)
    packets = encoder.encode(SyntheticSource(1024, 768).render(time.time()), 6000)
    assert packets[0].is_keyframe and nal_types(bytes(packets[0]))[:2] == [NAL_SPS, NAL_PPS]
    frame = av.CodecContext.create("h264", "r").decode(packets[0])[0]
    assert (frame.width, frame.height) == (1024, 768)


def _run(
    encoder: SoftwareEncoder, source: SyntheticSource, frames: range, step: int = 3000
) -> list[tuple[int, bool]]:
    """(bytes, keyframe) per frame, frames stamped ``step`` apart on the synthetic clock."""
    out = []
    for i in frames:
        packets = encoder.encode(source.render(1000 + i * step / 90_000), i * step)
        out.append((sum(p.size for p in packets), any(p.is_keyframe for p in packets)))
    return out


def _mean(sizes: list[tuple[int, bool]]) -> float:
    return sum(s for s, _ in sizes) / len(sizes)


def test_lowering_the_bitrate_takes_effect_within_frames_without_an_idr() -> None:
    source = SyntheticSource(W, H, FPS)
    encoder = SoftwareEncoder(W, H, FPS, bitrate=4_000_000, keyframe_interval=10, threads=1)
    before = _run(encoder, source, range(30))
    encoder.bitrate = 500_000
    assert encoder.bitrate == 500_000
    after = _run(encoder, source, range(30, 60))
    assert not any(k for _, k in before[1:] + after), "no IDR for a new bitrate"
    high = _mean(before[10:])
    assert max(s for s, _ in after[5:]) < high / 2, "lower within five frames"
    assert _mean(after[10:]) < high / 3
    assert abs(_mean(after[10:]) * 8 * FPS - 500_000) < 150_000, "and near the new rate"


def test_raising_the_bitrate_live_up_to_the_maximum() -> None:
    source = SyntheticSource(W, H, FPS)
    encoder = SoftwareEncoder(
        W, H, FPS, bitrate=500_000, keyframe_interval=10, threads=1, max_bitrate=4_000_000
    )
    low = _run(encoder, source, range(30))
    encoder.bitrate = 2_000_000
    high = _run(encoder, source, range(30, 60))
    assert not any(k for _, k in low[1:] + high)
    assert _mean(high[10:]) > 2.5 * _mean(low[10:])


def test_a_bitrate_above_the_maximum_reopens_with_an_idr() -> None:
    source = SyntheticSource(W, H, FPS)
    encoder = SoftwareEncoder(W, H, FPS, bitrate=500_000, keyframe_interval=10, threads=1)
    _run(encoder, source, range(3))
    encoder.bitrate = 1_000_000  # the VBV was sized for 500 kbit/s: reopen
    (first, key), *_ = _run(encoder, source, range(3, 5))
    assert key


def test_half_frame_rate_keeps_the_bitrate_without_an_idr() -> None:
    source = SyntheticSource(W, H, FPS)
    encoder = SoftwareEncoder(W, H, FPS, bitrate=1_000_000, keyframe_interval=10, threads=1)
    full = _run(encoder, source, range(45))
    encoder.set_frame_divisor(2)  # the caller now drops every other frame
    half = _run(encoder, source, range(23, 53), step=6000)  # 15 fps on the same clock
    assert not any(k for _, k in full[1:] + half)
    full_bps = _mean(full[15:]) * 8 * FPS
    half_bps = _mean(half[10:]) * 8 * FPS / 2
    assert 0.75 < half_bps / full_bps < 1.3, (full_bps, half_bps)
    with pytest.raises(ValueError):
        encoder.set_frame_divisor(3)


def test_thread_count_follows_the_board_unless_set() -> None:
    from appliance import config
    from appliance.board import Board, Resolved
    from appliance.config import EncoderKind, SourceKind
    from appliance.encode.registry import make_encoder

    def threads(board: Board, setting: int) -> int:
        cfg = config.load_dict({"encode": {"threads": setting}})
        resolved = Resolved(board, SourceKind.SYNTHETIC, EncoderKind.SOFTWARE, None)
        encoder = make_encoder(cfg, 640, 360, 30, resolved)
        try:
            assert isinstance(encoder, SoftwareEncoder)
            return encoder._threads
        finally:
            encoder.close()

    assert threads(Board.PI5, 0) == 4, "a Pi 5 needs threads for 1080p30"
    assert threads(Board.OTHER, 0) == 1, "on a PC one thread costs less CPU for the same latency"
    assert threads(Board.OTHER, 3) == 3
