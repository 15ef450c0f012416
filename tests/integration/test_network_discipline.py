"""Nothing the project runs here may reach beyond loopback."""

from __future__ import annotations

import asyncio
import os
import re
import socket

import pytest
from aiortc import RTCPeerConnection

from appliance.encode.keyframes import KeyframePolicy
from appliance.stream.compat import confine_host_addresses
from appliance.stream.fanout import PacketFanout
from appliance.stream.peers import ViewerPeer, ice_configuration


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a network namespace")
def test_the_suite_runs_in_a_loopback_only_namespace() -> None:
    assert os.environ.get("APPLIANCE_IN_NETNS") == "1", "run the tests with tests/run.sh"
    interfaces = {name for _, name in socket.if_nameindex()}
    assert interfaces == {"lo"}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(OSError):
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: no route out of this namespace


def test_an_empty_ice_server_list_stays_empty() -> None:
    """aiortc falls back to a public STUN server when iceServers is None: never pass None."""
    assert ice_configuration(()).iceServers == []


async def test_answers_carry_only_loopback_candidates_and_no_server_reflexive_ones() -> None:
    confine_host_addresses(("127.0.0.1",))
    viewer = RTCPeerConnection(ice_configuration(()))
    viewer.addTransceiver("video", direction="recvonly")
    await viewer.setLocalDescription(await viewer.createOffer())
    closed: list[ViewerPeer] = []
    peer = ViewerPeer(PacketFanout(KeyframePolicy()), None, (), lambda: None, closed.append)
    try:
        answer = await peer.answer(viewer.localDescription.sdp)
        candidates = re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ (\w+)", answer)
        assert candidates
        assert {address for address, _ in candidates} == {"127.0.0.1"}
        assert {kind for _, kind in candidates} == {"host"}
    finally:
        await peer.close()
        await viewer.close()
    assert closed == [peer]
    await asyncio.sleep(0)
