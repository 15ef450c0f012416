"""The relay's store, chosen by ``store`` in relay.toml: its rooms and its rate-limit buckets,
in memory (the default: one process, nothing to install) or in Redis (several processes).
The redis package is imported only when Redis is chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .config import RelayConfig, StoreKind
from .limits import BucketFactory, memory_buckets
from .rooms import Rooms
from .store import ThreadedRoomStore


@dataclass(frozen=True)
class Store:
    """What the relay's app shares: its rooms and how its token buckets are made; ``blocking``:
    its steps wait on the network (Redis), so an asynchronous server runs them in threads."""

    rooms: ThreadedRoomStore
    buckets: BucketFactory = memory_buckets
    blocking: bool = False


def memory_store() -> Store:
    return Store(Rooms())


def redis_store(client: Any, prefix: str | None = None) -> Store:
    """Rooms and buckets on ``client`` (a redis.Redis with ``decode_responses=True``)."""
    from .redis_limits import RedisBuckets
    from .redis_rooms import PREFIX, RedisRooms

    chosen = PREFIX if prefix is None else prefix

    def buckets(name: str, rate: float, burst: float) -> RedisBuckets:
        return RedisBuckets(client, name, rate, burst, chosen)

    return Store(RedisRooms(client, chosen), buckets, blocking=True)


def build_store(config: RelayConfig) -> Store:
    """The store ``config`` names (validated by config.load)."""
    if config.store is StoreKind.MEMORY:
        return memory_store()
    import redis

    client = redis.Redis.from_url(config.redis.url, decode_responses=True)
    check_nothing_persisted(client)
    return redis_store(client)


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
