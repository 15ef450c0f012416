"""Wake-ups across relay processes: every change to a room in Redis publishes on the room's
channel (``<prefix>bell:<room hash>``); one listener thread per process hears them all and wakes
the polls waiting here, which read the room's version again.

Pub/sub delivers at most once: a thread's wait also reads the version again at least every
``RECHECK`` seconds, so a message lost with a dropped connection costs a second, never a poll.
An asynchronous poll (``listen``) waits on a future for its own room only, resolved by the
listener when that room's channel speaks; every such future is resolved when the subscription
fails or comes back (its polls take again), and the poll takes again every RECHECK_ASYNC (20 s)
anyway. A message says whose polls the change concerns (``b``: the box's, ``v``: the viewers',
anything else: all), so a box's send does not wake its own poll to take nothing, nor a viewer's
its own.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .chimes import Chimes
from .store import Side

logger = logging.getLogger(__name__)

#: The longest a waiting poll goes without reading its room's version again.
RECHECK = 1.0


def chime_key(room: str, side: Side | None) -> str:
    """Where an asynchronous poll of ``side`` (None: any) listens for room hash ``room``."""
    return room if side is None else f"{room}:{side}"


class RedisBell:
    """The listener thread and the waits on it; ``read_version(room)`` reads Redis."""

    def __init__(self, client: Any, pattern: str) -> None:
        self._client = client
        self._pattern = pattern
        self._cond = threading.Condition()
        self._rings = 0  # messages heard so far
        self.chimes = Chimes()  # asynchronous polls, by room hash
        self._channel = pattern.removesuffix("*")
        self._stop = threading.Event()
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(pattern)  # subscribed before any poll reads a version
        self._thread = threading.Thread(target=self._listen, name="relay-bell", daemon=True)
        self._thread.start()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _listen(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.5)
            except Exception:  # the connection dropped: waits recheck on their own meanwhile
                # warn once per outage, then quietly retry (redis-py subscribes again)
                (logger.debug if failing else logger.warning)(
                    "the relay's Redis subscription failed; retrying"
                )
                failing = True
                self.chimes.ring_all()
                self._stop.wait(RECHECK)
                continue
            if failing:
                logger.warning("the relay's Redis subscription is back")
                failing = False
                self.chimes.ring_all()  # what was published meanwhile is lost: take again
            if message is not None:
                with self._cond:
                    self._rings += 1
                    self._cond.notify_all()
                self._ring(str(message.get("channel", "")), str(message.get("data", "")))

    def _ring(self, channel: str, side: str) -> None:
        room = channel.removeprefix(self._channel)
        self.chimes.ring(room)
        for concerned in Side:
            if side in (concerned, "*"):
                self.chimes.ring(chime_key(room, concerned))

    def wait(self, read_version: Any, room: str, seen: str, timeout: float) -> None:
        """Until ``read_version(room)`` is not ``seen``, the bell stops, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            with self._cond:
                rings = self._rings
            if read_version(room) != seen:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with self._cond:
                if self._rings == rings:  # nothing heard since the read: sleep until something is
                    self._cond.wait(min(left, RECHECK))

    def close(self) -> None:
        """Stop listening and wake every wait. Idempotent."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self.chimes.ring_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._pubsub.close()
