"""A session's life, for the core: opened (once the relay has the room), extended (once the
relay agreed), ended (at once; IDLE after a grace timer), and the outcomes of those relay calls,
which run beside the core (appliance.core.relaycalls says what the state is meanwhile)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidStateError
from ..session.session import Session
from ..state import State
from ..vocab import OPEN_STATES, EndReason
from .base import CoreBase
from .events import GraceOver, RelayCall, RelayDone
from .inbox import notify
from .views import EndedView

logger = logging.getLogger(__name__)

#: How long a viewer is given to read the "ended" message before its connection is closed.
END_GRACE = 0.3

#: What the staff are told when the relay did not answer (or said no).
UNREACHABLE = "the relay cannot be reached: try again shortly"


@dataclass(frozen=True)
class _Pending:
    """A session call the staff's command waits on: the session, the expiry it asks for (an
    extension), and the command's future (None for a press)."""

    session: Session
    future: asyncio.Future[Any] | None
    expires: int = 0


class Lifecycle(CoreBase):
    """Opening, extending and ending the session."""

    _opening: _Pending | None = None
    _extending: _Pending | None = None

    def _open(
        self, valid_minutes: int | None, future: asyncio.Future[Session] | None = None
    ) -> None:
        """Start opening a session: its room is asked of the relay beside the core."""
        if self._state is State.ERROR:
            raise InvalidStateError(f"the box has a fault: {self.error}")
        if self._state is not State.IDLE:
            raise InvalidStateError("a session is already open: end it first")
        if self._opening is not None:
            raise InvalidStateError("a session is being opened: wait a moment")
        if not self._clock_ok():
            raise InvalidStateError(
                "the clock is not synchronised yet (no NTP): links and expiry need the time"
            )
        minutes = valid_minutes or self._settings.valid_minutes
        session = Session.new(self._box_key_hash, minutes)
        self._opening = _Pending(session, future, expires=minutes)
        self._relay.start(RelayCall.OPEN, session, self._signalling.open(session))

    def _opened(self, done: RelayDone) -> None:
        pending, self._opening = self._opening, None
        if pending is None or pending.session is not done.session:
            return
        session = pending.session
        if not done.ok or self._state is not State.IDLE:
            session.forget()
            why = UNREACHABLE if not done.ok else f"the box has a fault: {self.error}"
            _answer(pending.future, InvalidStateError(why))
            if done.ok:  # a fault came meanwhile: the room goes again
                close = self._signalling.close(session, EndReason.STAFF)
                self._relay.start(RelayCall.CLOSE, session, close)
            return
        minutes = pending.expires
        self.session = session
        self._set_state(State.READY)
        self._record("opened", valid_minutes=minutes)
        logger.info("session %s opened for %d min", session.short_id, minutes)
        self._expiry.start(session)
        notify(self._session_listeners, session)
        _answer(pending.future, session)

    def _extend(self, minutes: int, future: asyncio.Future[None] | None = None) -> None:
        """Ask the relay to keep the room longer; the session follows once it agreed."""
        session = self.session
        if session is None or self._state not in OPEN_STATES:
            raise InvalidStateError("this session cannot be extended")
        if self._extending is not None:
            raise InvalidStateError("an extension is under way: wait a moment")
        expires = self._expiry.target(session, minutes)
        self._extending = _Pending(session, future, expires)
        self._relay.start(RelayCall.EXTEND, session, self._signalling.extend(session, expires))

    def _extended(self, done: RelayDone) -> None:
        pending, self._extending = self._extending, None
        if pending is None or pending.session is not done.session:
            return
        if not done.ok:
            _answer(pending.future, InvalidStateError(UNREACHABLE))
            return
        self._expiry.extended(pending.session, pending.expires)
        self._viewers.tell(self.viewer_message())  # the phone's "ends at" follows
        _answer(pending.future, None)

    def _relay_done(self, done: RelayDone) -> None:
        """A relay call's outcome: the open and the extension wait for theirs; the others were
        acted on already (a failure was logged where it happened)."""
        if done.call is RelayCall.OPEN:
            self._opened(done)
        elif done.call is RelayCall.EXTEND:
            self._extended(done)

    def _end(self, reason: str) -> None:
        """ENDED now; the relay is told beside the core; IDLE once the grace timer is over."""
        session = self.session
        self._end_reason = reason
        self._ended = EndedView(reason, int(time.time()))
        self._expiry.set_expiring(False)
        self._set_state(State.ENDED)
        self._timers.cancel_all()
        if self._extending is not None:
            _answer(self._extending.future, InvalidStateError("the session ended"))
            self._extending = None
        if session is not None:
            logger.info("session %s ended (%s)", session.short_id, reason)
            self._record(
                "ended", reason=reason, duration_s=round(time.monotonic() - session.opened_at)
            )
            self._relay.start(RelayCall.CLOSE, session, self._signalling.close(session, reason))
        # let the "ended" message reach the viewer before its connection goes
        self._timers.start("grace", END_GRACE if self._viewers.count else 0.0, GraceOver())

    async def _grace_over(self) -> None:
        if self._state is not State.ENDED:
            return
        await self._viewers.close_all()
        if self.session is not None:
            self.session.forget()
        self.session = None
        self._set_state(State.IDLE)
        self._end_reason = ""

    async def _shut_down(self) -> None:
        """The core stops: the open session's room is closed (calls in flight may finish within
        their timeout), everything forgotten, the viewers' peers closed."""
        self._timers.cancel_all()
        session = self.session
        if session is not None:
            self._relay.start(
                RelayCall.CLOSE, session, self._signalling.close(session, EndReason.SHUTDOWN)
            )
        await self._relay.finish()
        for pending in (self._opening, self._extending):
            if pending is not None:
                _answer(pending.future, InvalidStateError("the box is stopping"))
        self._opening = self._extending = None
        if session is not None:
            session.forget()
            self.session = None
        await self._viewers.close_all()


def _answer(future: asyncio.Future[Any] | None, outcome: object) -> None:
    """Answer a staff command that waited on a relay call."""
    if future is None or future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
