"""The core: the state machine, and the only writer of state and of the session's seat.

Everything that changes state arrives as an event on the :class:`~appliance.core.inbox.Inbox`
(a button press from a gpiozero thread, a staff command from the pairing page, a knock judged
for the signalling gate, a viewer's connection answered or gone, the session's expiry, a relay
call's outcome) and is handled in order on the loop. No handler waits on the network: the calls
to the relay run beside the core (relaycalls.py) and come back as events. Listeners follow each
transition (the LED, the media pipeline's mode); the viewer is told its status over its peer
connection. The session (room, secret, seat) lives here, in memory, and is forgotten at its end.
No frame passes through here.

The concerns live apart: the state and its views (base.py), the session's lifecycle
(lifecycle.py), the seat (seat.py), the relay calls (relaycalls.py); this module dispatches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ..errors import InvalidStateError
from ..limits import clamp_minutes
from ..session.session import Session
from ..state import State
from ..vocab import OPEN_STATES, EndReason
from .events import (
    Admit,
    End,
    EndSession,
    Event,
    ExpiryWarning,
    Extend,
    GraceOver,
    OpenSession,
    Pause,
    Press,
    Refuse,
    RelayDone,
    Release,
    Resume,
    SetSound,
    StaffCommand,
    VerifiedKnock,
    ViewerAnswered,
    ViewerBye,
    ViewerCancel,
    ViewerLeft,
    ViewerLink,
    ViewerTalk,
)
from .hearing import HearingKeeper
from .inbox import LATER
from .lifecycle import END_GRACE, Lifecycle
from .ports import Signalling, ViewerPool
from .seat import SeatKeeper

logger = logging.getLogger(__name__)

__all__ = ["END_GRACE", "Core", "Signalling", "ViewerPool"]

T = TypeVar("T")


class Core(Lifecycle, SeatKeeper, HearingKeeper):
    """Owns the state machine and the session; drives the viewers' peers through a
    :class:`ViewerPool` (appliance.stream.viewers.Viewers) and the relay through a
    :class:`Signalling` (appliance.signalling.gate.Gate)."""

    async def command(self, command: StaffCommand[T]) -> T:
        """Run a staff command in the event order and return its result; raises
        :class:`InvalidStateError` when the state does not allow it."""
        return await self._inbox.ask(command)

    async def _handle(self, event: Event) -> object:
        try:
            return await self._dispatch(event)
        finally:
            self._rehear()  # what is heard follows every event

    async def _dispatch(self, event: Event) -> object:
        match event:
            case Press(long=long):
                self._press(long)
            case StaffCommand():
                return await self._command(event)
            case EndSession(reason=reason):
                if self._state in OPEN_STATES:
                    self._end(reason)
            case VerifiedKnock():
                return self._knock(event)
            case RelayDone():
                self._relay_done(event)
            case GraceOver():
                await self._grace_over()
            case ViewerAnswered(peer=peer, code=code):
                await self._adopt(peer, code)
            case ViewerLeft():
                self._viewer_left()
            case ViewerLink(stalled=stalled):
                viewer = self.session.viewer if self.session is not None else None
                if viewer is not None:
                    viewer.stalled = stalled and viewer.connected
            case ViewerBye():
                # the viewer closed the page: the seat stays theirs, nothing ends; the staff
                # see how long ago and may let another phone in
                self._record("viewer-left", on_purpose=True)
                self._viewer_left(on_purpose=True)
            case ViewerCancel():
                viewer = self.session.viewer if self.session is not None else None
                if viewer is not None and self._state in OPEN_STATES:
                    await self._release(by_viewer=True)
            case ViewerTalk(on=on):
                self._viewer_talks(on)
            case ExpiryWarning():
                if self.session is not None and self._state in OPEN_STATES:
                    logger.info("session %s expires soon", self.session.short_id)
                    self._expiry.set_expiring(True)
        return None

    def _press(self, long: bool) -> None:
        state = self._state
        if long:
            if state in OPEN_STATES:
                self._end(EndReason.BUTTON)
        elif state is State.IDLE:
            self._open(None)
        elif state is State.WAITING:
            if self._code_shown():
                self._admit()
            else:
                logger.info("admission waits for the viewer's verification code")
        elif state is State.LIVE:
            self._set_state(State.PAUSED)
        elif state is State.PAUSED:
            self._set_state(State.LIVE)
        # READY: nobody to admit yet; the LED already says so

    async def _command(self, command: StaffCommand[Session] | StaffCommand[None]) -> object:
        state = self._state
        viewer = self.session.viewer if self.session is not None else None
        match command:
            case OpenSession(consent=consent, valid_minutes=minutes):
                if not consent:
                    raise InvalidStateError("confirm that the patient agreed first")
                self._open(clamp_minutes(minutes) if minutes else None, command.future)
                return LATER
            case Admit():
                if state is not State.WAITING:
                    raise InvalidStateError("nobody is waiting to be admitted")
                if not self._code_shown():
                    raise InvalidStateError("wait until the viewer's code is shown, then compare")
                self._admit()
            case Refuse():
                if viewer is None or viewer.admitted or state not in OPEN_STATES:
                    raise InvalidStateError("nobody is waiting to be refused")
                await self._refuse()
            case Release():
                if viewer is None or state not in OPEN_STATES:
                    raise InvalidStateError("no phone holds the seat")
                if viewer.admitted and viewer.connected:
                    raise InvalidStateError("the viewer is watching: pause or end instead")
                await self._release()
            case Extend(minutes=minutes):
                self._extend(minutes, command.future)
                return LATER
            case Pause():
                if state is not State.LIVE:
                    raise InvalidStateError("the picture is not live")
                self._set_state(State.PAUSED)
            case Resume():
                if state is not State.PAUSED:
                    raise InvalidStateError("the picture is not paused")
                self._set_state(State.LIVE)
            case SetSound(switch=switch, on=on):
                self._set_sound(switch, on)
            case End(reason=reason):
                if state not in OPEN_STATES:
                    raise InvalidStateError("no session is open")
                self._end(reason)
            case _:
                raise InvalidStateError(f"unknown command {type(command).__name__}")
        return None

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self, started: Callable[[], None] | None = None) -> None:
        """Take events until :meth:`stop`. ``started`` is called once the core takes events."""
        try:
            await self._inbox.serve(self._handle, self._stopped, started)
        finally:
            await self._shut_down()

    def stop(self) -> None:
        """Ask :meth:`run` to finish. Idempotent; call on the loop."""
        self._stopped.set()
