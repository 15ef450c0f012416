"""Who hears what: the staff's three sound switches and what is heard now (docs/privacy.md).

No I/O here. The core keeps the switches for the open session and derives :class:`Hearing` from
them and the state (appliance.core.hearing); the media side, the LED and the pages follow it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SoundSwitch(enum.StrEnum):
    """The staff's switches, each per session (its default in brackets)."""

    SCANNER = "scanner"  # the scanner's sound reaches the phone [on; the staff may mute it]
    MICROPHONE = "microphone"  # the room's microphone reaches the phone [off]
    TALKBACK = "talkback"  # the phone may speak to the room, while its button is held [off]


@dataclass(frozen=True)
class Hearing:
    """What is heard at this moment (each False whenever the session is not LIVE with its
    admitted viewer connected)."""

    #: the scanner's sound is sent to the phone
    scanner: bool = False
    #: the room's microphone is sent to the phone (the LED and the staff's page show it)
    microphone: bool = False
    #: the phone's voice is played in the room (talk-back allowed and its button held)
    talkback: bool = False


SILENT = Hearing()
