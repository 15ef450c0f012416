"""The box's client to the relay (docs/protocol.md, "Relay transport"): outbound HTTPS only.

It carries opaque blobs; the sealing is appliance.session.seal's, the decisions are
appliance.signalling.gate's. The receive loop long-polls, reconnects with exponential backoff and
jitter, and survives a relay restart: a restarted relay has forgotten the room, so the loop opens
it again (same id, same expiry) and goes on; media already flowing never depended on the relay.
Log lines name no room, token, address or blob.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..errors import ApplianceError
from ..relay import paths
from ..vocab import told

logger = logging.getLogger(__name__)

#: (client handle, "knock" or "message", blob)
OnMessage = Callable[[str, str, str], Awaitable[None]]

POLL_WAIT = 20
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 15.0


class RelayRefused(ApplianceError, ConnectionError):
    """The relay answered with an error: ``status`` and its ``code``."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code


class RelayClient:
    def __init__(self, base_url: str, token: str, ca_file: str | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self._base,
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=ca_file) if ca_file else True,
            timeout=httpx.Timeout(10.0, read=POLL_WAIT + 10.0),
            trust_env=False,  # never a proxy from the environment
        )
        self._expiry: dict[str, int] = {}

    async def _call(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        response = await self._http.request(method, path, json=json, params=params or None)
        if response.status_code >= 400:
            try:
                code = str(response.json().get("error", ""))
            except ValueError:
                code = ""
            raise RelayRefused(response.status_code, code)
        return response.json() if response.content else None

    async def ping(self) -> bool:
        await self._call("GET", paths.box_ping())
        return True

    async def open_room(self, room: str, expires: int) -> None:
        await self._call("PUT", paths.box_room(room), {"expires": expires})
        self._expiry[room] = expires

    async def extend_room(self, room: str, expires: int) -> None:
        """The room lives until ``expires`` (the staff extended the session)."""
        await self._call("PUT", paths.box_expiry(room), {"expires": expires})
        self._expiry[room] = expires

    async def close_room(self, room: str, reason: str = "ended") -> None:
        """Close ``room``; its viewers hear ``reason`` from the relay: "ended" or "expired"."""
        self._expiry.pop(room, None)
        reason = told(reason)
        try:
            await self._call("DELETE", paths.box_room(room), reason=reason)
        except RelayRefused as exc:
            if exc.status not in (404, 410):
                raise

    async def send(self, room: str, client: str, blob: str, seat: bool = False) -> None:
        body: dict[str, Any] = {"client": client, "blob": blob}
        if seat:
            body["seat"] = True
        await self._call("POST", paths.box_messages(room), body)

    async def refuse(self, room: str, client: str, reason: str) -> None:
        await self._call("POST", paths.box_refuse(room), {"client": client, "reason": reason})

    async def mint_turn(self, room: str, ttl: int) -> list[dict[str, Any]]:
        answer = await self._call("POST", paths.box_turn(), {"room": room, "ttl": ttl})
        servers = answer.get("ice_servers", []) if isinstance(answer, dict) else []
        return [s for s in servers if isinstance(s, dict)]

    async def receive(self, room: str, on_message: OnMessage) -> None:
        """Deliver the room's viewer messages to ``on_message`` until cancelled."""
        after = 0
        backoff = BACKOFF_FIRST
        while True:
            try:
                answer = await self._call(
                    "GET", paths.box_messages(room), after=after, wait=POLL_WAIT
                )
                backoff = BACKOFF_FIRST
            except RelayRefused as exc:
                if exc.status in (404, 410) and room in self._expiry:
                    await self._reopen(room)
                    after = 0
                    continue
                logger.warning("the relay refused the poll (%d)", exc.status)
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            except httpx.HTTPError as exc:
                logger.warning("the relay is unreachable (%s): retrying", type(exc).__name__)
                await self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            for message in answer.get("messages", []):
                after = max(after, int(message["n"]))
                try:
                    await on_message(str(message["client"]), str(message["kind"]), message["blob"])
                except Exception:
                    logger.exception("a relay message could not be handled")

    async def _reopen(self, room: str) -> None:
        """The relay restarted and forgot the room: open it again."""
        try:
            await self.open_room(room, self._expiry[room])
            logger.info("the relay had forgotten the session's room: opened it again")
        except (RelayRefused, httpx.HTTPError) as exc:
            logger.warning("could not open the room again (%s)", type(exc).__name__)
            await self._sleep(BACKOFF_FIRST)

    @staticmethod
    async def _sleep(backoff: float) -> None:
        await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter

    async def aclose(self) -> None:
        await self._http.aclose()
