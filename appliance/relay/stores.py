"""The relay's store, chosen by ``store`` in relay.toml: its rooms and its rate-limit buckets,
in memory (the default: one process, nothing to install) or in Redis (several processes).
The redis package is imported only when Redis is chosen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .awaitable import AsyncBucket, AsyncRoomStore, Immediate, ImmediateBucket
from .config import RelayConfig, StoreKind
from .limits import BucketFactory, memory_buckets
from .rooms import Rooms
from .store import ThreadedRoomStore

#: Makes the table of buckets called ``name`` (its rate per second, its burst), taken by await.
AsyncBucketFactory = Callable[[str, float, float], AsyncBucket]


@dataclass(frozen=True)
class OnLoop:
    """The store as an event loop's calls use it: its rooms and buckets as coroutines, and what
    to await when that loop's server stops (in memory: nothing, the rooms' own stop wakes its
    polls)."""

    rooms: AsyncRoomStore
    buckets: AsyncBucketFactory
    #: the loop's server stops: wake every poll (they answer), then let go of the store
    wake: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Store:
    """What the relay's app shares: its rooms and how its token buckets are made, for servers
    that call them from threads; ``on_loop`` makes them for an event loop (on that loop: Redis's
    asyncio client), None where a step returns at once (in memory)."""

    rooms: ThreadedRoomStore
    buckets: BucketFactory = memory_buckets
    on_loop: Callable[[], OnLoop] | None = None

    def immediate(self) -> OnLoop:
        """The store's steps as coroutines that never suspend (the Flask relay's threads)."""
        return OnLoop(Immediate(self.rooms), immediate(self.buckets), _nothing, _nothing)

    def asynchronous(self) -> OnLoop:
        """The store for the running event loop."""
        return self.on_loop() if self.on_loop is not None else self.immediate()


def immediate(buckets: BucketFactory) -> AsyncBucketFactory:
    def made(name: str, rate: float, burst: float) -> AsyncBucket:
        return ImmediateBucket(buckets(name, rate, burst))

    return made


async def _nothing() -> None:
    return None


def memory_store() -> Store:
    return Store(Rooms())


def redis_store(client: Any, prefix: str | None = None, url: str | None = None) -> Store:
    """Rooms and buckets on ``client`` (a redis.Redis with ``decode_responses=True``), made
    from ``url`` if given (the asynchronous relay's own client is made from it too)."""
    from .redis_io import AsyncIO, async_client
    from .redis_limits import AsyncRedisBuckets, RedisBuckets
    from .redis_rooms import PREFIX, AsyncRedisRooms, RedisRooms

    chosen = PREFIX if prefix is None else prefix
    rooms = RedisRooms(client, chosen)

    def buckets(name: str, rate: float, burst: float) -> RedisBuckets:
        return RedisBuckets(client, name, rate, burst, chosen)

    def on_loop() -> OnLoop:
        on = async_client(client, url)
        io = AsyncIO(on)
        served = AsyncRedisRooms(on, chosen)
        served.start()

        def loop_buckets(name: str, rate: float, burst: float) -> AsyncBucket:
            return AsyncRedisBuckets(io, name, rate, burst, chosen)

        return OnLoop(served, loop_buckets, served.stop, on.aclose)

    return Store(rooms, buckets, on_loop)


def build_store(config: RelayConfig) -> Store:
    """The store ``config`` names (validated by config.load)."""
    if config.store is StoreKind.MEMORY:
        return memory_store()
    import redis

    client = redis.Redis.from_url(config.redis.url, decode_responses=True)
    check_nothing_persisted(client)
    return redis_store(client, url=config.redis.url)


def check_nothing_persisted(client: Any) -> None:
    """Refuse a Redis that would write the relay's rooms to disk: snapshots (``save``) or an
    append-only file. Debian's redis.conf leaves ``save`` unset, so Redis falls back to its own
    default snapshots: the relay must say so rather than start."""
    try:
        save = client.config_get("save").get("save", "")
        appendonly = client.config_get("appendonly").get("appendonly", "no")
    except Exception as exc:  # noqa: BLE001 - an unreachable Redis, or CONFIG renamed away
        raise ConfigError(
            f"config key 'redis.url': the relay cannot ask that Redis whether it writes to disk "
            f'({type(exc).__name__}); it must run with save "" and appendonly no (docs/relay.md)'
        ) from None
    if save.strip() or appendonly != "no":
        raise ConfigError(
            "config key 'redis.url': that Redis writes its data to disk (save "
            f'{save.strip() or "off"}, appendonly {appendonly}): run it with --save "" '
            "--appendonly no (docs/relay.md), the relay keeps nothing on disk"
        )
