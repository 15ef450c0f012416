"""The room store and the rate-limit buckets as the relay's calls (calls.py) use them: every step
a coroutine, so the asynchronous server awaits a Redis round trip on its event loop (redis-py's
asyncio client: no thread per step, docs/relay.md) while the protocol's logic stays written once.

A store that never waits on the network (the store in memory) or waits by blocking (the Redis
store's plain client, in the Flask relay's threads) is given to the calls as :class:`Immediate`:
its coroutines never suspend, and :func:`drive` runs one to its end in the calling thread, with no
event loop. The long polls' waiting is the store's own :class:`~.store.Bell` either way."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from .limits import Bucket
from .store import (
    RECHECK_ASYNC,
    BoxMessage,
    RoomStore,
    Side,
    Ticket,
    ViewerMessage,
    box_take,
)

T = TypeVar("T")


def drive(step: Coroutine[Any, Any, T]) -> T:
    """The result of ``step``, a coroutine that never suspends (its awaits all return at once),
    run in the calling thread; RuntimeError if it suspends after all (it needed an event loop)."""
    try:
        step.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    step.close()
    raise RuntimeError("a store step waited for an event loop: it must be awaited on one")


class AsyncBucket(Protocol):
    async def take(self, address: str) -> bool: ...


class AsyncRoomStore(Protocol):
    """:class:`~.store.RoomStore`'s steps as coroutines, and its bell's asynchronous side."""

    async def open(self, box: str, room: str, expires: float) -> None: ...
    async def extend(self, box: str, room: str, expires: float) -> None: ...
    async def close(self, box: str, room: str, reason: str = "ended") -> None: ...
    async def expiry(self, box: str, room: str) -> float: ...
    async def box_take(self, box: str, room: str, after: int) -> list[BoxMessage]: ...
    async def box_end(self, ticket: Ticket) -> None: ...
    async def box_send(
        self, box: str, room: str, handle: str, blob: object, seat: bool
    ) -> None: ...
    async def box_refuse(self, box: str, room: str, handle: str, reason: str) -> None: ...
    async def check(self, room: str) -> None: ...

    # a long poll in as few steps as the store can: begun with its first take, ended by the take
    # that answers it. A poll answered (messages, not None) is over: nothing to end; otherwise
    # its ticket is taken again after the bell rings, and ended if it never answers.
    async def box_poll(
        self, box: str, room: str, waiting: bool, after: int
    ) -> tuple[Ticket, list[BoxMessage] | None]: ...
    async def box_answer(
        self, ticket: Ticket, after: int, final: bool
    ) -> list[BoxMessage] | None: ...
    async def viewer_poll(
        self, room: str, token: str, waiting: bool, after: int
    ) -> tuple[Ticket, tuple[list[ViewerMessage], bool] | None]: ...
    async def viewer_answer(
        self, ticket: Ticket, after: int, final: bool
    ) -> tuple[list[ViewerMessage], bool] | None: ...

    async def knock(self, room: str, blob: object) -> str: ...
    async def viewer_end(self, ticket: Ticket) -> None: ...
    async def viewer_send(self, room: str, token: str, blob: object) -> None: ...
    async def count(self) -> int: ...
    async def age(self) -> float: ...

    # the bell, for an asynchronous poll (store.wait_for_async)
    @property
    def stopped(self) -> bool: ...
    def listen(self, room: str, side: Side | None = None) -> asyncio.Future[None]: ...
    def forget(self, room: str, future: asyncio.Future[None], side: Side | None = None) -> None: ...


class ImmediateBucket:
    """A bucket table whose take returns at once (in memory, or blocking) as a coroutine."""

    def __init__(self, bucket: Bucket) -> None:
        self._bucket = bucket

    async def take(self, address: str) -> bool:
        return self._bucket.take(address)


class Immediate:
    """A store whose steps return at once (in memory) or block (Redis's plain client) as an
    :class:`AsyncRoomStore`: its coroutines never suspend (:func:`drive` runs them)."""

    def __init__(self, store: RoomStore) -> None:
        self.store = store

    async def open(self, box: str, room: str, expires: float) -> None:
        self.store.open(box, room, expires)

    async def extend(self, box: str, room: str, expires: float) -> None:
        self.store.extend(box, room, expires)

    async def close(self, box: str, room: str, reason: str = "ended") -> None:
        self.store.close(box, room, reason)

    async def expiry(self, box: str, room: str) -> float:
        return self.store.expiry(box, room)

    async def box_take(self, box: str, room: str, after: int) -> list[BoxMessage]:
        return self.store.box_take(box, room, after)

    async def box_end(self, ticket: Ticket) -> None:
        self.store.box_end(ticket)

    async def box_poll(
        self, box: str, room: str, waiting: bool, after: int
    ) -> tuple[Ticket, list[BoxMessage] | None]:
        ticket = self.store.box_begin(box, room, waiting)
        try:
            return ticket, await self.box_answer(ticket, after, not waiting)
        except BaseException:
            self.store.box_end(ticket)
            raise

    async def box_answer(self, ticket: Ticket, after: int, final: bool) -> list[BoxMessage] | None:
        store = self.store
        messages = box_take(store, ticket.handle, ticket.room, after)(final)
        if messages is not None:
            store.box_end(ticket)
        return messages

    async def box_send(self, box: str, room: str, handle: str, blob: object, seat: bool) -> None:
        self.store.box_send(box, room, handle, blob, seat)

    async def box_refuse(self, box: str, room: str, handle: str, reason: str) -> None:
        self.store.box_refuse(box, room, handle, reason)

    async def check(self, room: str) -> None:
        self.store.check(room)

    async def knock(self, room: str, blob: object) -> str:
        return self.store.knock(room, blob)

    async def viewer_end(self, ticket: Ticket) -> None:
        self.store.viewer_end(ticket)

    async def viewer_poll(
        self, room: str, token: str, waiting: bool, after: int
    ) -> tuple[Ticket, tuple[list[ViewerMessage], bool] | None]:
        ticket = self.store.viewer_begin(room, token, waiting)
        try:
            return ticket, await self.viewer_answer(ticket, after, not waiting)
        except BaseException:
            self.store.viewer_end(ticket)
            raise

    async def viewer_answer(
        self, ticket: Ticket, after: int, final: bool
    ) -> tuple[list[ViewerMessage], bool] | None:
        got = self.store.viewer_take(ticket, after, final)
        if got is not None:
            self.store.viewer_end(ticket)
        return got

    async def viewer_send(self, room: str, token: str, blob: object) -> None:
        self.store.viewer_send(room, token, blob)

    async def count(self) -> int:
        return self.store.count()

    async def age(self) -> float:
        return self.store.age()

    @property
    def stopped(self) -> bool:
        return self.store.stopped

    @property
    def recheck(self) -> float:
        """How often a poll takes again unrung: the store's own (a ring in memory is never lost)."""
        return float(getattr(self.store, "recheck", RECHECK_ASYNC))

    def listen(self, room: str, side: Side | None = None) -> asyncio.Future[None]:
        return self.store.listen(room, side)

    def forget(self, room: str, future: asyncio.Future[None], side: Side | None = None) -> None:
        self.store.forget(room, future, side)
