"""The relay's calls, written once (docs/protocol.md, "Relay transport"): each takes the parsed
request (:class:`~.context.Req`) and returns its :class:`~.context.Answer` (status and JSON body),
or for a long poll a :class:`Poll` (what to take and when it is over). Each is a coroutine over
the store's coroutines (awaitable.py). Two servers serve them: Flask under cheroot (app.py: the
relay built into a box, one port and one certificate with the pairing page) with :func:`serve`,
which drives them in its threads (they never suspend there), and aiohttp (aioserver.py:
`appliance relay serve`, no thread per waiting poll, Redis awaited on its loop) with
:func:`serve_async`. Neither holds any of the protocol's logic.

The box authenticates with its token (its hash looked up among the known ones); viewers are
anonymous and rate-limited per address (the one a trusted reverse proxy forwarded, behind one).
Every refusal is a JSON ``{"error": ...}`` with a 4xx status. Nothing here logs a blob, a token, a
room id or an address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from . import checks, paths
from .awaitable import drive
from .context import Answer, RelayContext, Req
from .rooms import room_hash
from .store import Bell, BoxMessage, RelayError, Side, ViewerMessage, wait_for, wait_for_async
from .turn import mint_turn
from .viewer import LANG_DIR, VIEWER_DIR, languages

logger = logging.getLogger(__name__)
T = TypeVar("T")
LANGUAGES = {"languages": languages()}


@dataclass(frozen=True)
class Poll:
    """A long poll begun and taken once, with nothing to say yet: after its room's bell rings
    (waiting at most ``wait`` s), ``take(final)`` answers, or None while there is still nothing
    (unless ``final``); ``end()`` always follows. A server listens for the bell (or reads its
    version) before the call that begins it, so no ring after that first take is missed."""

    room: str
    wait: float
    take: Callable[[bool], Awaitable[Answer | None]]
    end: Callable[[], Awaitable[None]]


Call = Callable[[RelayContext, Req], Awaitable["Answer | Poll"]]


@dataclass(frozen=True)
class Route:
    """A method and a path pattern (``{room}``, ``{name}``: aiohttp's syntax) and its call."""

    method: str
    path: str
    call: Call
    #: a long poll's: whose poll it is (the changes that wake it)
    side: Side | None = None

    @property
    def name(self) -> str:
        return f"{self.call.__name__}"


# -- the box's side (authenticated by its token) ---------------------------------------------


async def ping(relay: RelayContext, req: Req) -> Answer:
    relay.box(req)
    return Answer(200, {"ok": True})


async def open_room(relay: RelayContext, req: Req) -> Answer:
    owner = relay.box(req)
    expires = checks.seconds(relay.body(req).get("expires"))
    room = checks.room(req.params["room"])
    await relay.rooms.open(owner, room, expires)
    logger.info("room %s opened (%d open)", room_hash(room)[:8], await relay.rooms.count())
    return Answer(201, {})


async def extend_room(relay: RelayContext, req: Req) -> Answer:
    owner = relay.box(req)
    expires = checks.seconds(relay.body(req).get("expires"))
    await relay.rooms.extend(owner, checks.room(req.params["room"]), expires)
    return Answer(204)


async def close_room(relay: RelayContext, req: Req) -> Answer:
    owner = relay.box(req)
    reason = checks.close_reason(req.query.get("reason", "ended"))
    room = checks.room(req.params["room"])
    await relay.rooms.close(owner, room, reason)
    logger.info("room %s closed (%s)", room_hash(room)[:8], reason)
    return Answer(204)


async def box_messages(relay: RelayContext, req: Req) -> Answer | Poll:
    owner = relay.box(req)
    room = checks.room(req.params["room"])
    after, wait = relay.after(req), relay.wait(req)
    rooms = relay.rooms
    ticket, first = await rooms.box_poll(owner, room, wait > 0, after)
    if first is not None:
        return box_answer(first)
    ended = False

    async def answer(final: bool) -> Answer | None:
        nonlocal ended
        messages = await rooms.box_answer(ticket, after, final)
        if messages is None:
            return None
        ended = True
        return box_answer(messages)

    async def end() -> None:
        if not ended:
            await rooms.box_end(ticket)

    return Poll(room, wait, answer, end)


def box_answer(messages: list[BoxMessage]) -> Answer:
    listed = [{"n": n, "client": c, "kind": k, "blob": b} for n, c, k, b in messages]
    return Answer(200, {"messages": listed})


async def box_send(relay: RelayContext, req: Req) -> Answer:
    owner = relay.box(req)
    data = relay.body(req)
    room = checks.room(req.params["room"])
    client, seat = str(data.get("client", "")), bool(data.get("seat"))
    await relay.rooms.box_send(owner, room, client, data.get("blob"), seat)
    return Answer(204)


async def box_refuse(relay: RelayContext, req: Req) -> Answer:
    owner = relay.box(req)
    data = relay.body(req)
    reason = checks.refusal_reason(data.get("reason", "refused"))
    room = checks.room(req.params["room"])
    await relay.rooms.box_refuse(owner, room, str(data.get("client", "")), reason)
    if reason == "bad":
        logger.warning("room %s: the box refused an invalid knock", room_hash(room)[:8])
    return Answer(204)


async def turn(relay: RelayContext, req: Req) -> Answer:
    owner = relay.box(req)
    data = relay.body(req)
    room = checks.room(str(data.get("room", "")))
    left = await relay.rooms.expiry(owner, room) - time.time()
    config = relay.config
    ttl = min(checks.seconds(data.get("ttl", config.turn.ttl)), left)
    return Answer(200, {"ice_servers": mint_turn(config, room, ttl)})


# -- the viewers' side (anonymous, rate-limited per address) ---------------------------------


async def room_status(relay: RelayContext, req: Req) -> Answer:
    """Whether the room is open (204), unknown (404) or over (410): nothing sealed, nothing
    secret, so a phone can say at once that a link is dead before asking for a name."""
    await relay.known(req)
    await relay.limited(req, relay.limits.viewers)
    return Answer(204)


async def knock(relay: RelayContext, req: Req) -> Answer:
    room = await relay.known(req)
    await relay.limited(req, relay.limits.viewers)
    await relay.limited(req, relay.limits.knocks)
    token = await relay.rooms.knock(room, relay.body(req).get("blob"))
    return Answer(202, {"client": token})


async def viewer_messages(relay: RelayContext, req: Req) -> Answer | Poll:
    room = await relay.known(req)
    await relay.limited(req, relay.limits.viewers)
    token, since, seconds = relay.viewer_token(req), relay.after(req), relay.wait(req)
    client, polls, rooms = relay.address(req), relay.limits.polls, relay.rooms
    if seconds > 0 and not polls.acquire(client):
        raise RelayError(429, "slow-down")
    released = seconds <= 0

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            polls.release(client)

    try:
        ticket, first = await rooms.viewer_poll(room, token, seconds > 0, since)
    except BaseException:
        release()
        raise
    if first is not None:
        release()
        return viewer_answer(first)
    ended = False

    async def answer(final: bool) -> Answer | None:
        nonlocal ended
        got = await rooms.viewer_answer(ticket, since, final)
        if got is None:
            return None
        ended = True
        release()
        return viewer_answer(got)

    async def end() -> None:
        try:
            if not ended:
                await rooms.viewer_end(ticket)
        finally:
            release()

    return Poll(room, seconds, answer, end)


def viewer_answer(got: tuple[list[ViewerMessage], bool]) -> Answer:
    messages, seat = got
    return Answer(200, {"messages": [{"n": n, "blob": b} for n, b in messages], "seat": seat})


async def viewer_send(relay: RelayContext, req: Req) -> Answer:
    room = await relay.known(req)
    await relay.limited(req, relay.limits.viewers)
    await relay.rooms.viewer_send(room, relay.viewer_token(req), relay.body(req).get("blob"))
    return Answer(204)


# -- the proxy's health check ----------------------------------------------------------------


async def health(relay: RelayContext, req: Req) -> Answer:
    """Whether this process answers: the store is not asked (nor a bucket, which lives in it),
    so a slow or busy store never makes the proxy take a live process out (docs/relay.md). It
    costs what a 404 costs, so it needs no bucket of its own."""
    return Answer(200, {"ok": True})


# -- the viewer page: its packaged files, in a bucket of their own ---------------------------


#: The packaged files, listed once (a request then costs no look at the disk on the event loop).
PACKAGED = {
    folder: frozenset(p.name for p in folder.iterdir() if p.is_file() and p.name[0] != ".")
    for folder in (VIEWER_DIR, LANG_DIR)
}


def packaged(folder: Path, name: str) -> Answer:
    """One of the packaged files in ``folder`` by its plain name; 404 for anything else."""
    if name not in PACKAGED[folder]:
        raise RelayError(404, "not-found")
    return Answer(200, file=folder / name)


async def viewer_page(relay: RelayContext, req: Req) -> Answer:
    await relay.limited(req, relay.limits.files)
    name = req.params["name"]
    if "." in name:
        return packaged(VIEWER_DIR, name)
    checks.room(name)
    return Answer(200, file=VIEWER_DIR / "index.html")


async def viewer_languages(relay: RelayContext, req: Req) -> Answer:
    await relay.limited(req, relay.limits.files)
    return Answer(200, LANGUAGES)


async def viewer_language(relay: RelayContext, req: Req) -> Answer:
    await relay.limited(req, relay.limits.files)
    return packaged(LANG_DIR, req.params["name"])


ROOM, NAME = "{room}", "{name}"
ROUTES: tuple[Route, ...] = (
    Route("GET", paths.viewer_languages(), viewer_languages),
    Route("GET", paths.VIEWER + "/lang/" + NAME, viewer_language),
    Route("GET", paths.VIEWER + "/" + NAME, viewer_page),
    Route("GET", paths.box_ping(), ping),
    Route("PUT", paths.box_room(ROOM), open_room),
    Route("PUT", paths.box_expiry(ROOM), extend_room),
    Route("DELETE", paths.box_room(ROOM), close_room),
    Route("GET", paths.box_messages(ROOM), box_messages, Side.BOX),
    Route("POST", paths.box_messages(ROOM), box_send),
    Route("POST", paths.box_refuse(ROOM), box_refuse),
    Route("POST", paths.box_turn(), turn),
    Route("GET", paths.room_status(ROOM), room_status),
    Route("POST", paths.room_knock(ROOM), knock),
    Route("GET", paths.room_messages(ROOM), viewer_messages, Side.VIEWERS),
    Route("POST", paths.room_messages(ROOM), viewer_send),
    Route("GET", paths.HEALTH, health),
)


# -- serving them ----------------------------------------------------------------------------


async def attempt(relay: RelayContext, route: Route, step: Awaitable[T]) -> T | Answer:
    """``await step``, a refusal turned into its answer, anything else into 503 (the shared
    store restarting, say), logged by its type and the route's pattern only (the path holds
    the room's id)."""
    try:
        return await step
    except RelayError as exc:
        return await relay.refused(exc)
    except Exception as exc:  # noqa: BLE001 - answered as 503: try again shortly
        logger.error(
            "the relay could not answer %s %s: %s", route.method, route.path, type(exc).__name__
        )
        return Answer(503, {"error": "unavailable"}, {"Retry-After": "2"})


def serve(relay: RelayContext, route: Route, req: Req, bell: Bell) -> Answer:
    """A call in a server thread (Flask), its store's steps never suspending (driven here): a
    long poll waits in this thread on ``bell``, the store's, whose version it reads first."""
    room, seen = req.params.get("room", ""), None

    async def version() -> str:
        return bell.version(room)

    if route.side is not None:  # a long poll: what it waits past, read before it begins
        read = drive(attempt(relay, route, version()))
        if isinstance(read, Answer):
            return read
        seen = read
    got = drive(attempt(relay, route, route.call(relay, req)))
    if not isinstance(got, Poll):
        return got
    poll = got

    def take(final: bool) -> Answer | None:
        return drive(attempt(relay, route, poll.take(final)))

    async def waited() -> Answer:
        return wait_for(bell, poll.room, poll.wait, take, seen)

    try:
        return drive(attempt(relay, route, waited()))
    finally:
        drive(attempt(relay, route, poll.end()))


async def serve_async(relay: RelayContext, route: Route, req: Req) -> Answer:
    """A call in a task (aiohttp): each step of the store awaited on the loop, a long poll
    awaiting its room's bell with no thread of its own, listened for before the call."""
    rooms, room, side = relay.rooms, req.params.get("room", ""), route.side
    chime = rooms.listen(room, side) if side is not None else None
    try:
        got = await attempt(relay, route, route.call(relay, req))
        if not isinstance(got, Poll):
            answer: Answer = got
            return answer
        poll, heard, chime = got, chime, None  # wait_for_async forgets it

        async def take(final: bool) -> Answer | None:
            return await attempt(relay, route, poll.take(final))

        try:
            waited: Answer = await wait_for_async(rooms, room, poll.wait, take, side, heard)
            return waited
        finally:
            await attempt(relay, route, poll.end())
    finally:
        if chime is not None:
            rooms.forget(room, chime, side)
