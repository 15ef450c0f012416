"""The session's expiry, for the core: the timers that end the session and warn the staff before
it does, and the warning's flag with its listeners (the LED)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .events import EndSession, ExpiryWarning
from .inbox import Timers, notify

if TYPE_CHECKING:
    from ..session.session import Session

#: The staff are warned (page and LED) this long before a session expires.
EXPIRY_WARNING = 600.0

#: Called with True when a session enters its last minutes, False when that ends.
ExpiryListener = Callable[[bool], None]


class ExpiryWatch:
    """Whether the open session is in its last minutes, and the timers that say when."""

    def __init__(self, timers: Timers) -> None:
        self._timers = timers
        self._listeners: list[ExpiryListener] = []
        self.expiring = False

    def add_listener(self, listener: ExpiryListener) -> None:
        self._listeners.append(listener)

    def set(self, expiring: bool) -> None:
        if expiring is self.expiring:
            return
        self.expiring = expiring
        notify(self._listeners, expiring)

    def start(self, session: Session) -> None:
        """(Re)start the timers for ``session``'s expiry: the end, and the warning before it."""
        left = max(0.0, session.expires - time.time())
        self._timers.start("expiry", left, EndSession("expired"))
        self._timers.start("warning", max(0.0, left - EXPIRY_WARNING), ExpiryWarning())
