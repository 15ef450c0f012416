"""Who hears what, for the core: the staff's three sound switches for the open session, the
viewer's talk button, and what is heard now (:class:`~appliance.hearing.Hearing`), derived from
them and the state after every event.

The defaults are the privacy ones (docs/privacy.md): the scanner's sound on, the room microphone
and talk-back off. The microphone goes off by itself whenever the picture leaves LIVE (a pause,
the end, another phone let in); talk-back stays allowed through a pause but nothing is played
until the picture is live again; the end forgets every switch. Each switch turned, by the staff
or by the box, goes to the event log (``sound``), and so does the phone's voice beginning and
ending in the room (``talk``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from ..errors import InvalidStateError
from ..hearing import SILENT, Hearing, SoundSwitch
from ..state import State
from ..vocab import OPEN_STATES
from .base import CoreBase
from .inbox import notify
from .ports import ViewerMessage
from .views import SoundView, Status

logger = logging.getLogger(__name__)

HearingListener = Callable[[Hearing], None]

#: Each switch's value when a session opens.
DEFAULTS: dict[SoundSwitch, bool] = {
    SoundSwitch.SCANNER: True,
    SoundSwitch.MICROPHONE: False,
    SoundSwitch.TALKBACK: False,
}

#: What the staff are told when the box has no such sound.
_MISSING = {
    SoundSwitch.SCANNER: "this box sends no scanner sound (config audio.source)",
    SoundSwitch.MICROPHONE: "this box has no room microphone (config room.microphone)",
    SoundSwitch.TALKBACK: "this box has no speaker for talk-back (config room.speaker)",
}


class HearingKeeper(CoreBase):
    """The sound switches and what is heard; :meth:`_rehear` runs after every event."""

    _switches: dict[SoundSwitch, bool]
    _talking: bool = False
    _hearing: Hearing = SILENT
    _hearing_listeners: list[HearingListener]
    #: a switch changed in this event: the viewer is told once the event is handled
    _tell_viewer_later: bool = False

    def _init_concern(self) -> None:
        super()._init_concern()
        self._switches = dict(DEFAULTS)
        self._hearing_listeners = []

    def add_hearing_listener(self, listener: HearingListener) -> None:
        """Call ``listener(hearing)`` on the loop each time what is heard changes."""
        self._hearing_listeners.append(listener)

    @property
    def hearing(self) -> Hearing:
        return self._hearing

    def switches(self) -> dict[str, bool]:
        """The switches the box has, by name, as the staff's page shows them."""
        return {s.value: on for s, on in self._switches.items() if s in self._settings.switches}

    def status(self) -> Status:
        """The pages' snapshot, with the sound switches and what is heard."""
        status = super().status()
        switches = self.switches()
        if not switches:
            return status
        heard = self._hearing
        sound = SoundView(switches, heard.scanner, heard.microphone, heard.talkback)
        return dataclasses.replace(status, sound=sound)

    def viewer_message(self) -> ViewerMessage:
        """The viewer's status, with whether it may talk to the room and whether the room's
        microphone is on (docs/protocol.md, "status")."""
        message = super().viewer_message()
        if self.session is not None and self._state in OPEN_STATES:
            message["talkback"] = self._switches[SoundSwitch.TALKBACK]
            message["microphone"] = self._switches[SoundSwitch.MICROPHONE]
        return message

    def _set_sound(self, switch: SoundSwitch, on: bool) -> None:
        """The staff turned a switch (a staff command, refused with a safe message)."""
        if switch not in self._settings.switches:
            raise InvalidStateError(_MISSING[switch])
        if self.session is None or self._state not in OPEN_STATES:
            raise InvalidStateError("no session is open")
        if switch is SoundSwitch.MICROPHONE and on and self._state is not State.LIVE:
            raise InvalidStateError("the room microphone goes on only while the picture is live")
        self._turn(switch, on, "staff")

    def _turn(self, switch: SoundSwitch, on: bool, reason: str) -> None:
        if self._switches[switch] == on:
            return
        self._switches[switch] = on
        if switch is SoundSwitch.TALKBACK and not on:
            self._talking = False
        logger.info("sound: %s %s (%s)", switch.value, "on" if on else "off", reason)
        self._record("sound", what=switch.value, on=on, reason=reason)
        self._tell_viewer_later = True

    def _viewer_talks(self, on: bool) -> None:
        """The phone's talk button: heard only while allowed and live; refused otherwise."""
        if on and not (self._switches[SoundSwitch.TALKBACK] and self._state is State.LIVE):
            logger.info("talk refused: talk-back is not allowed now")
            on = False
        self._talking = on

    def _derive(self) -> Hearing:
        """What is heard: each switch the box has, only while LIVE with the admitted viewer
        connected; talk-back only while the phone's button is held too."""
        viewer = self.session.viewer if self.session is not None else None
        live = (
            self._state is State.LIVE
            and viewer is not None
            and viewer.admitted
            and self._viewers.count > 0
        )
        on = {s: live and s in self._settings.switches and self._switches[s] for s in SoundSwitch}
        return Hearing(
            scanner=on[SoundSwitch.SCANNER],
            microphone=on[SoundSwitch.MICROPHONE],
            talkback=on[SoundSwitch.TALKBACK] and self._talking,
        )

    def _rehear(self) -> None:
        """After every event: the box's own switch-offs, then what is heard, told to whoever
        follows it (the media side, the LED) when it changed."""
        state = self._state
        if state is not State.LIVE:
            self._talking = False
            if self._switches[SoundSwitch.MICROPHONE]:
                reason = "paused" if state is State.PAUSED else "not live"
                if state not in OPEN_STATES:
                    reason = "ended"
                self._turn(SoundSwitch.MICROPHONE, False, reason)
        if self.session is None or state not in OPEN_STATES:
            self._talking = False
            self._switches = dict(DEFAULTS)
        hearing = self._derive()
        if self._tell_viewer_later:
            self._tell_viewer_later = False
            self._viewers.tell(self.viewer_message())
        if hearing == self._hearing:
            return
        if hearing.talkback != self._hearing.talkback:
            self._record("talk", on=hearing.talkback)
        self._hearing = hearing
        notify(self._hearing_listeners, hearing)
