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

import asyncio
import contextlib
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
        self._start = threading.Lock()
        self._pubsub: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Subscribe and start listening, once (the first poll to wait here: a store served on
        an event loop listens there instead, :class:`AsyncRedisBell`, and never starts this)."""
        with self._start:
            if self._thread is not None or self._stop.is_set():
                return
            self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            self._pubsub.psubscribe(self._pattern)  # subscribed before the poll reads a version
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
        ring(self.chimes, channel.removeprefix(self._channel), side)

    def wait(self, read_version: Any, room: str, seen: str, timeout: float) -> None:
        """Until ``read_version(room)`` is not ``seen``, the bell stops, or ``timeout``."""
        self.start()
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
        with self._start:
            thread, pubsub = self._thread, self._pubsub
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=2)
        if pubsub is not None:
            pubsub.close()


def ring(chimes: Chimes, room: str, side: str) -> None:
    """A message on room hash ``room``'s channel: wake the polls it concerns."""
    chimes.ring(room)
    for concerned in Side:
        if side in (concerned, "*"):
            chimes.ring(chime_key(room, concerned))


class AsyncRedisBell:
    """The same wake-ups for a store served on an event loop: its subscription (redis-py's
    asyncio client) is a task of that loop, which resolves the polls' futures itself (no thread,
    and no hand-over to the loop per message)."""

    def __init__(self, client: Any, pattern: str) -> None:
        self._client = client
        self._pattern = pattern
        self._channel = pattern.removesuffix("*")
        self.chimes = Chimes()
        self.stopped = False
        self._failed = False  # told in the log: once per outage
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Listen, on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="relay-bell")

    async def _listen(self) -> None:
        failing = True  # until subscribed: what was published before is the polls' to take
        pubsub = self._client.pubsub()
        try:
            while not self.stopped:
                try:
                    if not pubsub.subscribed:
                        await pubsub.psubscribe(self._pattern)
                        await self._confirmed(pubsub)
                    if failing:
                        if self._failed:
                            logger.warning("the relay's Redis subscription is back")
                        failing = self._failed = False
                        self.chimes.ring_all()  # what was published meanwhile is lost: take again
                    message = await pubsub.get_message(True, timeout=RECHECK)
                except Exception:  # noqa: BLE001 - the connection dropped: subscribe again
                    if not self._failed:
                        logger.warning("the relay's Redis subscription failed; retrying")
                    failing = self._failed = True
                    self.chimes.ring_all()
                    await pubsub.aclose()  # forgets the connection: subscribe anew
                    await asyncio.sleep(RECHECK)
                    continue
                if message is not None:
                    channel, side = str(message.get("channel", "")), str(message.get("data", ""))
                    ring(self.chimes, channel.removeprefix(self._channel), side)
        finally:
            await pubsub.aclose()

    async def _confirmed(self, pubsub: Any) -> None:
        """Until Redis confirms the subscription (psubscribe only sends it): a poll woken
        before would take, then wait on a ring that could still be lost."""
        while True:
            message = await pubsub.get_message(False, timeout=RECHECK)
            if message is None:
                raise ConnectionError("no confirmation of the subscription")
            if message.get("type") == "psubscribe":
                return
            if message.get("type") == "pmessage":
                channel, side = str(message.get("channel", "")), str(message.get("data", ""))
                ring(self.chimes, channel.removeprefix(self._channel), side)

    async def close(self) -> None:
        """Stop listening and wake every poll. Idempotent."""
        self.stopped = True
        self.chimes.ring_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
