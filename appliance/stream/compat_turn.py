"""Every TURN server the box is told of, gathered by its ICE (a patch on aiortc's and aioice's
private attributes, like compat.py's, installed by ``compat.install_patches``).

aiortc hands aioice only the first TURN URL of a peer's configuration (one ``turn_server`` per
ICE connection): a box told of two coturn would allocate on the first alone and, with that one
down, have no relay candidate at all. Here each ICE connection allocates on every TURN URL it was
given instead (aioice's own ``turn_server`` is cleared), all at once, beside the host candidates:
each allocation that succeeds adds a relay candidate (preferred in the configured order), one
that fails is left out as aioice leaves out its own, and once one has succeeded the others get
:data:`GRACE` more, so a TURN server that does not answer delays no session by aioice's 5 s.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any

import aioice.ice
import aioice.turn
import aiortc.rtcicetransport as ice_transport

#: The attribute set on each aioice Connection: every TURN server it allocates on.
TURN = "_appliance_turn_servers"
#: Once one TURN server has answered, how much longer the others are waited for: a server that
#: does not answer (its host down) must not hold every session's answer for aioice's 5 s.
GRACE = 1.0
_installed = False


@dataclass(frozen=True)
class TurnServer:
    address: tuple[str, int]
    username: str | None
    password: str | None
    ssl: bool
    transport: str


def turn_servers(servers: list[Any]) -> list[TurnServer]:
    """Every TURN URL of ``servers`` (RTCIceServer) aioice can use, in order, as aiortc filters
    them (turn over udp or tcp, turns over tcp, password credentials)."""
    found: list[TurnServer] = []
    for server in servers:
        urls = server.urls if isinstance(server.urls, list) else [server.urls]
        for url in urls:
            parsed = ice_transport.parse_stun_turn_uri(url)
            scheme, transport = parsed["scheme"], str(parsed.get("transport"))
            if scheme not in ("turn", "turns") or server.credentialType != "password":
                continue
            if transport not in (("udp", "tcp") if scheme == "turn" else ("tcp",)):
                continue
            address = (parsed["host"], parsed["port"])
            entry = TurnServer(
                address, server.username, server.credential, scheme == "turns", transport
            )
            if entry not in found:
                found.append(entry)
    return found


async def relayed(connection: Any, component: int, server: TurnServer, rank: int) -> Any:
    """An allocation on ``server`` and its relay candidate (aioice's own steps, one more time)."""
    _, protocol = await aioice.turn.create_turn_endpoint(
        lambda: aioice.ice.StunProtocol(connection),
        server_addr=server.address,
        username=server.username,
        password=server.password,
        ssl=server.ssl,
        transport=server.transport,
    )
    host, port = protocol.transport.get_extra_info("sockname")[:2]
    related = protocol.transport.get_extra_info("related_address")
    if connection._transport_policy == aioice.ice.TransportPolicy.RELAY:
        # as aioice: a relay-only peer does not expose its host address (RFC 9429 3.5.3)
        ipv4 = ipaddress.ip_address(host).version == 4
        related = ("0.0.0.0", 9) if ipv4 else ("::", 9)  # noqa: S104 - an address shown, not bound
    protocol.local_candidate = aioice.Candidate(
        foundation=aioice.ice.candidate_foundation("relay", "udp", f"{host}:{port}"),
        component=component,
        transport="udp",
        priority=aioice.ice.candidate_priority(component, "relay", 65535 - rank),
        host=host,
        port=port,
        type="relay",
        related_address=related[0],
        related_port=related[1],
    )
    return protocol


async def settle(tasks: list[asyncio.Task[Any]], deadline: float) -> None:
    """Wait for ``tasks`` until ``deadline``, or :data:`GRACE` after the first one succeeded."""
    loop = asyncio.get_running_loop()
    pending = set(tasks)
    while pending and (left := deadline - loop.time()) > 0:
        done, pending = await asyncio.wait(
            pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
        )
        if any(task.exception() is None for task in done):
            deadline = min(deadline, loop.time() + GRACE)


def gather_every_turn_server() -> None:
    """Install the patch (idempotent)."""
    global _installed
    if _installed:
        return
    original_init = ice_transport.RTCIceGatherer.__init__
    original_gather = aioice.ice.Connection.get_component_candidates

    def init(self: Any, iceServers: Any = None, *args: Any, **kwargs: Any) -> None:  # noqa: N803
        original_init(self, iceServers, *args, **kwargs)
        setattr(self._connection, TURN, turn_servers(list(iceServers or [])))
        self._connection.turn_server = None  # every allocation is made here instead

    async def gather(
        self: Any,
        component: int,
        addresses: list[str],
        timeout: int = 5,  # noqa: ASYNC109 - aioice's own signature
    ) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        relays = [
            asyncio.ensure_future(relayed(self, component, server, rank))
            for rank, server in enumerate(getattr(self, TURN, ()))
        ]
        try:
            candidates = await original_gather(self, component, addresses, timeout)
            await settle(relays, deadline)
            won = [t.result() for t in relays if t.done() and t.exception() is None]
        finally:
            for task in relays:
                task.cancel()  # still allocating: a TURN server that does not answer (closed)
        for protocol in won:  # in the configured order
            candidates.append(protocol.local_candidate)
            self._protocols.append(protocol)
        return candidates

    ice_transport.RTCIceGatherer.__init__ = init  # type: ignore[method-assign]
    aioice.ice.Connection.get_component_candidates = gather  # type: ignore[method-assign]
    _installed = True
