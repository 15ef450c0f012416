"""Two coturn sharing the REST secret, the first one killed: the credentials the relay mints for
both still connect, because the box's ICE allocates on every TURN server it is told of (aiortc
alone would try only the first: appliance/stream/compat_turn.py). The box's peer is forced to
relay-only ICE, so it connects through a TURN server or not at all."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration, RTCIceTransportPolicy, RTCPeerConnection

from appliance.config import IceServer
from appliance.relay.config import RelayConfig, TurnConfig
from appliance.relay.turn import mint_turn
from appliance.stream.peers import ice_configuration
from tests.support import turn
from tests.support.viewer_client import AiortcViewer
from tests.support.wait import until_async


async def connect(
    servers: tuple[IceServer, ...],
) -> tuple[RTCPeerConnection, RTCPeerConnection, float]:
    """A box's peer (relay-only, ``servers``) and a viewer's (host candidates on loopback),
    their data channel open, a message across it; and how long the box took to gather."""
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
    offer = await box.createOffer()
    started = time.monotonic()
    await box.setLocalDescription(offer)  # gathers every candidate (no trickle)
    gathered = time.monotonic() - started
    await viewer.setRemoteDescription(box.localDescription)
    await viewer.setLocalDescription(await viewer.createAnswer())
    await box.setRemoteDescription(viewer.localDescription)
    await until_async(lambda: channel.readyState == "open", 20.0, 0.05, "the channel open")
    channel.send("hello")
    assert await asyncio.wait_for(heard.get(), 10) == "hello"
    return box, viewer, gathered


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
        box, viewer, _ = await connect(servers)
        ports = relay_candidate_ports(box)
        await box.close()
        await viewer.close()
        assert ports & set(turn.relay_ports(port_a)) and ports & set(turn.relay_ports(port_b))

        process_a.kill()
        process_a.wait(5)
        box, viewer, _ = await connect(servers)
        try:
            ports = relay_candidate_ports(box)
            assert ports and ports <= set(turn.relay_ports(port_b)), "relayed by the second"
            assert box.connectionState == "connected"
        finally:
            await box.close()
            await viewer.close()


async def test_a_turn_server_that_never_answers_does_not_hold_up_the_box(tmp_path: Path) -> None:
    """The first TURN server's host is gone (its packets dropped, no error comes back): the
    box's answer waits for it one second past the other's allocation, not aioice's 5 s."""
    with (
        turn.coturn(tmp_path / "b") as port_b,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole,
    ):
        hole.bind(("127.0.0.1", 0))  # takes every datagram, answers none
        urls = (f"turn:127.0.0.1:{hole.getsockname()[1]}", f"turn:127.0.0.1:{port_b}")
        (minted,) = mint_turn(RelayConfig(turn=TurnConfig(turn.SECRET, urls)), "r" * 22, 600)
        servers = (IceServer(tuple(minted["urls"]), minted["username"], minted["credential"]),)
        box, viewer, gathered = await connect(servers)
        try:
            assert relay_candidate_ports(box) <= set(turn.relay_ports(port_b))
            # about GRACE (1 s) after coturn B answered; aioice alone: 5 s (timing, under load)
            assert gathered < 4.0, f"the box gathered for {gathered:.1f} s"
        finally:
            await box.close()
            await viewer.close()


async def test_a_turn_server_gone_mid_call_does_not_hold_up_the_end_of_the_session(
    box_factory: Any, tmp_path: Path
) -> None:
    """The box's TURN server dies during a call (the box allocated on it): when the sonographer
    ends the session, the box is idle again at once and opens the next one; it does not wait
    for aioice's ~31 s of retransmitted requests to give the dead server its allocation back."""
    with turn.coturn_process(tmp_path / "a") as (port, process):
        url = f"turn:127.0.0.1:{port}?transport=udp"
        (minted,) = mint_turn(RelayConfig(turn=TurnConfig(turn.SECRET, (url,))), "r" * 22, 600)
        box = box_factory(stream={"ice_servers": [minted]})
        viewer = AiortcViewer(box.viewer_url)
        try:
            await viewer.connect()
            await asyncio.to_thread(box.press)
            assert await viewer.frames(5, timeout=20), "no frame"
            allocated = box.call(lambda: relay_candidate_ports(box.box.viewers.peers[0]._pc))
            assert allocated & set(turn.relay_ports(port)), "the box allocated on the server"
            process.kill()
            process.wait(5)
            # still connected (host to host): the close below is the box's, not ICE's failure
            state = box.call(lambda: box.box.viewers.peers[0].connection_state)
            assert state == "connected", state
            await asyncio.to_thread(box.long_press)
            # END_GRACE and CLOSE_WAIT (2.3 s) with room to spare; without the bound: ~31 s
            await asyncio.to_thread(box.wait_state, "idle", 10.0)
        finally:
            await viewer.close()
    await asyncio.to_thread(box.press)  # a short press opens the next session
    await asyncio.to_thread(box.wait_state, "ready")
