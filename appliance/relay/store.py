"""The relay's room store: what every implementation keeps (rooms, seats, queues of sealed blobs,
the gone rooms' outcomes) and how a long poll waits on it.

Two implementations pass the same tests (tests/integration/test_room_store.py): ``Rooms``
(rooms.py, in memory: one relay process, and the relay built into a box) and ``RedisRooms``
(redis_rooms.py: several relay processes sharing one Redis).

Waiting is apart from the logic. Every step of the store returns at once (``box_take``,
``viewer_begin``/``viewer_take``/``viewer_end``); a long poll is "take; if nothing yet, wait for
the room's bell to ring past the version read before the take; take again", and only the wait
blocks (``Bell``). Today's threaded server waits in :func:`wait_for` (a blocking wait with a
timeout, one server thread per poll, as before). An asynchronous server awaits the same bell
instead (one task per poll, no thread) and calls the same non-blocking steps: nothing of the
rooms' logic is written twice, and the store never needs to know which kind of server asks.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..errors import ApplianceError
from ..vocab import Refusal

MAX_BLOB = 32 * 1024
MAX_QUEUE = 16  # messages waiting per direction per client
MAX_PENDING_KNOCKS = 4  # knocks the box has not answered yet, per room
MAX_ROOMS_PER_BOX = 4
MAX_WAIT = 25.0  # seconds a long poll may wait
MAX_EXPIRY = 24 * 3600  # a room cannot be opened for longer than this
CLIENT_IDLE = 120.0  # a client that has not polled for this long is forgotten (not the seat)
MAX_POLLS_PER_ROOM = 8  # viewers' long polls waiting at once in one room (one per client)
MAX_POLLS_PER_BOX = 8  # one box token's own long polls waiting at once (all its rooms)
#: An asynchronous poll takes again at least this often, even unrung. Pub/sub loses a ring only
#: with its connection, and the Redis listener then rings every room (when it fails, and again
#: when it is back): this is a backstop, long enough that 2,000 waiting polls do not cost a
#: round of takes on Redis every few seconds. A bell may set a ``recheck`` of its own.
RECHECK_ASYNC = 20.0
GONE_FOR = 24 * 3600.0  # how long after its expiry a closed room's outcome is remembered
MAX_GONE = 10_000  # closed rooms remembered at most (the oldest forgotten first)
#: What the box may say when it refuses a knock (appliance.vocab.Refusal); anything else is
#: "refused".
REFUSALS = frozenset(Refusal)

#: A message to the box: (sequence number, the client's handle, "knock" or "message", blob).
BoxMessage = tuple[int, str, str, str]
#: A message to a viewer: (sequence number, blob).
ViewerMessage = tuple[int, str]

T = TypeVar("T")


class Side(enum.StrEnum):
    """Whose poll a change concerns: a store may wake only that side's polls (Redis: a box's
    own send need not make its waiting poll take again for nothing)."""

    BOX = "b"
    VIEWERS = "v"


class RelayError(ApplianceError):
    """A refusal: HTTP ``status`` and the short ``code`` the protocol names."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


class UnknownClient(RelayError):
    """403 ``refused``: a client token this relay does not know (forged, forgotten when idle,
    or lost with the rooms: told apart by the relay while its rooms are new)."""

    def __init__(self) -> None:
        super().__init__(403, "refused")


@dataclass(frozen=True)
class Ticket:
    """One viewer's poll, from ``viewer_begin`` to ``viewer_end``: a later poll of the same
    client (a higher ``mine``) ends it."""

    room: str
    handle: str
    mine: int
    waiting: bool
    poll_id: str = ""


def check_blob(blob: object) -> str:
    """A sealed blob: a non-empty string of at most MAX_BLOB bytes (413 or 400 otherwise)."""
    if not isinstance(blob, str) or not blob or len(blob.encode()) > MAX_BLOB:
        raise (
            RelayError(413, "too-large")
            if isinstance(blob, str) and blob
            else RelayError(400, "bad-request")
        )
    return blob


class Bell(Protocol):
    """Rings whenever a room changes; a poll waits for it to ring past what it saw."""

    def version(self, room: str) -> str:
        """The room's change count now (any value, compared only for equality)."""
        ...

    def wait(self, room: str, seen: str, timeout: float) -> None:
        """Block until the room's version is no longer ``seen``, the store stops, or
        ``timeout`` seconds passed (may return early: the caller takes again)."""
        ...

    def listen(self, room: str, side: Side | None = None) -> asyncio.Future[None]:
        """A future of the running loop, resolved when the room next changes in a way that
        concerns ``side`` (None: any change), or the store stops; the caller takes after
        listening, and ``forget``s it when done."""
        ...

    def forget(self, room: str, future: asyncio.Future[None], side: Side | None = None) -> None: ...


class RoomStore(Bell, Protocol):
    """Rooms, one box and at most one seated viewer each; every step returns at once."""

    # -- the box ---------------------------------------------------------------------------------
    def open(self, box: str, room: str, expires: float) -> None: ...
    def extend(self, box: str, room: str, expires: float) -> None: ...
    def close(self, box: str, room: str, reason: str = "ended") -> None: ...
    def expiry(self, box: str, room: str) -> float: ...
    def box_take(self, box: str, room: str, after: int) -> list[BoxMessage]:
        """Drop the messages up to ``after`` (acknowledged) and return the rest."""
        ...

    def box_begin(self, box: str, room: str, waiting: bool) -> Ticket:
        """A box's poll of its ``room`` begins: 429 ``slow-down`` if it would wait and the
        box's token already has MAX_POLLS_PER_BOX polls waiting."""
        ...

    def box_end(self, ticket: Ticket) -> None: ...
    def box_send(self, box: str, room: str, handle: str, blob: object, seat: bool) -> None: ...
    def box_refuse(self, box: str, room: str, handle: str, reason: str) -> None: ...

    # -- viewers ---------------------------------------------------------------------------------
    def check(self, room: str) -> None:
        """RelayError unless ``room`` is open: 404 unknown, 410 ended or expired."""
        ...

    def knock(self, room: str, blob: object) -> str: ...
    def viewer_begin(self, room: str, token: str, waiting: bool) -> Ticket: ...
    def viewer_take(
        self, ticket: Ticket, after: int, final: bool
    ) -> tuple[list[ViewerMessage], bool] | None:
        """The messages after ``after`` and whether the client holds the seat; None while
        there is nothing to say yet (unless ``final``)."""
        ...

    def viewer_end(self, ticket: Ticket) -> None: ...
    def viewer_send(self, room: str, token: str, blob: object) -> None: ...

    # -- housekeeping ----------------------------------------------------------------------------
    @property
    def stopped(self) -> bool: ...
    def reap(self) -> None: ...
    def close_all(self) -> None: ...
    def count(self) -> int: ...
    def age(self) -> float:
        """Seconds since these rooms began: since the process started (in memory), since the
        shared store first held rooms or last lost them all (Redis). A room unknown to rooms this
        young may be one its box will open again (the ``restarted`` answer)."""
        ...


def wait_for(
    bell: Bell,
    room: str,
    wait: float,
    take: Callable[[bool], T | None],
    seen: str | None = None,
) -> T:
    """A long poll in a thread: ``take(final)`` until it has something, waiting on ``bell``
    between tries, for at most ``wait`` seconds (and MAX_WAIT); the last try is ``final``.
    ``seen``: the room's version read before a take that had nothing (the poll's first, in its
    begin): waited past first."""
    deadline = time.monotonic() + max(0.0, min(wait, MAX_WAIT))
    stopped = getattr(bell, "stopped", False)
    while True:
        if seen is None:
            seen = bell.version(room)
            got = take(False)
            if got is not None:
                return got
        left = deadline - time.monotonic()
        if left <= 0 or stopped:
            final = take(True)
            assert final is not None
            return final
        bell.wait(room, seen, left)
        seen = None
        stopped = getattr(bell, "stopped", False)


class AsyncBell(Protocol):
    """The asynchronous side of a bell (an asynchronous store's, awaitable.py)."""

    @property
    def stopped(self) -> bool: ...
    def listen(self, room: str, side: Side | None = None) -> asyncio.Future[None]: ...
    def forget(self, room: str, future: asyncio.Future[None], side: Side | None = None) -> None: ...


async def wait_for_async(
    bell: AsyncBell,
    room: str,
    wait: float,
    take: Callable[[bool], Awaitable[T | None]],
    side: Side | None = None,
    heard: asyncio.Future[None] | None = None,
) -> T:
    """:func:`wait_for` without a thread: listen, ``await take(final)``, and if there is nothing
    yet await the ring (at most RECHECK_ASYNC at a time, or the bell's ``recheck``); the last
    try is ``final``. ``heard``: listened for before a take that had nothing (the poll's first,
    in its begin): awaited first; forgotten here either way."""
    deadline = time.monotonic() + max(0.0, min(wait, MAX_WAIT))
    chime = heard
    while True:
        try:
            if chime is None:
                chime = bell.listen(room, side)
                got: T | None = await take(False)
                if got is not None:
                    return got
            left = deadline - time.monotonic()
            if left <= 0 or bell.stopped:
                final: T | None = await take(True)
                assert final is not None
                return final
            try:
                async with asyncio.timeout(min(left, getattr(bell, "recheck", RECHECK_ASYNC))):
                    await chime
            except TimeoutError:
                pass
        finally:
            if chime is not None:
                bell.forget(room, chime, side)
            chime = None


def box_take(
    store: RoomStore, box: str, room: str, after: int
) -> Callable[[bool], list[BoxMessage] | None]:
    """The box's poll step: its messages after ``after``, None while there are none."""

    def take(final: bool) -> list[BoxMessage] | None:
        messages = store.box_take(box, room, after)
        return messages if messages or final else None

    return take


class Polls:
    """The long polls of a threaded server over any :class:`RoomStore` (mixed into both)."""

    def box_messages(
        self: RoomStore, box: str, room: str, after: int, wait: float
    ) -> list[BoxMessage]:
        ticket = self.box_begin(box, room, wait > 0)
        try:
            return wait_for(self, room, wait, box_take(self, box, room, after))
        finally:
            self.box_end(ticket)

    def viewer_messages(
        self: RoomStore, room: str, token: str, after: int, wait: float
    ) -> tuple[list[ViewerMessage], bool]:
        ticket = self.viewer_begin(room, token, wait > 0)
        try:
            return wait_for(self, room, wait, lambda final: self.viewer_take(ticket, after, final))
        finally:
            self.viewer_end(ticket)


class ThreadedRoomStore(RoomStore, Protocol):
    """A store with the threaded server's blocking long polls (what the routes call today)."""

    def box_messages(self, box: str, room: str, after: int, wait: float) -> list[BoxMessage]: ...
    def viewer_messages(
        self, room: str, token: str, after: int, wait: float
    ) -> tuple[list[ViewerMessage], bool]: ...
