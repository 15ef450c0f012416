"""A production WSGI server (cheroot) in a thread, with TLS when given a certificate."""

from __future__ import annotations

import logging
import threading
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

logger = logging.getLogger(__name__)


def _error_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    logger.log(min(level, logging.WARNING), "web server: %s", msg, exc_info=traceback)


class WebServer:
    """Serves ``app`` on ``host:port`` (port 0 picks a free one) until :meth:`stop`."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        certfile: str | None = None,
        keyfile: str | None = None,
        threads: int = 8,
    ) -> None:
        self._server = wsgi.Server((host, port), app, numthreads=threads, server_name="appliance")
        self._server.shutdown_timeout = 1
        # cheroot prints its errors (a failed TLS handshake, with the client's address) straight
        # to stderr; send them through our logging, whose filter removes addresses
        self._server.error_log = _error_log  # type: ignore[method-assign]
        self.tls = certfile is not None
        if certfile is not None:
            self._server.ssl_adapter = BuiltinSSLAdapter(certfile, keyfile)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.bind_addr[1])

    @property
    def host(self) -> str:
        return str(self._server.bind_addr[0])

    def url(self, host: str | None = None) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host or self.host}:{self.port}"

    def local_url(self) -> str:
        """The URL this machine reaches the server at: loopback when it listens on every
        address (0.0.0.0 or ::), which is no address a client can connect to."""
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(self.host)  # noqa: S104
        return self.url(host)

    def start(self) -> None:
        self._server.prepare()  # binds now, so the port is known before serving
        self._thread = threading.Thread(target=self._server.serve, name="web", daemon=True)
        self._thread.start()
        logger.info("web server listening on port %d", self.port)

    def stop(self) -> None:
        """Stop serving; call from outside the serving thread. Idempotent."""
        if self._thread is not None:
            self._server.stop()
            self._thread.join(timeout=5)
            self._thread = None
