"""`appliance relay serve` on aiohttp: a waiting long poll holds no thread, so polls far beyond
the threaded server's 48 threads wait at once while a new knock and the staff's actions are
answered at once; a box token's own polls are capped; the thread-free wait wakes on the other
side's change, across processes with Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from appliance.relay import paths
from appliance.relay import store as store_mod
from appliance.relay.aioserver import AsyncRelayServer
from appliance.relay.config import RedisConfig, RelayConfig, StoreKind, hash_token
from appliance.relay.limits import FILES_BURST
from appliance.relay.rooms import room_hash as sha
from appliance.relay.server import THREADS
from tests.support.room_stores import BOX, ROOM, maker, seated

BOXES = 70  # each with a room and its poll waiting, and a viewer polling it: 140 > THREADS


def token(i: int) -> str:
    return f"box-token-{i:04d}-" + "t" * 24


def room(i: int) -> str:
    return f"room-{i:06d}-abcdefghij"


@pytest.fixture(params=["memory", "redis"])
def server(request: pytest.FixtureRequest) -> Iterator[AsyncRelayServer]:
    shared: dict[str, Any] = {}
    if request.param == "redis":
        request.getfixturevalue("redis_client")  # an empty database
        url = request.getfixturevalue("redis_url")
        shared = {"store": StoreKind.REDIS, "redis": RedisConfig(url=url)}
    config = RelayConfig(
        port=0,
        boxes=tuple(hash_token(token(i)) for i in range(BOXES)),
        trusted_proxies=("127.0.0.1",),  # the viewers' addresses come forwarded: one each
        **shared,
    )
    relay = AsyncRelayServer(config).start()
    try:
        yield relay
    finally:
        relay.stop()


def relay_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("relay"))


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, **headers: str
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=headers) as answer:
        data = await answer.json() if answer.content_type == "application/json" else None
        return answer.status, data


def box(i: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(i)}"}


def viewer(i: int, client: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {client}", "X-Forwarded-For": f"198.18.{i // 250}.{i % 250}"}


async def test_polls_beyond_the_threads_wait_and_a_knock_and_the_staff_are_answered_at_once(
    server: AsyncRelayServer,
) -> None:
    base = server.url
    expires = {"expires": time.time() + 600}
    limits = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=limits) as http:
        clients = []
        for i in range(BOXES):
            assert (await call(http, "PUT", f"{base}/api/box/rooms/{room(i)}", expires, **box(i)))[
                0
            ] == 201
            status, got = await call(
                http, "POST", f"{base}/api/rooms/{room(i)}/knock", {"blob": "k"}, **viewer(i, "")
            )
            assert status == 202
            clients.append(got["client"])
        status, got = await call(
            http, "GET", f"{base}/api/box/rooms/{room(2)}/messages?after=0", **box(2)
        )
        handle = got["messages"][0]["client"]  # the box's handle for viewer 2
        polls = [
            asyncio.create_task(
                call(
                    http,
                    "GET",
                    f"{base}/api/box/rooms/{room(i)}/messages?after=1&wait=20",
                    **box(i),
                )
            )
            for i in range(BOXES)
        ] + [
            asyncio.create_task(
                call(
                    http,
                    "GET",
                    f"{base}/api/rooms/{room(i)}/messages?after=0&wait=20",
                    **viewer(i, clients[i]),
                )
            )
            for i in range(BOXES)
        ]
        await asyncio.sleep(1.5)
        assert not any(p.done() for p in polls), "every poll is waiting"
        assert 2 * BOXES > THREADS
        # its loop and its reaper, whichever the store: Redis is awaited and heard on the loop
        assert relay_threads() <= 2 < 2 * BOXES, "no thread per poll, none per Redis step"

        # at that load: a staff action (the box extends a room) and a new knock, at once
        started = time.monotonic()
        later = {"expires": time.time() + 1200}
        assert (await call(http, "PUT", f"{base}/api/box/rooms/{room(0)}/expiry", later, **box(0)))[
            0
        ] == 204
        assert (
            await call(
                http, "POST", f"{base}/api/rooms/{room(1)}/knock", {"blob": "k2"}, **viewer(500, "")
            )
        )[0] == 202
        status, got = await asyncio.wait_for(polls[1], 5)  # box 1's waiting poll hears it
        assert status == 200 and [m["blob"] for m in got["messages"]] == ["k2"]
        assert time.monotonic() - started < 3.0  # the poll would wait 20 s

        # a box answers its viewer: that viewer's waiting poll hears it
        started = time.monotonic()
        body = {"client": handle, "blob": "answer", "seat": True}
        assert (
            await call(http, "POST", f"{base}/api/box/rooms/{room(2)}/messages", body, **box(2))
        )[0] == 204
        status, got = await asyncio.wait_for(polls[BOXES + 2], 5)
        assert got == {"messages": [{"n": 2, "blob": "answer"}], "seat": True}
        assert time.monotonic() - started < 3.0  # the poll would wait 20 s

        for i in range(BOXES):  # the rooms close: every poll still waiting hears it
            await call(http, "DELETE", f"{base}/api/box/rooms/{room(i)}", **box(i))
        answers = await asyncio.wait_for(asyncio.gather(*polls), 10)
        assert all(status in (200, 410) for status, _ in answers)


async def test_a_box_token_holds_at_most_its_cap_of_polls(server: AsyncRelayServer) -> None:
    base, cap = server.url, store_mod.MAX_POLLS_PER_BOX
    async with aiohttp.ClientSession() as http:
        for i in range(store_mod.MAX_ROOMS_PER_BOX):
            await call(
                http,
                "PUT",
                f"{base}/api/box/rooms/{room(i)}",
                {"expires": time.time() + 60},
                **box(0),
            )
        polls = [
            asyncio.create_task(
                call(http, "GET", f"{base}/api/box/rooms/{room(i % 4)}/messages?wait=10", **box(0))
            )
            for i in range(cap)
        ]
        await asyncio.sleep(1.0)
        assert not any(p.done() for p in polls)
        url = f"{base}/api/box/rooms/{room(0)}/messages?wait=10"
        assert await call(http, "GET", url, **box(0)) == (429, {"error": "slow-down"})
        assert (await call(http, "GET", f"{base}/api/box/ping", **box(0)))[0] == 200
        for i in range(store_mod.MAX_ROOMS_PER_BOX):
            await call(http, "DELETE", f"{base}/api/box/rooms/{room(i)}", **box(0))
        assert all(s == 410 for s, _ in await asyncio.wait_for(asyncio.gather(*polls), 5))


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_the_thread_free_wait_wakes_on_the_other_side_s_change(
    kind: str, request: pytest.FixtureRequest
) -> None:
    made = maker(request, kind)
    make = next(made)
    # with Redis: two processes, the box's served on this loop (its asyncio client)
    box_store, viewer_side = await asyncio.to_thread(lambda: (make(), make().rooms))
    on_loop = box_store.asynchronous()
    box_side = on_loop.rooms

    def taking(after: int) -> Any:
        return box_take(box_side, after)

    try:
        await box_side.open(BOX, ROOM, time.time() + 60)
        viewer_token, _ = await asyncio.to_thread(seated, box_store.rooms)
        waiting = asyncio.create_task(store_mod.wait_for_async(box_side, ROOM, 10, taking(1)))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        sent = time.monotonic()
        await asyncio.to_thread(viewer_side.viewer_send, ROOM, viewer_token, "offer")
        messages = await asyncio.wait_for(waiting, 5)
        assert [m[3] for m in messages if m[2] == "message"] == ["offer"]
        assert time.monotonic() - sent < 3.0, "woken, not timed out (10 s)"
        started = time.monotonic()
        assert await store_mod.wait_for_async(box_side, ROOM, 0.3, taking(3)) == []
        assert 0.25 < time.monotonic() - started < 2, "nothing to say: ends at its wait"
    finally:
        await on_loop.close()
        await asyncio.to_thread(lambda: [None for _ in made])  # closes them (off the loop)


def box_take(rooms: Any, after: int) -> Any:
    """The box's poll's take on an asynchronous store (None while there is nothing)."""

    async def take(final: bool) -> list[store_mod.BoxMessage] | None:
        messages: list[store_mod.BoxMessage] = await rooms.box_take(BOX, ROOM, after)
        return messages if messages or final else None

    return take


async def test_an_asynchronous_poll_still_wakes_when_its_subscription_drops(
    request: pytest.FixtureRequest, redis_client: Any
) -> None:
    """The asynchronous relay's subscription (a task on its loop) cut by Redis: the poll
    waiting on it takes again when the listener sees it fail, without waiting its recheck."""
    made = maker(request, "redis")
    make = next(made)
    box_store, viewer_side = await asyncio.to_thread(lambda: (make(), make().rooms))
    on_loop = box_store.asynchronous()
    box_side = on_loop.rooms
    try:
        await box_side.open(BOX, ROOM, time.time() + 60)
        viewer_token, _ = await asyncio.to_thread(seated, box_store.rooms)
        waiting = asyncio.create_task(
            store_mod.wait_for_async(box_side, ROOM, 20, box_take(box_side, 1))
        )
        await asyncio.sleep(0.3)
        killed = await asyncio.to_thread(redis_client.client_kill_filter, _type="pubsub")
        assert killed >= 1, "its listener cut off"
        sent = time.monotonic()
        await asyncio.to_thread(viewer_side.viewer_send, ROOM, viewer_token, "offer")
        messages = await asyncio.wait_for(waiting, 10)
        assert [m[3] for m in messages if m[2] == "message"] == ["offer"]
        assert time.monotonic() - sent < 5.0, "within a recheck, not at the poll's end (20 s)"
    finally:
        await on_loop.wake()
        await on_loop.close()
        await asyncio.to_thread(lambda: [None for _ in made])


@pytest.mark.parametrize("server", ["redis"], indirect=True)
async def test_the_proxy_s_health_check_is_answered_while_redis_is_stalled(
    server: AsyncRelayServer, redis_client: Any
) -> None:
    """HAProxy's check (docs/relay.md) never waits behind the store: with Redis answering no
    one for 4 s and fifty requests waiting for it, the check is answered at once."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        assert await call(http, "GET", f"{server.url}/api/health") == (200, {"ok": True})
        redis_client.execute_command("CLIENT", "PAUSE", "4000", "ALL")
        started = time.monotonic()
        pages = [  # each takes from its address's bucket, in Redis
            asyncio.create_task(call(http, "GET", f"{server.url}/v/viewer.css"))
            for _ in range(FILES_BURST - 10)  # within their address's bucket
        ]
        await asyncio.sleep(0.2)
        assert await call(http, "GET", f"{server.url}/api/health") == (200, {"ok": True})
        assert time.monotonic() - started < 2.5, "the check waited for Redis (4 s)"
        assert not any(page.done() for page in pages), "the requests that ask Redis wait"
        assert [status for status, _ in await asyncio.gather(*pages)] == [200] * len(pages)
        assert time.monotonic() - started > 3.5


async def heard_so_far(client: Any, *processes: Any) -> None:
    """Until every process's bell has heard what Redis published before: a mark published
    after it is heard (Redis delivers a subscriber its messages in order)."""
    for rooms in processes:
        mark = rooms.listen("mark")
        await asyncio.to_thread(client.publish, f"{rooms.prefix}bell:{sha('mark')}", "*")
        await asyncio.wait_for(mark, 5)


async def test_with_redis_a_side_s_own_change_does_not_wake_its_poll(
    request: pytest.FixtureRequest,
) -> None:
    """Every change publishes, but a box's send wakes the viewers' polls, not the box's own
    (which would take nothing), and a viewer's send or new poll the box's only."""
    made = maker(request, "redis")
    make = next(made)
    box_side, viewer_side = await asyncio.to_thread(lambda: (make().rooms, make().rooms))
    await asyncio.to_thread(lambda: (box_side.bell.start(), viewer_side.bell.start()))
    try:
        await asyncio.to_thread(box_side.open, BOX, ROOM, time.time() + 60)
        token, handle = await asyncio.to_thread(seated, box_side)
        # the seat's own changes (the knock wakes the box's side) reach both processes first
        await heard_so_far(request.getfixturevalue("redis_client"), box_side, viewer_side)
        box_poll = box_side.listen(ROOM, store_mod.Side.BOX)
        viewer_poll = viewer_side.listen(ROOM, store_mod.Side.VIEWERS)
        await asyncio.to_thread(box_side.box_send, BOX, ROOM, handle, "answer", False)
        await asyncio.wait_for(viewer_poll, 5)
        await asyncio.sleep(0.3)  # the same message reached the box's process by now
        assert not box_poll.done(), "the box's own send woke its poll"
        viewer_poll = viewer_side.listen(ROOM, store_mod.Side.VIEWERS)
        await asyncio.to_thread(viewer_side.viewer_send, ROOM, token, "ice")
        await asyncio.wait_for(box_poll, 5)
        await asyncio.sleep(0.3)
        assert not viewer_poll.done(), "the viewer's own send woke its poll"
        box_side.forget(ROOM, box_poll, store_mod.Side.BOX)
        viewer_side.forget(ROOM, viewer_poll, store_mod.Side.VIEWERS)
    finally:
        await asyncio.to_thread(lambda: [None for _ in made])


async def test_a_poll_answered_at_once_or_woken_frees_its_place(server: AsyncRelayServer) -> None:
    """A poll that finds its message at once, or is woken by one, ends in the step that answers
    it: a box polling again and again never reaches its token's cap of polls."""
    base, cap = server.url, store_mod.MAX_POLLS_PER_BOX
    polled = f"{base}/api/box/rooms/{room(0)}/messages"
    async with aiohttp.ClientSession() as http:
        expires = {"expires": time.time() + 60}
        assert (await call(http, "PUT", f"{base}/api/box/rooms/{room(0)}", expires, **box(0)))[
            0
        ] == 201
        knocked = f"{base}/api/rooms/{room(0)}/knock"
        headers = {"X-Forwarded-For": "198.18.0.1"}
        assert (await call(http, "POST", knocked, {"blob": "k"}, **headers))[0] == 202
        for _ in range(2 * cap):  # the knock is there: each answered at once
            status, got = await call(http, "GET", f"{polled}?after=0&wait=10", **box(0))
            assert status == 200
            assert [m["kind"] for m in got["messages"]] == ["knock"]
        after = 1
        for i in range(2 * cap):  # each woken by a knock of its own, which the box refuses
            waiting = asyncio.create_task(
                call(http, "GET", f"{polled}?after={after}&wait=10", **box(0))
            )
            await asyncio.sleep(0.05)
            headers = {"X-Forwarded-For": f"198.18.1.{i + 1}"}
            assert (await call(http, "POST", knocked, {"blob": "k"}, **headers))[0] == 202
            status, got = await asyncio.wait_for(waiting, 5)
            assert status == 200
            (message,) = got["messages"]
            after = message["n"]
            refusal = {"client": message["client"], "reason": "refused"}
            refused = f"{base}/api/box/rooms/{room(0)}/refuse"
            assert (await call(http, "POST", refused, refusal, **box(0)))[0] == 204
        held = [
            asyncio.create_task(call(http, "GET", f"{polled}?after=999&wait=10", **box(0)))
            for _ in range(cap)
        ]
        await asyncio.sleep(1.0)
        assert not any(p.done() for p in held)  # every place free again
        assert await call(http, "GET", f"{polled}?after=999&wait=10", **box(0)) == (
            429,
            {
                "error": "slow-down",
            },
        )
        await call(http, "DELETE", f"{base}/api/box/rooms/{room(0)}", **box(0))
        assert all(s == 410 for s, _ in await asyncio.wait_for(asyncio.gather(*held), 5))


@pytest.mark.parametrize("server", ["redis"], indirect=True)
async def test_with_redis_a_burst_of_requests_finds_its_connections_already_open(
    server: AsyncRelayServer, redis_client: Any
) -> None:
    """A failover lands a dead process's polls here at once: the relay opened its Redis
    connections ahead (half its pool), so two hundred requests at once open none of their own
    (each would cost the loop a connect while the burst is served)."""
    from appliance.relay.redis_io import WARM_CONNECTIONS

    def received() -> int:  # connections Redis accepted so far (closes do not count)
        return int(redis_client.info("stats")["total_connections_received"])

    on_loop, loop = server._on_loop, server._loop
    assert on_loop is not None and loop is not None
    warming: Any = getattr(on_loop.rooms, "_warming")  # noqa: B009 - the store's own task
    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(asyncio.wait({warming}), loop))
    assert warming.result() == WARM_CONNECTIONS, "the relay opened its connections ahead"
    before = await asyncio.to_thread(received)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        asked = [
            call(http, "GET", server.url + paths.room_status(room(i)), **viewer(i, "x"))
            for i in range(200)
        ]
        statuses = [status for status, _ in await asyncio.gather(*asked)]
    assert statuses == [404] * 200, "each asked Redis (its room is unknown there)"
    assert await asyncio.to_thread(received) == before, "the burst opened connections of its own"
