"""The core's one event queue: posted to on the loop or from other threads, read by the core."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ..errors import InvalidStateError
from .events import Event


class Inbox:
    """Events for the core, in order. Made on the loop that runs the core."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self.open = False

    def post(self, event: Event) -> None:
        """Queue an event; call on the loop."""
        if not self.open:
            raise InvalidStateError("the core is not running")
        self._queue.put_nowait(event)

    def post_threadsafe(self, event: Event) -> None:
        """Queue an event from another thread (gpiozero callbacks)."""
        if self._loop.is_closed():
            raise InvalidStateError("the core is not running")
        self._loop.call_soon_threadsafe(self._post_quietly, event)

    def _post_quietly(self, event: Event) -> None:
        if self.open:
            self._queue.put_nowait(event)

    async def ask(self, event: Any) -> Any:
        """Post ``event`` (a dataclass with a ``future`` field) and wait for the core's answer."""
        future: asyncio.Future[Any] = self._loop.create_future()
        self.post(dataclasses.replace(event, future=future))
        return await future

    async def get(self) -> Event:
        return await self._queue.get()
