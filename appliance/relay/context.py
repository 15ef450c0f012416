"""What every call of the relay shares: the rooms, the limits, and the request (read once by the
web framework into a :class:`Req`) turned into the checks of :mod:`.checks`. Nothing here knows
which framework serves it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..httpd.addresses import client_address, parse_networks
from . import checks
from .awaitable import AsyncBucket, AsyncRoomStore
from .config import RelayConfig
from .limits import POLLS_TOTAL, RelayLimits
from .store import RelayError, UnknownClient
from .stores import AsyncBucketFactory


@dataclass(frozen=True)
class Req:
    """One request as the relay's calls see it, whichever framework read it."""

    params: Mapping[str, str] = field(default_factory=dict)  # from the path: room, name
    query: Mapping[str, str] = field(default_factory=dict)
    authorization: str = ""
    forwarded: tuple[str, ...] = ()  # every X-Forwarded-For header
    remote: str = ""  # the peer's address
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    """A call's answer: its status, a JSON body (None: no body), headers, or a packaged file."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    file: Path | None = None


class RelayContext:
    """The relay's shared state and its request helpers; every refusal is a RelayError. The
    store's steps are coroutines (awaitable.py): awaited on an event loop, or never suspending
    (the Flask relay drives them in its threads)."""

    def __init__(
        self,
        config: RelayConfig,
        rooms: AsyncRoomStore,
        reopen_window: float,
        buckets: AsyncBucketFactory,
        polls_total: int = POLLS_TOTAL,
    ) -> None:
        self.config = config
        self.rooms = rooms
        self.limits: RelayLimits[AsyncBucket] = RelayLimits(buckets, polls_total)
        self._reopen_window = reopen_window
        self._token_hashes = frozenset(bytes.fromhex(h) for h in config.boxes)
        self._trusted = parse_networks(config.trusted_proxies)

    def address(self, req: Req) -> str:
        """The client's address: behind a trusted proxy, the one it forwarded."""
        return client_address(req.remote, list(req.forwarded), self._trusted)

    def box(self, req: Req) -> str:
        """The box that sent this request (by its token); 401 for anyone else."""
        return checks.box_owner(req.authorization, self._token_hashes)

    def viewer_token(self, req: Req) -> str:
        return checks.viewer_token(req.authorization)

    async def limited(self, req: Req, bucket: AsyncBucket) -> None:
        if not await bucket.take(self.address(req)):
            raise RelayError(429, "slow-down")

    def body(self, req: Req) -> dict[str, Any]:
        return checks.body(req.body)

    def after(self, req: Req) -> int:
        return checks.after(req.query.get("after", "0"))

    def wait(self, req: Req) -> float:
        return checks.wait(req.query.get("wait", "0"))

    async def known(self, req: Req) -> str:
        """The request's room if it is open; a request to one that is not spends from its own
        bucket, so it cannot use up the requests of a viewer who shares the address."""
        room = req.params.get("room", "")
        try:
            await self.rooms.check(checks.room(room))
        except RelayError:
            await self.limited(req, self.limits.misses)
            raise
        return room

    async def restarted(self) -> bool:
        """Whether the relay's rooms are so new that its boxes may reopen rooms it forgot: the
        process's, in memory; with Redis, the shared rooms' (a relay process that restarted on a
        Redis that kept them has forgotten nothing; a Redis that restarted has)."""
        return self._reopen_window > 0 and await self.rooms.age() < self._reopen_window

    async def refused(self, exc: RelayError) -> Answer:
        """A refusal as the protocol answers it (``{"error": code}``, 4xx)."""
        if isinstance(exc, UnknownClient) and await self.restarted():
            # a phone's token from before its room was lost and opened again (a restart): the
            # room as it knew it is gone, and its page knocks again (its seat lets it back in)
            exc = RelayError(404, "unknown")
        restarted = exc.code == "unknown" and await self.restarted()
        answer, status, headers = checks.refusal(exc, restarted)
        return Answer(status, answer, headers)
