"""The time strip: a frame's capture time drawn in its top-left corner (ARCHITECTURE.md).

T = capture time in whole milliseconds since the Unix epoch, modulo 2**48. Row 0 (pixel rows
0-15) holds 48 cells of 16x16 pixels, cell i white (luma 235) when bit 47-i of T is 1, else
black (luma 16); row 1 (pixel rows 16-31) holds the inverse, so a damaged strip is rejected.

The click marker, below it (:data:`MARKER_RECT`: pixel rows 40-71, columns 0-63): white on the
one frame captured in the first frame period of every whole second of the wall clock (the
instants the synthetic sound clicks), black on every other frame. A benchmark (or a camera and a
microphone filming a phone) matches each marker to its click.
"""

from __future__ import annotations

import numpy as np

BITS = 48
CELL = 16
WIDTH = BITS * CELL  # 768 pixels
HEIGHT = 2 * CELL  # 32 pixels
MODULUS = 1 << BITS
WHITE = 235
BLACK = 16

_SHIFTS = np.arange(BITS - 1, -1, -1, dtype=np.uint64)


def stamp_ms(captured_at: float) -> int:
    """The strip's value for a capture time in seconds since the epoch."""
    return int(captured_at * 1000) % MODULUS


def draw(luma: np.ndarray, value: int) -> None:
    """Draw ``value`` into the top-left of a luma plane (uint8, at least 32 x 768), in place."""
    bits = ((np.uint64(value) >> _SHIFTS) & np.uint64(1)).astype(bool)
    row = np.where(bits, WHITE, BLACK).astype(np.uint8)
    cells = np.repeat(row, CELL)
    luma[0:CELL, 0:WIDTH] = cells
    luma[CELL:HEIGHT, 0:WIDTH] = (WHITE + BLACK) - cells


def read(luma: np.ndarray) -> int | None:
    """Decode a strip from a luma plane, or ``None`` if absent or damaged.

    Each cell is sampled over its central 8x8 pixels, so compression noise at the cell edges
    and a scaled picture's blur do not matter.
    """
    if luma.shape[0] < HEIGHT or luma.shape[1] < WIDTH:
        return None
    strip = luma[:HEIGHT, :WIDTH].astype(np.int32)
    # central 8x8 of each cell: rows 4..12 of each cell row, columns 4..12 of each cell
    top = strip[4:12].reshape(8, BITS, CELL)[:, :, 4:12].mean(axis=(0, 2))
    bottom = strip[CELL + 4 : CELL + 12].reshape(8, BITS, CELL)[:, :, 4:12].mean(axis=(0, 2))
    mid = (WHITE + BLACK) / 2
    margin = (WHITE - BLACK) / 4
    if np.any(np.abs(top - mid) < margin) or np.any(np.abs(bottom - mid) < margin):
        return None
    top_bits = top > mid
    if np.any(top_bits == (bottom > mid)):
        return None
    value = 0
    for bit in top_bits:
        value = (value << 1) | int(bit)
    return value


def latency_ms(value: int, now: float) -> float:
    """Milliseconds from the stamped capture time to ``now`` (seconds since the epoch)."""
    return (now * 1000.0 - value) % MODULUS


#: The click marker's place: x, y, width, height (below the strip, in the picture's dark corner).
MARKER_RECT = (0, HEIGHT + 8, 4 * CELL, 2 * CELL)


def marker_shown(captured_at: float, fps: float) -> bool:
    """Whether a frame captured at ``captured_at`` carries the marker: the first frame period
    after a whole second (a click) at ``fps`` frames per second."""
    return captured_at % 1.0 < 1.0 / fps


def draw_marker(luma: np.ndarray, shown: bool) -> None:
    """Draw the marker, white when ``shown`` else black, into a luma plane, in place."""
    x, y, w, h = MARKER_RECT
    luma[y : y + h, x : x + w] = WHITE if shown else BLACK


def read_marker(luma: np.ndarray) -> bool | None:
    """Whether a luma plane shows the marker (its central part mostly white); None if the
    plane is too small to hold it."""
    x, y, w, h = MARKER_RECT
    if luma.shape[0] < y + h or luma.shape[1] < x + w:
        return None
    middle = luma[y + 8 : y + h - 8, x + 8 : x + w - 8]
    return bool(middle.mean() > (WHITE + BLACK) / 2)
