"""The pairing page is found as <room>.local over mDNS; on loopback in the demo and the tests."""

from __future__ import annotations

import asyncio

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf


async def resolve(name: str) -> AsyncServiceInfo | None:
    zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        info = AsyncServiceInfo("_https._tcp.local.", f"{name}._https._tcp.local.")
        return info if await info.async_request(zc.zeroconf, 3000) else None
    finally:
        await zc.async_close()


async def test_the_box_announces_its_pairing_page_and_withdraws_it(box_factory) -> None:
    box = box_factory(open_session=False, box={"name": "echo-7"})
    info = await resolve("echo-7")
    assert info is not None, "the pairing page is announced"
    assert info.server == "echo-7.local." and info.port == box.box.web.port
    assert info.parsed_addresses() == ["127.0.0.1"], "on loopback only, in tests"
    assert info.properties[b"path"] == b"/pairing/"
    await asyncio.to_thread(box.stop)
    assert await resolve("echo-7") is None, "withdrawn when the box stops"
