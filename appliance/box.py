"""The composition root's work: build every part from the config, run them, stop them.

``box = await Box.build(config, Seams(...))`` then ``await box.run()``. Only this module, its
builders (:mod:`appliance.assembly`) and __main__ read the config to construct objects; every
part gets what it needs through its constructor, built before it. :class:`Seams`
(:mod:`appliance.seams`) is the single injection point for what stands at the hardware
boundary: tests, the demo and the benchmarks hand fakes there, and the code above runs
unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import systemd
from .assembly import (
    Signalling,
    build_media,
    build_pages,
    build_panel,
    build_server,
    build_signalling,
    build_viewers,
    follow_core,
)
from .board import resolve
from .config import Config, SoundKind
from .core import Core, CoreSettings, Inbox, OpenSession
from .crypto import BoxIdentity
from .discovery import Announcer
from .eventlog import EventLog
from .hearing import SoundSwitch
from .httpd.server import WebServer
from .panel import Panel
from .relay.server import Relay
from .seams import Seams
from .signalling.client import RelayClient
from .stream.compat import install_patches
from .stream.media import Media
from .stream.pipeline import MediaPipeline
from .stream.viewers import Viewers

__all__ = ["Box", "Seams", "build_core", "state_dir"]

logger = logging.getLogger(__name__)


def state_dir(config: Config) -> Path:
    path = Path(config.box.state_dir)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass
class Box:
    """Everything running: core, viewers, media, panel, web server, relay. Made by :meth:`build`."""

    config: Config
    core: Core
    inbox: Inbox
    viewers: Viewers
    media: Media
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
        """Each part built once, before whatever uses it, by its own builder; what a builder
        starts is registered on ``undo`` (stopped in reverse order if a later one fails)."""
        install_patches(config.stream.ice_addresses)  # process-wide, once, before any peer
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
        inbox = Inbox(loop)
        # The pins first: a box whose GPIO cannot be used stops with the reason before it serves
        # anything (systemd reports it and restarts it).
        panel = build_panel(config, seams, inbox, undo)
        media, fanout = build_media(config, resolved, seams, keys, loop, undo)
        viewers = build_viewers(config, media, fanout, inbox)
        served = build_server(config, keys, lan_hosts, undo)
        signalling = build_signalling(config, served, identity, events, inbox, viewers, undo)
        core = build_core(config, inbox, viewers, signalling, events, identity, seams, media)
        follow_core(core, media, panel)
        build_pages(config, loop, core, media, events, served, warnings)
        return cls(
            config,
            core,
            inbox,
            viewers,
            media,
            panel,
            served.web,
            events,
            signalling.client,
            Announcer(config.box.name, served.web.port, config.web.host),
            signalling.relay,
            tls_certificate=served.tls.cert if served.tls else None,
            pairing_url=served.web.url(served.public_host) + "/pairing/",
            fault=fault,
        )

    @property
    def pipeline(self) -> MediaPipeline:
        """The media thread's pipeline (logs, tests and the bench read its counters)."""
        return self.media.pipeline

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
        self.media.start()

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
            await asyncio.to_thread(self.media.stop)
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
    have = {
        SoundSwitch.SCANNER: config.audio.source is not SoundKind.OFF,
        SoundSwitch.MICROPHONE: bool(config.room.microphone),
        SoundSwitch.TALKBACK: bool(config.room.speaker),
    }
    return CoreSettings(
        config.box.name,
        pairing.valid_minutes,
        pairing.max_minutes,
        pre_admit=pairing.pre_admit,
        switches=frozenset(s for s, present in have.items() if present),
    )


def build_core(
    config: Config,
    inbox: Inbox,
    viewers: Viewers,
    signalling: Signalling,
    events: EventLog,
    identity: BoxIdentity,
    seams: Seams,
    media: Media,
) -> Core:
    """The core: the state machine, the session, the one writer of both."""
    clock_ok = seams.clock_ok
    if clock_ok is None:
        from .clock import is_synchronised

        clock_ok = is_synchronised
    source = media.pipeline.source
    return Core(
        core_settings(config),
        inbox,
        viewers,
        signalling.gate,
        events,
        box_key_hash=identity.key_hash,
        viewer_origin=signalling.viewer_origin,
        clock_ok=clock_ok,
        signal=lambda: source.signal.value,
        sound=lambda: media.sound.signal.value if media.sound is not None else "off",
    )
