"""The core's calls to the relay, run beside it: the core never waits on the network.

A handler starts a call (:meth:`RelayCalls.start`) and goes on; the call runs as a task this
module tracks, bounded by :data:`RELAY_TIMEOUT`, and its outcome comes back on the core's inbox
as :class:`~appliance.core.events.RelayDone` (handled in order, like every event). While a call
is in flight the core keeps handling presses, commands and knocks. What the state is meanwhile:

- open: the box stays IDLE with the session *opening* (not shown to the staff, a second open is
  refused); the staff's command is answered when the outcome arrives (READY, or "the relay
  cannot be reached" as before); a press that opened it logs a failure;
- extend: nothing changes until the relay confirms (a second Extend meanwhile is refused); the
  staff's command is answered then, with success or "the relay cannot be reached";
- refuse, release: the core acts at once (the seat is freed, the phone's peer closed, READY) and
  tells the relay beside; a failure is logged (the phone is out either way);
- close: the session is ENDED at once and IDLE after the grace timer; the relay is told beside
  and a failure is logged (the relay forgets the room at its expiry anyway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine

from ..errors import InvalidStateError
from ..session.session import Session
from .events import Event, RelayCall, RelayDone

logger = logging.getLogger(__name__)

#: A call to the relay that has not finished in this long has failed (the relay client's own
#: timeouts are longer; the staff's page waits 15 s for an answer).
RELAY_TIMEOUT = 12.0

#: A call to the signalling side, not yet started.
Call = Coroutine[None, None, None]


class RelayCalls:
    """The relay calls in flight, each a task; their outcomes are posted to the core."""

    def __init__(self, post: Callable[[Event], None], timeout: float = RELAY_TIMEOUT) -> None:
        self._post = post
        self._timeout = timeout
        self._tasks: dict[asyncio.Task[None], RelayCall] = {}

    def start(self, call: RelayCall, session: Session, work: Call) -> None:
        """Run ``work`` (a call to the signalling side) beside the core."""
        task = asyncio.ensure_future(self._run(call, session, work))
        self._tasks[task] = call
        task.add_done_callback(self._forget)

    def busy(self, call: RelayCall) -> bool:
        """A ``call`` is in flight."""
        return call in self._tasks.values()

    async def _run(self, call: RelayCall, session: Session, work: Call) -> None:
        error = None
        try:
            await asyncio.wait_for(work, self._timeout)
        except Exception as exc:  # noqa: BLE001 - its outcome goes to the core, which decides
            error = type(exc).__name__
            logger.warning("the relay call %s failed: %s", call.value, error)
        try:
            self._post(RelayDone(call, session, error))
        except InvalidStateError:
            logger.info("the relay call %s finished after the core stopped", call.value)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a relay call failed unexpectedly", exc_info=task.exception())

    async def finish(self) -> None:
        """At shutdown: let the calls in flight finish (each within its timeout), then cancel
        what is left."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self._timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
