"""The time strip: drawn, encoded, decoded, read back; damage is rejected."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.capture import timestrip
from appliance.capture.synthetic import SyntheticSource
from appliance.encode.software import SoftwareEncoder


@pytest.mark.parametrize("value", [0, 1, 1_700_000_000_123, (1 << 48) - 1, 0xA5A5_5A5A_F0F0])
def test_round_trip(value: int) -> None:
    luma = np.zeros((64, 800), np.uint8)
    timestrip.draw(luma, value)
    assert timestrip.read(luma) == value
    assert luma[0:16, 0:16].min() in (16, 235) and luma[0, 768:].max() == 0


def test_layout_matches_the_spec() -> None:
    luma = np.zeros((32, 768), np.uint8)
    timestrip.draw(luma, 1 << 47)  # only the leftmost bit
    assert (luma[0:16, 0:16] == 235).all() and (luma[0:16, 16:32] == 16).all()
    assert (luma[16:32, 0:16] == 16).all() and (luma[16:32, 16:32] == 235).all()


def test_damaged_or_missing_strips_are_rejected() -> None:
    luma = np.zeros((32, 768), np.uint8)
    timestrip.draw(luma, 123456789)
    luma[16:32, 32:48] = luma[0:16, 32:48]  # row 1 no longer the inverse in one cell
    assert timestrip.read(luma) is None
    assert timestrip.read(np.full((32, 768), 128, np.uint8)) is None
    assert timestrip.read(np.zeros((31, 768), np.uint8)) is None


def test_the_strip_survives_h264_and_names_the_capture_time() -> None:
    source = SyntheticSource(1280, 720, 30)
    encoder = SoftwareEncoder(1280, 720, 30, bitrate=1_000_000, keyframe_interval=2.0)
    import av

    decoder = av.CodecContext.create("h264", "r")
    stamps = []
    for i in range(10):
        now = 1_800_000_000.0 + i / 30
        for packet in encoder.encode(source.render(now), i * 3000):
            for frame in decoder.decode(packet):
                stamps.append((timestrip.read(frame.to_ndarray(format="gray")), now))
    assert stamps
    for read, now in stamps:
        assert read == timestrip.stamp_ms(now)


def test_the_marker_shows_on_the_frame_after_each_click_and_survives_h264() -> None:
    """One frame a second carries the marker: the first captured after a whole second, when
    the synthetic sound clicks; it reads back through the encoder."""
    import av

    source = SyntheticSource(1280, 720, fps=30)
    encoder = SoftwareEncoder(1280, 720, 30, bitrate=1_000_000, keyframe_interval=2.0)
    decoder = av.CodecContext.create("h264", "r")
    seen = []
    for i in range(60):  # two seconds, the grid 7 ms after the second
        now = 1_800_000_000.007 + i / 30
        for packet in encoder.encode(source.render(now), i * 3000):
            for frame in decoder.decode(packet):
                luma = frame.to_ndarray(format="gray")
                seen.append((timestrip.read(luma), timestrip.read_marker(luma)))
    marked = [stamp for stamp, shown in seen if shown]
    assert [m % 1000 for m in marked if m is not None] == [7, 7], seen
    assert sum(1 for _, shown in seen if shown is False) == len(seen) - 2
    assert timestrip.read_marker(np.zeros((40, 40), np.uint8)) is None


def test_latency_wraps_modulo_2_48() -> None:
    assert timestrip.latency_ms((1 << 48) - 10, (1 << 48) / 1000 + 0.005) == pytest.approx(15)
