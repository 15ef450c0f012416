"""The thread-free side of a room's bell: an asynchronous long poll listens for the room's next
ring with a future, resolved by whichever thread rings (the store's step on the event loop
itself, or the Redis listener thread), so a waiting poll holds no thread.

A poll listens *before* it takes: a ring between its take and its wait is never lost (the future
is already resolved), so no version needs reading."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable


class Chimes:
    """Futures waiting for a room's next ring, by room key; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    def listen(self, room: str) -> asyncio.Future[None]:
        """A future (of the running loop) resolved at ``room``'s next ring."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.setdefault(room, set()).add(future)
        return future

    def forget(self, room: str, future: asyncio.Future[None]) -> None:
        with self._lock:
            waiting = self._waiting.get(room)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiting[room]

    def ring(self, room: str) -> None:
        with self._lock:
            waiting = self._waiting.pop(room, ())
        _resolve(waiting)

    def ring_all(self) -> None:
        with self._lock:
            every = [f for waiting in self._waiting.values() for f in waiting]
            self._waiting.clear()
        _resolve(every)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(waiting) for waiting in self._waiting.values())


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _resolve(futures: Iterable[asyncio.Future[None]]) -> None:
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for future in futures:
        loop = future.get_loop()
        if loop is running:
            _wake(future)
            continue
        try:
            loop.call_soon_threadsafe(_wake, future)
        except RuntimeError:  # that loop is closed: nobody waits on it any more
            pass
