"""The pairing page, found on the clinic's LAN as ``https://<room>.local`` (mDNS, zeroconf).

The box announces an ``_https._tcp`` service named after the room, whose host is
``<room>.local.`` with the box's addresses. Bound to the web server's own address: on loopback
(the demo, the tests) nothing leaves the machine; only a box serving its LAN announces there.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

logger = logging.getLogger(__name__)

SERVICE = "_https._tcp.local."


def lan_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (the ones a phone on the LAN can reach)."""
    import ifaddr  # zeroconf's own dependency; its get_all_addresses() is deprecated

    found = {ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4}
    v4 = [a for a in found if isinstance(a, str)]
    return sorted(a for a in v4 if not ipaddress.ip_address(a).is_loopback)


class Announcer:
    """Registers ``<name>._https._tcp.local.`` at ``<name>.local.`` until :meth:`stop`."""

    def __init__(self, name: str, port: int, host: str, path: str = "/pairing/") -> None:
        self.name = name
        self.port = port
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback, host = host == "localhost", "127.0.0.1"
        self._interfaces = [host] if loopback else None
        self._addresses = [host] if loopback else lan_addresses()
        self._path = path
        self._zc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None

    @property
    def server(self) -> str:
        return f"{self.name}.local."

    async def start(self) -> None:
        if not self._addresses:
            logger.warning("no LAN address to announce the pairing page on")
            return
        if self._interfaces is None:
            self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        else:
            self._zc = AsyncZeroconf(interfaces=self._interfaces, ip_version=IPVersion.V4Only)
        self._info = AsyncServiceInfo(
            SERVICE,
            f"{self.name}.{SERVICE}",
            addresses=[socket.inet_aton(a) for a in self._addresses],
            port=self.port,
            server=self.server,
            properties={"path": self._path},
        )
        await self._zc.async_register_service(self._info)
        logger.info("announced the pairing page as %s", self.server.rstrip("."))

    async def stop(self) -> None:
        """Withdraw the announcement. Idempotent."""
        zc, info = self._zc, self._info
        self._zc = self._info = None
        if zc is not None:
            if info is not None:
                await zc.async_unregister_service(info)
            await zc.async_close()
