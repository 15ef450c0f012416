"""A synthetic ultrasound source: grey speckle in a sector, slowly drifting, a pulsing cavity.

It stands in for the scanner in the demo, the tests and the benchmarks. Every frame carries the
time strip (capture time) and the click marker (white on the frame that follows each whole second,
when the synthetic sound clicks), and a bright "patient banner" at the top right stands in for the
name and date of birth scanners print on screen, so privacy-mask tests have something to hide.
Frames are produced on a fixed clock; a reader that falls behind skips frames, as a real capture
device would drop them.
"""

from __future__ import annotations

import math
import threading
import time

import av
import numpy as np

from . import timestrip
from .base import CapturedFrame, SignalState

#: Where the stand-in for the patient's name is drawn (x, y, width, height), scaled to the frame.
BANNER_FRACTION = (0.70, 0.06, 0.26, 0.05)
BANNER_LUMA = 230

_DRIFT = 48  # pixels of slow tissue drift, each way
_HEART_HZ = 2.3  # a fetal heart at about 140 beats per minute
_RING = 3  # frame buffers in rotation: the encoder copies a frame before it is reused


class SyntheticSource:
    """An ultrasound-like phantom at ``width`` x ``height``, ``fps`` frames per second."""

    def __init__(
        self, width: int = 1920, height: int = 1080, fps: float = 30, seed: int = 7
    ) -> None:
        if width < timestrip.WIDTH or height < 120 or width % 2 or height % 2:
            raise ValueError(
                f"synthetic source needs an even size of at least {timestrip.WIDTH}x120, "
                f"got {width}x{height}"
            )
        self._w, self._h, self._fps = width, height, float(fps)
        self._rng = np.random.default_rng(seed)
        self._buffers = [np.full((height * 3 // 2, width), 128, np.uint8) for _ in range(_RING)]
        self._next = 0
        self._t0 = 0.0
        self._frame_index = 0
        self._opened = False
        self._closed = threading.Event()
        self._build_static()

    # -- Source protocol ------------------------------------------------------------------------

    @property
    def width(self) -> int:
        return self._w

    @property
    def height(self) -> int:
        return self._h

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def signal(self) -> SignalState:
        return SignalState.PRESENT

    def open(self) -> None:
        self._t0 = time.monotonic()
        self._frame_index = 0
        self._closed.clear()
        self._opened = True

    def read(self, timeout: float) -> CapturedFrame | None:
        if not self._opened:
            self.open()
        now = time.monotonic()
        due = self._t0 + self._frame_index / self._fps
        if due < now - 1.0 / self._fps:  # fell behind: skip to the current tick
            self._frame_index = int((now - self._t0) * self._fps) + 1
            due = self._t0 + self._frame_index / self._fps
        wait = due - now
        if wait > timeout:
            self._closed.wait(timeout)
            return None
        if wait > 0 and self._closed.wait(wait):
            return None
        self._frame_index += 1
        captured_at = time.time()
        return CapturedFrame(frame=self.render(captured_at), captured_at=captured_at)

    def close(self) -> None:
        self._opened = False
        self._closed.set()

    # -- drawing ----------------------------------------------------------------------------------

    def render(self, captured_at: float) -> av.VideoFrame:
        """Draw the phantom as it looks at ``captured_at`` (seconds since the epoch)."""
        t = captured_at - math.floor(captured_at / 3600.0) * 3600.0
        buf = self._buffers[self._next]
        self._next = (self._next + 1) % _RING
        luma = buf[: self._h]

        # tissue: the speckle texture drifts slowly under the probe
        ox = _DRIFT + int(_DRIFT * math.sin(2 * math.pi * t / 7.0))
        oy = _DRIFT + int(_DRIFT * 0.5 * math.sin(2 * math.pi * t / 5.0))
        tex = self._texture[oy : oy + self._h, ox : ox + self._w]
        np.multiply(tex, self._gain, out=self._scratch)
        np.right_shift(self._scratch, 8, out=self._scratch)
        luma[...] = self._scratch

        # a pulsing, fluid-filled cavity with a bright wall: motion anyone can see
        beat = 0.5 + 0.5 * math.sin(2 * math.pi * _HEART_HZ * t)
        radius = 0.55 + 0.3 * beat
        y0, y1, x0, x1 = self._heart_box
        region = luma[y0:y1, x0:x1]
        d = self._heart_dist
        region[d < radius] = 12
        wall = (d >= radius) & (d < radius + 0.18)
        region[wall] = np.maximum(region[wall], 200)

        bx, by, bw, bh = self.banner_rect
        luma[by : by + bh, bx : bx + bw] = self._banner
        timestrip.draw(luma, timestrip.stamp_ms(captured_at))
        timestrip.draw_marker(luma, timestrip.marker_shown(captured_at, self._fps))
        return av.VideoFrame.from_numpy_buffer(buf, format="yuv420p")

    @property
    def banner_rect(self) -> tuple[int, int, int, int]:
        """Where the stand-in patient banner is drawn: x, y, width, height (even numbers)."""
        fx, fy, fw, fh = BANNER_FRACTION
        return (
            int(self._w * fx) // 2 * 2,
            max(timestrip.HEIGHT + 8, int(self._h * fy)) // 2 * 2,
            int(self._w * fw) // 2 * 2,
            max(16, int(self._h * fh)) // 2 * 2,
        )

    def _build_static(self) -> None:
        w, h = self._w, self._h
        # speckle: Rayleigh-distributed grains about 2-3 pixels across
        th, tw = (h + 2 * _DRIFT) // 2 + 1, (w + 2 * _DRIFT) // 2 + 1
        grains = self._rng.rayleigh(0.55, size=(th, tw))
        grains = np.clip(grains * 255 / 2.2, 0, 255).astype(np.uint16)
        grains = np.repeat(np.repeat(grains, 2, axis=0), 2, axis=1)
        smooth = (grains + np.roll(grains, 1, axis=1) + np.roll(grains, 1, axis=0)) // 3
        self._texture = np.ascontiguousarray(smooth[: h + 2 * _DRIFT, : w + 2 * _DRIFT])

        # the sector: apex above the top centre, +-38 degrees, depth-dependent gain
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        apex_x, apex_y = w / 2, -0.12 * h
        r = np.hypot(xx - apex_x, yy - apex_y)
        angle = np.degrees(np.arctan2(xx - apex_x, yy - apex_y))
        r0, r1 = 0.2 * h, 1.08 * h
        inside = (np.abs(angle) < 38) & (r > r0) & (r < r1)
        depth = np.clip((r - r0) / (r1 - r0), 0, 1)
        gain = (255 * (1.0 - 0.55 * depth)) * inside
        edge = np.clip((38 - np.abs(angle)) / 2.0, 0, 1)  # soft sector edges
        self._gain = (gain * edge).astype(np.uint16)
        self._scratch = np.empty((h, w), np.uint16)

        # the cavity's bounding box and normalised distance map
        cx, cy = w // 2, int(h * 0.55)
        rx, ry = max(8, int(h * 0.11)), max(8, int(h * 0.08))
        y0, y1, x0, x1 = cy - 2 * ry, cy + 2 * ry, cx - 2 * rx, cx + 2 * rx
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self._heart_box = (y0, y1, x0, x1)
        self._heart_dist = np.hypot((gx - cx) / rx, (gy - cy) / ry)

        # the stand-in patient banner: bright "letters" (bars) on black
        _, _, bw, bh = self.banner_rect
        banner = np.full((bh, bw), 16, np.uint8)
        bar = max(2, bh // 6)
        for i, x in enumerate(range(bar, bw - 2 * bar, 3 * bar)):
            height = bh - 2 * bar if i % 3 else bh // 2
            banner[bar : bar + height, x : x + 2 * bar] = BANNER_LUMA
        self._banner = banner
