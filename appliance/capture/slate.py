"""Slates: the still pictures a viewer sees instead of the scan (paused, no signal).

A slate carries no time strip and nothing from the scanner. Each is drawn once per size and
kind with Pillow and cached.
"""

from __future__ import annotations

import enum
import functools

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont


class SlateKind(enum.Enum):
    PAUSED = ("Paused", "En pause", "The picture will be back shortly")
    NO_SIGNAL = ("No signal", "Pas de signal", "Waiting for the scanner's picture")

    def __init__(self, title: str, title_fr: str, subtitle: str) -> None:
        self.title = title
        self.title_fr = title_fr
        self.subtitle = subtitle


@functools.lru_cache(maxsize=8)
def _luma(kind: SlateKind, width: int, height: int) -> np.ndarray:
    image = Image.new("L", (width, height), 24)
    draw = ImageDraw.Draw(image)
    big = ImageFont.load_default(size=max(12, height // 9))
    small = ImageFont.load_default(size=max(10, height // 24))
    lines = [(kind.title, big, 235), (kind.title_fr, small, 200), (kind.subtitle, small, 160)]
    heights = [draw.textbbox((0, 0), text, font=font)[3] for text, font, _ in lines]
    y = (height - sum(heights) - height // 20 * 2) // 2
    for (text, font, shade), h in zip(lines, heights, strict=True):
        w = draw.textbbox((0, 0), text, font=font)[2]
        draw.text(((width - w) // 2, y), text, fill=shade, font=font)
        y += h + height // 20
    luma = np.asarray(image, dtype=np.uint8).copy()
    luma.setflags(write=False)
    return luma


def render(kind: SlateKind, width: int, height: int) -> av.VideoFrame:
    """The slate ``kind`` as a yuv420p frame of ``width`` x ``height`` (even numbers)."""
    buf = np.full((height * 3 // 2, width), 128, np.uint8)
    buf[:height] = _luma(kind, width, height)
    return av.VideoFrame.from_ndarray(buf, format="yuv420p")
