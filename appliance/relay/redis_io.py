"""How the Redis store's steps reach Redis (redis_rooms.py, redis_limits.py): written once as
coroutines over one of these. :class:`AsyncIO` is redis-py's asyncio client, awaited on the
asynchronous relay's event loop (a step holds no thread while Redis answers); :class:`BlockingIO`
is its plain client, for the threads (the Flask relay's, the reaper's, the tests'), whose
coroutines never suspend (awaitable.drive runs them)."""

from __future__ import annotations

import logging
from typing import Any

from .redis_scripts import thread_client

logger = logging.getLogger(__name__)

#: Connections the asynchronous relay opens to Redis at most; a step past it waits for one (in
#: order) up to WAIT_CONNECTION, then is answered 503. A step holds one from sending its command
#: until its task runs again with the answer, a turn of the event loop: a pool much smaller than
#: the steps in flight becomes their queue, and a busy loop then holds every connection longer, a
#: queue that feeds itself (measured: a pool of 64 fell seconds behind at a load one process
#: carries, docs/performance.md). Connections are kept and used again; Redis takes ten thousand.
ASYNC_CONNECTIONS = 1024
WAIT_CONNECTION = 10.0
#: Connections opened ahead when the relay starts (:func:`warm`, beside the first requests).
#: Without them a burst of steps (a failover: the dead process's polls all landing here in the
#: same second) opens its connections one by one while it is served, about 2 ms of the loop each
#: here: an eighth of a survivor's time in the burst (py-spy, docs/performance.md). Half the
#: pool, so that the steps served meanwhile always find one free.
WARM_CONNECTIONS = ASYNC_CONNECTIONS // 2


def async_client(client: Any, url: str | None = None) -> Any:
    """A redis.asyncio.Redis on the same server as ``client`` (a redis.Redis), at ``url`` when
    given (``redis://``, ``rediss://`` with its TLS options, ``unix://``), to be used on one event
    loop only (its connections are made on the loop that first uses them). It owns its pool:
    closing it closes every connection."""
    from redis.asyncio import BlockingConnectionPool, Redis

    limits: dict[str, Any] = {
        "max_connections": ASYNC_CONNECTIONS,
        "timeout": WAIT_CONNECTION,
        "driver_info": None,  # no CLIENT SETINFO round trip on each new connection
    }
    if url is not None:
        pool = BlockingConnectionPool.from_url(url, decode_responses=True, **limits)
    else:  # a client made in code (the tests): a TCP connection to its host and port
        kwargs = client.connection_pool.connection_kwargs
        keep = ("host", "port", "db", "username", "password", "decode_responses")
        options = {name: kwargs[name] for name in keep if kwargs.get(name) is not None}
        pool = BlockingConnectionPool(**limits, **options)
    return Redis.from_pool(pool)


async def warm(client: Any, count: int = WARM_CONNECTIONS) -> int:
    """Open ``count`` of ``client``'s connections (a redis.asyncio.Redis) and put them back in
    its pool; how many opened (a Redis not answering yet: fewer, the steps open them later)."""
    pool, taken = client.connection_pool, []
    try:
        for _ in range(count):
            taken.append(await pool.get_connection())
    except Exception as exc:  # noqa: BLE001 - the relay serves without them
        logger.info("opened %d Redis connections ahead, then %s", len(taken), type(exc).__name__)
    else:
        logger.info("opened %d Redis connections ahead", len(taken))
    finally:
        for connection in taken:
            await pool.release(connection)
    return len(taken)


class BlockingIO:
    """Redis's plain client (a redis.Redis): each command blocks the calling thread, through a
    connection of its own (redis_scripts.thread_client); the coroutines never suspend."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def script(self, script: Any, args: list[object], keys: list[str] | None = None) -> Any:
        return script(keys=keys, args=args, client=thread_client(self.client))

    async def command(self, name: str, *args: object, **options: object) -> Any:
        return getattr(thread_client(self.client), name)(*args, **options)


class AsyncIO:
    """redis-py's asyncio client (a redis.asyncio.Redis): a command awaits its answer."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def script(self, script: Any, args: list[object], keys: list[str] | None = None) -> Any:
        return await script(keys=keys, args=args)

    async def command(self, name: str, *args: object, **options: object) -> Any:
        return await getattr(self.client, name)(*args, **options)
