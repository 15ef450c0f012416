"""A production WSGI server (cheroot) in a thread, with TLS when given a certificate.

cheroot's own accept loop is replaced by :mod:`.front`: handshakes and request heads are read
without a thread, so a silent or slow client holds no worker and freezes nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from . import front as front_mod
from . import request
from .addresses import parse_networks

logger = logging.getLogger(__name__)


def _error_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    logger.log(min(level, logging.WARNING), "web server: %s", msg, exc_info=traceback)


class _Server(wsgi.Server):
    """cheroot's WSGI server whose connections go through a :class:`front_mod.Front`."""

    front: front_mod.Front

    def prepare(self) -> None:
        super().prepare()
        # cheroot's own selector loop, replaced by one whose accepting and waiting is the front's
        old: Any = vars(self)["_connections"]
        vars(self)["_connections"] = front_mod.Manager(self, self.front)
        vars(old)["_selector"].close()

    def process_conn(self, conn: Any) -> None:
        if isinstance(conn, front_mod.Waiting):
            self.front.advance(conn)
        else:
            self.dispatch(conn)

    def dispatch(self, conn: Any) -> None:
        """A connection whose request has arrived: to a worker."""
        super().process_conn(conn)


class WebServer:
    """Serves ``app`` on ``host:port`` (port 0 picks a free one) until :meth:`stop`.

    ``per_address``: open connections per client address (an IPv6 one by its /64), except from
    ``exempt`` networks (a reverse proxy in front, whose clients share its address)."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        certfile: str | None = None,
        keyfile: str | None = None,
        threads: int = 8,
        *,
        per_address: int = front_mod.PER_ADDRESS,
        exempt: Sequence[str] = (),
    ) -> None:
        self._server = _Server(
            (host, port),
            app,
            numthreads=threads,
            server_name="appliance",
            request_queue_size=128,  # cheroot's 5 drops connections that arrive together
        )
        self._server.max_request_header_size = request.MAX_HEAD
        self._server.shutdown_timeout = 1
        # idle keep-alive connections cost no thread here, only a file descriptor
        self._server.keep_alive_conn_limit = 128
        # cheroot prints its errors (a failed TLS handshake, with the client's address) straight
        # to stderr; send them through our logging, whose filter removes addresses
        self._server.error_log = _error_log  # type: ignore[method-assign]
        self.tls = certfile is not None
        adapter = None
        if certfile is not None:
            adapter = BuiltinSSLAdapter(certfile, keyfile)
            self._server.ssl_adapter = adapter
        self._server.front = front_mod.Front(
            self._server,
            adapter.context if adapter is not None else None,
            adapter.get_environ if adapter is not None else None,
            per_address=per_address,
            exempt=parse_networks(exempt),
        )
        self._thread: threading.Thread | None = None

    @property
    def front(self) -> front_mod.Front:
        return self._server.front

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
