"""What the core reads of the configuration, and nothing more: built once by the composition root
(appliance.box.core_settings), so the core imports nothing of appliance.config."""

from __future__ import annotations

from dataclasses import dataclass

from ..hearing import SoundSwitch


@dataclass(frozen=True)
class CoreSettings:
    """The core's settings (config ``box.name`` and ``[pairing]``)."""

    #: the box's name: the room's name on the staff's page
    room_name: str
    #: a session's validity when the staff do not choose one (the button's sessions)
    valid_minutes: int
    #: the longest a session may last from its opening, extensions included
    max_minutes: int
    #: the viewer is admitted without the staff (development only: it warns)
    pre_admit: bool = False
    #: the sound switches this box has (the scanner's sound, a room microphone, a speaker)
    switches: frozenset[SoundSwitch] = frozenset()
