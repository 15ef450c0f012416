"""The relay's rooms in Redis (:class:`~.store.RoomStore`): several relay processes share them.

Nothing here must not be on disk, and Redis is run writing nothing to disk anyway (docs/relay.md):
keys are named by the SHA-256 of the room id (never the id), viewers' tokens are kept as their
SHA-256, the blobs are sealed (ciphertext the relay cannot read). Every key expires (each write
sets it again, since a list emptied and filled again is a new key): a room's queues and clients
with the room, its record (``room:<hash>``: owner, expiry, seat, counters) ``GONE_FOR`` after it
(an expired room reads "expired" even if no process reaped it); a closed room leaves only
``gone:<hash>`` (how it ended), for ``GONE_FOR`` after its expiry; a box's polls (``boxpolls``)
a minute after its last poll.

Every step of a room is one Lua script (redis_scripts.py: one round trip, run by Redis
atomically, the process's clock passed in), so any two steps of one room, from any processes,
are serialised: the seat is granted, refused and released atomically. Every change bumps the
room's version and publishes on its channel (redis_bell.py). This is single-instance Redis
(docs/relay.md), not a Redis Cluster: the scripts touch one room's keys and the shared indexes.

The steps are written once, as coroutines over a client (:class:`RedisSteps`): redis-py's asyncio
client for the asynchronous relay (:class:`AsyncRedisRooms`: a step awaits its round trip on the
event loop), or its plain client for everything that runs in threads (:class:`RedisRooms`: the
Flask relay, the reaper, the tests), whose coroutines never suspend and are driven to their end
in the calling thread (awaitable.drive).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from ..vocab import told
from .awaitable import drive
from .redis_bell import AsyncRedisBell, RedisBell, chime_key
from .redis_io import AsyncIO, BlockingIO, warm
from .redis_scripts import INDEX_LIFE, UNKNOWN_CLIENT, register, thread_client
from .rooms import room_hash as sha
from .store import (
    MAX_EXPIRY,
    MAX_GONE,
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

__all__ = ["INDEX_LIFE", "PREFIX", "AsyncRedisRooms", "RedisRooms", "sha"]

PREFIX = "appliance:relay:"


class RedisSteps:
    """Every step of the rooms in Redis, each one script (one round trip) through ``io``."""

    def __init__(self, io: BlockingIO | AsyncIO, prefix: str) -> None:
        self._io = io
        self._p = prefix
        self.scripts = self._s = register(io.client)

    def _k(self, kind: str, h: str) -> str:
        return f"{self._p}{kind}:{h}"

    async def _step(self, script: Any, h: str, *args: object) -> list[Any]:
        """``script`` on room ``h``: what it read, or its refusal raised."""
        got = await self._io.script(script, [self._p, h, repr(time.time()), *args])
        if got[0]:
            if got[1] == UNKNOWN_CLIENT:
                raise UnknownClient()
            raise RelayError(int(got[0]), str(got[1]))
        return list(got[1:])

    # -- the box ---------------------------------------------------------------------------------

    async def open(self, box: str, room: str, expires: float) -> None:
        until = min(float(expires), time.time() + MAX_EXPIRY)
        await self._step(self._s.open, sha(room), box, repr(until))

    async def extend(self, box: str, room: str, expires: float) -> None:
        until = min(float(expires), time.time() + MAX_EXPIRY)
        await self._step(self._s.extend, sha(room), box, repr(until))

    async def close(self, box: str, room: str, reason: str = "ended") -> None:
        await self._step(self._s.close, sha(room), box, str(told(reason)))

    async def expiry(self, box: str, room: str) -> float:
        owner, expires = await self._step(self._s.read, sha(room))
        if not secrets.compare_digest(str(owner), box):
            raise RelayError(404, "unknown")
        return float(expires)

    async def box_take(self, box: str, room: str, after: int) -> list[BoxMessage]:
        return _to_box(await self._step(self._s.box_take, sha(room), box, after))

    async def box_begin(self, box: str, room: str, waiting: bool) -> Ticket:
        """Counted by deadline in ``boxpolls:<box>``, like a room's viewers' polls."""
        poll_id = secrets.token_hex(8) if waiting else ""
        await self._step(self._s.box_begin, sha(room), box, poll_id)
        return Ticket(room, box, 0, waiting, poll_id)

    async def box_poll(
        self, box: str, room: str, waiting: bool, after: int
    ) -> tuple[Ticket, list[BoxMessage] | None]:
        """:meth:`box_begin` and the poll's first take, one round trip (awaitable.py)."""
        poll_id = secrets.token_hex(8) if waiting else ""
        counted, *queue = await self._step(self._s.box_begin, sha(room), box, poll_id, after)
        if counted:
            return Ticket(room, box, 0, True, poll_id), None
        return Ticket(room, box, 0, False), _to_box(queue)

    async def box_answer(self, ticket: Ticket, after: int, final: bool) -> list[BoxMessage] | None:
        """:meth:`box_take`, ending the poll if it answers (awaitable.py)."""
        poll_id, last = (ticket.poll_id if ticket.waiting else ""), "1" if final else ""
        args = (ticket.handle, after, poll_id, last)
        messages = _to_box(await self._step(self._s.box_take, sha(ticket.room), *args))
        return messages if messages or final else None

    async def box_end(self, ticket: Ticket) -> None:
        if ticket.waiting:
            await self._io.command("zrem", self._k("boxpolls", ticket.handle), ticket.poll_id)

    async def box_send(self, box: str, room: str, handle: str, blob: object, seat: bool) -> None:
        sealed = json.dumps(check_blob(blob))
        await self._step(self._s.box_send, sha(room), box, handle, sealed, "1" if seat else "")

    async def box_refuse(self, box: str, room: str, handle: str, reason: str) -> None:
        why = reason if reason in REFUSALS else "refused"
        await self._step(self._s.box_refuse, sha(room), box, handle, why)

    # -- viewers ---------------------------------------------------------------------------------

    async def check(self, room: str) -> None:
        await self._step(self._s.read, sha(room))

    async def knock(self, room: str, blob: object) -> str:
        sealed = json.dumps(check_blob(blob))
        token, handle = secrets.token_urlsafe(24), secrets.token_urlsafe(12)
        await self._step(self._s.knock, sha(room), sealed, sha(token), handle)
        return token

    async def viewer_begin(self, room: str, token: str, waiting: bool) -> Ticket:
        """Counted in ``polls:<room>`` as ``<handle>:<its number>`` while it waits."""
        wait = "1" if waiting else ""
        handle, mine, poll_id = await self._step(self._s.viewer_begin, sha(room), sha(token), wait)
        return Ticket(room, str(handle), int(mine), waiting, str(poll_id))

    async def viewer_take(
        self, ticket: Ticket, after: int, final: bool
    ) -> tuple[list[ViewerMessage], bool] | None:
        args = (ticket.handle, ticket.mine, after, "1" if final else "")
        ready, seated, *queue = await self._step(self._s.viewer_take, sha(ticket.room), *args)
        return (_to_viewer(queue), bool(seated)) if ready else None

    async def viewer_poll(
        self, room: str, token: str, waiting: bool, after: int
    ) -> tuple[Ticket, tuple[list[ViewerMessage], bool] | None]:
        """:meth:`viewer_begin` and the poll's first take, one round trip (awaitable.py)."""
        wait = "1" if waiting else ""
        got = await self._step(self._s.viewer_begin, sha(room), sha(token), wait, after)
        handle, mine, poll_id, ready, seated, *queue = got
        ticket = Ticket(room, str(handle), int(mine), bool(poll_id), str(poll_id))
        return ticket, (_to_viewer(queue), bool(seated)) if ready else None

    async def viewer_answer(
        self, ticket: Ticket, after: int, final: bool
    ) -> tuple[list[ViewerMessage], bool] | None:
        """:meth:`viewer_take`, ending the poll if it answers (awaitable.py)."""
        poll_id = ticket.poll_id if ticket.waiting else ""
        args = (ticket.handle, ticket.mine, after, "1" if final else "", poll_id)
        ready, seated, *queue = await self._step(self._s.viewer_take, sha(ticket.room), *args)
        return (_to_viewer(queue), bool(seated)) if ready else None

    async def viewer_end(self, ticket: Ticket) -> None:
        if ticket.waiting:
            await self._io.command("zrem", self._k("polls", sha(ticket.room)), ticket.poll_id)

    async def viewer_send(self, room: str, token: str, blob: object) -> None:
        sealed = json.dumps(check_blob(blob))
        await self._step(self._s.viewer_send, sha(room), sha(token), sealed)

    # -- what the relay reports ------------------------------------------------------------------

    async def count(self) -> int:
        index = self._k("rooms", "all")
        return int(await self._io.command("zcount", index, f"({time.time()}", "+inf"))

    async def age(self) -> float:
        """Since the shared rooms began: a relay process that restarted still knows them all."""
        born = await self._io.command("get", self._k("epoch", "all"))
        if born is None:
            await self.born()
            return 0.0
        return max(0.0, time.time() - float(born))

    async def born(self) -> None:
        """Note when Redis began holding the rooms (first start, or a pass after Redis lost
        everything), unless noted; renewed every pass, so it expires only with the relays."""
        epoch = self._k("epoch", "all")
        await self._io.command("set", epoch, repr(time.time()), nx=True, ex=INDEX_LIFE)
        await self._io.command("expire", epoch, INDEX_LIFE)


def _to_box(queue: list[str]) -> list[BoxMessage]:
    return [(int(n), c, k, b) for n, c, k, b in map(json.loads, queue)]


def _to_viewer(queue: list[str]) -> list[ViewerMessage]:
    return [(int(n), b) for n, b in map(json.loads, queue)]


class AsyncRedisRooms(RedisSteps):
    """The rooms in Redis for the asynchronous relay, on its event loop (``client``: a
    redis.asyncio.Redis made on that loop), waking its polls by a subscription on that loop
    (:meth:`start` it there, :meth:`stop` it)."""

    def __init__(self, client: Any, prefix: str = PREFIX) -> None:
        super().__init__(AsyncIO(client), prefix)
        self._bell = AsyncRedisBell(client, f"{prefix}bell:*")
        self._warming: asyncio.Task[int] | None = None

    def start(self) -> None:
        self._bell.start()
        self._warming = asyncio.get_running_loop().create_task(warm(self._io.client), name="warm")

    async def stop(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            await asyncio.wait({self._warming})  # its own end, not a cancellation of stop()
        await self._bell.close()

    @property
    def stopped(self) -> bool:
        return self._bell.stopped

    def listen(self, room: str, side: Side | None = None) -> asyncio.Future[None]:
        return self._bell.chimes.listen(chime_key(sha(room), side))

    def forget(self, room: str, future: asyncio.Future[None], side: Side | None = None) -> None:
        self._bell.chimes.forget(chime_key(sha(room), side), future)


class RedisRooms(Polls):
    """Rooms shared by every relay process on one Redis (``client``: a redis.Redis), step by
    blocking step (:class:`RedisSteps` driven in the calling thread)."""

    def __init__(self, client: Any, prefix: str = PREFIX) -> None:
        self._r = client
        self.prefix = prefix
        self._steps = RedisSteps(BlockingIO(client), prefix)
        self.bell = RedisBell(client, f"{prefix}bell:*")
        self._born()

    def _k(self, kind: str, h: str) -> str:
        return f"{self.prefix}{kind}:{h}"

    # -- the bell --------------------------------------------------------------------------------

    def version(self, room: str) -> str:
        self.bell.start()  # subscribed before a poll reads what it will wait past
        return str(thread_client(self._r).hget(self._k("room", sha(room)), "v"))

    def wait(self, room: str, seen: str, timeout: float) -> None:
        self.bell.wait(self.version, room, seen, max(0.0, min(timeout, MAX_WAIT)))

    def listen(self, room: str, side: Side | None = None) -> asyncio.Future[None]:
        self.bell.start()
        return self.bell.chimes.listen(chime_key(sha(room), side))

    def forget(self, room: str, future: asyncio.Future[None], side: Side | None = None) -> None:
        self.bell.chimes.forget(chime_key(sha(room), side), future)

    @property
    def stopped(self) -> bool:
        return self.bell.stopped

    # -- the steps -------------------------------------------------------------------------------

    def open(self, box: str, room: str, expires: float) -> None:
        drive(self._steps.open(box, room, expires))

    def extend(self, box: str, room: str, expires: float) -> None:
        drive(self._steps.extend(box, room, expires))

    def close(self, box: str, room: str, reason: str = "ended") -> None:
        drive(self._steps.close(box, room, reason))

    def expiry(self, box: str, room: str) -> float:
        return drive(self._steps.expiry(box, room))

    def box_take(self, box: str, room: str, after: int) -> list[BoxMessage]:
        return drive(self._steps.box_take(box, room, after))

    def box_begin(self, box: str, room: str, waiting: bool) -> Ticket:
        return drive(self._steps.box_begin(box, room, waiting))

    def box_end(self, ticket: Ticket) -> None:
        drive(self._steps.box_end(ticket))

    def box_send(self, box: str, room: str, handle: str, blob: object, seat: bool) -> None:
        drive(self._steps.box_send(box, room, handle, blob, seat))

    def box_refuse(self, box: str, room: str, handle: str, reason: str) -> None:
        drive(self._steps.box_refuse(box, room, handle, reason))

    def check(self, room: str) -> None:
        drive(self._steps.check(room))

    def knock(self, room: str, blob: object) -> str:
        return drive(self._steps.knock(room, blob))

    def viewer_begin(self, room: str, token: str, waiting: bool) -> Ticket:
        return drive(self._steps.viewer_begin(room, token, waiting))

    def viewer_take(
        self, ticket: Ticket, after: int, final: bool
    ) -> tuple[list[ViewerMessage], bool] | None:
        return drive(self._steps.viewer_take(ticket, after, final))

    def viewer_end(self, ticket: Ticket) -> None:
        drive(self._steps.viewer_end(ticket))

    def viewer_send(self, room: str, token: str, blob: object) -> None:
        drive(self._steps.viewer_send(room, token, blob))

    def count(self) -> int:
        return drive(self._steps.count())

    def age(self) -> float:
        return drive(self._steps.age())

    # -- housekeeping ----------------------------------------------------------------------------

    def reap(self) -> None:
        """End the rooms past their expiry (any process, each room once); keep MAX_GONE."""
        expired = self._r.zrangebyscore(self._k("rooms", "all"), "-inf", time.time())
        if expired:
            pipe = self._r.pipeline(transaction=False)
            reap = self._steps.scripts.reap  # queued in the pipeline: one round trip for all
            for h in expired:
                reap(args=[self.prefix, h, repr(time.time())], client=pipe)
            pipe.execute()
        self._trim_gone()
        self._born()

    def _trim_gone(self) -> None:
        index = self._k("gone", "all")
        excess = self._r.zcard(index) - MAX_GONE
        if excess > 0:
            oldest = [h for h, _ in self._r.zpopmin(index, excess)]
            self._r.delete(*(self._k("gone", h) for h in oldest))

    def close_all(self) -> None:
        """This process stops: wake its polls. The rooms stay (other processes serve them)."""
        self.bell.close()

    def _born(self) -> None:
        drive(self._steps.born())
