"""The composition root's work: build every part from the config, run them, stop them.

``box = await Box.build(config, Seams(...))`` then ``await box.run()``. Only this module (and
__main__) reads the config to construct objects; every part gets what it needs through its
constructor. :class:`Seams` is the single injection point for what stands at the hardware
boundary (gpiozero's ``pin_factory`` idea): tests, the demo and the benchmarks hand fakes there,
and the code above runs unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import systemd
from .board import resolve
from .capture.base import Source
from .capture.mask import Mask
from .capture.registry import make_source
from .config import Config, SourceKind
from .core import (
    Core,
    CoreSettings,
    Inbox,
    OpenSession,
    Press,
    VerifiedKnock,
    ViewerAnswered,
    ViewerBye,
    ViewerCancel,
    ViewerLeft,
    ViewerLink,
)
from .crypto import BoxIdentity, load_or_create_tls
from .discovery import Announcer
from .encode.registry import make_encoder_factory
from .eventlog import EventLog
from .httpd.dispatch import PathDispatch
from .httpd.server import WebServer
from .panel import Panel, make_pin_factory
from .passwords import hash_password
from .relay import paths as relay_paths
from .relay.server import THREADS as RELAY_THREADS
from .relay.server import Relay, relay_config_for_box
from .session.session import Verdict
from .signalling.client import RelayClient
from .signalling.gate import Gate, GateHooks
from .state import State
from .stream.compat import confine_host_addresses
from .stream.feedback import LinkSettings
from .stream.peers import ViewerPeer
from .stream.pipeline import MediaPipeline, mode_for
from .stream.viewers import Viewers, viewer_health
from .types import Rect
from .web.app import create_app
from .web.backend import CoreBackend
from .web.facade import LoopFacade
from .web.masks import MaskStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seams:
    """What stands at the hardware boundary; None means the real thing the config names.

    :param source: a frame source to use instead of the config's ``capture.source``.
    :param pin_factory: gpiozero's pin factory (tests: ``MockFactory()``).
    :param clock_ok: whether sessions may open (default: the system clock is synchronised).
    :param bridge: the TC358743's V4L2 device for ``capture.source = "hdmi"`` (a FakeTC358743).
    :param encoder_device: the Pi 4's M2M encoder device for ``encode.encoder = "hardware"``
        (a FakeM2M).
    :param root: where /dev, /proc and /sys are looked for (tests: a fake tree).
    """

    source: Source | None = None
    pin_factory: Any = None
    clock_ok: Callable[[], bool] | None = None
    bridge: Any = None
    encoder_device: Any = None
    root: Path = Path("/")


def state_dir(config: Config) -> Path:
    path = Path(config.box.state_dir)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def password_hash(config: Config) -> str:
    """The pairing password's hash: first boot writes it; a plain password given in a config
    (development) is hashed in memory here. Empty: the page refuses every login."""
    if config.pairing.password_hash:
        return config.pairing.password_hash
    if config.pairing.password:
        return hash_password(config.pairing.password)
    return ""


@dataclass
class Box:
    """Everything running: core, viewers, media, panel, web server, relay. Made by :meth:`build`."""

    config: Config
    core: Core
    inbox: Inbox
    viewers: Viewers
    pipeline: MediaPipeline
    panel: Panel
    web: WebServer
    events: EventLog
    client: RelayClient
    announcer: Announcer
    relay: Relay | None = None
    tls_certificate: Path | None = None
    #: The pairing page's address (on the LAN address when one was given).
    pairing_url: str = ""
    fault: str = ""
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @classmethod
    async def build(
        cls,
        config: Config,
        seams: Seams | None = None,
        *,
        lan_hosts: tuple[str, ...] = (),
        fault: str = "",
        warnings: Sequence[object] = (),
    ) -> Box:
        """Build the box from ``config``; call on the loop that will run it.

        With ``relay.url`` empty the box runs the relay itself (the demo, or a clinic without
        one) in its own web server, and its own client reaches it through the same protocol.
        ``fault`` (a bad appliance.toml, from first boot) puts the box in ERROR when it runs;
        ``warnings`` (the config's, :mod:`appliance.configcheck`) are logged and counted on the
        pairing page after the login.
        """
        loop = asyncio.get_running_loop()
        for warning in warnings:
            logger.warning("appliance.toml: %s", warning)
        # Everything below reads files, binds sockets or makes keys: done in a thread, so the
        # loop never blocks (the tests' guard checks it).
        return await asyncio.to_thread(
            cls._assemble, config, seams or Seams(), loop, lan_hosts, fault, len(warnings)
        )

    @classmethod
    def _assemble(
        cls,
        config: Config,
        seams: Seams,
        loop: asyncio.AbstractEventLoop,
        lan_hosts: tuple[str, ...],
        fault: str,
        warnings: int,
    ) -> Box:
        """The box, or the exception that stopped it with what it had started stopped again (a
        web server left running would keep the process up answering "starting" forever)."""
        with contextlib.ExitStack() as undo:
            box = cls._parts(config, seams, loop, lan_hosts, fault, warnings, undo)
            undo.pop_all()
            return box

    @classmethod
    def _parts(
        cls,
        config: Config,
        seams: Seams,
        loop: asyncio.AbstractEventLoop,
        lan_hosts: tuple[str, ...],
        fault: str,
        warnings: int,
        undo: contextlib.ExitStack,
    ) -> Box:
        confine_host_addresses(config.stream.ice_addresses)
        resolved = resolve(config, root=seams.root)
        logger.info(
            "board %s: source %s, encoder %s",
            resolved.board.value,
            resolved.source.value,
            resolved.encoder.value,
        )
        keys = state_dir(config)
        identity = BoxIdentity.load_or_create(keys)
        events = EventLog(keys / "events.jsonl")
        undo.callback(events.close)
        clock_ok = seams.clock_ok
        if clock_ok is None:
            from .clock import is_synchronised

            clock_ok = is_synchronised

        inbox = Inbox(loop)
        # The pins first: a box whose GPIO cannot be used stops with the reason before it serves
        # anything (systemd reports it and restarts it).
        panel = Panel(
            config.panel,
            on_press=lambda long: inbox.post_threadsafe(Press(long=long)),
            pin_factory=seams.pin_factory or make_pin_factory(config.panel.pin_factory),
        )
        undo.callback(panel.close)
        source = seams.source or make_source(config, resolved, bridge=seams.bridge, root=seams.root)
        make_encoder = make_encoder_factory(
            config, resolved, device=seams.encoder_device, root=seams.root
        )
        pipeline: MediaPipeline
        picture = (config.capture.width, config.capture.height, float(config.capture.fps))
        viewers = Viewers(
            config.stream.ice_servers,
            request_keyframe=lambda: pipeline.request_keyframe(),
            on_count=lambda n: pipeline.set_viewers(n),
            on_left=lambda peer: inbox.post(ViewerLeft(peer)) if inbox.open else None,
            link=LinkSettings.from_config(config.stream, config.encode.bitrate, picture),
            on_rate=lambda bitrate, step: pipeline.set_rate(bitrate, step),
            on_health=lambda peer, stalled: tell_health(inbox, peer, stalled),
            first_keyframe=lambda: pipeline.request_keyframe(urgent=True),
        )
        pipeline = MediaPipeline(
            source,
            make_encoder,
            viewers.publisher(loop),
            keep_time_strip=resolved.source is SourceKind.SYNTHETIC,
        )

        tls = None
        if config.web.tls:
            names = (f"{config.box.name}.local", "localhost", "127.0.0.1", "::1", *lan_hosts)
            tls = load_or_create_tls(keys, names)

        # What a phone or a tablet on the LAN is told: the LAN address given (the demo's --lan),
        # else the box's mDNS name when it listens on every address (the shipped config), else
        # the address it listens on (loopback in the demo and the tests).
        public_host = lan_hosts[0] if lan_hosts else None
        if public_host is None and config.web.host in ("0.0.0.0", "::"):  # noqa: S104
            public_host = f"{config.box.name}.local"
        # The web server binds first, so the box knows its own URL (the built-in relay's origin).
        dispatch = PathDispatch(relay_paths.PREFIXES)
        web = WebServer(
            dispatch,
            config.web.host,
            config.web.port,
            certfile=str(tls.cert) if tls else None,
            keyfile=str(tls.key) if tls else None,
            threads=RELAY_THREADS,
        )
        web.start()
        undo.callback(web.stop)
        relay: Relay | None = None
        if config.relay.url:
            relay_url, token, ca = config.relay.url.rstrip("/"), config.relay.token, None
            viewer_origin = relay_url
        else:
            token = secrets.token_urlsafe(32)
            relay = Relay(relay_config_for_box(token)).start()
            undo.callback(relay.stop)
            dispatch.inner = relay.app
            # its own client reaches it on loopback (the certificate names 127.0.0.1), never at
            # the address it listens on: 0.0.0.0 on the LAN is nobody's address
            relay_url, ca = web.local_url(), (str(tls.cert) if tls else None)
            viewer_origin = web.url(public_host)
        client = RelayClient(relay_url, token, ca_file=ca)

        async def judge(salt: bytes, seat: bytes, name: str | None, handle: str) -> Verdict:
            verdict: Verdict = await inbox.ask(VerifiedKnock(salt, seat, name, handle))
            return verdict

        gate = Gate(
            client,
            identity,
            events,
            GateHooks(
                judge=judge,
                answered=lambda peer, code: inbox.post(ViewerAnswered(peer, code)),
                bye=lambda: inbox.post(ViewerBye()),
                leave=lambda: inbox.post(ViewerCancel()),
                make_peer=viewers.make,
                release_peer=viewers.release,
            ),
        )
        core = Core(
            core_settings(config),
            inbox,
            viewers,
            gate,
            events,
            box_key_hash=identity.key_hash,
            viewer_origin=viewer_origin,
            clock_ok=clock_ok,
            signal=lambda: source.signal.value,
        )
        core.add_listener(lambda old, new: pipeline.set_mode(mode_for(new)))

        def apply_mask(rects: list[Rect]) -> None:
            pipeline.set_frame_filter(Mask(rects).apply if rects else None)

        masks = MaskStore(keys / "mask.json", config.mask.rects, apply_mask)
        core.add_listener(lambda old, new: panel.show(new, core.expiring))
        core.add_expiry_listener(lambda expiring: panel.show(core.state, expiring))
        panel.show(State.IDLE)

        backend = CoreBackend(LoopFacade(loop), core, pipeline, events.entries, masks)
        dispatch.outer = create_app(
            backend,
            password_hash=password_hash(config),
            secure_cookies=tls is not None,
            room_name=config.box.name,
            default_minutes=config.pairing.valid_minutes,
            record=events.record,
            config_warnings=warnings,
        )
        return cls(
            config,
            core,
            inbox,
            viewers,
            pipeline,
            panel,
            web,
            events,
            client,
            Announcer(config.box.name, web.port, config.web.host),
            relay,
            tls_certificate=tls.cert if tls else None,
            pairing_url=web.url(public_host) + "/pairing/",
            fault=fault,
        )

    def viewer_url(self) -> str | None:
        """The open session's link (the QR code's content); call on the loop."""
        session = self.core.session
        return self.core.link(session) if session is not None else None

    async def run(
        self, *, open_session: bool = False, started: Callable[[Box], None] | None = None
    ) -> None:
        """Run until :meth:`stop`; ``open_session``: open one at once (the demo)."""
        try:
            await self.announcer.start()
        except Exception as exc:  # noqa: BLE001 - the page still works by address
            logger.warning("could not announce the pairing page: %s", type(exc).__name__)
        self.pipeline.start()

        def on_started() -> None:
            if self.fault:
                self.core.fault(self.fault)
            elif open_session:
                self.inbox.post(OpenSession(consent=True))
            self._tasks.append(asyncio.ensure_future(systemd.watchdog()))
            systemd.notify("READY=1")
            if started is not None:
                started(self)

        try:
            await self.core.run(on_started)
        finally:
            systemd.notify("STOPPING=1")
            for task in self._tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(self.pipeline.stop)
            await self.announcer.stop()
            await self.client.aclose()
            if self.relay is not None:
                await asyncio.to_thread(self.relay.stop)  # wakes the long polls
            await asyncio.to_thread(self.web.stop)
            await asyncio.to_thread(self.panel.close)
            await asyncio.to_thread(self.events.close)

    def stop(self) -> None:
        """Ask :meth:`run` to finish. Idempotent; call on the loop."""
        self.core.stop()


def core_settings(config: Config) -> CoreSettings:
    """What the core reads of the config, in one place."""
    pairing = config.pairing
    return CoreSettings(
        config.box.name, pairing.valid_minutes, pairing.max_minutes, pre_admit=pairing.pre_admit
    )


def tell_health(inbox: Inbox, peer: ViewerPeer, stalled: bool) -> None:
    """A viewer's path died or came back: a log line, and the core tells the staff."""
    viewer_health(peer, stalled)
    if inbox.open:
        inbox.post(ViewerLink(peer, stalled))
