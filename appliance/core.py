"""The core: one asyncio loop, one event queue, the only writer of state.

Everything that changes state arrives as an event (a button press from a gpiozero thread, a
viewer knocking or leaving, a request from the pairing page, the session's expiry) and is handled
in order on the loop. The media pipeline's mode, the LED and what the viewer is told follow from
the state. The session (room, secret, seat) lives here, in memory, and is forgotten at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import av

from .config import Config
from .errors import InvalidStateError
from .session.session import Session, Viewer
from .session.validity import clamp_minutes
from .state import ALLOWED, State, viewer_status
from .stream.fanout import PacketFanout
from .stream.peers import ViewerPeer
from .stream.pipeline import MediaPipeline, Mode
from .types import EventRecorder

logger = logging.getLogger(__name__)

#: How long a viewer is given to read the "ended" message before its connection is closed.
END_GRACE = 0.3

_OPEN = (State.READY, State.WAITING, State.LIVE, State.PAUSED)


class SessionHost(Protocol):
    """What the core needs from the signalling side (appliance.signalling.host)."""

    async def open(self, session: Session) -> None:
        """Open the session's room at the relay and start answering knocks."""

    async def refuse(self, session: Session, viewer: Viewer) -> None:
        """Tell a viewer it was refused, and the relay to drop it."""

    async def close(self, session: Session, reason: str) -> None:
        """Tell the viewer the session is over, close the room, stop answering."""


# -- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Press:
    """The button was pressed: short, or held for the hold time."""

    long: bool = False


@dataclass(frozen=True)
class Command:
    """A request from the pairing page (or a test): ``name`` with ``args``; the answer goes to
    ``future``."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    future: asyncio.Future[Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class EndSession:
    reason: str = "staff"


@dataclass(frozen=True)
class Knocked:
    """A viewer's knock was accepted: it holds the seat (``returning``: it held it before)."""

    returning: bool


@dataclass(frozen=True)
class ViewerAnswered:
    """The box answered the seated viewer's offer; ``code`` is the verification code."""

    peer: ViewerPeer
    code: str


@dataclass(frozen=True)
class ViewerLeft:
    peer: ViewerPeer


@dataclass(frozen=True)
class ViewerBye:
    """The viewer hung up on purpose (closed the page)."""


Event = Press | Command | EndSession | Knocked | ViewerAnswered | ViewerLeft | ViewerBye
StateListener = Callable[[State, State], None]
SessionListener = Callable[[Session], None]


class _NullHost:
    async def open(self, session: Session) -> None:
        return None

    async def refuse(self, session: Session, viewer: Viewer) -> None:
        return None

    async def close(self, session: Session, reason: str) -> None:
        return None


class _NullRecorder:
    def record(self, kind: str, **fields: Any) -> None:
        return None


class Core:
    """Owns the state machine, the session, the media pipeline and the viewer's connection."""

    def __init__(
        self,
        config: Config,
        pipeline_factory: Callable[[Any], MediaPipeline],
        *,
        box_key_hash: bytes = b"",
        host: SessionHost | None = None,
        events: EventRecorder | None = None,
        clock_ok: Callable[[], bool] = lambda: True,
        viewer_origin: str = "",
    ) -> None:
        self._config = config
        self._state = State.IDLE
        self._listeners: list[StateListener] = []
        self._session_listeners: list[SessionListener] = []
        self._events: asyncio.Queue[Event] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.fanout = PacketFanout(self.request_keyframe)
        self.pipeline = pipeline_factory(self._publish_from_thread)
        self.peers: list[ViewerPeer] = []
        self.session: Session | None = None
        self.host: SessionHost = host or _NullHost()
        self.box_key_hash = box_key_hash
        self.viewer_origin = viewer_origin
        self._record = (events or _NullRecorder()).record
        self._clock_ok = clock_ok
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._stopped = asyncio.Event()
        self.error: str | None = None

    # -- state ------------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(old, new)`` on the loop after every transition."""
        self._listeners.append(listener)

    def add_session_listener(self, listener: SessionListener) -> None:
        """Call ``listener(session)`` on the loop each time a session opens."""
        self._session_listeners.append(listener)

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
        self._tell_viewer()
        for listener in self._listeners:
            try:
                listener(old, new)
            except Exception:
                logger.exception("state listener failed")

    def _tell_viewer(self) -> None:
        for peer in self.peers:
            peer.send_status(self.viewer_message())

    def viewer_message(self) -> dict[str, Any]:
        viewer = self.session.viewer if self.session is not None else None
        message: dict[str, Any] = {"type": "status", "state": viewer_status(self._state).value}
        if viewer is not None and viewer.code is not None:
            message["code"] = viewer.code
        return message

    def status(self) -> dict[str, Any]:
        """A snapshot for the pages: state, HDMI signal, session (no secrets but the link).

        The signal state is read from the source when asked: it is separate from the session
        state and never changes it (losing the signal while PAUSED stays PAUSED)."""
        return {
            "state": self._state.value,
            "signal": self.pipeline.source.signal.value,
            "viewers": len(self.peers),
            "clock_ok": self._clock_ok(),
            "error": self.error,
        }

    def session_status(self) -> dict[str, Any] | None:
        """The open session for the staff's page: its link (the QR), expiry and viewer."""
        session = self.session
        if session is None:
            return None
        viewer = session.viewer
        return {
            "room_name": self._config.box.name,
            "url": self.link(session),
            "expires": session.expires,
            "viewer": None
            if viewer is None
            else {
                "name": viewer.name,
                "code": viewer.code,
                "admitted": viewer.admitted,
                "connected": viewer.connected,
            },
        }

    def link(self, session: Session) -> str:
        from .session import seal

        return seal.link(self.viewer_origin, session.room, session.secret, session.box_key_hash)

    def fault(self, message: str) -> None:
        """A fault the staff cannot fix from the page (a bad config): ERROR until restarted."""
        self.error = message
        logger.error("fault: %s", message)
        self._set_state(State.ERROR)

    # -- events -----------------------------------------------------------------------------------

    def post(self, event: Event) -> None:
        """Queue an event; call on the loop."""
        if self._events is None:
            raise InvalidStateError("the core is not running")
        self._events.put_nowait(event)

    def post_threadsafe(self, event: Event) -> None:
        """Queue an event from another thread (gpiozero callbacks)."""
        if self._loop is None:
            raise InvalidStateError("the core is not running")
        self._loop.call_soon_threadsafe(self.post, event)

    async def command(self, name: str, **args: Any) -> Any:
        """Run a staff command (open, admit, refuse, pause, resume, end) in the event order and
        return its result; raises :class:`InvalidStateError` when the state does not allow it."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.post(Command(name, args, future))
        return await future

    async def _handle(self, event: Event) -> Any:
        state = self._state
        match event:
            case Press(long=True):
                if state in _OPEN:
                    await self._end("button")
            case Press(long=False):
                if state is State.IDLE:
                    await self._open(self._config.pairing.valid_minutes)
                elif state is State.WAITING:
                    self._admit()
                elif state is State.LIVE:
                    self._set_state(State.PAUSED)
                elif state is State.PAUSED:
                    self._set_state(State.LIVE)
                # READY: nobody to admit yet; the LED already says so
            case Command(name=name, args=args):
                return await self._command(name, args)
            case EndSession(reason=reason):
                if state in _OPEN:
                    await self._end(reason)
            case Knocked(returning=returning):
                self._record("knock", returning=returning)
                if state is State.READY:
                    self._set_state(State.WAITING)
            case ViewerAnswered(peer=peer, code=code):
                await self._adopt(peer, code)
            case ViewerLeft(peer=peer):
                self._viewer_left(peer)
            case ViewerBye():
                self._record("viewer-left", on_purpose=True)
                self._start_timer(
                    "hangup", self._config.pairing.hangup_grace, EndSession("viewer-hangup")
                )
        return None

    async def _command(self, name: str, args: dict[str, Any]) -> Any:
        state = self._state
        if name == "open":
            if not args.get("consent"):
                raise InvalidStateError("confirm that the patient agreed first")
            minutes = int(args.get("valid_minutes") or 0)
            return await self._open(clamp_minutes(minutes) if minutes else None)
        if name == "admit":
            if state is not State.WAITING:
                raise InvalidStateError("nobody is waiting to be admitted")
            self._admit()
        elif name == "refuse":
            if state is not State.WAITING or self.session is None:
                raise InvalidStateError("nobody is waiting to be refused")
            await self._refuse()
        elif name == "pause":
            if state is not State.LIVE:
                raise InvalidStateError("the picture is not live")
            self._set_state(State.PAUSED)
        elif name == "resume":
            if state is not State.PAUSED:
                raise InvalidStateError("the picture is not paused")
            self._set_state(State.LIVE)
        elif name == "end":
            if state not in _OPEN:
                raise InvalidStateError("no session is open")
            await self._end(str(args.get("reason", "page")))
        else:
            raise InvalidStateError(f"unknown command {name!r}")
        return None

    # -- the session ------------------------------------------------------------------------------

    async def _open(self, valid_minutes: int | None) -> Session:
        if self._state is State.ERROR:
            raise InvalidStateError(f"the box has a fault: {self.error}")
        if self._state is not State.IDLE:
            raise InvalidStateError("a session is already open: end it first")
        if not self._clock_ok():
            raise InvalidStateError(
                "the clock is not synchronised yet (no NTP): links and expiry need the time"
            )
        minutes = valid_minutes or self._config.pairing.valid_minutes
        session = Session.new(self.box_key_hash, minutes)
        self.session = session
        try:
            await self.host.open(session)
        except Exception as exc:
            self.session = None
            session.forget()
            logger.warning("could not open the room at the relay: %s", type(exc).__name__)
            raise InvalidStateError("the relay cannot be reached: try again shortly") from exc
        self._set_state(State.READY)
        self._record("opened", valid_minutes=minutes)
        logger.info("session %s opened for %d min", session.short_id, minutes)
        self._start_timer("expiry", max(0.0, session.expires - time.time()), EndSession("expired"))
        for listener in self._session_listeners:
            try:
                listener(session)
            except Exception:
                logger.exception("session listener failed")
        return session

    def _admit(self) -> None:
        assert self.session is not None
        viewer = self.session.viewer
        if viewer is None:
            raise InvalidStateError("nobody is waiting to be admitted")
        viewer.admitted = True
        self._record("admitted", after_s=round(time.monotonic() - self.session.opened_at))
        self._set_state(State.LIVE)

    async def _refuse(self) -> None:
        assert self.session is not None
        viewer = self.session.viewer
        if viewer is not None:
            await self.host.refuse(self.session, viewer)
        self.session.refuse()
        self._record("refused")
        await self._close_peers()
        self._set_state(State.READY)

    async def _adopt(self, peer: ViewerPeer, code: str) -> None:
        """The seated viewer's new connection replaces any previous one."""
        session = self.session
        if session is None or session.viewer is None or self._state not in _OPEN:
            await peer.close()
            return
        self._cancel_timer("hangup")
        for old in list(self.peers):
            if old is not peer:
                await old.close()
        self.peers = [peer]
        self.pipeline.set_viewers(1)
        session.viewer.code = code
        session.viewer.connected = True
        if self._state is State.READY:
            self._set_state(State.WAITING)
        if self._state is State.WAITING and self._config.pairing.pre_admit:
            logger.warning("pre-admission is on: the viewer is admitted without the staff")
            self._admit()
        self._tell_viewer()

    def _viewer_left(self, peer: ViewerPeer) -> None:
        if peer not in self.peers:
            return
        self.peers.remove(peer)
        self.pipeline.set_viewers(len(self.peers))
        session = self.session
        if session is not None and session.viewer is not None and not self.peers:
            session.viewer.connected = False
            if self._state is State.WAITING and not session.viewer.admitted:
                self._set_state(State.READY)

    async def _end(self, reason: str) -> None:
        session = self.session
        self._set_state(State.ENDED)
        for name in list(self._timers):
            self._cancel_timer(name)
        if session is not None:
            logger.info("session %s ended (%s)", session.short_id, reason)
            self._record(
                "ended", reason=reason, duration_s=round(time.monotonic() - session.opened_at)
            )
            try:
                await self.host.close(session, reason)
            except Exception:
                logger.exception("closing the session at the relay failed")
        if self.peers:
            await asyncio.sleep(END_GRACE)  # let the "ended" message reach the viewer
        await self._close_peers()
        if session is not None:
            session.forget()
        self.session = None
        self._set_state(State.IDLE)

    async def _close_peers(self) -> None:
        for peer in list(self.peers):
            await peer.close()
        self.peers.clear()
        self.pipeline.set_viewers(0)

    def _start_timer(self, name: str, delay: float, event: Event) -> None:
        self._cancel_timer(name)
        loop = asyncio.get_running_loop()
        self._timers[name] = loop.call_later(delay, self.post, event)

    def _cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    # -- viewers ----------------------------------------------------------------------------------

    def new_peer(self, ice_servers: tuple[Any, ...] = ()) -> ViewerPeer:
        """A peer connection for the seated viewer (the host answers its offer)."""
        return ViewerPeer(
            self.fanout,
            self._config.stream.ice_servers + tuple(ice_servers),
            on_keyframe_request=self.request_keyframe,
            on_closed=self._peer_closed,
        )

    def _peer_closed(self, peer: ViewerPeer) -> None:
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
            if self.session is not None:
                with contextlib.suppress(Exception):
                    await self.host.close(self.session, "shutdown")
                self.session.forget()
                self.session = None
            for peer in list(self.peers):
                await peer.close()
            for name in list(self._timers):
                self._cancel_timer(name)
            await asyncio.to_thread(self.pipeline.stop)
            self._events = None

    async def _process_events(self) -> None:
        assert self._events is not None
        while True:
            event = await self._events.get()
            future = event.future if isinstance(event, Command) else None
            try:
                result = await self._handle(event)
            except InvalidStateError as exc:
                if future is not None and not future.done():
                    future.set_exception(exc)
                else:
                    logger.warning("ignored %s: %s", type(event).__name__, exc)
            except Exception as exc:
                if future is None:
                    raise
                if not future.done():
                    future.set_exception(exc)
            else:
                if future is not None and not future.done():
                    future.set_result(result)

    def stop(self) -> None:
        """Ask :meth:`run` to finish. Idempotent; call on the loop."""
        self._stopped.set()
