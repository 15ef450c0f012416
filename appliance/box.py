"""The composition root's work: build every part from the config, run them, stop them.

Only this module (and __main__) reads the config to construct objects; every part gets what it
needs through its constructor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .board import resolve
from .capture.base import Source
from .capture.select import make_source
from .config import Config
from .core import Core, OpenSession, Press
from .encode.select import make_encoder_factory
from .panel import Panel, make_pin_factory
from .state import State
from .stream.ice import confine_host_addresses
from .stream.pipeline import MediaPipeline
from .web.app import create_app
from .web.facade import LoopFacade
from .web.server import WebServer

logger = logging.getLogger(__name__)


class LocalOffers:
    """Local signalling's handler: the WSGI threads reach the core through the loop facade."""

    def __init__(self, facade: LoopFacade, core: Core) -> None:
        self._facade = facade
        self._core = core

    def offer(self, body: str) -> tuple[str, str]:
        return self._facade.call(self._core.viewer_offer(body))

    def hangup(self, resource_id: str) -> bool:
        return self._facade.call(self._core.viewer_hangup(resource_id))


@dataclass
class Box:
    """Everything running: core, panel, web server. Made by :func:`run_box`."""

    config: Config
    core: Core
    panel: Panel
    web: WebServer
    urls: dict[str, str] = field(default_factory=dict)


async def run_box(
    config: Config,
    *,
    open_session: bool = False,
    pin_factory: Any = None,
    source: Source | None = None,
    on_started: Callable[[Box], None] | None = None,
) -> None:
    """Build the box from ``config`` and run it until its core stops."""
    confine_host_addresses(config.stream.ice_addresses)
    resolved = resolve(config)
    logger.info(
        "board %s: source %s, encoder %s",
        resolved.board.value,
        resolved.source.value,
        resolved.encoder.value,
    )
    source = source or make_source(config, resolved)
    make_encoder = make_encoder_factory(config)
    core = Core(config, lambda publish: MediaPipeline(source, make_encoder, publish))
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
    app = create_app(LocalOffers(facade, core), status=lambda: facade.run(core.status))
    web = WebServer(app, config.web.host, config.web.port)
    web.start()
    box = Box(config, core, panel, web)
    box.urls["viewer"] = web.url() + "/v/"

    def started() -> None:
        if open_session:
            core.post(OpenSession())
        if on_started is not None:
            on_started(box)

    try:
        await core.run(started)
    finally:
        await asyncio.to_thread(web.stop)
        panel.close()
