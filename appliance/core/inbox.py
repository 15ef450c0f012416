"""The core's one event queue: posted to on the loop or from other threads, read by the core."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

from ..errors import InvalidStateError
from .events import Event

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Asking(Protocol[T]):
    """An event that carries a future for its answer (a staff command, a verified knock)."""

    @property
    def future(self) -> asyncio.Future[T] | None: ...


class _Later:
    """What a handler returns when it answers the event's future itself, later (a command
    waiting on a relay call that runs beside the core)."""

    def __repr__(self) -> str:
        return "LATER"


LATER = _Later()


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

    async def ask(self, event: Asking[T]) -> T:
        """Post ``event`` (a dataclass with a ``future`` field) and wait for the core's answer."""
        future: asyncio.Future[T] = self._loop.create_future()
        self.post(cast(Event, dataclasses.replace(event, future=future)))  # type: ignore[type-var]
        return await future

    async def get(self) -> Event:
        return await self._queue.get()

    async def serve(
        self,
        handle: Callable[[Event], Awaitable[object]],
        stopped: asyncio.Event,
        started: Callable[[], None] | None = None,
    ) -> None:
        """Hand every event to ``handle`` in order until ``stopped`` is set; a command's answer
        (or refusal) goes to its future, unless the handler returns :data:`LATER` (it answers
        that future itself). An unexpected error with nobody to tell is raised, so
        the service restarts."""
        self.open = True
        try:
            if started is not None:
                started()
            events = asyncio.ensure_future(self._dispatch(handle))
            stop = asyncio.ensure_future(stopped.wait())
            done, _ = await asyncio.wait({events, stop}, return_when=asyncio.FIRST_COMPLETED)
            if events in done:
                events.result()
            for task in (events, stop):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            self.open = False

    async def _dispatch(self, handle: Callable[[Event], Awaitable[object]]) -> None:
        while True:
            event = await self.get()
            future = getattr(event, "future", None)
            try:
                result = await handle(event)
            except InvalidStateError as exc:
                if future is not None and not future.done():
                    future.set_exception(exc)
                else:
                    logger.warning("ignored %s: %s", type(event).__name__, exc)
            except Exception as exc:
                if future is None:
                    raise
                if not future.done():
                    future.set_exception(exc)
            else:
                if future is not None and not future.done() and result is not LATER:
                    future.set_result(result)


class Timers:
    """Named timers that post an event to the core when they fire (the session's expiry and its
    warning); starting one again replaces it."""

    def __init__(self, post: Callable[[Event], None]) -> None:
        self._post = post
        self._handles: dict[str, asyncio.TimerHandle] = {}

    def start(self, name: str, delay: float, event: Event) -> None:
        self.cancel(name)
        self._handles[name] = asyncio.get_running_loop().call_later(delay, self._post, event)

    def cancel(self, name: str) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for name in list(self._handles):
            self.cancel(name)


def notify(listeners: list[Callable[..., None]], *args: Any) -> None:
    """Call every listener; one that fails is logged and the others still run."""
    for listener in listeners:
        try:
            listener(*args)
        except Exception:
            logger.exception("a listener failed")
