"""The privacy mask: rectangles blanked in every frame before it reaches the encoder.

Rectangles are fractions of the picture (x, y, width, height from 0 to 1), so a mask drawn once
per scanner model holds at any resolution the scanner switches to. Blanked means black: luma 16,
chroma 128 in the yuv420p frames every source gives (nv12, grey and packed RGB are handled too;
any other format is converted to yuv420p first). A rectangle is grown outwards to even pixel
edges, so 2x2 chroma blocks are covered whole and no colour of a masked pixel survives; nothing
outside the grown rectangle changes, so the time strip (pixel rows 0-31) is left alone unless a
rectangle reaches into it.

:meth:`Mask.apply` is a pipeline ``frame_filter``. It copies the frame's planes into a new frame
and blanks the copy with numpy slices (about 0.1 ms for 1080p on a PC): the source's frame, which
the pipeline keeps unmasked for the staff's mask editor, is not modified.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, overload

import av
import numpy as np

from ..types import Rect

Box = tuple[int, int, int, int]

#: Black in limited-range YUV (what the encoders are given) and in full-range / RGB pictures.
LUMA_BLACK = 16
CHROMA_NEUTRAL = 128


def check_rect(rect: Iterable[float]) -> Rect:
    """``rect`` as four fractions x, y, w, h of the picture; ValueError unless it starts inside
    the picture and has an area (a width or height reaching past the edge is clipped to it)."""
    try:
        values = tuple(float(v) for v in rect)
    except (TypeError, ValueError):
        raise ValueError("a mask rectangle is four numbers: x, y, width, height") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError("a mask rectangle is four numbers: x, y, width, height")
    x, y, w, h = values
    if not (0.0 <= x < 1.0 and 0.0 <= y < 1.0 and 0.0 < w <= 1.0 and 0.0 < h <= 1.0):
        raise ValueError("a mask rectangle is x, y, width, height as fractions from 0 to 1")
    return (x, y, min(w, 1.0 - x), min(h, 1.0 - y))


class Mask:
    """Rectangles to blank, as fractions of the picture (see the module's docstring)."""

    def __init__(self, rects: Iterable[Iterable[float]]) -> None:
        """ValueError for a rectangle outside the picture; one with no area is left out."""
        kept = []
        for rect in rects:
            values = tuple(rect)
            if len(values) == 4 and (values[2] == 0 or values[3] == 0):
                continue  # e.g. a config's unset [[mask.rects]]: nothing to blank
            kept.append(check_rect(values))
        self.rects: tuple[Rect, ...] = tuple(kept)
        self._boxes: dict[tuple[int, int], list[Box]] = {}

    def __bool__(self) -> bool:
        return bool(self.rects)

    def __repr__(self) -> str:
        return f"Mask({list(self.rects)!r})"

    def pixels(self, width: int, height: int) -> list[Box]:
        """The rectangles in pixels (x0, y0, x1, y1) for a ``width`` x ``height`` picture, grown
        outwards to even edges and clipped to the picture."""
        key = (width, height)
        boxes = self._boxes.get(key)
        if boxes is None:
            boxes = []
            for x, y, w, h in self.rects:
                x0, y0 = int(x * width) // 2 * 2, int(y * height) // 2 * 2
                x1 = min(width, _even_up(math.ceil(round((x + w) * width, 6))))
                y1 = min(height, _even_up(math.ceil(round((y + h) * height, 6))))
                if x1 > x0 and y1 > y0:
                    boxes.append((x0, y0, x1, y1))
            if len(self._boxes) > 8:  # a scanner switches between a few sizes at most
                self._boxes.clear()
            self._boxes[key] = boxes
        return boxes

    @overload
    def apply(self, frame: av.VideoFrame) -> av.VideoFrame: ...
    @overload
    def apply(self, frame: np.ndarray) -> np.ndarray: ...

    def apply(self, frame: av.VideoFrame | np.ndarray) -> av.VideoFrame | np.ndarray:
        """``frame`` with the rectangles blanked, as a new frame (the input is not modified).

        An ``av.VideoFrame`` comes back in the same pixel format (yuv420p, yuvj420p, nv12,
        gray, rgb24, bgr24; anything else as yuv420p). A numpy array is either yuv420p planes
        as ``VideoFrame.to_ndarray(format="yuv420p")`` gives them (height * 3 / 2 rows) or a
        height x width x channels picture (blanked to 0). An empty mask returns ``frame`` itself.
        """
        if not self.rects:
            return frame
        if isinstance(frame, np.ndarray):
            out = frame.copy()
            self.blank_array(out)
            return out
        return self._apply_frame(frame)

    def blank_array(self, array: np.ndarray) -> None:
        """Blank the rectangles in ``array`` in place (layouts as for :meth:`apply`)."""
        if array.ndim == 3:
            height, width = array.shape[:2]
            for x0, y0, x1, y1 in self.pixels(width, height):
                array[y0:y1, x0:x1] = 0
            return
        if array.ndim != 2 or array.shape[0] % 3:
            raise ValueError("expected yuv420p planes (height * 3 / 2 rows) or an HxWxC picture")
        height, width = array.shape[0] * 2 // 3, array.shape[1]
        luma = array[:height]
        u = array[height : height + height // 4].reshape(height // 2, width // 2)
        v = array[height + height // 4 :].reshape(height // 2, width // 2)
        self._blank_planar(luma, u, v, width, height, LUMA_BLACK)

    # -- frames -----------------------------------------------------------------------------------

    def _apply_frame(self, frame: av.VideoFrame) -> av.VideoFrame:
        name = frame.format.name
        if name not in _PLANAR_420 and name not in _PACKED and name not in ("nv12", "gray"):
            frame, name = frame.reformat(format="yuv420p"), "yuv420p"
        width, height = frame.width, frame.height
        boxes = self.pixels(width, height)
        if not boxes:
            return frame
        out = av.VideoFrame(width, height, name)
        planes = [_copy_plane(src, dst) for src, dst in zip(frame.planes, out.planes, strict=True)]
        if name in _PLANAR_420:
            y, u, v = planes
            black = 0 if name == "yuvj420p" else LUMA_BLACK
            self._blank_planar(y, u, v, width, height, black)
        elif name == "nv12":
            y, uv = planes
            for x0, y0, x1, y1 in boxes:
                y[y0:y1, x0:x1] = LUMA_BLACK
                uv[y0 // 2 : y1 // 2, x0:x1] = CHROMA_NEUTRAL
        elif name == "gray":
            for x0, y0, x1, y1 in boxes:
                planes[0][y0:y1, x0:x1] = 0
        else:  # packed RGB: 3 bytes a pixel
            for x0, y0, x1, y1 in boxes:
                planes[0][y0:y1, 3 * x0 : 3 * x1] = 0
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out

    def _blank_planar(
        self,
        y: np.ndarray,
        u: np.ndarray,
        v: np.ndarray,
        width: int,
        height: int,
        black: int,
    ) -> None:
        for x0, y0, x1, y1 in self.pixels(width, height):
            y[y0:y1, x0:x1] = black
            u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = CHROMA_NEUTRAL
            v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = CHROMA_NEUTRAL


_PLANAR_420 = ("yuv420p", "yuvj420p")
_PACKED = ("rgb24", "bgr24")


def _even_up(n: int) -> int:
    return n + (n & 1)


def _copy_plane(src: av.video.plane.VideoPlane, dst: av.video.plane.VideoPlane) -> np.ndarray:
    """Copy ``src`` into ``dst``; return ``dst`` as a writable (rows, line bytes) view (the
    padding at the ends of rows included: no rectangle reaches it)."""
    rows = dst.height
    source = np.frombuffer(_buffer(src), np.uint8).reshape(rows, src.line_size)
    target = np.frombuffer(_buffer(dst), np.uint8).reshape(rows, dst.line_size)
    if src.line_size == dst.line_size:
        target[...] = source
    else:
        used = min(src.line_size, dst.line_size)
        target[:, :used] = source[:, :used]
    return target


def _buffer(plane: Any) -> Any:
    """A plane as what numpy reads: it has the buffer protocol (writable), untyped in av."""
    return plane
