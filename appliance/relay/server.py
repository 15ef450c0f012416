"""The relay served by cheroot in a thread: `appliance relay serve`, and in-process for the demo,
a box without an external relay, and the tests."""

from __future__ import annotations

import logging
import threading

from ..web.server import WebServer
from .app import create_relay_app
from .config import RelayConfig, hash_token
from .rooms import Rooms

logger = logging.getLogger(__name__)

#: Long polls hold a thread each: one box and a few viewers per room, a few rooms.
THREADS = 48
REAP_EVERY = 5.0


class RelayServer:
    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.rooms = Rooms()
        self.app = create_relay_app(config, self.rooms)
        self._web = WebServer(
            self.app,
            config.host,
            config.port,
            certfile=config.certfile or None,
            keyfile=config.keyfile or None,
            threads=THREADS,
        )
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self._web.url()

    @property
    def port(self) -> int:
        return self._web.port

    def start(self) -> RelayServer:
        self._web.start()
        self._stop.clear()
        self._reaper = threading.Thread(target=self._reap, name="relay-reaper", daemon=True)
        self._reaper.start()
        logger.info("relay listening on port %d", self._web.port)
        return self

    def _reap(self) -> None:
        while not self._stop.wait(REAP_EVERY):
            self.rooms.reap()

    def stop(self) -> None:
        """Stop serving and forget every room. Idempotent."""
        self._stop.set()
        self.rooms.close_all()  # long polls return now, so the server threads can end
        self._web.stop()
        if self._reaper is not None:
            self._reaper.join(timeout=2)
            self._reaper = None


def relay_config_for_box(
    host: str, token: str, certfile: str = "", keyfile: str = "", port: int = 0
) -> RelayConfig:
    """The built-in relay of a box without an external one: it knows only this box's token."""
    return RelayConfig(
        host=host, port=port, certfile=certfile, keyfile=keyfile, boxes=(hash_token(token),)
    )
