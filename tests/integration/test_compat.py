"""Every private aiortc/aioice attribute appliance.stream.compat relies on still works with the
installed versions, and those versions are inside the bounds pyproject.toml declares."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import aioice.ice
from aiortc import RTCPeerConnection
from packaging.specifiers import SpecifierSet

from appliance.session import seal
from appliance.stream import compat

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def test_the_installed_versions_are_the_ones_compat_was_written_for() -> None:
    box = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["box"]
    declared = {re.split(r"[<>=]", d, maxsplit=1)[0]: d for d in box}
    for name, bounds in (("aiortc", compat.AIORTC_VERSIONS), ("aioice", compat.AIOICE_VERSIONS)):
        spec = SpecifierSet(",".join(bounds))
        assert importlib.metadata.version(name) in spec
        assert SpecifierSet(declared[name].removeprefix(name)) == spec, f"{name}: one bound"


async def test_the_dtls_fingerprint_is_the_one_the_offer_carries() -> None:
    pc = RTCPeerConnection()
    try:
        fingerprint = compat.dtls_fingerprint(pc)
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert len(fingerprint) == 32
        assert seal.sdp_fingerprint(pc.localDescription.sdp) == fingerprint
    finally:
        await pc.close()


async def test_a_keyframe_request_reaches_the_hook() -> None:
    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        heard: list[bool] = []
        compat.hook_keyframe_requests(sender, lambda: heard.append(True))
        sender._send_keyframe()  # what aiortc calls when a PLI or FIR arrives
        assert heard == [True]
    finally:
        await pc.close()


def test_host_addresses_are_confined_and_restored() -> None:
    compat.confine_host_addresses(("127.0.0.1",))
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    compat.confine_host_addresses(())
    unconfined = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    assert unconfined == compat._original_host_addresses(use_ipv4=True, use_ipv6=False)
    compat.confine_host_addresses(("127.0.0.1",))  # as the other tests expect
