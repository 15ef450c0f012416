"""The picture ladder: what to give up, in order, as the bitrate the link allows drops.

A diagnostic picture should stay sharp and smooth for as long as it can, then lose motion
smoothness before detail:

1. ``full``: the source's size and frame rate. The encoder just gets a lower bitrate, so its
   quantizer rises; this holds down to ``fps_below_bps``, the rate at which the quantizer
   reaches the highest value still fit to read (the "QP cap", expressed as a bitrate).
2. ``half-rate``: every other frame is dropped (30 -> 15 fps), which doubles the bits per
   frame at the same bitrate. Cheap and instant: no keyframe.
3. ``smaller``: 15 fps and the picture scaled by ``reduced_scale`` (1080p -> 720p). The encoder
   restarts at the new size, which costs one IDR.

Steps down are taken at once; a step up needs the target at ``up_factor`` times the step's
threshold for ``up_hold_s`` seconds without a break (hysteresis, so a link near a threshold
does not flap between two pictures). Everything here is pure: time is passed in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LadderStep:
    """One rung: its name (shown to the viewer), frame rate and scale of the source's size."""

    level: int  # 0 is the full picture; higher is more reduced
    name: str
    fps: float
    scale: float

    @property
    def frame_divisor(self) -> int:
        """Keep one frame in this many (the caller drops the others before the encoder)."""
        return 1 if self.level == 0 else 2

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The encoded size for a ``width`` x ``height`` source at this step (even numbers)."""
        return scaled_size(width, height, self.scale)


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """``width`` x ``height`` times ``scale``, rounded down to even numbers (4:2:0 needs them)."""
    if scale >= 1.0:
        return width, height
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


@dataclass(frozen=True)
class LadderParams:
    """Where the ladder's steps are, in bit/s of the controller's target.

    ``fps_below_bps``: below this the frame rate halves (the quantizer cap at full rate).
    ``scale_below_bps``: below this the picture is also scaled by ``reduced_scale``.
    ``up_factor`` / ``up_hold_s``: a step up needs ``up_factor`` x its threshold for
    ``up_hold_s`` seconds.
    """

    full_fps: float = 30.0
    reduced_fps: float = 15.0
    reduced_scale: float = 2 / 3
    fps_below_bps: int = 1_800_000
    scale_below_bps: int = 900_000
    up_factor: float = 1.3
    up_hold_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.scale_below_bps <= self.fps_below_bps:
            raise ValueError("the ladder needs 0 < scale_below_bps <= fps_below_bps")
        if self.up_factor < 1.0 or self.up_hold_s < 0:
            raise ValueError("the ladder's hysteresis needs up_factor >= 1 and up_hold_s >= 0")
        if not 0 < self.reduced_scale <= 1.0 or not 0 < self.reduced_fps <= self.full_fps:
            raise ValueError("the reduced steps must not be larger than the full picture")

    @classmethod
    def for_picture(
        cls, width: int, height: int, fps: float, bits_per_pixel: float = 0.03
    ) -> LadderParams:
        """Thresholds scaled to a picture: the frame rate halves when a frame at full rate would
        get fewer than ``bits_per_pixel`` bits per pixel (about where libx264 and the Pi's
        encoder reach QP 40 on ultrasound speckle), and the size drops at half that rate."""
        fps_below = int(width * height * fps * bits_per_pixel)
        return cls(
            full_fps=fps,
            reduced_fps=fps / 2,
            fps_below_bps=fps_below,
            scale_below_bps=fps_below // 2,
        )

    def steps(self) -> tuple[LadderStep, LadderStep, LadderStep]:
        """The three rungs, full first."""
        return (
            LadderStep(0, "full", self.full_fps, 1.0),
            LadderStep(1, "half-rate", self.reduced_fps, 1.0),
            LadderStep(2, "smaller", self.reduced_fps, self.reduced_scale),
        )

    def threshold(self, level: int) -> int:
        """The target below which ``level`` is left for the next one down (0 for the lowest)."""
        return (self.fps_below_bps, self.scale_below_bps, 0)[level]


#: 1080p30 from the scanner: 30 fps down to 1.8 Mbit/s, 15 fps down to 0.9 Mbit/s, then 720p15.
LADDER_1080P30 = LadderParams()
#: 720p30: 30 fps down to 0.8 Mbit/s, 15 fps down to 0.4 Mbit/s, then 480p15 (852x480).
LADDER_720P30 = LadderParams(fps_below_bps=800_000, scale_below_bps=400_000)


class Ladder:
    """Tracks the current step from the target bitrate, with hysteresis on the way up."""

    def __init__(self, params: LadderParams = LADDER_1080P30) -> None:
        self.params = params
        self._steps = params.steps()
        self._level = 0
        self._up_since: float | None = None

    @property
    def step(self) -> LadderStep:
        """The current step."""
        return self._steps[self._level]

    def update(self, target_bps: float, now: float) -> LadderStep:
        """Feed the controller's target at time ``now`` (seconds); return the step to use."""
        p = self.params
        level = self._level
        while level < 2 and target_bps < p.threshold(level):
            level += 1
        if level > self._level:
            logger.info(
                "ladder down to %s at %d kbit/s", self._steps[level].name, target_bps // 1000
            )
            self._level = level
            self._up_since = None
            return self.step
        if level == 0 or target_bps < p.up_factor * p.threshold(level - 1):
            self._up_since = None
            return self.step
        if self._up_since is None:
            self._up_since = now
        if now - self._up_since >= p.up_hold_s:
            self._level = level - 1
            self._up_since = None if self._level == 0 else now
            logger.info("ladder up to %s at %d kbit/s", self.step.name, target_bps // 1000)
        return self.step


def ladder_for(width: int, height: int, fps: float) -> LadderParams:
    """The preset for 1080p30 or 720p30, else thresholds scaled to the picture."""
    if (width, height, round(fps)) == (1920, 1080, 30):
        return LADDER_1080P30
    if (width, height, round(fps)) == (1280, 720, 30):
        return LADDER_720P30
    return LadderParams.for_picture(width, height, fps)
