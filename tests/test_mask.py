"""The privacy mask: what it covers never reaches the encoder; the rest is untouched."""

from __future__ import annotations

import numpy as np

from appliance import __main__ as cli
from appliance.capture import timestrip
from appliance.capture.mask import Mask
from appliance.capture.synthetic import SyntheticSource


def frame_and_banner(width: int, height: int):
    source = SyntheticSource(width, height, 30)
    source.open()
    return source.read(1.0).frame, source.banner_rect


def demo_mask() -> Mask:
    rects = cli.DEMO_OVERRIDES["mask"]["rects"]
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


async def test_a_masked_banner_never_reaches_the_viewer(box_factory) -> None:
    from tests.viewer_client import AiortcViewer

    rects = cli.DEMO_OVERRIDES["mask"]["rects"]
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
