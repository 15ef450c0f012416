"""Every use of aiortc's and aioice's private attributes, in one place, for the versions that
pyproject.toml allows (a test checks each one still works, so an upgrade fails loudly here).

- the DTLS certificate's fingerprint before the offer (the box commits to it in its reply);
- PLI/FIR keyframe requests passed on to our own encoder (aiortc handles them only for its own);
- aioice's host addresses confined to the configured ones (the demo and tests: loopback only).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import aioice.ice

from ..errors import SignallingError

logger = logging.getLogger(__name__)

#: The versions whose private attributes this module was written and tested against.
AIORTC_VERSIONS = (">=1.9", "<1.17")
AIOICE_VERSIONS = (">=0.9", "<0.14")

_original_host_addresses = aioice.ice.get_host_addresses


def dtls_fingerprint(pc: Any) -> bytes:
    """The SHA-256 fingerprint of ``pc``'s DTLS certificate as raw bytes (before any offer)."""
    certificate = pc._RTCPeerConnection__certificates[0]
    for fingerprint in certificate.getFingerprints():
        if fingerprint.algorithm == "sha-256":
            return bytes.fromhex(fingerprint.value.replace(":", ""))
    raise SignallingError("the DTLS certificate has no sha-256 fingerprint")


def hook_keyframe_requests(sender: Any, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever the viewer asks ``sender`` for a keyframe (PLI or FIR)."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe


def confine_host_addresses(addresses: tuple[str, ...]) -> None:
    """Gather ICE host candidates only on ``addresses`` (empty: every interface, aioice's
    default). aioice gathers the address of every interface and skips loopback; the demo and
    the tests confine it, so no candidate and no connectivity check ever leaves the machine."""
    if not addresses:
        aioice.ice.get_host_addresses = _original_host_addresses
        return
    parsed = [ipaddress.ip_address(a) for a in addresses]

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            str(a) for a in parsed if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)
        ]

    aioice.ice.get_host_addresses = get_host_addresses
    logger.info("ICE confined to %d configured address(es)", len(parsed))
