"""The relay's rooms in Redis (:class:`~.store.RoomStore`): several relay processes share them.

Nothing here must not be on disk, and Redis is run writing nothing to disk anyway (docs/relay.md):
keys are named by the SHA-256 of the room id (never the id), viewers' tokens are kept as their
SHA-256, the blobs are sealed (ciphertext the relay cannot read). Every key expires (each write
sets it again, since a list emptied and filled again is a new key): a room's queues and clients
with the room, its record (``room:<hash>``: owner, expiry, seat, counters) ``GONE_FOR`` after it
(an expired room reads "expired" even if no process reaped it); a closed room leaves only
``gone:<hash>`` (how it ended), for ``GONE_FOR`` after its expiry; a box's polls (``boxpolls``)
a minute after its last poll.

Every update of a room is one transaction (WATCH on the room's record, MULTI/EXEC, retried when
another process changed the room meanwhile) and bumps the record, so any two updates of one room,
from any processes, are serialised: the seat is granted, refused and released atomically. Every
change publishes on the room's channel (redis_bell.py).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from ..vocab import Told, told
from .redis_bell import RedisBell
from .rooms import room_hash as sha
from .store import (
    CLIENT_IDLE,
    GONE_FOR,
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
    Ticket,
    UnknownClient,
    ViewerMessage,
    check_blob,
)

PREFIX = "appliance:relay:"
#: How long an index (all rooms, a box's rooms, the gone rooms) lives after its last change.
INDEX_LIFE = int(MAX_EXPIRY + GONE_FOR)


class RedisRooms(Polls):
    """Rooms shared by every relay process on one Redis (``client``: a redis.Redis)."""

    def __init__(self, client: Any, prefix: str = PREFIX) -> None:
        self._r = client
        self._p = prefix
        self._bell = RedisBell(client, f"{prefix}bell:*")
        self._born()

    # -- keys ------------------------------------------------------------------------------------

    def _k(self, kind: str, h: str) -> str:
        return f"{self._p}{kind}:{h}"

    def _room_keys(self, h: str, handles: list[str]) -> list[str]:
        """The keys that live and die with the room (not its record)."""
        inboxes = [self._k("inbox", f"{h}:{handle}") for handle in handles]
        return [self._k("clients", h), self._k("tobox", h), self._k("polls", h), *inboxes]

    def _tx(self, h: str, step: Any) -> Any:
        """``step(pipe)`` as one transaction on room ``h``, retried if the room changed."""
        return self._r.transaction(step, self._k("room", h), value_from_callable=True)

    def _changed(self, pipe: Any, h: str) -> None:
        """Within MULTI: the room changed; wake its polls on every process."""
        pipe.hincrby(self._k("room", h), "v", 1)
        pipe.publish(self._k("bell", h), "1")

    # -- reading a room (within a transaction's WATCH, or alone) ----------------------------------

    def _meta(self, pipe: Any, room: str) -> tuple[str, dict[str, str]]:
        h = sha(room)
        meta = pipe.hgetall(self._k("room", h))
        if meta and float(meta["expires"]) > time.time():
            return h, meta
        if meta:
            raise RelayError(410, Told.EXPIRED)
        gone = pipe.get(self._k("gone", h))
        if gone is not None:
            raise RelayError(410, gone)
        raise RelayError(404, "unknown")

    def _owned(self, pipe: Any, box: str, room: str) -> tuple[str, dict[str, str]]:
        h, meta = self._meta(pipe, room)
        if not secrets.compare_digest(meta["box"], box):
            raise RelayError(404, "unknown")
        return h, meta

    def _clients(self, pipe: Any, h: str) -> dict[str, dict[str, Any]]:
        raw = pipe.hgetall(self._k("clients", h))
        return {handle: json.loads(value) for handle, value in raw.items()}

    def _by_token(self, pipe: Any, h: str, token: str) -> tuple[str, dict[str, Any]]:
        wanted = sha(token)
        for handle, client in self._clients(pipe, h).items():
            if secrets.compare_digest(client["t"], wanted):
                return handle, client
        raise UnknownClient()

    def _put_client(self, pipe: Any, h: str, handle: str, client: dict[str, Any]) -> None:
        pipe.hset(self._k("clients", h), handle, json.dumps(client))

    def _expire(self, pipe: Any, h: str, expires: float, handles: list[str]) -> None:
        pipe.expireat(self._k("room", h), int(expires + GONE_FOR) + 1)
        for key in self._room_keys(h, handles):
            pipe.expireat(key, int(expires) + 60)

    # -- the bell --------------------------------------------------------------------------------

    def version(self, room: str) -> str:
        return str(self._r.hget(self._k("room", sha(room)), "v"))

    def wait(self, room: str, seen: str, timeout: float) -> None:
        self._bell.wait(self.version, room, seen, max(0.0, min(timeout, MAX_WAIT)))

    def listen(self, room: str) -> asyncio.Future[None]:
        return self._bell.chimes.listen(sha(room))

    def forget(self, room: str, future: asyncio.Future[None]) -> None:
        self._bell.chimes.forget(sha(room), future)

    @property
    def stopped(self) -> bool:
        return self._bell.stopped

    # -- the box ---------------------------------------------------------------------------------

    def open(self, box: str, room: str, expires: float) -> None:
        h = sha(room)
        mine = self._k("box", box)

        def step(pipe: Any) -> None:
            now = time.time()
            if pipe.exists(self._k("room", h), self._k("gone", h)):
                raise RelayError(409, "exists")
            if pipe.zcount(mine, f"({now}", "+inf") >= MAX_ROOMS_PER_BOX:
                raise RelayError(429, "too-many-rooms")
            until = min(float(expires), now + MAX_EXPIRY)
            if until <= now:
                raise RelayError(400, "expired")
            pipe.multi()
            pipe.hset(self._k("room", h), mapping={"box": box, "expires": repr(until), "n": 1})
            self._expire(pipe, h, until, [])
            for index in (self._k("rooms", "all"), mine):
                pipe.zadd(index, {h: until})
                pipe.expire(index, INDEX_LIFE)
            self._changed(pipe, h)

        self._r.transaction(step, self._k("room", h), self._k("gone", h), mine)

    def extend(self, box: str, room: str, expires: float) -> None:
        def step(pipe: Any) -> None:
            h, meta = self._owned(pipe, box, room)
            until = min(float(expires), time.time() + MAX_EXPIRY)
            if until <= float(meta["expires"]):
                raise RelayError(400, "bad-request")
            handles = list(self._clients(pipe, h))
            pipe.multi()
            pipe.hset(self._k("room", h), "expires", repr(until))
            self._expire(pipe, h, until, handles)
            for index in (self._k("rooms", "all"), self._k("box", box)):
                pipe.zadd(index, {h: until})
                pipe.expire(index, INDEX_LIFE)
            self._changed(pipe, h)

        self._tx(sha(room), step)

    def close(self, box: str, room: str, reason: str = "ended") -> None:
        def step(pipe: Any) -> None:
            h, meta = self._owned(pipe, box, room)
            self._end(pipe, h, meta, told(reason))

        self._tx(sha(room), step)

    def _end(self, pipe: Any, h: str, meta: dict[str, str], outcome: str) -> None:
        """Within WATCH: forget room ``h``, keeping only how it ended."""
        expires = float(meta["expires"])
        if expires <= time.time():
            outcome = Told.EXPIRED
        handles = list(self._clients(pipe, h))
        pipe.multi()
        pipe.delete(self._k("room", h), *self._room_keys(h, handles))
        pipe.set(
            self._k("gone", h), outcome, exat=max(int(expires + GONE_FOR), int(time.time()) + 1)
        )
        pipe.zrem(self._k("rooms", "all"), h)
        pipe.zrem(self._k("box", meta["box"]), h)
        pipe.zadd(self._k("gone", "all"), {h: time.time()})
        pipe.expire(self._k("gone", "all"), INDEX_LIFE)
        pipe.publish(self._k("bell", h), "1")

    def expiry(self, box: str, room: str) -> float:
        _, meta = self._owned(self._r, box, room)
        return float(meta["expires"])

    def box_take(self, box: str, room: str, after: int) -> list[BoxMessage]:
        def step(pipe: Any) -> list[BoxMessage]:
            h, _ = self._owned(pipe, box, room)
            queue = [tuple(json.loads(m)) for m in pipe.lrange(self._k("tobox", h), 0, -1)]
            acked = sum(1 for m in queue if m[0] <= after)
            if acked:
                pipe.multi()
                pipe.ltrim(self._k("tobox", h), acked, -1)
                pipe.hincrby(self._k("room", h), "a", 1)
            return [(int(n), c, k, b) for n, c, k, b in queue[acked:]]

        return self._tx(sha(room), step)

    def box_begin(self, box: str, room: str, waiting: bool) -> Ticket:
        """Counted by deadline in ``boxpolls:<box>``, like a room's viewers' polls."""
        self._owned(self._r, box, room)
        polls, poll_id = self._k("boxpolls", box), secrets.token_hex(8) if waiting else ""

        def step(pipe: Any) -> None:
            if pipe.zcount(polls, f"({time.time()}", "+inf") >= MAX_POLLS_PER_BOX:
                raise RelayError(429, "slow-down")
            pipe.multi()
            pipe.zremrangebyscore(polls, "-inf", time.time())
            pipe.zadd(polls, {poll_id: time.time() + MAX_WAIT + 5})
            pipe.expire(polls, int(MAX_WAIT) + 60)

        if waiting:
            self._r.transaction(step, polls)
        return Ticket(room, box, 0, waiting, poll_id)

    def box_end(self, ticket: Ticket) -> None:
        if ticket.waiting:
            self._r.zrem(self._k("boxpolls", ticket.handle), ticket.poll_id)

    def box_send(self, box: str, room: str, handle: str, blob: object, seat: bool) -> None:
        sealed = check_blob(blob)

        def step(pipe: Any) -> None:
            h, meta = self._owned(pipe, box, room)
            clients = self._clients(pipe, h)
            client = clients.get(handle)
            if client is None:
                raise RelayError(404, "no-client")
            if pipe.llen(self._k("inbox", f"{h}:{handle}")) >= MAX_QUEUE:
                raise RelayError(429, "queue-full")
            n = int(meta["n"])
            pipe.multi()
            if seat:
                previous = meta.get("seat", "")
                if previous in clients and previous != handle:
                    clients[previous]["r"] = "taken"
                    self._put_client(pipe, h, previous, clients[previous])
                pipe.hset(self._k("room", h), "seat", handle)
                client["r"] = ""
            client["a"] = True
            self._put_client(pipe, h, handle, client)
            inbox = self._k("inbox", f"{h}:{handle}")
            pipe.rpush(inbox, json.dumps([n, sealed]))
            self._expire(pipe, h, float(meta["expires"]), [handle])
            pipe.hset(self._k("room", h), "n", n + 1)
            self._changed(pipe, h)

        self._tx(sha(room), step)

    def box_refuse(self, box: str, room: str, handle: str, reason: str) -> None:
        def step(pipe: Any) -> None:
            h, meta = self._owned(pipe, box, room)
            client = self._clients(pipe, h).get(handle)
            if client is None:
                raise RelayError(404, "no-client")
            pipe.multi()
            client["r"] = reason if reason in REFUSALS else "refused"
            self._put_client(pipe, h, handle, client)
            if meta.get("seat", "") == handle:
                pipe.hset(self._k("room", h), "seat", "")
            self._changed(pipe, h)

        self._tx(sha(room), step)

    # -- viewers ---------------------------------------------------------------------------------

    def check(self, room: str) -> None:
        self._meta(self._r, room)

    def knock(self, room: str, blob: object) -> str:
        sealed = check_blob(blob)
        token, handle = secrets.token_urlsafe(24), secrets.token_urlsafe(12)

        def step(pipe: Any) -> None:
            h, meta = self._meta(pipe, room)
            now = time.time()
            clients = self._clients(pipe, h)
            idle = [
                k
                for k, c in clients.items()
                if k != meta.get("seat") and now - c["s"] > CLIENT_IDLE
            ]
            pending = [c for k, c in clients.items() if k not in idle and not c["a"] and not c["r"]]
            if len(pending) >= MAX_PENDING_KNOCKS:
                raise RelayError(429, "slow-down")
            if pipe.llen(self._k("tobox", h)) >= MAX_QUEUE * 4:
                raise RelayError(429, "slow-down")
            n = int(meta["n"])
            pipe.multi()
            for gone in idle:
                pipe.hdel(self._k("clients", h), gone)
                pipe.delete(self._k("inbox", f"{h}:{gone}"))
            client = {"t": sha(token), "r": "", "a": False, "s": now, "p": 0}
            self._put_client(pipe, h, handle, client)
            pipe.rpush(self._k("tobox", h), json.dumps([n, handle, "knock", sealed]))
            pipe.ltrim(self._k("tobox", h), -MAX_QUEUE * 8, -1)
            pipe.hset(self._k("room", h), "n", n + 1)
            self._expire(pipe, h, float(meta["expires"]), [handle])
            self._changed(pipe, h)

        self._tx(sha(room), step)
        return token

    def viewer_begin(self, room: str, token: str, waiting: bool) -> Ticket:
        poll_id = secrets.token_hex(8) if waiting else ""

        def step(pipe: Any) -> Ticket:
            h, meta = self._meta(pipe, room)
            handle, client = self._by_token(pipe, h, token)
            polls, now = self._k("polls", h), time.time()
            if waiting and pipe.zcount(polls, f"({now}", "+inf") >= MAX_POLLS_PER_ROOM:
                raise RelayError(429, "slow-down")
            client["p"] += 1
            client["s"] = now
            pipe.multi()
            self._put_client(pipe, h, handle, client)
            if waiting:  # by deadline: a process that dies mid-poll leaves nothing counted
                pipe.zremrangebyscore(polls, "-inf", now)
                pipe.zadd(polls, {poll_id: now + MAX_WAIT + 5})
                pipe.expireat(polls, int(float(meta["expires"])) + 60)
            self._changed(pipe, h)  # this client's previous poll, if any, ends now
            return Ticket(room, handle, client["p"], waiting, poll_id)

        return self._tx(sha(room), step)

    def viewer_take(
        self, ticket: Ticket, after: int, final: bool
    ) -> tuple[list[ViewerMessage], bool] | None:
        def step(pipe: Any) -> tuple[list[ViewerMessage], bool] | None:
            h, meta = self._meta(pipe, ticket.room)
            client = self._clients(pipe, h).get(ticket.handle)
            if client is None:
                raise UnknownClient()
            inbox = self._k("inbox", f"{h}:{ticket.handle}")
            queue = [(int(n), b) for n, b in map(json.loads, pipe.lrange(inbox, 0, -1))]
            messages = [(n, b) for n, b in queue if n > after]
            ready = bool(client["r"]) or client["p"] != ticket.mine or bool(messages)
            if not ready and not final:
                return None
            if client["r"] and not messages:
                raise RelayError(403, client["r"])
            acked = len(queue) - len(messages)
            if acked:
                pipe.multi()
                pipe.ltrim(inbox, acked, -1)
                pipe.hincrby(self._k("room", h), "a", 1)
            return messages, meta.get("seat", "") == ticket.handle

        return self._tx(sha(ticket.room), step)

    def viewer_end(self, ticket: Ticket) -> None:
        if ticket.waiting:
            self._r.zrem(self._k("polls", sha(ticket.room)), ticket.poll_id)

    def viewer_send(self, room: str, token: str, blob: object) -> None:
        sealed = check_blob(blob)

        def step(pipe: Any) -> None:
            h, meta = self._meta(pipe, room)
            handle, client = self._by_token(pipe, h, token)
            if client["r"] or meta.get("seat", "") != handle:
                raise RelayError(403, "no-seat")
            queue = [json.loads(m) for m in pipe.lrange(self._k("tobox", h), 0, -1)]
            if sum(1 for m in queue if m[1] == handle) >= MAX_QUEUE:
                raise RelayError(429, "queue-full")
            n = int(meta["n"])
            pipe.multi()
            pipe.rpush(self._k("tobox", h), json.dumps([n, handle, "message", sealed]))
            pipe.ltrim(self._k("tobox", h), -MAX_QUEUE * 8, -1)
            pipe.hset(self._k("room", h), "n", n + 1)
            # the box's queue may have been emptied (and deleted, expiry and all): again
            self._expire(pipe, h, float(meta["expires"]), [handle])
            self._changed(pipe, h)

        self._tx(sha(room), step)

    # -- housekeeping ----------------------------------------------------------------------------

    def reap(self) -> None:
        """End the rooms past their expiry (any process, each room once); keep MAX_GONE."""
        now = time.time()
        for h in self._r.zrangebyscore(self._k("rooms", "all"), "-inf", now):

            def step(pipe: Any, h: str = h) -> None:
                meta = pipe.hgetall(self._k("room", h))
                if meta and float(meta["expires"]) <= time.time():
                    self._end(pipe, h, meta, Told.EXPIRED)
                elif not meta:
                    pipe.multi()
                    pipe.zrem(self._k("rooms", "all"), h)

            self._tx(h, step)
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
        self._bell.close()

    def count(self) -> int:
        return int(self._r.zcount(self._k("rooms", "all"), f"({time.time()}", "+inf"))

    def _born(self) -> None:
        """Note when Redis began holding the rooms (first start, or a pass after Redis lost
        everything), unless noted; renewed every pass, so it expires only with the relays."""
        epoch = self._k("epoch", "all")
        self._r.set(epoch, repr(time.time()), nx=True, ex=INDEX_LIFE)
        self._r.expire(epoch, INDEX_LIFE)

    def age(self) -> float:
        """Since the shared rooms began: a relay process that restarted still knows them all."""
        born = self._r.get(self._k("epoch", "all"))
        if born is None:
            self._born()
            return 0.0
        return max(0.0, time.time() - float(born))
