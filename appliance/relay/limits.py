"""The relay's rate limits: token buckets and counts of requests in flight, per client address
(an IPv6 address by its /64). The buckets here are in memory; redis_limits.py keeps them in
Redis, shared by several relay processes. Requests in flight stay per process: they guard the
process's own threads."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from ..httpd.addresses import address_key

#: Addresses a table remembers at most; past it the least recently seen are forgotten first.
MAX_KEYS = 50_000


class Bucket(Protocol):
    """A token bucket per client address: ``take`` spends one token, False when there is none."""

    def take(self, address: str) -> bool: ...


#: Makes the table of buckets called ``name`` (its rate per second, its burst).
BucketFactory = Callable[[str, float, float], Bucket]


def memory_buckets(name: str, rate: float, burst: float) -> Bucket:
    return Buckets(rate, burst)


class Buckets:
    """Token buckets per client address. The table is kept in order of last use, so the buckets
    that have refilled (unused for ``burst / rate`` seconds: a new one would be the same) are at
    its front and each :meth:`take` forgets them there: constant work per call, amortised."""

    def __init__(
        self,
        rate: float,
        burst: float,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._rate, self._burst, self._max_keys = rate, burst, max_keys
        self._refill = burst / rate
        self._clock = clock or (lambda: time.monotonic())
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        #: Buckets looked at by every take() so far (for the tests: a count, not a stopwatch).
        self.examined = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, address: str) -> bool:
        key = address_key(address)
        with self._lock:
            now = self._clock()
            self._prune(now)
            level, stamp = self._buckets.pop(key, (self._burst, now))
            level = min(self._burst, level + (now - stamp) * self._rate)
            allowed = level >= 1
            self._buckets[key] = (level - 1 if allowed else level, now)  # to the end: newest
            return allowed

    def _prune(self, now: float) -> None:
        while self._buckets:
            key, (_, stamp) = next(iter(self._buckets.items()))
            self.examined += 1
            if now - stamp < self._refill and len(self._buckets) < self._max_keys:
                return
            del self._buckets[key]


class InFlight:
    """Requests in progress (long polls): at most ``per_key`` per client address and ``total``."""

    def __init__(self, per_key: int, total: int) -> None:
        self._per_key, self._total = per_key, total
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._all = 0

    def acquire(self, address: str) -> bool:
        key = address_key(address)
        with self._lock:
            if self._all >= self._total or self._counts.get(key, 0) >= self._per_key:
                return False
            self._counts[key] = self._counts.get(key, 0) + 1
            self._all += 1
            return True

    def release(self, address: str) -> None:
        key = address_key(address)
        with self._lock:
            self._all -= 1
            left = self._counts.get(key, 1) - 1
            if left > 0:
                self._counts[key] = left
            else:
                self._counts.pop(key, None)


#: Unauthenticated requests per client address: a bucket of BURST refilled at RATE per second.
RATE, BURST = 2.0, 40
KNOCK_RATE, KNOCK_BURST = 0.2, 5  # knocks: one every 5 s after a burst of 5
#: The viewer page's own files (about a dozen per load), in a bucket of their own: a phone that
#: reloads never spends what its polls and knocks need.
FILES_RATE, FILES_BURST = 4.0, 60
MISS_RATE, MISS_BURST = 1.0, 20  # requests to a room that is not open (unknown, ended)
#: Viewers' long polls waiting at once per client address, and in all on the threaded server
#: (it has more threads than that, so the box and the staff always find one). The asynchronous
#: server's polls hold no thread: its total is ASYNC_POLLS_TOTAL, a bound on memory only.
POLLS_PER_ADDRESS, POLLS_TOTAL = 4, 24
ASYNC_POLLS_TOTAL = 20_000


B = TypeVar("B")


class RelayLimits(Generic[B]):
    """Every limit the relay keeps per client address, made once per app; ``buckets`` makes the
    token buckets (in memory, or shared in Redis; taken at once, or awaited: awaitable.py)."""

    def __init__(
        self, buckets: Callable[[str, float, float], B], polls_total: int = POLLS_TOTAL
    ) -> None:
        self.viewers = buckets("viewers", RATE, BURST)
        self.knocks = buckets("knocks", KNOCK_RATE, KNOCK_BURST)
        self.misses = buckets("misses", MISS_RATE, MISS_BURST)
        self.files = buckets("files", FILES_RATE, FILES_BURST)
        self.polls = InFlight(POLLS_PER_ADDRESS, polls_total)
