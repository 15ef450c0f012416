"""The media side behind one port (:class:`~appliance.stream.ports.MediaControl`): the video
pipeline and the saved privacy mask, and the sound (:mod:`appliance.stream.sound`) when
``audio.source`` is not ``off``: the mode and the viewer count reach both in one call, so the
picture's slate and the silence begin, and end, together.

Built at start before anything that uses it (the viewers, the core's state listener, the
pairing page), so the saved mask is applied from the first frame whatever else runs.
"""

from __future__ import annotations

import logging

import numpy as np

from ..capture.mask import Mask
from ..capture.masks import MaskStore
from ..encode.keyframes import KeyframeReason
from ..state import State
from ..types import Rect
from .ladder import LadderStep
from .pipeline import MediaPipeline, Mode, mode_for
from .sound import SoundFanout, SoundPipeline
from .soundshare import SoundShare

logger = logging.getLogger(__name__)


class Media:
    """Implements :class:`~appliance.stream.ports.MediaControl` on the media thread's pipeline
    and the saved mask, and the sound thread (None: no sound)."""

    def __init__(
        self, pipeline: MediaPipeline, masks: MaskStore, sound: SoundPipeline | None = None
    ) -> None:
        self.pipeline = pipeline
        self.sound = sound
        self._share = SoundShare(sound.bitrate) if sound is not None else None
        self._masks = masks
        self._apply(masks.rects())

    # -- the port -------------------------------------------------------------------------------

    def keyframe(self, reason: KeyframeReason) -> None:
        self.pipeline.keyframe(reason)

    def set_rate(self, bitrate: int, step: LadderStep) -> None:
        """The encoders' bitrate: the sound's share first (:mod:`.soundshare`), the rest to the
        picture."""
        if self.sound is None or self._share is None:
            self.pipeline.set_rate(bitrate, step)
            return
        share = self._share.split(bitrate)
        self.pipeline.set_rate(share.picture_bps, step)
        if share.sound_bps != self.sound.bitrate:
            logger.info("sound at %d kbit/s", share.sound_bps // 1000)
            self.sound.set_bitrate(share.sound_bps)

    def set_viewers(self, count: int) -> None:
        self.pipeline.set_viewers(count)
        if self.sound is not None:
            self.sound.set_viewers(count)

    def set_mode(self, mode: Mode) -> None:
        self.pipeline.set_mode(mode)
        if self.sound is not None:
            self.sound.set_mode(mode)

    @property
    def sound_fanout(self) -> SoundFanout | None:
        return self.sound.fanout if self.sound is not None else None

    def preview(self, timeout: float = 2.0) -> np.ndarray | None:
        return self.pipeline.preview(timeout)

    def mask(self) -> list[Rect]:
        return self._masks.rects()

    def set_mask(self, rects: list[Rect]) -> list[Rect]:
        kept = self._masks.save(rects)
        self._apply(kept)
        return kept

    # -- for the composition root ---------------------------------------------------------------

    def follow_state(self, old: State, new: State) -> None:
        """A core state listener: the mode follows the session's state (:func:`mode_for`)."""
        self.set_mode(mode_for(new))

    def start(self) -> None:
        self.pipeline.start()
        if self.sound is not None:
            self.sound.start()

    def stop(self) -> None:
        """Stop the media and sound threads, release sources and encoders. Idempotent."""
        self.pipeline.stop()
        if self.sound is not None:
            self.sound.stop()

    def _apply(self, rects: list[Rect]) -> None:
        self.pipeline.set_frame_filter(Mask(rects).apply if rects else None)
