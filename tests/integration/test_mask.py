"""The privacy mask: what it covers never reaches the encoder; the rest is untouched; the
source's frame (the staff's preview) stays unmasked; it costs a fraction of a millisecond."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest

from appliance.capture import timestrip
from appliance.capture.mask import Mask, check_rect
from appliance.capture.synthetic import SyntheticSource
from appliance.demo import DEMO_OVERRIDES
from appliance.stream.pipeline import MediaPipeline, Mode


def frame_and_banner(width: int, height: int):
    source = SyntheticSource(width, height, 30)
    source.open()
    captured = source.read(1.0)
    assert captured is not None
    return captured.frame, source.banner_rect


def demo_mask() -> Mask:
    rects = DEMO_OVERRIDES["mask"]["rects"]
    return Mask([(r["x"], r["y"], r["w"], r["h"]) for r in rects])


def test_the_demo_mask_blanks_the_banner_at_every_size_and_keeps_the_time_strip() -> None:
    for width, height in ((1280, 720), (1920, 1080)):
        frame, (x, y, w, h) = frame_and_banner(width, height)
        before = frame.to_ndarray(format="yuv420p")[:height]
        assert before[y : y + h, x : x + w].max() > 200, "the banner has bright text"
        after = demo_mask().apply(frame).to_ndarray(format="yuv420p")[:height]
        assert (after[y : y + h, x : x + w] == 16).all(), f"banner visible at {width}x{height}"
        assert timestrip.read(after) == timestrip.read(before) is not None
        outside = np.ones_like(after, dtype=bool)
        for x0, y0, x1, y1 in demo_mask().pixels(width, height):
            outside[y0:y1, x0:x1] = False
        assert (after[outside] == before[outside]).all(), "nothing outside the mask changes"


def test_rectangles_grow_to_even_edges_and_stay_inside_the_picture() -> None:
    assert Mask([(0.0, 0.0, 0.5, 0.5)]).pixels(101, 51) == [(0, 0, 52, 26)]
    assert Mask([(0.9, 0.9, 0.5, 0.5)]).pixels(100, 100) == [(90, 90, 100, 100)]
    assert Mask([]).pixels(100, 100) == []


def test_an_empty_mask_passes_the_frame_through() -> None:
    frame, _ = frame_and_banner(800, 360)
    assert Mask([]).apply(frame) is frame
    assert Mask([(0.2, 0.2, 0.0, 0.1)]).apply(frame) is frame, "a rectangle with no area"
    assert not Mask([]) and Mask([(0.1, 0.1, 0.1, 0.1)])


def marked_frame(width: int = 640, height: int = 360, fmt: str = "yuv420p") -> av.VideoFrame:
    """Mid-grey with a bright, coloured 10x10 marker at (100, 100) and another at (500, 300)."""
    planes = np.full((height * 3 // 2, width), 128, np.uint8)
    luma = planes[:height]
    luma[...] = 120
    u = planes[height : height + height // 4].reshape(height // 2, width // 2)
    v = planes[height + height // 4 :].reshape(height // 2, width // 2)
    for x, y in ((100, 100), (500, 300)):
        luma[y : y + 10, x : x + 10] = 235
        u[y // 2 : (y + 10) // 2, x // 2 : (x + 10) // 2] = 40
        v[y // 2 : (y + 10) // 2, x // 2 : (x + 10) // 2] = 220
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    frame.pts, frame.time_base = 1234, Fraction(1, 90_000)
    return frame if fmt == "yuv420p" else frame.reformat(format=fmt)


#: covers the marker at (100, 100) in a 640x360 frame: pixels 96..160 x 90..144
OVER_FIRST = (0.15, 0.25, 0.1, 0.15)


def test_a_marker_inside_a_rectangle_is_gone_and_one_outside_untouched() -> None:
    frame = marked_frame()
    before = frame.to_ndarray(format="yuv420p")
    after = Mask([OVER_FIRST]).apply(frame)
    out = after.to_ndarray(format="yuv420p")
    h = 360
    y, u = out[:h], out[h : h + h // 4].reshape(h // 2, 320)
    v = out[h + h // 4 :].reshape(h // 2, 320)
    assert (y[90:144, 96:160] == 16).all(), "the marker's luma is black"
    assert (u[45:72, 48:80] == 128).all() and (v[45:72, 48:80] == 128).all(), "and its colour"
    assert (y[300:310, 500:510] == 235).all() and (u[150:155, 250:255] == 40).all()
    changed = out != before
    changed[90:144, 96:160] = False
    changed[h : h + h // 4] = False  # chroma checked above
    changed[h + h // 4 :] = False
    assert not changed.any(), "nothing outside the rectangle changed"
    assert (frame.to_ndarray(format="yuv420p") == before).all(), "the input is not modified"
    assert after.pts == 1234 and after.time_base == Fraction(1, 90_000)


@pytest.mark.parametrize("fmt", ["yuvj420p", "nv12", "gray", "rgb24", "bgr24", "yuyv422"])
def test_other_pixel_formats_are_blanked_too(fmt: str) -> None:
    frame = marked_frame(fmt=fmt)
    out = Mask([OVER_FIRST]).apply(frame)
    assert out.format.name == (fmt if fmt != "yuyv422" else "yuv420p")
    grey = out.to_ndarray(format="gray")
    assert grey[90:144, 96:160].max() <= 20, fmt
    assert grey[300:310, 500:510].min() >= 200, fmt
    assert frame.to_ndarray(format="gray")[100:110, 100:110].min() >= 200, "input untouched"


def test_numpy_planes_and_pictures() -> None:
    planes = marked_frame().to_ndarray(format="yuv420p")
    out = Mask([OVER_FIRST]).apply(planes)
    assert out is not planes and (out[90:144, 96:160] == 16).all()
    assert (planes[100:110, 100:110] == 235).all(), "the input is not modified"
    assert (out[300:310, 500:510] == 235).all()
    picture = np.full((360, 640, 3), 200, np.uint8)
    masked = Mask([OVER_FIRST]).apply(picture)
    assert (masked[90:144, 96:160] == 0).all() and (masked[200:, 200:] == 200).all()
    with pytest.raises(ValueError, match="yuv420p"):
        Mask([OVER_FIRST]).apply(np.zeros((361, 640), np.uint8))


def test_padded_rows_are_copied_right() -> None:
    source = SyntheticSource(1366, 768, 30)  # 1366 is no multiple of the usual row alignment
    source.open()
    captured = source.read(1.0)
    assert captured is not None
    frame = captured.frame
    before = frame.to_ndarray(format="yuv420p")
    after = Mask([(0.5, 0.5, 0.1, 0.1)]).apply(frame).to_ndarray(format="yuv420p")
    boxes = Mask([(0.5, 0.5, 0.1, 0.1)]).pixels(1366, 768)
    differs = (after != before)[:768]
    for x0, y0, x1, y1 in boxes:
        differs[y0:y1, x0:x1] = False
    assert not differs.any()


def test_the_time_strip_is_left_alone_unless_a_rectangle_covers_it() -> None:
    frame, _ = frame_and_banner(1280, 720)
    stamp = timestrip.read(frame.to_ndarray(format="yuv420p")[:720])
    just_below = Mask([(0.0, 32 / 720, 1.0, 0.1)]).apply(frame)
    assert timestrip.read(just_below.to_ndarray(format="yuv420p")[:720]) == stamp is not None
    over = Mask([(0.0, 0.0, 0.2, 0.02)]).apply(frame)
    assert timestrip.read(over.to_ndarray(format="yuv420p")[:720]) is None


def test_rectangles_are_checked() -> None:
    assert check_rect([0.5, 0.5, 0.8, 0.8]) == (0.5, 0.5, 0.5, 0.5), "clipped to the picture"
    bad: Any  # as a request or a saved file may hold it: not always numbers
    for bad in (
        [0.1, 0.1, 0.1],
        [-0.1, 0, 0.1, 0.1],
        [1.0, 0, 0.1, 0.1],
        [0, 0, 0, 0.1],
        [float("nan"), 0, 0.1, 0.1],
        [0, 0, 0.1, float("inf")],
        ["a", 0, 0.1, 0.1],
    ):
        with pytest.raises(ValueError, match="rectangle"):
            check_rect(bad)


def test_blanking_1080p_takes_a_fraction_of_a_millisecond() -> None:
    frame, _ = frame_and_banner(1920, 1080)
    mask = demo_mask()
    mask.apply(frame)
    runs = []
    for _ in range(50):
        start = time.perf_counter()
        mask.apply(frame)
        runs.append(time.perf_counter() - start)
    runs.sort()
    print(f"mask at 1080p: best {runs[0] * 1e3:.3f} ms, median {runs[25] * 1e3:.3f} ms")
    assert runs[0] < 0.5e-3, f"{runs[0] * 1e3:.2f} ms"


class RecordingEncoder:
    """Keeps the frames it is given (a stand-in encoder: no packets)."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.got = threading.Event()
        self.bitrate = 0

    def encode(self, frame: av.VideoFrame, pts: int) -> list[av.Packet]:
        self.frames.append(frame.to_ndarray(format="yuv420p"))
        if len(self.frames) >= 5:
            self.got.set()
        return []

    def request_keyframe(self) -> None:
        pass

    def set_frame_divisor(self, divisor: int) -> None:
        pass

    def close(self) -> None:
        pass


def test_as_the_pipeline_s_filter_the_encoder_gets_masked_frames_the_preview_does_not() -> None:
    encoder = RecordingEncoder()
    source = SyntheticSource(1280, 720, 30)
    pipeline = MediaPipeline(
        source, lambda w, h, fps: encoder, lambda packet: None, frame_filter=demo_mask().apply
    )
    x, y, w, h = source.banner_rect
    pipeline.start()
    try:
        pipeline.set_viewers(1)
        pipeline.set_mode(Mode.LIVE)
        assert encoder.got.wait(10), "frames reached the encoder"
        preview = pipeline.preview()
    finally:
        pipeline.stop()
    assert all((f[y : y + h, x : x + w] == 16).all() for f in encoder.frames)
    assert preview is not None
    scale = preview.shape[1] / source.width  # the preview is small: 640 wide
    x, y, w, h = (round(v * scale) for v in (x, y, w, h))
    assert preview[y : y + h, x : x + w].max() > 200, (
        "the staff's preview shows what the mask must cover"
    )


async def test_a_masked_banner_never_reaches_the_viewer(box_factory) -> None:
    from tests.support.viewer_client import AiortcViewer

    rects = DEMO_OVERRIDES["mask"]["rects"]
    for masked in (False, True):
        box = box_factory(**({"mask": {"rects": rects}} if masked else {}))
        viewer = AiortcViewer(box.viewer_url)
        try:
            await viewer.connect()
            import asyncio

            await asyncio.to_thread(box.press)
            frames = await viewer.frames(15, timeout=15)
        finally:
            await viewer.close()
        source = SyntheticSource(1280, 720, 30)
        x, y, w, h = source.banner_rect
        brightest = max(
            int(f.frame.to_ndarray(format="gray")[y : y + h, x : x + w].max()) for f in frames
        )
        if masked:
            assert brightest < 40, "the banner's text reached the viewer"
        else:
            assert brightest > 150, "control: without the mask the banner is visible"
