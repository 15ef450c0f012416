"""Client addresses as limits count them: an IPv6 client by its /64, and the address a trusted
reverse proxy forwarded (X-Forwarded-For) instead of the proxy's own."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Networks = tuple[Network, ...]


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_key(address: str) -> str:
    """What a limit counts ``address`` under: an IPv4 address itself, an IPv6 address its /64
    (one subscriber is given a whole /64), an IPv4-mapped IPv6 address its IPv4 address;
    anything else as given."""
    ip = _ip(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def site_key(address: str) -> str:
    """The wider group a connection cap also counts ``address`` under: an IPv6 address its /56
    (what one customer or host is typically given), anything else its address key."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 56), strict=False))
    return address_key(address)


def parse_networks(values: Iterable[str]) -> Networks:
    """Addresses or networks (``10.0.0.1``, ``10.0.0.0/8``, ``::1``); a ValueError names the
    bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(value) from None
    return tuple(networks)


def in_networks(address: str, networks: Networks) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip.version == n.version and ip in n for n in networks)


def client_address(remote: str, forwarded: Iterable[str], trusted: Networks) -> str:
    """The client's address: ``remote`` itself unless it is a trusted proxy, then the nearest
    address in X-Forwarded-For (read from the right) that is not a trusted proxy. A malformed
    entry stops the walk at the proxy that added it, so a client cannot pick its own key."""
    if not trusted or not in_networks(remote, trusted):
        return remote
    hops = [hop.strip() for value in forwarded for hop in value.split(",")]
    current = remote
    for hop in reversed(hops):
        if _ip(hop) is None:
            return current
        current = hop
        if not in_networks(hop, trusted):
            return hop
    return current
