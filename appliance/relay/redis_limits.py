"""The relay's token buckets in Redis, shared by every relay process: two processes behind one
proxy give an address one budget, not two.

A take is one Lua script (atomic; Redis's own clock, so the processes' clocks need not agree).
A bucket is kept under the SHA-256 of its client address (an IPv6 address by its /64) and expires
once it would have refilled: Redis never holds an address, nor a bucket longer than
``burst / rate`` seconds after its last use.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..httpd.addresses import address_key

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


class RedisBuckets:
    """Token buckets per client address, named ``name``, in Redis (same API as ``Buckets``)."""

    def __init__(self, client: Any, name: str, rate: float, burst: float, prefix: str) -> None:
        self._rate, self._burst = rate, burst
        self._prefix = f"{prefix}bucket:{name}:"
        self._take = client.register_script(_TAKE)

    def take(self, address: str) -> bool:
        key = hashlib.sha256(address_key(address).encode()).hexdigest()
        return bool(self._take(keys=[self._prefix + key], args=[self._rate, self._burst]))
