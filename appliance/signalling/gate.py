"""The box's side of the session protocol (docs/protocol.md): knocks in, sealed answers out.

For the open session, :class:`Gate` polls the relay (outbound only, through
:class:`~appliance.signalling.client.RelayClient`), opens each knock, judges it against the
session's seat (the core judges it, on its queue: the seat is written there only), and for an
accepted one mints TURN credentials, has a peer connection made, sends the signed reply, then
answers the sealed offer. It reaches the rest of the box only through the plain callables in
:class:`GateHooks`, and never imports the core. Everything the relay could tamper with is refused
here and recorded as ``tamper`` in the event log, without content. Nothing of a viewer's message
is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import IceServer
from ..crypto import BoxIdentity
from ..errors import SignallingError
from ..session import seal
from ..session.session import Session, Verdict, Viewer
from ..types import EventRecorder
from ..vocab import Refusal, Told, told
from .client import OnMessage

logger = logging.getLogger(__name__)


class Peer(Protocol):
    """What the gate needs of a viewer's peer connection (appliance.stream.peers.ViewerPeer)."""

    @property
    def dtls_fingerprint(self) -> bytes: ...

    async def answer(self, offer_sdp: str) -> str: ...


class RelayLink(Protocol):
    """What the gate needs of the relay (appliance.signalling.client.RelayClient)."""

    async def open_room(self, room: str, expires: int) -> None: ...
    async def close_room(self, room: str, reason: str = "ended") -> None: ...
    async def extend_room(self, room: str, expires: int) -> None: ...
    async def receive(self, room: str, on_message: OnMessage) -> None: ...
    async def send(self, room: str, client: str, blob: str, seat: bool = False) -> None: ...
    async def refuse(self, room: str, client: str, reason: str) -> None: ...
    async def mint_turn(self, room: str, ttl: int) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class GateHooks:
    """How the gate reaches the rest of the box: plain callables, wired by the composition root.

    - ``judge(salt, seat, name, client)``: the core's verdict on a verified knock (it seats an
      accepted one);
    - ``answered(peer, code)``: the seated viewer's offer was answered, with this code;
    - ``bye()``: the viewer hung up on purpose;
    - ``leave()``: the viewer gave up its seat (its Cancel in the waiting room);
    - ``make_peer(ice_servers)`` / ``release_peer(peer)``: a peer connection for an accepted
      knock, and giving back one whose attempt was dropped (closed unless the core adopted it).
    """

    judge: Callable[[bytes, bytes, str | None, str], Awaitable[Verdict]]
    answered: Callable[[Any, str], None]
    bye: Callable[[], None]
    leave: Callable[[], None]
    make_peer: Callable[[tuple[IceServer, ...]], Any]
    release_peer: Callable[[Any], Awaitable[None]]


@dataclass
class _Attempt:
    """One accepted knock: its handshake and the peer connection made for it."""

    client: str
    handshake: seal.BoxHandshake
    peer: Peer


class Gate:
    """Answers the open session's knocks; one instance for the box's life."""

    def __init__(
        self,
        client: RelayLink,
        identity: BoxIdentity,
        events: EventRecorder,
        hooks: GateHooks,
    ) -> None:
        self._hooks = hooks
        self._client = client
        self._identity = identity
        self._record = events.record
        self._session: Session | None = None
        self._tampers = TamperLog(events)
        self._attempt: _Attempt | None = None
        self._poller: asyncio.Task[None] | None = None

    # -- the core's Signalling interface ------------------------------------------------

    async def open(self, session: Session) -> None:
        await self._client.open_room(session.room, session.expires)
        self._session = session
        self._poller = asyncio.ensure_future(self._client.receive(session.room, self._on_message))

    async def refuse(self, session: Session, viewer: Viewer) -> None:
        await self._turn_out(session, viewer, Told.REFUSED)

    async def release(self, session: Session, viewer: Viewer) -> None:
        await self._turn_out(session, viewer, Told.RELEASED)

    async def _turn_out(self, session: Session, viewer: Viewer, why: Told) -> None:
        """Tell the seat's holder why it is out (sealed, if its attempt is under way), and the
        relay to drop it. Its attempt is taken first, before any wait: the core runs this
        beside its loop, and the next phone's attempt must not be dropped in its place."""
        attempt = self._attempt if self._attempt and self._attempt.client == viewer.client else None
        if attempt is not None:
            self._attempt = None
        await self._send_end(session, why, attempt)
        try:
            await self._client.refuse(session.room, viewer.client, why.value)
        except Exception as exc:  # noqa: BLE001 - its peer is closed: the phone is out anyway
            logger.warning("could not tell the relay to drop a phone: %s", _name(exc))
        if attempt is not None:
            attempt.handshake.forget()
            await self._hooks.release_peer(attempt.peer)

    async def extend(self, session: Session, expires: int) -> None:
        await self._client.extend_room(session.room, expires)

    async def close(self, session: Session, reason: str) -> None:
        # The session's state is taken first, before any wait: the core runs this beside its
        # loop, and may open the next session before it finishes.
        attempt, poller = self._attempt, self._poller
        if self._session is session:
            self._session, self._attempt, self._poller = None, None, None
        try:
            await self._send_end(session, told(reason), attempt)
            if poller is not None:
                poller.cancel()
                await _stopped(poller)
            await self._client.close_room(session.room, told(reason))
        finally:
            if attempt is not None:
                attempt.handshake.forget()  # the core closes the peer itself

    # -- from the relay ---------------------------------------------------------------------------

    async def _on_message(self, client: str, kind: str, blob: str) -> None:
        session = self._session
        if session is None:
            return
        try:
            wire = json.loads(blob)
            if not isinstance(wire, dict):
                raise seal.SealError("not an object")
        except ValueError:
            wire = None
        if kind == "knock":
            await self._knock(session, client, wire)
        else:
            await self._message(session, client, wire)

    async def _knock(self, session: Session, client: str, wire: dict[str, Any] | None) -> None:
        try:
            if wire is None:
                raise seal.SealError("not JSON")
            knock = seal.open_knock(session.room, session.secret, session.box_key_hash, wire)
        except seal.SealError:
            await self._tamper(session, client, "knock")
            return
        verdict = await self._hooks.judge(knock.salt, knock.seat_pub, knock.name, client)
        if verdict is Verdict.REPLAY:
            await self._tamper(session, client, "replayed knock")
            return
        if verdict in (Verdict.TAKEN, Verdict.BANNED):
            refusal = Refusal.TAKEN if verdict is Verdict.TAKEN else Refusal.REFUSED
            if verdict is Verdict.BANNED:  # "taken" is recorded by the core, once per phone
                self._record("refused", reason=refusal.value)
            await self._refuse_knock(client, session, refusal.value)
            return
        ice = await self._turn(session)
        peer = self._hooks.make_peer(ice)
        handshake = seal.BoxHandshake(
            session.room, session.secret, self._identity, knock, peer.dtls_fingerprint
        )
        reply = handshake.reply([_ice_json(s) for s in ice], session.expires)
        await self._drop_attempt()
        self._attempt = _Attempt(client, handshake, peer)
        await self._client.send(session.room, client, json.dumps(reply), seat=True)

    async def _message(self, session: Session, client: str, wire: dict[str, Any] | None) -> None:
        attempt = self._attempt
        if attempt is None or attempt.client != client:
            return  # a stale connection's message: the relay only forwards the seat's
        try:
            if wire is None:
                raise seal.SealError("not JSON")
            body = attempt.handshake.open(wire)
        except seal.SealError:
            await self._drop_attempt()  # before the phone hears it: nothing of it is left
            await self._tamper(session, client, "message")
            return
        kind = body.get("type")
        if kind == "offer" and isinstance(body.get("sdp"), str):
            await self._answer(session, attempt, body["sdp"])
        elif kind == "bye":
            self._hooks.bye()
        elif kind == "leave":
            await self._drop_attempt()
            self._hooks.leave()

    async def _answer(self, session: Session, attempt: _Attempt, offer: str) -> None:
        try:
            viewer_fp = seal.sdp_fingerprint(offer)
            answer = await attempt.peer.answer(offer)
        except (seal.SealError, SignallingError):
            await self._drop_attempt()  # before the phone hears it: nothing of it is left
            await self._tamper(session, attempt.client, "offer")
            return
        wire = attempt.handshake.answer(answer)
        code = attempt.handshake.code(viewer_fp)
        await self._client.send(session.room, attempt.client, json.dumps(wire))
        self._hooks.answered(attempt.peer, code)

    # -- helpers ----------------------------------------------------------------------------------

    async def _turn(self, session: Session) -> tuple[IceServer, ...]:
        ttl = max(60, session.expires - int(time.time()))
        try:
            servers = await self._client.mint_turn(session.room, ttl)
        except Exception as exc:  # noqa: BLE001 - TURN is a fallback: go on without it
            logger.warning("no TURN credentials from the relay: %s", type(exc).__name__)
            return ()
        return tuple(
            IceServer(
                urls=tuple(s.get("urls") or ()),
                username=str(s.get("username", "")),
                credential=str(s.get("credential", "")),
            )
            for s in servers
        )

    async def _tamper(self, session: Session, client: str, what: str) -> None:
        self._tampers.note(what)
        logger.warning("session %s: refused a tampered or invalid %s", session.short_id, what)
        await self._refuse_knock(client, session, "bad")

    async def _refuse_knock(self, client: str, session: Session, reason: str) -> None:
        try:
            await self._client.refuse(session.room, client, reason)
        except Exception as exc:  # noqa: BLE001 - the phone's knock then times out by itself
            logger.warning("could not tell the relay to turn a knock away: %s", _name(exc))

    async def _send_end(self, session: Session, reason: str, attempt: _Attempt | None) -> None:
        if attempt is None:
            return
        try:
            wire = attempt.handshake.seal({"type": "end", "reason": reason})
            await self._client.send(session.room, attempt.client, json.dumps(wire))
        except Exception as exc:  # noqa: BLE001 - the phone also learns it from its status
            logger.warning("could not tell the phone its session is over: %s", _name(exc))

    async def _drop_attempt(self) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is None:
            return
        attempt.handshake.forget()
        await self._hooks.release_peer(attempt.peer)


class TamperLog:
    """Tampering goes to the event log at most once per :attr:`WINDOW` seconds, with how many
    there were: a stranger repeating junk cannot flood the box's accountability record."""

    WINDOW = 60.0

    def __init__(self, events: EventRecorder, clock: Callable[[], float] = time.monotonic) -> None:
        self._record = events.record
        self._clock = clock
        self._since = -self.WINDOW
        self._held = 0

    def note(self, what: str) -> None:
        now = self._clock()
        if now - self._since < self.WINDOW:
            self._held += 1
            return
        self._record("tamper", what=what, count=self._held + 1)
        self._since, self._held = now, 0


def _name(exc: BaseException) -> str:
    """An exception, for a log line: its type only (a relay's answer may name a room)."""
    return type(exc).__name__


async def _stopped(task: asyncio.Task[None]) -> None:
    """Wait for a cancelled task; an error it ended with is logged (its type only)."""
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception as exc:  # noqa: BLE001 - stopping goes on
        logger.warning("the relay poll ended with an error: %s", _name(exc))


def _ice_json(server: IceServer) -> dict[str, Any]:
    return {"urls": list(server.urls), "username": server.username, "credential": server.credential}
