"""Where ICE may look for host candidates.

aioice gathers the address of every interface (and skips loopback). The demo and the tests
confine it to the configured addresses, so no candidate, and no connectivity check, ever
leaves the machine; the real box leaves the list empty and uses its LAN interface.
"""

from __future__ import annotations

import ipaddress
import logging

import aioice.ice

logger = logging.getLogger(__name__)

_original = aioice.ice.get_host_addresses


def confine_host_addresses(addresses: tuple[str, ...]) -> None:
    """Gather host candidates only on ``addresses`` (empty: every interface, aioice's default)."""
    if not addresses:
        aioice.ice.get_host_addresses = _original
        return
    parsed = [ipaddress.ip_address(a) for a in addresses]

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            str(a) for a in parsed if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)
        ]

    aioice.ice.get_host_addresses = get_host_addresses
    logger.info("ICE confined to %d configured address(es)", len(parsed))
