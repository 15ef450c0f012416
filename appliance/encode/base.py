"""The interface every H.264 encoder implements, and bitstream helpers shared by them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Protocol

import av

#: RTP's video clock: every encoder stamps its packets' pts in this time base.
VIDEO_TIME_BASE = Fraction(1, 90_000)

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9


class Encoder(Protocol):
    """H.264 Constrained Baseline, no B-frames, SPS/PPS before every IDR, Annex B output.

    ``encode()`` runs in the pipeline thread; ``request_keyframe()``, ``set_frame_divisor()``
    and the ``bitrate`` setter may be called from any thread and take effect on the next frame
    (a new bitrate or frame divisor without an IDR).
    """

    @property
    def bitrate(self) -> int: ...

    @bitrate.setter
    def bitrate(self, value: int) -> None: ...

    def encode(self, frame: av.VideoFrame, pts: int) -> list[av.Packet]:
        """Encode one frame (``pts`` in :data:`VIDEO_TIME_BASE`); a new size restarts the stream
        with a fresh SPS/PPS and an IDR."""

    def request_keyframe(self) -> None:
        """Make the next encoded frame an IDR (with SPS/PPS)."""

    def set_frame_divisor(self, divisor: int) -> None:
        """The caller now passes one frame in ``divisor`` (1 or 2): keep the bitrate, no IDR."""

    def close(self) -> None:
        """Release the encoder. Idempotent."""


#: Makes an encoder for width, height and frame rate (the media pipeline calls it per size).
EncoderFactory = Callable[[int, int, float], Encoder]


def iter_nal_units(data: bytes) -> Iterator[bytes]:
    """Split an Annex B byte stream into NAL units (without start codes)."""
    i, n = 0, len(data)
    starts: list[int] = []
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for k, s in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else n
        unit = data[s:end]
        # a 4-byte start code leaves a trailing zero on the previous unit
        while k + 1 < len(starts) and unit.endswith(b"\x00"):
            unit = unit[:-1]
        if unit:
            yield unit


def nal_types(data: bytes) -> list[int]:
    """The NAL unit types in an Annex B byte stream, in order."""
    return [unit[0] & 0x1F for unit in iter_nal_units(data)]
