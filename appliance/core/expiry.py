"""A session's expiry, for the core: the timer that ends it, the warning before it (the page and
the LED), and the staff's extensions (what to ask the relay for, then, once it agreed, applied and
recorded). Runs on the core's loop; the core calls it while handling its events, so it is never
written from anywhere else."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import InvalidStateError
from ..session.session import Session
from ..vocab import EndReason
from .events import EndSession, ExpiryWarning
from .inbox import Timers, notify
from .views import extend_to

#: The staff are warned (page and LED) this long before a session expires.
EXPIRY_WARNING = 600.0

#: Called with True when a session enters its last minutes, False when that ends.
ExpiryListener = Callable[[bool], None]


class Expiry:
    """The open session's expiry timers and the staff's extensions, up to ``max_minutes`` from
    the session's opening (config ``pairing.max_minutes``)."""

    def __init__(
        self,
        timers: Timers,
        record: Callable[..., None],
        max_minutes: int,
    ) -> None:
        self._timers = timers
        self._record = record
        self.max_minutes = max_minutes
        self._listeners: list[ExpiryListener] = []
        self._expiring = False

    def add_listener(self, listener: ExpiryListener) -> None:
        self._listeners.append(listener)

    @property
    def expiring(self) -> bool:
        """The session is in its last minutes (the warning is on)."""
        return self._expiring

    def set_expiring(self, expiring: bool) -> None:
        if expiring is self._expiring:
            return
        self._expiring = expiring
        notify(self._listeners, expiring)

    def extend_to(self, session: Session, minutes: int = 0) -> int | None:
        """The expiry an extension by ``minutes`` gives (0: the latest; None: none left)."""
        return extend_to(session, self.max_minutes, minutes)

    def start(self, session: Session) -> None:
        """(Re)start the timers for the session's expiry and the warning before it."""
        left = max(0.0, session.expires - time.time())
        self._timers.start("expiry", left, EndSession(EndReason.EXPIRED))
        self._timers.start("warning", max(0.0, left - EXPIRY_WARNING), ExpiryWarning())

    def target(self, session: Session, minutes: int = 0) -> int:
        """The expiry an extension by ``minutes`` asks the relay for (0: as far as allowed),
        capped at the longest a session may last; InvalidStateError when nothing is left."""
        expires = self.extend_to(session, minutes)
        if expires is None:
            raise InvalidStateError("this session cannot be extended")
        return expires

    def extended(self, session: Session, expires: int) -> None:
        """The relay keeps the room until ``expires``: the session does too (recorded, the
        warning off, the timers restarted)."""
        old = session.expires
        session.expires, session.extended = expires, True
        self._record("extended", valid_minutes=round((expires - old) / 60))
        self.set_expiring(False)
        self.start(session)
