"""Two coturn sharing the REST secret, the first one killed: the credentials the relay mints for
both still connect, because the box's ICE allocates on every TURN server it is told of (aiortc
alone would try only the first: appliance/stream/compat_turn.py). The box's peer is forced to
relay-only ICE, so it connects through a TURN server or not at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiortc import RTCConfiguration, RTCIceTransportPolicy, RTCPeerConnection

from appliance.config import IceServer
from appliance.relay.config import RelayConfig, TurnConfig
from appliance.relay.turn import mint_turn
from appliance.stream.peers import ice_configuration
from tests.support import turn
from tests.support.wait import until_async


async def connect(servers: tuple[IceServer, ...]) -> tuple[RTCPeerConnection, RTCPeerConnection]:
    """A box's peer (relay-only, ``servers``) and a viewer's (host candidates on loopback),
    their data channel open, a message across it."""
    box = RTCPeerConnection(
        RTCConfiguration(
            iceServers=ice_configuration(servers).iceServers,
            iceTransportPolicy=RTCIceTransportPolicy.RELAY,
        )
    )
    viewer = RTCPeerConnection(ice_configuration(()))
    heard: asyncio.Queue[str] = asyncio.Queue()
    viewer.on("datachannel", lambda channel: channel.on("message", heard.put_nowait))
    channel = box.createDataChannel("status")
    await box.setLocalDescription(await box.createOffer())
    await viewer.setRemoteDescription(box.localDescription)
    await viewer.setLocalDescription(await viewer.createAnswer())
    await box.setRemoteDescription(viewer.localDescription)
    await until_async(lambda: channel.readyState == "open", 20.0, 0.05, "the channel open")
    channel.send("hello")
    assert await asyncio.wait_for(heard.get(), 10) == "hello"
    return box, viewer


def relay_candidate_ports(pc: RTCPeerConnection) -> set[int]:
    gatherer = pc.sctp.transport.transport.iceGatherer  # type: ignore[union-attr]
    return {c.port for c in gatherer.getLocalCandidates() if c.type == "relay"}


async def test_with_the_first_coturn_killed_a_relay_only_box_connects_through_the_second(
    tmp_path: Path,
) -> None:
    with (
        turn.coturn_process(tmp_path / "a") as (port_a, process_a),
        turn.coturn(tmp_path / "b") as port_b,
    ):
        config = RelayConfig(
            turn=TurnConfig(
                secret=turn.SECRET,
                urls=(
                    f"turn:127.0.0.1:{port_a}?transport=udp",
                    f"turn:127.0.0.1:{port_b}?transport=udp",
                ),
            )
        )
        (minted,) = mint_turn(config, "Turnroomturnroomturnro", 600)
        assert minted["urls"] == list(config.turn.urls), "the relay hands out both"
        servers = (IceServer(tuple(minted["urls"]), minted["username"], minted["credential"]),)

        # both up: the box allocates on each
        box, viewer = await connect(servers)
        ports = relay_candidate_ports(box)
        await box.close()
        await viewer.close()
        assert ports & set(turn.relay_ports(port_a)) and ports & set(turn.relay_ports(port_b))

        process_a.kill()
        process_a.wait(5)
        box, viewer = await connect(servers)
        try:
            ports = relay_candidate_ports(box)
            assert ports and ports <= set(turn.relay_ports(port_b)), "relayed by the second"
            assert box.connectionState == "connected"
        finally:
            await box.close()
            await viewer.close()
