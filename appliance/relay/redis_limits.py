"""The relay's token buckets in Redis, shared by every relay process: two processes behind one
proxy give an address one budget, not two.

A take is one Lua script (atomic; Redis's own clock, so the processes' clocks need not agree).
A bucket is kept under a keyed hash (HMAC-SHA-256) of its client address (an IPv6 address by its
/64), with a random key every process reads from Redis (made by the first, renewed daily): a plain
hash of an IPv4 address could be reversed by trying all 2^32. It expires once it would have
refilled: Redis never holds an address, nor a bucket longer than ``burst / rate`` seconds after
its last use.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from ..httpd.addresses import address_key
from .awaitable import drive
from .redis_io import BlockingIO

#: How long the address key lives (a new one then: the buckets of the day before are forgotten).
ADDRESS_KEY_LIFE = 24 * 3600

_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local got = redis.call('HMGET', KEYS[1], 'level', 'stamp')
local level = tonumber(got[1]) or burst
local stamp = tonumber(got[2]) or now
level = math.min(burst, level + math.max(0, now - stamp) * rate)
local allowed = 0
if level >= 1 then
  level = level - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return allowed
"""


class AsyncRedisBuckets:
    """Token buckets per client address, named ``name``, in Redis, taken through ``io``
    (redis_rooms.BlockingIO or AsyncIO): the take as a coroutine."""

    def __init__(self, io: Any, name: str, rate: float, burst: float, prefix: str) -> None:
        self._io = io
        self._rate, self._burst = rate, burst
        self._prefix = f"{prefix}bucket:{name}:"
        self._key_name = f"{prefix}address-key"
        self._key: bytes | None = None
        self._key_read = 0.0
        self._take = io.client.register_script(_TAKE)

    async def _address_key(self) -> bytes:
        """The key every process hashes addresses with (made by the first to need it; read
        again at most once a minute)."""
        now = time.monotonic()
        if self._key is None or now - self._key_read > 60:
            value = None
            while value is None:
                made = secrets.token_hex(32)
                await self._io.command("set", self._key_name, made, nx=True, ex=ADDRESS_KEY_LIFE)
                value = await self._io.command("get", self._key_name)
            self._key, self._key_read = bytes.fromhex(str(value)), now
        return self._key

    async def take(self, address: str) -> bool:
        mac = hmac.new(await self._address_key(), address_key(address).encode(), hashlib.sha256)
        key = mac.hexdigest()
        args: list[object] = [self._rate, self._burst]
        return bool(await self._io.script(self._take, args, keys=[self._prefix + key]))


class RedisBuckets:
    """The same buckets for a thread (``client``: a redis.Redis; same API as ``Buckets``)."""

    def __init__(self, client: Any, name: str, rate: float, burst: float, prefix: str) -> None:
        self._buckets = AsyncRedisBuckets(BlockingIO(client), name, rate, burst, prefix)

    def take(self, address: str) -> bool:
        return drive(self._buckets.take(address))
