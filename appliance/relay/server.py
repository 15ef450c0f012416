"""The relay's rooms with their reaper, and the Flask relay served by cheroot in a thread: in
process for the demo, a box without an external relay, and the tests. `appliance relay serve`
runs the asynchronous server (aioserver.py) on the same rooms and calls."""

from __future__ import annotations

import logging
import threading
from typing import Self

from ..httpd.server import WebServer
from .app import create_relay_app
from .config import RelayConfig, hash_token
from .stores import Store, build_store

logger = logging.getLogger(__name__)

#: Long polls hold a thread each (the box's own relay): one box and a few viewers per room.
THREADS = 48
REAP_EVERY = 5.0
#: A relay of its own, just restarted, does not know the rooms its boxes will open again: for
#: this long, a room it does not know is not known to be gone (a box reopens within its backoff,
#: at most 15 s, plus a poll).
REOPEN_WINDOW = 60.0


class RelayRooms:
    """The relay's store and the reaper that forgets expired rooms, whichever server serves
    them. Its store is the one ``config`` names (memory by default), unless one is given."""

    def __init__(self, config: RelayConfig, store: Store | None = None) -> None:
        self.config = config
        self.store = store if store is not None else build_store(config)
        self.rooms = self.store.rooms
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def start(self) -> Self:
        self._stop.clear()
        self._reaper = threading.Thread(target=self._reap, name="relay-reaper", daemon=True)
        self._reaper.start()
        return self

    def _reap(self) -> None:
        failing = False
        while not self._stop.wait(REAP_EVERY):
            try:
                self.rooms.reap()
            except Exception as exc:  # noqa: BLE001 - the shared store away: try at the next pass
                if not failing:
                    logger.warning("the relay could not end expired rooms: %s", type(exc).__name__)
                failing = True
            else:
                failing = False

    def stop(self) -> None:
        """Wake every long poll; forget every room of a store in memory. Idempotent."""
        self._stop.set()
        self.rooms.close_all()
        if self._reaper is not None:
            self._reaper.join(timeout=2)
            self._reaper = None


class Relay(RelayRooms):
    """The relay's rooms and its Flask app (calls.py served by app.py). Mounted into the box's
    web server (a box without an external relay: one port, one certificate, the same protocol),
    or served by its own cheroot :class:`RelayServer`."""

    def __init__(
        self, config: RelayConfig, reopen_window: float = 0.0, store: Store | None = None
    ) -> None:
        super().__init__(config, store)
        self.app = create_relay_app(
            config, self.rooms, reopen_window=reopen_window, buckets=self.store.buckets
        )


class RelayServer(Relay):
    """The Flask relay on its own cheroot server, as a box serves it, without the box (the tests:
    `appliance relay serve` is aioserver.py's)."""

    def __init__(self, config: RelayConfig, store: Store | None = None) -> None:
        super().__init__(config, REOPEN_WINDOW, store)
        self._web = WebServer(
            self.app,
            config.host,
            config.port,
            certfile=config.certfile or None,
            keyfile=config.keyfile or None,
            threads=THREADS,
            exempt=config.trusted_proxies,
        )

    @property
    def url(self) -> str:
        return self._web.url()

    @property
    def port(self) -> int:
        return self._web.port

    def start(self) -> RelayServer:
        self._web.start()
        super().start()
        logger.info("relay listening on port %d", self._web.port)
        return self

    def stop(self) -> None:
        """Stop serving and forget every room. Idempotent."""
        super().stop()  # long polls return now, so the server threads can end
        self._web.stop()


def relay_config_for_box(token: str) -> RelayConfig:
    """The built-in relay of a box without an external one: it knows only this box's token."""
    return RelayConfig(boxes=(hash_token(token),))
