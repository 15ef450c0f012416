"""A clinic group's relay with no single point of failure: two `appliance relay serve` processes
(started through the CLI) sharing one Redis, behind Debian's HAProxy terminating TLS, with two
coturn handed out. A real box (its relay client) and a real viewer (aiortc and the seal) go
through the proxy; the proxy sends the box's routes to process A and the viewer's to process B
(tests/support/relay_group.py), and its stats say which process served what."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.relay.config import hash_token
from appliance.relay.redis_rooms import RedisRooms
from tests.support import turn
from tests.support.relay_group import Proxy, RelayProcess, haproxy, relay_process
from tests.support.viewer_client import AiortcViewer

pytestmark = pytest.mark.slow

TOKEN = "box-token-" + "g" * 30


@dataclass
class Group:
    a: RelayProcess
    b: RelayProcess
    proxy: Proxy
    turn_urls: list[str]
    rooms: RedisRooms

    def served(self, backend: str, server: str) -> int:
        return self.proxy.served().get((backend, server), 0)

    async def counts(self) -> dict[tuple[str, str], int]:
        """Requests HAProxy sent each (backend, server) so far (read off the loop)."""
        return await asyncio.to_thread(self.proxy.served)

    async def open_rooms(self) -> int:
        return await asyncio.to_thread(self.rooms.count)


@pytest.fixture
def group(tmp_path: Path, redis_url: str, redis_client: Any, monkeypatch) -> Iterator[Group]:
    with (
        turn.coturn(tmp_path / "turn-a") as turn_a,
        turn.coturn(tmp_path / "turn-b") as turn_b,
    ):
        urls = [f"turn:127.0.0.1:{port}?transport=udp" for port in (turn_a, turn_b)]
        boxes = [hash_token(TOKEN)]
        with (
            relay_process(tmp_path / "a", "a", redis_url, boxes, tuple(urls)) as a,
            relay_process(tmp_path / "b", "b", redis_url, boxes, tuple(urls)) as b,
            haproxy(tmp_path / "proxy", a, b) as proxy,
        ):
            # the box trusts the proxy's certificate as it trusts a public CA's (httpx's bundle)
            import certifi

            monkeypatch.setattr(certifi, "where", lambda: proxy.cafile)
            rooms = RedisRooms(redis_client)
            try:
                yield Group(a, b, proxy, urls, rooms)
            finally:
                rooms.close_all()


async def seated_viewer(box: Any, group: Group) -> AiortcViewer:
    """A viewer knocks, is seated, offers and is answered (sealed both ways), and watches."""
    viewer = AiortcViewer(box.viewer_url, cafile=group.proxy.cafile)
    await viewer.connect()
    await asyncio.to_thread(box.press)
    assert len(await viewer.frames(10, timeout=20)) == 10
    return viewer


async def knocks(box: Any) -> int:
    """The knocks in the box's event log (what the staff see of each phone that knocked)."""
    events = await asyncio.to_thread(box.box_events)
    return sum(1 for e in events if e.get("kind") == "knock")


async def test_a_box_on_process_a_and_a_viewer_on_process_b_complete_a_session(
    group: Group, box_factory
) -> None:
    box = box_factory(relay={"url": group.proxy.url, "token": TOKEN})
    assert box.viewer_url.startswith(group.proxy.url + "/v/"), "the link names the proxy"
    viewer = await seated_viewer(box, group)
    try:
        assert box.state() == "live"
        assert viewer.reply.ice_servers[0]["urls"] == group.turn_urls, "both coturn handed out"
        assert await knocks(box) == 1 and await group.open_rooms() == 1
        # the box's polls and sends went to A only, the viewer's knock, offer and polls to B
        served = await group.counts()
        assert served[("boxes", "a")] > 0 and served[("boxes", "b")] == 0
        assert served[("viewers", "b")] > 0 and served[("viewers", "a")] == 0
        assert " opened (1 open)" in await asyncio.to_thread(group.a.logged)
    finally:
        await viewer.close()
    await asyncio.to_thread(box.long_press)  # the staff end the session
    box.wait_state("idle", timeout=20)
    assert await group.open_rooms() == 0, "the room closed"
    assert await knocks(box) == 1
