"""The relay's rooms in memory (:class:`~.store.RoomStore`): one relay process, and the relay
built into a box. Nothing on disk.

One lock and one condition guard it all; every change rings the bell (a change count) and wakes
the waiting polls, which take again: a thread's wait on the condition, an asynchronous poll's
future for that room (``Chimes``). A room is forgotten when its box closes it or when it
expires; its id is remembered only as a hash, with how it ended ("ended" or "expired"), to refuse
reusing it and to tell a late viewer that rather than "unknown", for ``GONE_FOR`` after its
expiry and at most ``MAX_GONE`` of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from ..vocab import Told, told
from .chimes import Chimes
from .store import (
    CLIENT_IDLE,
    GONE_FOR,
    MAX_BLOB,
    MAX_EXPIRY,
    MAX_GONE,
    MAX_PENDING_KNOCKS,
    MAX_POLLS_PER_BOX,
    MAX_POLLS_PER_ROOM,
    MAX_QUEUE,
    MAX_ROOMS_PER_BOX,
    MAX_WAIT,
    REFUSALS,
    BoxMessage,
    Polls,
    RelayError,
    Side,
    Ticket,
    UnknownClient,
    ViewerMessage,
    check_blob,
)

__all__ = [
    "CLIENT_IDLE",
    "GONE_FOR",
    "MAX_BLOB",
    "MAX_EXPIRY",
    "MAX_GONE",
    "MAX_PENDING_KNOCKS",
    "MAX_POLLS_PER_ROOM",
    "MAX_QUEUE",
    "MAX_ROOMS_PER_BOX",
    "MAX_WAIT",
    "REFUSALS",
    "RelayError",
    "Rooms",
    "room_hash",
]


def room_hash(room: str) -> str:
    return hashlib.sha256(room.encode()).hexdigest()


@dataclass
class Client:
    token: str
    handle: str
    inbox: deque[ViewerMessage] = field(default_factory=deque)
    refused: str = ""
    answered: bool = False
    seen: float = field(default_factory=time.monotonic)
    polls: int = 0  # long polls started: a new one ends the one before


@dataclass
class Room:
    box: str  # the hash of the owning box's token
    expires: float  # wall clock
    to_box: deque[BoxMessage] = field(default_factory=deque)
    clients: dict[str, Client] = field(default_factory=dict)  # by handle
    seat: str = ""  # the handle the box seated
    next_n: int = 1
    polling: int = 0  # viewers' long polls waiting now


class Rooms(Polls):
    """Every open room, thread-safe."""

    #: An asynchronous poll here is rung by every change, never lost: no need to take unrung.
    recheck = MAX_WAIT

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rooms: dict[str, Room] = {}
        #: room hash -> (how it ended, when to forget it), oldest first
        self._gone: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._changes = 0
        self._stopped = False
        self._chimes = Chimes()
        self._box_polls: dict[str, int] = {}  # box hash -> its polls waiting now
        self._born = time.monotonic()

    # -- helpers (call with the lock held) -------------------------------------------------------

    def _ring(self, room: str | None) -> None:
        """``room`` changed (None: every room)."""
        self._changes += 1
        self._cond.notify_all()
        if room is None:
            self._chimes.ring_all()
        else:
            self._chimes.ring(room)

    def _room(self, room: str) -> Room:
        found = self._rooms.get(room)
        if found is not None and found.expires > time.time():
            return found
        if found is not None:
            self._end(room, "expired")
        gone = self._gone.get(room_hash(room))
        if gone is not None:
            raise RelayError(410, gone[0])
        raise RelayError(404, "unknown")

    def _owned(self, box: str, room: str) -> Room:
        found = self._room(room)
        if not secrets.compare_digest(found.box, box):
            raise RelayError(404, "unknown")
        return found

    def _end(self, room: str, outcome: str) -> None:
        """Forget ``room``, remembering only its hash and ``outcome`` ("ended", "expired")."""
        found = self._rooms.pop(room, None)
        expires = found.expires if found is not None else time.time()
        key = room_hash(room)
        self._gone.pop(key, None)
        self._gone[key] = (outcome, expires + GONE_FOR)
        while len(self._gone) > MAX_GONE:
            self._gone.popitem(last=False)
        self._ring(room)

    def _client(self, room: Room, token: str) -> Client:
        for client in room.clients.values():
            if secrets.compare_digest(client.token, token):
                client.seen = time.monotonic()
                return client
        raise UnknownClient()

    # -- the bell --------------------------------------------------------------------------------

    def version(self, room: str) -> str:
        with self._cond:
            return str(self._changes)

    def wait(self, room: str, seen: str, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(
                lambda: self._stopped or str(self._changes) != seen,
                timeout=max(0.0, min(timeout, MAX_WAIT)),
            )

    def listen(self, room: str, side: Side | None = None) -> asyncio.Future[None]:
        """Any change rings every poll of the room here (a ring costs a dictionary look-up)."""
        return self._chimes.listen(room)

    def forget(self, room: str, future: asyncio.Future[None], side: Side | None = None) -> None:
        self._chimes.forget(room, future)

    @property
    def stopped(self) -> bool:
        return self._stopped

    # -- the box ---------------------------------------------------------------------------------

    def open(self, box: str, room: str, expires: float) -> None:
        with self._cond:
            self._reap()
            if room in self._rooms or room_hash(room) in self._gone:
                raise RelayError(409, "exists")
            if sum(r.box == box for r in self._rooms.values()) >= MAX_ROOMS_PER_BOX:
                raise RelayError(429, "too-many-rooms")
            expires = min(float(expires), time.time() + MAX_EXPIRY)
            if expires <= time.time():
                raise RelayError(400, "expired")
            self._rooms[room] = Room(box=box, expires=expires)
            self._ring(room)

    def extend(self, box: str, room: str, expires: float) -> None:
        """The staff extended the session: the room lives until ``expires`` (bounded)."""
        with self._cond:
            found = self._owned(box, room)
            expires = min(float(expires), time.time() + MAX_EXPIRY)
            if expires <= found.expires:
                raise RelayError(400, "bad-request")
            found.expires = expires

    def close(self, box: str, room: str, reason: str = "ended") -> None:
        """The box closes ``room``: viewers hear ``reason`` ("ended" or "expired") from now on."""
        with self._cond:
            found = self._owned(box, room)
            expired = found.expires <= time.time()
            self._end(room, Told.EXPIRED if expired else told(reason))

    def check(self, room: str) -> None:
        """RelayError unless ``room`` is open: 404 unknown, 410 ended or expired."""
        with self._cond:
            self._room(room)

    def box_take(self, box: str, room: str, after: int) -> list[BoxMessage]:
        with self._cond:
            found = self._owned(box, room)
            while found.to_box and found.to_box[0][0] <= after:
                found.to_box.popleft()  # acknowledged by ``after``
            return list(found.to_box)

    def box_begin(self, box: str, room: str, waiting: bool) -> Ticket:
        with self._cond:
            self._owned(box, room)
            if waiting:
                if self._box_polls.get(box, 0) >= MAX_POLLS_PER_BOX:
                    raise RelayError(429, "slow-down")
                self._box_polls[box] = self._box_polls.get(box, 0) + 1
            return Ticket(room, box, 0, waiting)

    def box_end(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.waiting:
                left = self._box_polls.get(ticket.handle, 1) - 1
                if left > 0:
                    self._box_polls[ticket.handle] = left
                else:
                    self._box_polls.pop(ticket.handle, None)

    def box_send(self, box: str, room: str, handle: str, blob: object, seat: bool) -> None:
        with self._cond:
            found = self._owned(box, room)
            client = found.clients.get(handle)
            if client is None:
                raise RelayError(404, "no-client")
            if len(client.inbox) >= MAX_QUEUE:
                raise RelayError(429, "queue-full")
            if seat:
                # the box's decision: this client holds the seat now; a previous holder (the same
                # phone's stale connection) is told the seat is taken
                previous = found.clients.get(found.seat)
                if previous is not None and previous.handle != handle:
                    previous.refused = "taken"
                found.seat = handle
                client.refused = ""
            client.answered = True
            client.inbox.append((found.next_n, check_blob(blob)))
            found.next_n += 1
            self._ring(room)

    def box_refuse(self, box: str, room: str, handle: str, reason: str) -> None:
        with self._cond:
            found = self._owned(box, room)
            client = found.clients.get(handle)
            if client is None:
                raise RelayError(404, "no-client")
            client.refused = reason if reason in REFUSALS else "refused"
            if found.seat == handle:
                found.seat = ""
            self._ring(room)

    # -- viewers ---------------------------------------------------------------------------------

    def knock(self, room: str, blob: object) -> str:
        with self._cond:
            found = self._room(room)
            # No room-wide lock after failed knocks: junk needs only the room id, and such a
            # lock would shut the seat's own phone out. Each address is limited (app.py), the
            # box refuses junk at once and logs it at most once a minute.
            now = time.monotonic()
            self._forget_idle(found, now)
            pending = [c for c in found.clients.values() if not c.answered and not c.refused]
            if len(pending) >= MAX_PENDING_KNOCKS:
                raise RelayError(429, "slow-down")
            if len(found.to_box) >= MAX_QUEUE * 4:
                raise RelayError(429, "slow-down")
            client = Client(token=secrets.token_urlsafe(24), handle=secrets.token_urlsafe(12))
            found.clients[client.handle] = client
            found.to_box.append((found.next_n, client.handle, "knock", check_blob(blob)))
            found.next_n += 1
            self._trim(found)
            self._ring(room)
            return client.token

    def viewer_begin(self, room: str, token: str, waiting: bool) -> Ticket:
        with self._cond:
            found = self._room(room)
            client = self._client(found, token)
            if waiting and found.polling >= MAX_POLLS_PER_ROOM:
                raise RelayError(429, "slow-down")
            client.polls += 1
            if waiting:
                found.polling += 1
            self._ring(room)  # this client's previous poll, if any, ends now
            return Ticket(room, client.handle, client.polls, waiting)

    def viewer_take(
        self, ticket: Ticket, after: int, final: bool
    ) -> tuple[list[ViewerMessage], bool] | None:
        with self._cond:
            found = self._room(ticket.room)
            client = found.clients.get(ticket.handle)
            if client is None:
                raise UnknownClient()
            ready = (
                bool(client.refused)
                or client.polls != ticket.mine
                or any(n > after for n, _ in client.inbox)
            )
            if not ready and not final:
                return None
            messages = [(n, b) for n, b in client.inbox if n > after]
            while client.inbox and client.inbox[0][0] <= after:
                client.inbox.popleft()  # acknowledged by ``after``
            if client.refused and not messages:
                raise RelayError(403, client.refused)
            return messages, found.seat == client.handle

    def viewer_end(self, ticket: Ticket) -> None:
        with self._cond:
            found = self._rooms.get(ticket.room)
            if ticket.waiting and found is not None:
                found.polling -= 1

    def viewer_send(self, room: str, token: str, blob: object) -> None:
        with self._cond:
            found = self._room(room)
            client = self._client(found, token)
            if client.refused or found.seat != client.handle:
                raise RelayError(403, "no-seat")
            mine = sum(1 for m in found.to_box if m[1] == client.handle)
            if mine >= MAX_QUEUE:
                raise RelayError(429, "queue-full")
            found.to_box.append((found.next_n, client.handle, "message", check_blob(blob)))
            found.next_n += 1
            self._trim(found)
            self._ring(room)

    # -- housekeeping ----------------------------------------------------------------------------

    @staticmethod
    def _trim(room: Room) -> None:
        while len(room.to_box) > MAX_QUEUE * 8:
            room.to_box.popleft()

    @staticmethod
    def _forget_idle(room: Room, now: float) -> None:
        for handle, client in list(room.clients.items()):
            if handle != room.seat and now - client.seen > CLIENT_IDLE:
                del room.clients[handle]

    def _reap(self) -> None:
        now = time.time()
        for room_id, room in list(self._rooms.items()):
            if room.expires <= now:
                self._end(room_id, "expired")
        for key, (_, until) in list(self._gone.items()):
            if until <= now:
                del self._gone[key]

    def close_all(self) -> None:
        """Forget every room and wake every long poll (the relay is stopping)."""
        with self._cond:
            self._rooms.clear()
            self._ring(None)

    def reap(self) -> None:
        """Forget expired rooms (the server calls this every few seconds)."""
        with self._cond:
            self._reap()  # rings each room it ends
            self._changes += 1
            self._cond.notify_all()

    def expiry(self, box: str, room: str) -> float:
        with self._cond:
            return self._owned(box, room).expires

    def count(self) -> int:
        with self._cond:
            return len(self._rooms)

    def age(self) -> float:
        return time.monotonic() - self._born
