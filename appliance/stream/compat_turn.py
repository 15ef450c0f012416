"""Every TURN server the box is told of, gathered by its ICE (a patch on aiortc's and aioice's
private attributes, like compat.py's, installed by ``compat.install_patches``).

aiortc hands aioice only the first TURN URL of a peer's configuration (one ``turn_server`` per
ICE connection): a box told of two coturn would allocate on the first alone and, with that one
down, have no relay candidate at all. Here each ICE connection also allocates on every other TURN
URL it was given, alongside the first and within aioice's own gathering time; each allocation
that succeeds adds a relay candidate (a lower preference than the first's, in the configured
order), one that fails is left out as aioice leaves out its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any

import aioice.ice
import aioice.turn
import aiortc.rtcicetransport as ice_transport

#: The attribute set on each aioice Connection: the TURN servers after the one aioice knows.
MORE = "_appliance_more_turn"
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


def gather_every_turn_server() -> None:
    """Install the patch (idempotent)."""
    global _installed
    if _installed:
        return
    original_init = ice_transport.RTCIceGatherer.__init__
    original_gather = aioice.ice.Connection.get_component_candidates

    def init(self: Any, iceServers: Any = None, *args: Any, **kwargs: Any) -> None:  # noqa: N803
        original_init(self, iceServers, *args, **kwargs)
        setattr(self._connection, MORE, turn_servers(list(iceServers or []))[1:])

    async def gather(
        self: Any,
        component: int,
        addresses: list[str],
        timeout: int = 5,  # noqa: ASYNC109 - aioice's own signature
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        more = [
            asyncio.ensure_future(relayed(self, component, server, rank))
            for rank, server in enumerate(getattr(self, MORE, ()), start=1)
        ]
        try:
            candidates = await original_gather(self, component, addresses, timeout)
            if not more:
                return candidates
            done, _ = await asyncio.wait(more, timeout=max(0.0, deadline - loop.time()))
        finally:
            for task in more:
                task.cancel()  # those still allocating (a TURN server that does not answer)
        for task in more:  # in the configured order
            if task in done and task.exception() is None:
                protocol = task.result()
                candidates.append(protocol.local_candidate)
                self._protocols.append(protocol)
        return candidates

    ice_transport.RTCIceGatherer.__init__ = init  # type: ignore[method-assign]
    aioice.ice.Connection.get_component_candidates = gather  # type: ignore[method-assign]
    _installed = True
