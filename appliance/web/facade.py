"""The web server's only way into the core: run a coroutine on the loop and wait, bounded."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..errors import ApplianceError

T = TypeVar("T")


class LoopBlockedError(ApplianceError, TimeoutError):
    """The core's event loop did not answer in time."""


class LoopFacade:
    """Thread-safe calls from the WSGI threads into the asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = 15.0) -> None:
        self._loop = loop
        self._timeout = timeout

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self._timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise LoopBlockedError("the appliance did not answer in time") from None

    def run(self, fn: Any, *args: Any) -> Any:
        """Run a plain function on the loop and return its result."""

        async def wrapper() -> Any:
            return fn(*args)

        return self.call(wrapper())
