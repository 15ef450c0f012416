"""The core: the state machine, and the only writer of state and of the session's seat.

Everything that changes state arrives as an event on the :class:`~appliance.core.inbox.Inbox`
(a button press from a gpiozero thread, a staff command from the pairing page, a knock judged
for the signalling gate, a viewer's connection answered or gone, the session's expiry) and is
handled in order on the loop. Listeners follow each transition (the LED, the media pipeline's
mode); the viewer is told its status over its peer connection. The session (room, secret, seat)
lives here, in memory, and is forgotten at its end. No frame passes through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from ..config import Config
from ..errors import InvalidStateError
from ..limits import clamp_minutes
from ..session import seal
from ..session.session import Session, Verdict
from ..state import ALLOWED, State
from ..types import EventRecorder
from .events import (
    Admit,
    End,
    EndSession,
    Event,
    ExpiryWarning,
    Extend,
    Knock,
    OpenSession,
    Pause,
    Press,
    Refuse,
    Release,
    Resume,
    StaffCommand,
    ViewerAnswered,
    ViewerBye,
    ViewerCancel,
    ViewerLeft,
    ViewerLink,
)
from .expiry import Expiry, ExpiryListener
from .inbox import Inbox, Timers, notify
from .ports import Signalling, ViewerPool
from .views import EndedView, SessionView, Status, session_view, viewer_message

logger = logging.getLogger(__name__)

#: How long a viewer is given to read the "ended" message before its connection is closed.
END_GRACE = 0.3

_OPEN = (State.READY, State.WAITING, State.LIVE, State.PAUSED)

StateListener = Callable[[State, State], None]
SessionListener = Callable[[Session], None]


class Core:
    """Owns the state machine and the session; drives the viewers' peers through a
    :class:`ViewerPool` (appliance.stream.viewers.Viewers)."""

    def __init__(
        self,
        config: Config,
        inbox: Inbox,
        viewers: ViewerPool,
        signalling: Signalling,
        events: EventRecorder,
        *,
        box_key_hash: bytes = b"",
        viewer_origin: str = "",
        clock_ok: Callable[[], bool] = lambda: True,
        signal: Callable[[], str] = lambda: "unknown",
    ) -> None:
        self._config = config
        self._inbox = inbox
        self._viewers = viewers
        self._signalling = signalling
        self._record = events.record
        self._box_key_hash = box_key_hash
        self._viewer_origin = viewer_origin
        self._clock_ok = clock_ok
        self._signal = signal
        self._state = State.IDLE
        self._listeners: list[StateListener] = []
        self._session_listeners: list[SessionListener] = []
        self._end_reason = ""
        self._ended: EndedView | None = None
        self._timers = Timers(inbox.post)
        self._expiry = Expiry(self._timers, signalling, self._record, config.pairing.max_minutes)
        self._stopped = asyncio.Event()
        self.session: Session | None = None
        self.error: str | None = None

    # -- state ------------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(old, new)`` on the loop after every transition."""
        self._listeners.append(listener)

    def add_session_listener(self, listener: SessionListener) -> None:
        """Call ``listener(session)`` on the loop each time a session opens."""
        self._session_listeners.append(listener)

    def add_expiry_listener(self, listener: ExpiryListener) -> None:
        """Call ``listener(expiring)`` on the loop when a session enters (or leaves) its last
        minutes (the LED's warning)."""
        self._expiry.add_listener(listener)

    @property
    def expiring(self) -> bool:
        return self._expiry.expiring

    def _set_state(self, new: State) -> None:
        old = self._state
        if new is old:
            return
        if new not in ALLOWED[old]:
            raise InvalidStateError(f"cannot go from {old.value} to {new.value}")
        self._state = new
        logger.info("state %s -> %s", old.value, new.value)
        self._viewers.tell(self.viewer_message())
        notify(self._listeners, old, new)

    def viewer_message(self) -> dict[str, Any]:
        """What the viewer's page is told: its status, the code once there is one, the reason
        at the end."""
        return viewer_message(self._state, self.session, self._end_reason)

    def status(self) -> Status:
        """A snapshot for the pages. The signal state is read from the source when asked: it is
        separate from the session state and never changes it."""
        return Status(
            state=self._state.value,
            signal=self._signal(),
            viewers=self._viewers.count,
            clock_ok=self._clock_ok(),
            error=self.error,
            session=self.session_view(),
            ended=self._ended,
        )

    def session_view(self) -> SessionView | None:
        """The open session for the staff's page: its link (the QR), expiry and viewer."""
        session = self.session
        if session is None:
            return None
        return session_view(
            session,
            self._config.box.name,
            self.link(session),
            self._expiry.expiring,
            self._expiry.extend_to(session),
        )

    def link(self, session: Session) -> str:
        return seal.link(self._viewer_origin, session.room, session.secret, session.box_key_hash)

    def fault(self, message: str) -> None:
        """A fault the staff cannot fix from the page (a bad config): ERROR until restarted."""
        self.error = message
        logger.error("fault: %s", message)
        self._set_state(State.ERROR)

    # -- events -----------------------------------------------------------------------------------

    async def command(self, command: StaffCommand) -> Any:
        """Run a staff command in the event order and return its result; raises
        :class:`InvalidStateError` when the state does not allow it."""
        return await self._inbox.ask(command)

    async def _handle(self, event: Event) -> Any:
        state = self._state
        match event:
            case Press(long=True):
                if state in _OPEN:
                    await self._end("button")
            case Press(long=False):
                if state is State.IDLE:
                    await self._open(self._config.pairing.valid_minutes)
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
            case StaffCommand():
                return await self._command(event)
            case EndSession(reason=reason):
                if state in _OPEN:
                    await self._end(reason)
            case Knock():
                return self._knock(event)
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
                if viewer is not None and state in _OPEN:
                    await self._release(by_viewer=True)
            case ExpiryWarning():
                if self.session is not None and state in _OPEN:
                    logger.info("session %s expires soon", self.session.short_id)
                    self._expiry.set_expiring(True)
        return None

    async def _command(self, command: StaffCommand) -> Any:
        state = self._state
        match command:
            case OpenSession(consent=consent, valid_minutes=minutes):
                if not consent:
                    raise InvalidStateError("confirm that the patient agreed first")
                return await self._open(clamp_minutes(minutes) if minutes else None)
            case Admit():
                if state is not State.WAITING:
                    raise InvalidStateError("nobody is waiting to be admitted")
                if not self._code_shown():
                    raise InvalidStateError("wait until the viewer's code is shown, then compare")
                self._admit()
            case Refuse():
                viewer = self.session.viewer if self.session is not None else None
                if viewer is None or viewer.admitted or state not in _OPEN:
                    raise InvalidStateError("nobody is waiting to be refused")
                await self._refuse()
            case Release():
                viewer = self.session.viewer if self.session is not None else None
                if viewer is None or state not in _OPEN:
                    raise InvalidStateError("no phone holds the seat")
                if viewer.admitted and viewer.connected:
                    raise InvalidStateError("the viewer is watching: pause or end instead")
                await self._release()
            case Extend(minutes=minutes):
                if self.session is None or state not in _OPEN:
                    raise InvalidStateError("this session cannot be extended")
                await self._expiry.extend(self.session, minutes)
                self._viewers.tell(self.viewer_message())  # the phone's "ends at" follows
            case Pause():
                if state is not State.LIVE:
                    raise InvalidStateError("the picture is not live")
                self._set_state(State.PAUSED)
            case Resume():
                if state is not State.PAUSED:
                    raise InvalidStateError("the picture is not paused")
                self._set_state(State.LIVE)
            case End(reason=reason):
                if state not in _OPEN:
                    raise InvalidStateError("no session is open")
                await self._end(reason)
            case _:
                raise InvalidStateError(f"unknown command {type(command).__name__}")
        return None

    # -- the session ------------------------------------------------------------------------------

    async def _open(self, valid_minutes: int | None) -> Session:
        if self._state is State.ERROR:
            raise InvalidStateError(f"the box has a fault: {self.error}")
        if self._state is not State.IDLE:
            raise InvalidStateError("a session is already open: end it first")
        if not self._clock_ok():
            raise InvalidStateError(
                "the clock is not synchronised yet (no NTP): links and expiry need the time"
            )
        minutes = valid_minutes or self._config.pairing.valid_minutes
        session = Session.new(self._box_key_hash, minutes)
        self.session = session
        try:
            await self._signalling.open(session)
        except Exception as exc:
            self.session = None
            session.forget()
            logger.warning("could not open the room at the relay: %s", type(exc).__name__)
            raise InvalidStateError("the relay cannot be reached: try again shortly") from exc
        self._set_state(State.READY)
        self._record("opened", valid_minutes=minutes)
        logger.info("session %s opened for %d min", session.short_id, minutes)
        self._expiry.start(session)
        notify(self._session_listeners, session)
        return session

    def _knock(self, knock: Knock) -> Verdict:
        """Judge a verified knock against the seat; an accepted one takes (or keeps) it."""
        session = self.session
        if session is None or self._state not in _OPEN:
            return Verdict.TAKEN
        verdict = session.judge(knock.salt, knock.seat)
        if verdict is Verdict.TAKEN and session.turn_away(knock.seat):
            self._record("refused", reason="taken")  # once per phone: it keeps knocking
        if verdict in (Verdict.NEW, Verdict.RETURNING):
            session.seat(knock.seat, knock.name, knock.client)
            self._record("knock", returning=verdict is Verdict.RETURNING)
            if self._state is State.READY:
                self._set_state(State.WAITING)
        return verdict

    def _admit(self) -> None:
        assert self.session is not None
        viewer = self.session.viewer
        if viewer is None:
            raise InvalidStateError("nobody is waiting to be admitted")
        viewer.admitted = True
        self._record("admitted", after_s=round(time.monotonic() - self.session.opened_at))
        self._set_state(State.LIVE)

    async def _refuse(self) -> None:
        assert self.session is not None
        viewer = self.session.viewer
        if viewer is not None:
            await self._signalling.refuse(self.session, viewer)
        self.session.refuse()
        self._record("refused")
        await self._viewers.close_all()
        self._set_state(State.READY)

    async def _release(self, by_viewer: bool = False) -> None:
        """Let another phone in: the holder is told and dropped (not banned), the seat is free;
        or the holder gave the seat up itself (``by_viewer``: its Cancel)."""
        assert self.session is not None
        assert self.session.viewer is not None
        if by_viewer:
            self._record("viewer-left", on_purpose=True, reason="cancelled")
        else:
            await self._signalling.refuse(self.session, self.session.viewer)
            self._record("refused", reason="released")
        self.session.release()
        await self._viewers.close_all()
        self._set_state(State.READY)

    def _code_shown(self) -> bool:
        viewer = self.session.viewer if self.session is not None else None
        return viewer is not None and viewer.code is not None

    async def _adopt(self, peer: Any, code: str) -> None:
        """The seated viewer's new connection replaces any previous one."""
        session = self.session
        if session is None or session.viewer is None or self._state not in _OPEN:
            await self._viewers.release(peer)
            return
        if not await self._viewers.adopt(peer):
            return  # it closed before its turn
        session.viewer.new_code(code)
        session.viewer.connected = True
        session.viewer.left_at = None
        session.viewer.stalled = False
        if self._state is State.READY:
            self._set_state(State.WAITING)
        if self._state is State.WAITING and self._config.pairing.pre_admit:
            logger.warning("pre-admission is on: the viewer is admitted without the staff")
            self._admit()
        self._viewers.tell(self.viewer_message())

    def _viewer_left(self, on_purpose: bool = False) -> None:
        """The seated viewer is gone (a drop, or the page closed): the seat stays theirs and
        nothing ends; the staff see since when."""
        session = self.session
        viewer = session.viewer if session is not None else None
        if viewer is None or (self._viewers.count and not on_purpose):
            return
        viewer.connected = viewer.stalled = False
        if viewer.left_at is None:
            viewer.left_at = time.monotonic()
        if self._state is State.WAITING and not viewer.admitted:
            self._set_state(State.READY)

    async def _end(self, reason: str) -> None:
        session = self.session
        self._end_reason = reason
        self._ended = EndedView(reason, int(time.time()))
        self._expiry.set_expiring(False)
        self._set_state(State.ENDED)
        self._timers.cancel_all()
        if session is not None:
            logger.info("session %s ended (%s)", session.short_id, reason)
            self._record(
                "ended", reason=reason, duration_s=round(time.monotonic() - session.opened_at)
            )
            try:
                await self._signalling.close(session, reason)
            except Exception:
                logger.exception("closing the session at the relay failed")
        if self._viewers.count:
            await asyncio.sleep(END_GRACE)  # let the "ended" message reach the viewer
        await self._viewers.close_all()
        if session is not None:
            session.forget()
        self.session = None
        self._set_state(State.IDLE)
        self._end_reason = ""

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self, started: Callable[[], None] | None = None) -> None:
        """Take events until :meth:`stop`. ``started`` is called once the core takes events."""
        try:
            await self._inbox.serve(self._handle, self._stopped, started)
        finally:
            if self.session is not None:
                with contextlib.suppress(Exception):
                    await self._signalling.close(self.session, "shutdown")
                self.session.forget()
                self.session = None
            await self._viewers.close_all()
            self._timers.cancel_all()

    def stop(self) -> None:
        """Ask :meth:`run` to finish. Idempotent; call on the loop."""
        self._stopped.set()
