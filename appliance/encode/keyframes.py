"""The keyframe policy, in one place: who may ask for an IDR, which requests skip the limiter,
the limiter, and the backstop GOP.

Who asks (:class:`KeyframeReason`), and how it is honoured:

==============  ====================================================================  =========
reason          when                                                                  limiter
==============  ====================================================================  =========
``NEW_VIEWER``  a track subscribes to the packets: it has no picture yet              skipped
``RESYNC``      a subscription overflowed, dropped its queue and waits for one        skipped
``PATH_BACK``   a viewer's path came back after a stall (no receiver report for 2 s)  skipped
``SLATE``       a slate frame (paused, no signal): every slate is an IDR              skipped
``PLI``         the viewer's PLI or FIR (the hook in ``stream/compat.py``)            through
``REFUSED_RTX`` ``REFUSED_FOR_KEYFRAME`` retransmissions refused in one rate round    through
``MODE``        the media's mode changed (off, live, paused)                          through
==============  ====================================================================  =========

The limiter (:class:`KeyframeLimiter`) lets one forced IDR through per ``MIN_KEYFRAME_GAP``
(0.5 s): a viewer on a lossy link can send a PLI for every lost frame, and each IDR is several
times a P-frame's size, which makes the loss worse. Later requests within the gap become one
pending request, forced when the gap is over. An urgent keyframe, and every IDR the encoder
makes by itself, count as the last one.

Not asked, always an IDR: a new encoder's first frame (the first picture, a new size).

The backstop: ``encode.keyframe_interval`` (the config's, 10 s by default; docs/reliability.md),
the encoders' GOP: :func:`gop_frames` frames between keyframes nobody asked for.

:class:`KeyframePolicy` puts it together for the media thread: requests arrive from any thread
(:meth:`~KeyframePolicy.ask`), and before each frame it encodes the media thread takes what is
due (:meth:`~KeyframePolicy.take`). Time is passed in; thread-safe.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from typing import Protocol

logger = logging.getLogger(__name__)

#: The shortest time between two forced keyframes that went through the limiter (seconds).
MIN_KEYFRAME_GAP = 0.5
#: This many retransmissions refused (over budget) in one rate-control round: a keyframe instead
#: (through the limiter, as a PLI): at the new, lower rate it costs less than the backlog.
REFUSED_FOR_KEYFRAME = 3


class KeyframeReason(enum.Enum):
    """Who asks for a keyframe."""

    NEW_VIEWER = "new viewer"
    RESYNC = "resync"
    PATH_BACK = "path back"
    SLATE = "slate"
    PLI = "pli"
    REFUSED_RTX = "refused retransmissions"
    MODE = "mode"


#: The requests that skip the limiter: someone has no picture at all until the keyframe comes.
URGENT = frozenset(
    {
        KeyframeReason.NEW_VIEWER,
        KeyframeReason.RESYNC,
        KeyframeReason.PATH_BACK,
        KeyframeReason.SLATE,
    }
)


class KeyframeRequests(Protocol):
    """Where a keyframe is asked for (the media port, or the policy itself)."""

    def keyframe(self, reason: KeyframeReason) -> None: ...


def gop_frames(fps: float, keyframe_interval: float) -> int:
    """The encoders' GOP: frames between the backstop's keyframes (at least 1)."""
    return max(1, round(fps * keyframe_interval))


def after_round(refused: int, was_stalled: bool, stalled: bool) -> KeyframeReason | None:
    """What one rate-control round asks for, for one viewer: a fresh picture when its path came
    back, or instead of the retransmissions the budget refused (the path not stalled)."""
    if was_stalled and not stalled:
        return KeyframeReason.PATH_BACK
    if refused >= REFUSED_FOR_KEYFRAME and not stalled:
        return KeyframeReason.REFUSED_RTX
    return None


class KeyframeLimiter:
    """Decides when a requested keyframe may be forced: one per ``min_gap``, the rest
    coalesced into one pending request."""

    def __init__(self, min_gap: float = MIN_KEYFRAME_GAP) -> None:
        if min_gap < 0:
            raise ValueError("min_gap must not be negative")
        self.min_gap = min_gap
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
            if now - self._last >= self.min_gap:
                return self._force(now)
            self._pending = True
            return False

    def poll(self, now: float) -> bool:
        """True when a pending request is due at ``now`` (call it for every frame or on a timer)."""
        with self._lock:
            if self._pending and now - self._last >= self.min_gap:
                return self._force(now)
            return False

    def note_keyframe(self, now: float) -> None:
        """An IDR went out at ``now`` without the limiter: it answers any pending request."""
        with self._lock:
            self._last = now
            self._pending = False

    @property
    def pending(self) -> bool:
        """True while a request waits for the gap to pass."""
        return self._pending

    def _force(self, now: float) -> bool:
        self._last = now
        self._pending = False
        self.forced += 1
        return True


class KeyframePolicy:
    """The requests of every asker, for the media thread: urgent ones at once, the rest through
    the limiter; the encoder's own IDRs noted."""

    def __init__(self, min_gap: float = MIN_KEYFRAME_GAP) -> None:
        self.limiter = KeyframeLimiter(min_gap)
        self._lock = threading.Lock()
        self._force = False
        #: requests by reason (logs, tests, the bench)
        self.asked = dict.fromkeys(KeyframeReason, 0)

    def ask(self, reason: KeyframeReason, now: float) -> bool:
        """``reason`` asks for a keyframe at ``now`` (any thread); True if it is forced on the
        next frame, False if it waits for the limiter (or is already waiting)."""
        if reason in URGENT:
            self.limiter.note_keyframe(now)
            force = True
        else:
            force = self.limiter.request(now)
        with self._lock:
            self.asked[reason] += 1
            self._force = self._force or force
        return force

    def keyframe(self, reason: KeyframeReason) -> None:
        """``reason`` asks for a keyframe now (:class:`KeyframeRequests`)."""
        self.ask(reason, time.monotonic())

    def take(self, now: float) -> bool:
        """Before the media thread encodes a frame at ``now``: True to force an IDR (asked for,
        or a pending request whose gap is over)."""
        due = self.limiter.poll(now)
        with self._lock:
            force, self._force = self._force, False
        return force or due

    def encoded_keyframe(self, now: float) -> None:
        """The encoder made an IDR at ``now`` (asked for or not): the gap counts from it."""
        self.limiter.note_keyframe(now)

    @property
    def requests(self) -> int:
        """Requests that went through the limiter."""
        return self.limiter.requests
