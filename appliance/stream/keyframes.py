"""Keyframe rate limiting: at most one forced keyframe per interval, requests coalesced.

A viewer on a lossy link can send a PLI or FIR for every lost frame; each forced IDR is several
times a P-frame's size, which makes the loss worse. :class:`KeyframeLimiter` sits between the
feedback and the encoder: the first request is honoured at once, later ones within
``min_interval`` seconds become one pending request, released when the interval is over. An
IDR the encoder makes anyway (periodic, new size) counts too. Time is passed in; thread-safe.
"""

from __future__ import annotations

import logging
import math
import threading

logger = logging.getLogger(__name__)


class KeyframeLimiter:
    """Decides when a requested keyframe may be forced."""

    def __init__(self, min_interval: float = 0.5) -> None:
        if min_interval < 0:
            raise ValueError("min_interval must not be negative")
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._last = -math.inf
        self._pending = False
        self.requests = 0
        self.forced = 0

    def request(self, now: float) -> bool:
        """A keyframe was asked for at ``now``: True means force one now, False that it is
        pending (or already pending) until :meth:`poll` releases it."""
        with self._lock:
            self.requests += 1
            if now - self._last >= self.min_interval:
                return self._force(now)
            self._pending = True
            return False

    def poll(self, now: float) -> bool:
        """True when a pending request is due at ``now`` (call it for every frame or on a timer)."""
        with self._lock:
            if self._pending and now - self._last >= self.min_interval:
                return self._force(now)
            return False

    def note_keyframe(self, now: float) -> None:
        """The encoder made an IDR by itself at ``now``: it answers any pending request."""
        with self._lock:
            self._last = now
            self._pending = False

    @property
    def pending(self) -> bool:
        """True while a request waits for the interval to pass."""
        return self._pending

    def _force(self, now: float) -> bool:
        self._last = now
        self._pending = False
        self.forced += 1
        return True
