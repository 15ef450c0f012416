"""The privacy mask: rectangles blanked in every frame before it reaches the encoder.

Rectangles are fractions of the picture (x, y, width, height from 0 to 1), so a mask drawn once
per scanner model holds at any resolution the scanner switches to. Blanked means black: luma 16,
chroma 128 in the yuv420p frames the encoders take (other formats are converted first).
"""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np

Rect = tuple[float, float, float, float]


class Mask:
    def __init__(self, rects: Sequence[Rect]) -> None:
        self.rects = [tuple(float(v) for v in r) for r in rects]

    def pixels(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The rectangles in pixels for a ``width`` x ``height`` picture, grown outwards to even
        edges (so chroma blocks are covered whole) and clipped to the picture."""
        out = []
        for x, y, w, h in self.rects:
            x0, y0 = int(x * width) // 2 * 2, int(y * height) // 2 * 2
            x1 = min(width, -(-int(np.ceil((x + w) * width)) // 2) * 2)
            y1 = min(height, -(-int(np.ceil((y + h) * height)) // 2) * 2)
            if x1 > x0 and y1 > y0:
                out.append((x0, y0, x1, y1))
        return out

    def apply(self, frame: av.VideoFrame) -> av.VideoFrame:
        """``frame`` with the rectangles blanked (a new frame; the input is not modified)."""
        if not self.rects:
            return frame
        boxes = self.pixels(frame.width, frame.height)
        if not boxes:
            return frame
        planes = frame.to_ndarray(format="yuv420p")  # (h * 3 / 2, w): Y, then U, then V
        h, w = frame.height, frame.width
        y_plane = planes[:h]
        u_plane = planes[h : h + h // 4].reshape(h // 2, w // 2)
        v_plane = planes[h + h // 4 :].reshape(h // 2, w // 2)
        for x0, y0, x1, y1 in boxes:
            y_plane[y0:y1, x0:x1] = 16
            u_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = 128
            v_plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = 128
        out = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        out.pts = frame.pts
        if frame.time_base is not None:
            out.time_base = frame.time_base
        return out
