"""The viewer contract end to end: the box's own relay client closes its room saying why, and a
viewer asking the real relay over HTTP afterwards hears exactly that (docs/protocol.md), with
the rooms in memory and in Redis, served by aiohttp (`appliance relay serve`) and by Flask (the
relay built into a box)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from appliance.relay.aioserver import AsyncRelayServer
from appliance.relay.config import RedisConfig, RelayConfig, StoreKind, hash_token
from appliance.relay.server import RelayServer
from appliance.signalling.client import RelayClient

TOKEN = "box-token-" + "c" * 30
ROOMS = ("Abcdefghijklmnopqrstu1", "Abcdefghijklmnopqrstu2", "Abcdefghijklmnopqrstu3")


def knock(base: str, room: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}/api/rooms/{room}/knock",
        json.dumps({"blob": "k"}).encode(),
        {"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("kind", "store"), [("aiohttp", "memory"), ("aiohttp", "redis"), ("flask", "memory")]
)
async def test_the_box_says_why_its_room_closed_and_the_viewer_hears_it(
    kind: str, store: str, request: pytest.FixtureRequest
) -> None:
    shared: dict = {}
    if store == "redis":
        request.getfixturevalue("redis_client")  # an empty database
        url = request.getfixturevalue("redis_url")
        shared = {"store": StoreKind.REDIS, "redis": RedisConfig(url=url)}
    config = RelayConfig(port=0, boxes=(hash_token(TOKEN),), **shared)
    serving = AsyncRelayServer if kind == "aiohttp" else RelayServer
    server = await asyncio.to_thread(lambda: serving(config).start())
    client = RelayClient(server.url, TOKEN)
    try:
        for room in ROOMS:
            await client.open_room(room, int(time.time()) + 600)
        await client.close_room(ROOMS[0])
        await client.close_room(ROOMS[1], reason="expired")
        assert await asyncio.to_thread(knock, server.url, ROOMS[0]) == (410, {"error": "ended"})
        assert await asyncio.to_thread(knock, server.url, ROOMS[1]) == (410, {"error": "expired"})
        assert (await asyncio.to_thread(knock, server.url, ROOMS[2]))[0] == 202
        never = "Neveropenedroomidxxxxx"
        assert await asyncio.to_thread(knock, server.url, never) == (
            404,
            {"error": "unknown", "restarted": True},  # a fresh relay: its box may reopen it
        )
    finally:
        await client.aclose()
        await asyncio.to_thread(server.stop)
