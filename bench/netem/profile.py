"""Capacity steps of the rig applied on time in a background thread (RFC 8867's profiles)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rig import Impairment


class Profile(threading.Thread):
    """Capacity steps applied on time in the background; stops by itself after its duration."""

    def __init__(
        self,
        rig: Impairment,
        steps: Sequence[tuple[float, float]],
        duration_s: float,
        queue_ms: float,
        time_scale: float,
    ) -> None:
        super().__init__(name="netem-profile", daemon=True)
        self.rig = rig
        self.steps = sorted(steps)
        self.duration_s = duration_s * time_scale
        self.queue_ms = queue_ms
        self.time_scale = time_scale
        self.applied: list[tuple[float, float]] = []  # (seconds since start, Mbit/s) as done
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self.started_at = 0.0

    def run(self) -> None:
        self.started_at = time.monotonic()
        try:
            for at, mbit in self.steps:
                if at * self.time_scale >= self.duration_s:
                    break
                if self._halt.wait(
                    max(0.0, self.started_at + at * self.time_scale - time.monotonic())
                ):
                    return
                self.rig.cap(mbit, self.queue_ms)
                self.applied.append((round(time.monotonic() - self.started_at, 3), mbit))
            self._halt.wait(max(0.0, self.started_at + self.duration_s - time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - kept for wait() to raise
            self.error = exc

    def stop(self) -> None:
        self._halt.set()
        if self is not threading.current_thread() and self.is_alive():
            self.join(5)

    def wait(self, timeout: float | None = None) -> None:
        """Until the profile's end; raises what went wrong in it."""
        from .rig import RigError  # rig imports this module

        self.join(timeout)
        if self.error is not None:
            raise RigError(f"profile step failed: {self.error}") from self.error
