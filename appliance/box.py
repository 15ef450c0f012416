"""The composition root's work: build every part from the config, run them, stop them.

Only this module (and __main__) reads the config to construct objects; every part gets what it
needs through its constructor.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import systemd
from .board import resolve
from .capture.base import Source
from .capture.mask import Mask
from .capture.select import make_source
from .config import Config
from .core import Command, Core, Press
from .crypto import BoxIdentity, load_or_create_tls
from .discovery import Announcer
from .encode.select import make_encoder_factory
from .eventlog import EventLog
from .httpd.dispatch import PathDispatch
from .httpd.server import WebServer
from .panel import Panel, make_pin_factory
from .passwords import hash_password
from .relay import paths as relay_paths
from .relay.server import THREADS as RELAY_THREADS
from .relay.server import Relay, relay_config_for_box
from .session.session import Session
from .signalling.client import RelayClient
from .signalling.host import SessionHost
from .state import State
from .stream.ice import confine_host_addresses
from .stream.pipeline import MediaPipeline
from .web.app import create_app
from .web.backend import CoreBackend, MaskStore
from .web.facade import LoopFacade

logger = logging.getLogger(__name__)


@dataclass
class Box:
    """Everything running: core, panel, web server, relay. Made by :func:`run_box`."""

    config: Config
    core: Core
    panel: Panel
    web: WebServer
    events: EventLog
    relay: Relay | None = None
    #: "pairing": the staff's page; "viewer": the open session's link (the QR code's content).
    urls: dict[str, str] = field(default_factory=dict)
    tls_certificate: Path | None = None


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


async def run_box(
    config: Config,
    *,
    open_session: bool = False,
    pin_factory: Any = None,
    source: Source | None = None,
    on_started: Callable[[Box], None] | None = None,
    on_session: Callable[[Box, Session], None] | None = None,
    clock_ok: Callable[[], bool] | None = None,
    lan_hosts: tuple[str, ...] = (),
    fault: str = "",
) -> None:
    """Build the box from ``config`` and run it until its core stops.

    With ``relay.url`` empty the box runs the relay itself (the demo, or a clinic without one),
    on the web server's host, and its own client reaches it through the same HTTP protocol.
    ``clock_ok`` says whether sessions may open (default: the system clock is synchronised).
    ``fault`` (a bad appliance.toml, from first boot) puts the box in ERROR: the LED shows the
    fault pattern and the pairing page the message; nothing streams until it is fixed.
    """
    confine_host_addresses(config.stream.ice_addresses)
    resolved = resolve(config)
    logger.info(
        "board %s: source %s, encoder %s",
        resolved.board.value,
        resolved.source.value,
        resolved.encoder.value,
    )
    if config.pairing.pre_admit:
        logger.warning("pairing.pre_admit is on: viewers are admitted without the staff")
    keys = state_dir(config)
    identity = BoxIdentity.load_or_create(keys)
    events = EventLog(keys / "events.jsonl")
    if clock_ok is None:
        from .clock import is_synchronised

        clock_ok = is_synchronised

    source = source or make_source(config, resolved)
    make_encoder = make_encoder_factory(config)
    pipelines: list[MediaPipeline] = []

    def make_pipeline(publish: Any) -> MediaPipeline:
        pipeline = MediaPipeline(source, make_encoder, publish)
        pipelines.append(pipeline)
        return pipeline

    def apply_mask(rects: list[tuple[float, float, float, float]]) -> None:
        for pipeline in pipelines:
            pipeline.set_frame_filter(Mask(rects).apply if rects else None)

    tls = None
    if config.web.tls:
        names = (f"{config.box.name}.local", "localhost", "127.0.0.1", *lan_hosts)
        tls = load_or_create_tls(keys, names)

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
    relay: Relay | None = None
    if config.relay.url:
        relay_url, token, ca = config.relay.url.rstrip("/"), config.relay.token, None
        viewer_origin = relay_url
    else:
        token = secrets.token_urlsafe(32)
        relay = Relay(relay_config_for_box(token)).start()
        dispatch.inner = relay.app
        relay_url, ca = web.url(), (str(tls.cert) if tls else None)
        viewer_origin = web.url(lan_hosts[0] if lan_hosts else None)
    client = RelayClient(relay_url, token, ca_file=ca)

    core = Core(
        config,
        make_pipeline,
        box_key_hash=identity.key_hash,
        events=events,
        clock_ok=clock_ok,
        viewer_origin=viewer_origin,
    )
    core.host = SessionHost(core, client, identity, events)
    masks = MaskStore(keys / "mask.json", config.mask.rects, apply_mask)

    if pin_factory is None:
        pin_factory = make_pin_factory(config.panel.pin_factory)
    panel = Panel(
        config.panel,
        on_press=lambda long: core.post_threadsafe(Press(long=long)),
        pin_factory=pin_factory,
    )
    core.add_listener(lambda old, new: panel.show(new))
    panel.show(State.IDLE)

    loop = asyncio.get_running_loop()
    facade = LoopFacade(loop)
    backend = CoreBackend(facade, core, events.entries, masks)
    dispatch.outer = create_app(
        backend,
        password_hash=password_hash(config),
        secure_cookies=tls is not None,
        room_name=config.box.name,
        default_minutes=config.pairing.valid_minutes,
        record=events.record,
    )
    box = Box(config, core, panel, web, events, relay, tls_certificate=tls.cert if tls else None)
    box.urls["pairing"] = web.url(lan_hosts[0] if lan_hosts else None) + "/pairing/"

    def session_opened(session: Session) -> None:
        box.urls["viewer"] = core.link(session)
        if on_session is not None:
            on_session(box, session)

    core.add_session_listener(session_opened)

    announcer = Announcer(config.box.name, web.port, config.web.host)
    try:
        await announcer.start()
    except Exception as exc:  # noqa: BLE001 - the page still works by address
        logger.warning("could not announce the pairing page: %s", type(exc).__name__)
    watchdog: asyncio.Task[None] | None = None

    def started() -> None:
        nonlocal watchdog
        if fault:
            core.fault(fault)
        elif open_session:
            core.post(Command("open", {"consent": True}))
        watchdog = asyncio.ensure_future(systemd.watchdog())
        systemd.notify("READY=1")
        if on_started is not None:
            on_started(box)

    try:
        await core.run(started)
    finally:
        systemd.notify("STOPPING=1")
        if watchdog is not None:
            watchdog.cancel()
        await announcer.stop()
        await client.aclose()
        if relay is not None:
            await asyncio.to_thread(relay.stop)  # wakes the long polls, so the server can stop
        await asyncio.to_thread(web.stop)
        panel.close()
