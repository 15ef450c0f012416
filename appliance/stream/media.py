"""The media side behind one port (:class:`~appliance.stream.ports.MediaControl`): the video
pipeline and the saved privacy mask, and the sound (:mod:`appliance.stream.sound`) when
``audio.source`` is not ``off``: the mode and the viewer count reach both in one call, so the
picture's slate and the silence begin, and end, together. The room microphone (a second sound
pipeline, ``room.microphone``) and talk-back (:mod:`appliance.stream.talkback`, ``room.speaker``)
follow the core's :class:`~appliance.hearing.Hearing` (``set_hearing``) as well.

Built at start before anything that uses it (the viewers, the core's state listener, the
pairing page), so the saved mask is applied from the first frame whatever else runs.
"""

from __future__ import annotations

import logging

import numpy as np

from ..capture.mask import Mask
from ..capture.masks import MaskStore
from ..encode.keyframes import KeyframeReason
from ..hearing import Hearing
from ..state import State
from ..types import Rect
from .ladder import LadderStep
from .pipeline import MediaPipeline, Mode, mode_for
from .sound import SoundFanout, SoundPipeline
from .soundshare import SoundShare
from .talkback import TalkBack

logger = logging.getLogger(__name__)


class Media:
    """Implements :class:`~appliance.stream.ports.MediaControl` on the media thread's pipeline
    and the saved mask, the scanner's sound thread, the room microphone's (None: no such sound)
    and talk-back (None: no speaker)."""

    def __init__(
        self,
        pipeline: MediaPipeline,
        masks: MaskStore,
        sound: SoundPipeline | None = None,
        *,
        room: SoundPipeline | None = None,
        talkback: TalkBack | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.sound = sound
        self._share = SoundShare(sound.bitrate) if sound is not None else None
        self.room = room
        self._talkback = talkback
        #: the rate last set, and which sounds were sending then (their shares taken from it)
        self._rate: tuple[int, LadderStep] | None = None
        self._shared = (False, False)
        self._masks = masks
        self._apply(masks.rects())

    # -- the port -------------------------------------------------------------------------------

    def keyframe(self, reason: KeyframeReason) -> None:
        self.pipeline.keyframe(reason)

    def set_rate(self, bitrate: int, step: LadderStep) -> None:
        """The encoders' bitrate, shared by what is sending: the room microphone's first (its
        own fixed bitrate, ``room.bitrate``), then the scanner sound's share
        (:mod:`.soundshare`), the rest to the picture. A sound that is not sending (muted,
        switched off, paused) leaves its share to the picture."""
        self._rate = (bitrate, step)
        self._shared = scanner, room = self._sending()
        if room and self.room is not None:
            bitrate = max(bitrate - self.room.bitrate, 0)
        if self.sound is None or self._share is None:
            self.pipeline.set_rate(bitrate, step)
            return
        share = self._share.split(bitrate)  # its squeeze follows every decision, sent or not
        self.pipeline.set_rate(share.picture_bps if scanner else bitrate, step)
        if scanner and share.sound_bps != self.sound.bitrate:
            logger.info("sound at %d kbit/s", share.sound_bps // 1000)
            self.sound.set_bitrate(share.sound_bps)

    def set_viewers(self, count: int) -> None:
        self.pipeline.set_viewers(count)
        for sound in self._sounds():
            sound.set_viewers(count)
        self._reshare()

    def set_mode(self, mode: Mode) -> None:
        self.pipeline.set_mode(mode)
        for sound in self._sounds():
            sound.set_mode(mode)
        self._reshare()

    def set_hearing(self, hearing: Hearing) -> None:
        if self.sound is not None:
            self.sound.set_enabled(hearing.scanner)
        if self.room is not None:
            self.room.set_enabled(hearing.microphone)
        if self._talkback is not None:
            self._talkback.set_playing(hearing.talkback)
        self._reshare()

    def _sending(self) -> tuple[bool, bool]:
        """Whether the scanner's sound and the room microphone are sending now."""
        return (
            self.sound is not None and self.sound.sending,
            self.room is not None and self.room.sending,
        )

    def _reshare(self) -> None:
        """A sound started or stopped sending: the picture takes, or gives back, its share at
        once (not at the rate controller's next step)."""
        if self._rate is not None and self._sending() != self._shared:
            self.set_rate(*self._rate)

    @property
    def sound_fanout(self) -> SoundFanout | None:
        return self.sound.fanout if self.sound is not None else None

    @property
    def room_fanout(self) -> SoundFanout | None:
        return self.room.fanout if self.room is not None else None

    @property
    def talkback(self) -> TalkBack | None:
        return self._talkback

    def _sounds(self) -> list[SoundPipeline]:
        return [s for s in (self.sound, self.room) if s is not None]

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
        for sound in self._sounds():
            sound.start()
        if self._talkback is not None:
            self._talkback.start()

    def stop(self) -> None:
        """Stop the media, sound and talk-back threads, release sources, encoders and the
        speaker. Idempotent."""
        self.pipeline.stop()
        for sound in self._sounds():
            sound.stop()
        if self._talkback is not None:
            self._talkback.stop()

    def _apply(self, rects: list[Rect]) -> None:
        self.pipeline.set_frame_filter(Mask(rects).apply if rects else None)
