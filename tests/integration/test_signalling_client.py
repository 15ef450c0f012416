"""The box's relay client against a real relay: round trip, and a relay restart in the middle of
a session (the client opens the room again and messages flow)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest

from appliance.relay.config import RelayConfig, hash_token
from appliance.relay.server import RelayServer
from appliance.signalling.client import RelayClient, RelayRefused
from tests.support.wait import until_async

TOKEN = "box-token-" + "y" * 30
ROOM = "Abcdefghijklmnopqrstu1"


async def start_relay(config: RelayConfig) -> RelayServer:
    """A relay started in a thread (it reads its files and binds: not on the test's loop)."""

    def start() -> RelayServer:
        return RelayServer(config).start()

    return await asyncio.to_thread(start)


async def relay(port: int = 0) -> RelayServer:
    return await start_relay(RelayConfig(port=port, boxes=(hash_token(TOKEN),)))


def knock(base: str, blob: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/rooms/{ROOM}/knock",
        json.dumps({"blob": blob}).encode(),
        {"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["client"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def restart_on(port: int, token: str = TOKEN) -> RelayServer:
    deadline = time.monotonic() + 10
    while True:
        try:
            return await start_relay(RelayConfig(port=port, boxes=(hash_token(token),)))
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_knocks_reach_the_box_and_survive_a_relay_restart() -> None:
    port = free_port()  # a fixed port (not 0), so the restarted relay may bind it again
    server = await relay(port)
    client = RelayClient(server.url, TOKEN)
    got: asyncio.Queue = asyncio.Queue()

    async def on_message(handle: str, kind: str, blob: str) -> None:
        await got.put((kind, blob))

    try:
        assert await client.ping()
        await client.open_room(ROOM, int(time.time()) + 600)
        poller = asyncio.ensure_future(client.receive(ROOM, on_message))
        await asyncio.to_thread(knock, server.url, "first")
        assert await asyncio.wait_for(got.get(), 10) == ("knock", "first")

        await asyncio.to_thread(server.stop)  # the relay goes away (a restart, a network cut)
        await asyncio.sleep(1.0)
        server = await restart_on(port)
        # the restarted relay forgot the room; the client opens it again by itself
        await until_async(server.rooms.count, 20, 0.1, "the client opening the room again")
        await asyncio.to_thread(knock, server.url, "second")
        assert await asyncio.wait_for(got.get(), 10) == ("knock", "second")
        poller.cancel()
    finally:
        await client.aclose()
        await asyncio.to_thread(server.stop)


async def test_a_wrong_token_is_refused_clearly() -> None:
    server = await relay()
    client = RelayClient(server.url, "not-the-token-" + "z" * 20)
    try:
        with pytest.raises(RelayRefused) as refused:
            await client.ping()
        assert refused.value.status == 401
    finally:
        await client.aclose()
        await asyncio.to_thread(server.stop)
