"""The interface every frame source implements."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

import av


class SignalState(enum.Enum):
    """What the source sees on its input; separate from the session state."""

    PRESENT = "present"  # frames are flowing
    NO_DEVICE = "no-device"  # the capture device is missing or its driver is not bound
    NO_CABLE = "no-cable"  # nothing plugged in (HDMI: ENOLINK with no 5 V / hotplug)
    NO_SIGNAL = "no-signal"  # cable present, no video (ENOLINK)
    NO_LOCK = "no-lock"  # video present but the bridge cannot lock to it (ENOLCK)
    CHANGING = "changing"  # timings changed; restarting the capture


@dataclass(frozen=True)
class CapturedFrame:
    """One picture from a source.

    ``frame`` is an ``av.VideoFrame`` in any pixel format the encoders accept (yuv420p from the
    software sources). ``captured_at`` is the wall-clock capture time in seconds since the epoch
    (it is what the time strip encodes). ``slate`` marks a frame the source made itself (no
    signal): it carries no time strip and the pipeline sends it as a keyframe.
    """

    frame: av.VideoFrame
    captured_at: float
    slate: bool = False


class Source(Protocol):
    """A frame source. ``read()`` blocks (in the capture thread) until the next frame."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def fps(self) -> float: ...

    @property
    def signal(self) -> SignalState: ...

    def open(self) -> None:
        """Acquire the device; may raise :class:`~appliance.errors.DeviceError`."""

    def read(self, timeout: float) -> CapturedFrame | None:
        """The next frame, or ``None`` if none came within ``timeout`` seconds."""

    def close(self) -> None:
        """Release the device. Idempotent."""
