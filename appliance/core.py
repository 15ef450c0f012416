"""The core: one asyncio loop, one event queue, the only writer of state.

Everything that changes state arrives as an event (a button press from a gpiozero thread, a
viewer joining or leaving, a request from the pairing page) and is handled in order on the loop.
The media pipeline's mode, the LED and what viewers are told follow from the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av

from .config import Config
from .errors import InvalidStateError
from .state import ALLOWED, State, viewer_status
from .stream.fanout import PacketFanout
from .stream.peers import ViewerPeer
from .stream.pipeline import MediaPipeline, Mode

logger = logging.getLogger(__name__)

#: How long a viewer is given to read the "ended" message before its connection is closed.
END_GRACE = 0.3


@dataclass(frozen=True)
class Press:
    """The button was pressed: short, or held for the hold time."""

    long: bool = False


@dataclass(frozen=True)
class OpenSession:
    pass


@dataclass(frozen=True)
class EndSession:
    reason: str = "staff"


@dataclass(frozen=True)
class ViewerJoined:
    peer: ViewerPeer


@dataclass(frozen=True)
class ViewerLeft:
    peer: ViewerPeer


Event = Press | OpenSession | EndSession | ViewerJoined | ViewerLeft
StateListener = Callable[[State, State], None]


class Core:
    """Owns the state machine, the media pipeline and the viewers' peer connections."""

    def __init__(self, config: Config, pipeline_factory: Callable[[Any], MediaPipeline]) -> None:
        self._config = config
        self._state = State.IDLE
        self._listeners: list[StateListener] = []
        self._events: asyncio.Queue[Event] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.fanout = PacketFanout(self.request_keyframe)
        self.pipeline = pipeline_factory(self._publish_from_thread)
        self.peers: list[ViewerPeer] = []
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- state ------------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(old, new)`` on the loop after every transition."""
        self._listeners.append(listener)

    def _set_state(self, new: State) -> None:
        old = self._state
        if new is old:
            return
        if new not in ALLOWED[old]:
            raise InvalidStateError(f"cannot go from {old.value} to {new.value}")
        self._state = new
        logger.info("state %s -> %s", old.value, new.value)
        self.pipeline.set_mode(
            {State.LIVE: Mode.LIVE, State.PAUSED: Mode.PAUSED}.get(new, Mode.OFF)
        )
        for peer in self.peers:
            peer.send_status(self.viewer_message())
        for listener in self._listeners:
            try:
                listener(old, new)
            except Exception:
                logger.exception("state listener failed")

    def viewer_message(self) -> dict[str, Any]:
        return {"type": "status", "state": viewer_status(self._state).value}

    def status(self) -> dict[str, Any]:
        """A snapshot for the pages: state, HDMI signal, viewer count (no ids, no addresses).

        The signal state is read from the source when asked: it is separate from the session
        state and never changes it (losing the signal while PAUSED stays PAUSED)."""
        return {
            "state": self._state.value,
            "signal": self.pipeline.source.signal.value,
            "viewers": len(self.peers),
        }

    # -- events -----------------------------------------------------------------------------------

    def post(self, event: Event) -> None:
        """Queue an event; call on the loop."""
        if self._events is None:
            raise InvalidStateError("the core is not running")
        self._events.put_nowait(event)

    def post_threadsafe(self, event: Event) -> None:
        """Queue an event from another thread (gpiozero callbacks, the web server)."""
        if self._loop is None:
            raise InvalidStateError("the core is not running")
        self._loop.call_soon_threadsafe(self.post, event)

    async def _handle(self, event: Event) -> None:
        state = self._state
        match event:
            case Press(long=True):
                if state in (State.READY, State.WAITING, State.LIVE, State.PAUSED):
                    await self._end("button")
            case Press(long=False):
                if state is State.IDLE:
                    self._set_state(State.READY)
                elif state in (State.READY, State.WAITING, State.PAUSED):
                    self._set_state(State.LIVE)
                elif state is State.LIVE:
                    self._set_state(State.PAUSED)
            case OpenSession():
                if state is State.IDLE:
                    self._set_state(State.READY)
            case EndSession(reason=reason):
                if state in (State.READY, State.WAITING, State.LIVE, State.PAUSED):
                    await self._end(reason)
            case ViewerJoined():
                if state is State.READY:
                    self._set_state(State.WAITING)
            case ViewerLeft():
                if state is State.WAITING and not self.peers:
                    self._set_state(State.READY)

    async def _end(self, reason: str) -> None:
        logger.info("session ended (%s)", reason)
        self._set_state(State.ENDED)
        peers = list(self.peers)
        if peers:
            await asyncio.sleep(END_GRACE)  # let the "ended" message reach the viewers
        for peer in peers:
            await peer.close()
        self._set_state(State.IDLE)

    # -- viewers ----------------------------------------------------------------------------------

    async def viewer_offer(self, offer_sdp: str) -> tuple[str, str]:
        """Answer a viewer's offer: returns (peer id, answer SDP). One viewer at a time: a new
        connection replaces the previous one (the same phone reloading its page)."""
        if self._state not in (State.READY, State.WAITING, State.LIVE, State.PAUSED):
            raise InvalidStateError("no session is open")
        for old in list(self.peers):
            await old.close()
        peer = ViewerPeer(
            self.fanout,
            self._config.stream.ice_servers,
            on_keyframe_request=self.request_keyframe,
            on_closed=self._peer_closed,
        )
        answer = await peer.answer(offer_sdp)
        self.peers.append(peer)
        self.pipeline.set_viewers(len(self.peers))
        peer.send_status(self.viewer_message())
        self.post(ViewerJoined(peer))
        logger.info("viewer %s joined", peer.short_id)
        return peer.id, answer

    async def viewer_hangup(self, peer_id: str) -> bool:
        for peer in list(self.peers):
            if peer.id == peer_id:
                await peer.close()
                return True
        return False

    def _peer_closed(self, peer: ViewerPeer) -> None:
        if peer in self.peers:
            self.peers.remove(peer)
            self.pipeline.set_viewers(len(self.peers))
            logger.info("viewer %s left", peer.short_id)
            if self._events is not None:
                self.post(ViewerLeft(peer))

    # -- media ------------------------------------------------------------------------------------

    def request_keyframe(self) -> None:
        self.pipeline.request_keyframe()

    def _publish_from_thread(self, packet: av.Packet) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.fanout.publish, packet)

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self, started: Callable[[], None] | None = None) -> None:
        """Run until :meth:`stop`. ``started`` is called once the core takes events."""
        self._loop = asyncio.get_running_loop()
        self._events = asyncio.Queue()
        self.pipeline.start()
        try:
            if started is not None:
                started()
            events = asyncio.ensure_future(self._process_events())
            stopped = asyncio.ensure_future(self._stopped.wait())
            done, _ = await asyncio.wait({events, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if events in done:
                events.result()  # an unexpected exit: raise it so the service restarts
            events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await events
        finally:
            for peer in list(self.peers):
                await peer.close()
            await asyncio.to_thread(self.pipeline.stop)
            self._events = None

    async def _process_events(self) -> None:
        assert self._events is not None
        while True:
            event = await self._events.get()
            try:
                await self._handle(event)
            except InvalidStateError as exc:
                logger.warning("ignored %s: %s", type(event).__name__, exc)

    def stop(self) -> None:
        """Ask :meth:`run` to finish. Idempotent; call on the loop."""
        self._stopped.set()
