"""The relay's rate limits: token buckets per client address, in memory."""

from __future__ import annotations

import threading
import time


class Buckets:
    """Token buckets per client address, in memory, pruned as they refill."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, burst
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            level, stamp = self._buckets.get(key, (self._burst, now))
            level = min(self._burst, level + (now - stamp) * self._rate)
            if len(self._buckets) > 10_000:
                full = [k for k, (lv, st) in self._buckets.items() if lv >= self._burst]
                for k in full:
                    del self._buckets[k]
            if level < 1:
                self._buckets[key] = (level, now)
                return False
            self._buckets[key] = (level - 1, now)
            return True
