"""The core's state and what reads it: the one writer of the state, its listeners, the views the
pages read. The session's lifecycle (lifecycle.py) and the seat (seat.py) build on it; the state
machine (machine.py) puts them together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..errors import InvalidStateError
from ..session import seal
from ..session.session import Session
from ..state import ALLOWED, State
from ..types import EventRecorder
from .expiry import Expiry, ExpiryListener
from .inbox import Inbox, Timers, notify
from .ports import Signalling, ViewerMessage, ViewerPool
from .relaycalls import RELAY_TIMEOUT, RelayCalls
from .settings import CoreSettings
from .views import EndedView, SessionView, Status, session_view, viewer_message

logger = logging.getLogger(__name__)

StateListener = Callable[[State, State], None]
SessionListener = Callable[[Session], None]


class CoreBase:
    """The state, the session, and the parts every concern of the core shares."""

    def __init__(
        self,
        settings: CoreSettings,
        inbox: Inbox,
        viewers: ViewerPool,
        signalling: Signalling,
        events: EventRecorder,
        *,
        box_key_hash: bytes = b"",
        viewer_origin: str = "",
        clock_ok: Callable[[], bool] = lambda: True,
        signal: Callable[[], str] = lambda: "unknown",
        sound: Callable[[], str] = lambda: "off",
        relay_timeout: float = RELAY_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._inbox = inbox
        self._viewers = viewers
        self._signalling = signalling
        self._record = events.record
        self._box_key_hash = box_key_hash
        self._viewer_origin = viewer_origin
        self._clock_ok = clock_ok
        self._signal = signal
        self._sound = sound
        self._state = State.IDLE
        self._listeners: list[StateListener] = []
        self._session_listeners: list[SessionListener] = []
        self._end_reason = ""
        self._ended: EndedView | None = None
        self._timers = Timers(inbox.post)
        self._expiry = Expiry(self._timers, self._record, settings.max_minutes)
        self._relay = RelayCalls(inbox.post, relay_timeout)
        self._stopped = asyncio.Event()
        self.session: Session | None = None
        self.error: str | None = None
        self._init_concern()

    def _init_concern(self) -> None:
        """Where a concern of the core (a subclass) sets up its own parts."""

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

    def viewer_message(self) -> ViewerMessage:
        """What the viewer's page is told: its status, the code once there is one, the reason
        at the end."""
        return viewer_message(self._state, self.session, self._end_reason)

    def status(self) -> Status:
        """A snapshot for the pages. The signal state (and the sound's) is read from the source
        when asked: it is separate from the session state and never changes it."""
        return Status(
            state=self._state.value,
            signal=self._signal(),
            audio=self._sound(),
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
            self._settings.room_name,
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
