"""The media side's one port: what the viewers, the core's state and the pairing page may ask
of the media (built before any of them, handed to them through their constructors).

:class:`MediaControl` is implemented by :class:`~appliance.stream.media.Media`.

Sound is behind the same port: a second source, encoder and track, built by the same media
builder (and a third for the room microphone, with talk-back the other way). ``set_viewers``
and ``set_mode`` start, pause and stop them all, in one call; ``set_hearing`` follows the staff's
switches;
``sound_fanout`` is what the viewers' audio tracks read (None: the box sends no sound).
``keyframe``, the mask and the preview stay the picture's. ``set_rate`` shares the encoders'
bitrate among what is sending: the room microphone's and the scanner sound's first
(:mod:`~appliance.stream.soundshare`), the rest to the picture.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..encode.keyframes import KeyframeReason
from ..hearing import Hearing
from ..types import Rect
from .ladder import LadderStep
from .pipeline import Mode
from .sound import SoundFanout
from .talkback import TalkBack


class MediaControl(Protocol):
    """Control of the media side: ``keyframe``, the mask and the preview from any thread;
    ``set_rate``, ``set_viewers``, ``set_mode`` and ``set_hearing`` on the event loop (the
    viewers' rate control, the core's listeners), where the sounds' shares are kept."""

    def keyframe(self, reason: KeyframeReason) -> None:
        """Ask for a keyframe; the policy (:mod:`appliance.encode.keyframes`) says when."""

    def set_rate(self, bitrate: int, step: LadderStep) -> None:
        """The rate controller's decision (the slowest viewer's) for the encoders: the sounds
        that are sending keep their share first, the picture gets the rest; applied before the
        next frame."""

    def set_viewers(self, count: int) -> None:
        """How many viewers are adopted: nothing is encoded for nobody."""

    def set_mode(self, mode: Mode) -> None:
        """What to send: nothing, the live picture and sound, the paused slate and silence."""

    def set_hearing(self, hearing: Hearing) -> None:
        """Who hears what, as the core derived it: the scanner's sound (muted or not), the room
        microphone (off unless the staff switched it on), talk-back played in the room."""

    @property
    def sound_fanout(self) -> SoundFanout | None:
        """The encoded sound for the viewers' audio tracks; None when the box sends none."""

    @property
    def room_fanout(self) -> SoundFanout | None:
        """The room microphone's encoded sound (the room's m-line); None: no microphone."""

    @property
    def talkback(self) -> TalkBack | None:
        """Where the viewer's voice track goes (the room's m-line); None: no speaker."""

    def preview(self, timeout: float = 2.0) -> np.ndarray | None:
        """A fresh, unmasked, small RGB picture for the staff's mask editor (None: no signal)."""

    def mask(self) -> list[Rect]:
        """The privacy mask's rectangles in force."""

    def set_mask(self, rects: list[Rect]) -> list[Rect]:
        """Check, save and apply new rectangles (ValueError for a bad one); returns them."""
