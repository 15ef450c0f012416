"""The server's front: no thread waits for a client that is slow to speak.

cheroot does the TLS handshake in its accept loop (one silent connection froze every page for
the handshake timeout) and hands a connection to a worker thread as soon as it is readable (a
client dribbling its headers held a thread each). Here the selector thread that accepts also
does, without blocking, everything a client controls the pace of: the TLS handshake, the request
head and its whole body (:mod:`.request` says what is refused instead: a chunked body, one over
64 KiB). A worker gets a connection only once its request has arrived, so a worker never waits
on a client. A connection that has not delivered its whole request within ``HEAD_TIMEOUT``
(``HANDSHAKE_TIMEOUT`` for the handshake) is closed: one deadline for the request, not one per
read; each client address (an
IPv6 one by its /64) holds at most ``PER_ADDRESS`` connections, and the server ``MAX_OPEN``.
Keep-alive connections come back here between requests, so the rules hold for every request.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from cheroot.connections import ConnectionManager
from cheroot.makefile import MakeFile
from cheroot.server import HTTPConnection

from . import request
from .addresses import Networks, address_key, in_networks, site_key

logger = logging.getLogger(__name__)

#: Seconds a new TLS connection has to finish its handshake.
HANDSHAKE_TIMEOUT = 5.0
#: Seconds a connection has to send its whole request (head and body), from its accept or its
#: previous response; also how long an idle keep-alive connection is kept.
HEAD_TIMEOUT = 10.0
#: Open connections per client address (an IPv6 client by its /64), per IPv6 site (its /56,
#: which holds 256 /64s), and in all.
PER_ADDRESS, PER_SITE, MAX_OPEN = 32, 64, 512
#: The box's own clients (its relay client, to the relay built into the same server): never
#: refused, never counted against an address.
OWN = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


class PrefixedSocket:
    """A connection's socket with the bytes the front already read put back in front of it."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.prefix = b""

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if self.prefix:
            n = min(nbytes or len(buffer), len(self.prefix))
            buffer[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        return self._sock.recv_into(buffer, nbytes, flags)

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self.prefix:
            data, self.prefix = self.prefix[:size], self.prefix[size:]
            return data
        return self._sock.recv(size, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Connection(HTTPConnection):
    """cheroot's connection, giving its address's slot back when it closes."""

    on_close: Callable[[], None] | None = None
    closed = False
    #: What the caps count it under (its address's key).
    key = ""

    def close(self) -> None:
        if self.closed:  # the front and cheroot may both close it
            return
        self.closed = True
        try:
            super().close()
        except OSError:
            pass  # the client already went away
        finally:
            release, self.on_close = self.on_close, None
            if release is not None:
                release()


class Waiting:
    """A connection whose request is still arriving: the selector holds it, no thread does."""

    def __init__(self, conn: Connection, budget: float, timeout: float, handshaken: bool) -> None:
        self.conn = conn
        self.handshaken = handshaken
        self.data = bytearray()
        self.started = time.time()
        self.expire_after(budget, timeout)

    def expire_after(self, budget: float, timeout: float) -> None:
        # cheroot's expiry pass closes what was last used more than ``server.timeout`` ago
        self.last_used = self.started + budget - timeout

    def fileno(self) -> int:
        return int(self.conn.socket.fileno())

    def close(self) -> None:
        self.conn.close()


class Front:
    """Accepting, TLS handshakes, request heads and the connection caps of one server."""

    def __init__(
        self,
        server: Any,
        context: ssl.SSLContext | None,
        env: Callable[[Any], dict[str, Any]] | None,
        per_address: int = PER_ADDRESS,
        max_open: int = MAX_OPEN,
        exempt: Networks = (),
    ) -> None:
        self._server = server
        self._context, self._env = context, env
        self._per_address, self._max_open, self._exempt = per_address, max_open, exempt
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        self._sites: dict[str, int] = {}
        self._count = 0
        self._waiting: OrderedDict[int, Waiting] = OrderedDict()
        self.manager: Manager | None = None

    # -- slots -----------------------------------------------------------------------------------

    def _admit(self, address: str) -> str | None:
        """A slot for a new connection from ``address`` (its key), or None: refused.

        Past an address's or a site's share it is refused. At the server's cap the newcomer
        takes the slot of the oldest waiting connection of whoever holds the most, unless the
        newcomer would then hold as many itself: so the cap cannot be filled by a few
        addresses against everyone else, and the box's own client always gets in."""
        key, site = address_key(address), site_key(address)
        own = address in OWN
        capped = not own and not in_networks(address, self._exempt)
        with self._lock:
            if capped and (
                self._open.get(key, 0) >= self._per_address or self._sites.get(site, 0) >= PER_SITE
            ):
                return None
            victim = self._victim(key, own) if self._count >= self._max_open else None
            if self._count >= self._max_open and victim is None:
                return None
        if victim is not None:
            self._evict(victim)
        with self._lock:
            self._open[key] = self._open.get(key, 0) + 1
            self._sites[site] = self._sites.get(site, 0) + 1
            self._count += 1
        return key

    def _victim(self, key: str, own: bool) -> Waiting | None:
        """The oldest waiting connection of the key holding the most (under the lock)."""
        best: Waiting | None = None
        most = -1
        for waiting in self._waiting.values():  # oldest first
            held = self._open.get(waiting.conn.key, 0)
            if held > most:
                best, most = waiting, held
        if best is None or (not own and most <= self._open.get(key, 0) + 1):
            return None
        return best

    def _evict(self, waiting: Waiting) -> None:
        logger.info("web server: at the connection cap, the oldest of the most held gives way")
        if self.manager is not None:
            self.manager.unregister(waiting)
        self._drop(waiting)

    def _release(self, key: str, site: str) -> None:
        with self._lock:
            self._count -= 1
            for table, name in ((self._open, key), (self._sites, site)):
                left = table.get(name, 1) - 1
                if left > 0:
                    table[name] = left
                else:
                    table.pop(name, None)

    # -- the selector thread ----------------------------------------------------------------------

    def accept(self, listener: socket.socket, manager: Manager) -> None:
        try:
            sock, addr = listener.accept()
        except OSError:  # timeout, EAGAIN, EINTR, the listener closed
            return
        address = str(addr[0]) if isinstance(addr, tuple) else ""
        key = self._admit(address)
        if key is None:
            sock.close()
            return
        try:
            sock.setblocking(False)
            tls = self._context is not None
            raw: socket.socket = sock
            if self._context is not None:
                raw = self._context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
        except (OSError, ValueError):
            sock.close()
            self._release(key, site_key(address))
            return
        conn = Connection(self._server, PrefixedSocket(raw), MakeFile)
        conn.remote_addr, conn.remote_port = address, addr[1] if isinstance(addr, tuple) else 0
        conn.ssl_env = {}
        conn.key, site = key, site_key(address)
        conn.on_close = lambda: self._release(key, site)
        budget = HANDSHAKE_TIMEOUT if tls else HEAD_TIMEOUT
        self._wait(Waiting(conn, budget, self._server.timeout, handshaken=not tls), manager)

    def advance(self, waiting: Waiting) -> None:
        """The connection is readable (or writable, mid-handshake): take what it sent."""
        conn = waiting.conn
        sock = conn.socket._sock
        events = selectors.EVENT_READ
        try:
            if not waiting.handshaken:
                sock.do_handshake()
                waiting.handshaken = True
                conn.ssl_env = self._env(sock) if self._env is not None else {}
                waiting.expire_after(HEAD_TIMEOUT, self._server.timeout)
            while request.judge(waiting.data) == request.WAIT:
                chunk = sock.recv(65536)
                if not chunk:
                    self._drop(waiting)
                    return
                waiting.data += chunk
        except ssl.SSLWantWriteError:
            events = selectors.EVENT_WRITE
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            pass
        except (OSError, ValueError):
            self._drop(waiting)
            return
        if not self._decided(waiting):
            assert self.manager is not None
            self.manager.register(waiting, events)

    # -- both threads -----------------------------------------------------------------------------

    def come_back(self, conn: Connection, manager: Manager) -> None:
        """A worker answered and keeps the connection: wait here for its next request."""
        data = b""
        if conn.rfile.has_data():  # the client sent more than one request at once
            data = conn.rfile.read1(len(conn.rfile.peek(1)))
        sock = conn.socket
        data, sock.prefix = data + sock.prefix, b""
        try:
            sock._sock.setblocking(False)
        except OSError:
            conn.close()
            return
        waiting = Waiting(conn, HEAD_TIMEOUT, self._server.timeout, handshaken=True)
        waiting.data += data
        self._wait(waiting, manager)

    def _wait(self, waiting: Waiting, manager: Manager) -> None:
        if self._decided(waiting):
            return
        with self._lock:
            self._waiting[id(waiting)] = waiting
        manager.register(waiting, selectors.EVENT_READ)

    def _decided(self, waiting: Waiting) -> bool:
        """Dispatch or refuse the request if it is complete or refusable; False: wait on."""
        verdict = request.judge(waiting.data)
        if verdict == request.WAIT:
            return False
        if verdict == request.COMPLETE:
            self._dispatch(waiting)
        else:
            self._refuse(waiting, verdict)
        return True

    def _refuse(self, waiting: Waiting, status: int) -> None:
        """Answer ``status`` without a worker (the socket is non-blocking and the answer small:
        one send, or nothing if the client's window is shut) and close."""
        logger.info("web server: a request refused before any worker (%d)", status)
        if waiting.handshaken:
            try:
                waiting.conn.socket._sock.send(request.refusal(status))
            except (OSError, ValueError):
                pass  # the client is not reading: it gets the close alone
        self._drop(waiting)

    def _dispatch(self, waiting: Waiting) -> None:
        with self._lock:
            self._waiting.pop(id(waiting), None)
        conn = waiting.conn
        conn.socket.prefix = bytes(waiting.data)
        try:
            conn.socket._sock.settimeout(self._server.timeout)
        except OSError:
            conn.close()
            return
        conn.last_used = time.time()
        self._server.dispatch(conn)

    def _drop(self, waiting: Waiting) -> None:
        with self._lock:
            self._waiting.pop(id(waiting), None)
        waiting.close()

    def forget(self, waiting: Waiting) -> None:
        """cheroot's expiry pass closed it."""
        with self._lock:
            self._waiting.pop(id(waiting), None)


class Manager(ConnectionManager):
    """cheroot's selector loop with :class:`Front` doing the accepting and the waiting."""

    def __init__(self, server: Any, front: Front) -> None:
        super().__init__(server)
        self._front = front
        front.manager = self
        self._waiting_on: Any = vars(self)["_selector"]  # cheroot's selector (not in its stubs)

    def _from_server_socket(self, server_socket: socket.socket) -> None:
        self._front.accept(server_socket, self)
        return None

    def put(self, conn: Connection) -> None:
        self._front.come_back(conn, self)

    def unregister(self, waiting: Waiting) -> None:
        try:
            self._waiting_on.unregister(waiting.fileno())
        except (KeyError, ValueError, OSError):
            pass  # not registered (between a worker and the selector), or already closed

    def register(self, waiting: Waiting, events: int) -> None:
        try:
            self._waiting_on.register(waiting.fileno(), events, data=waiting)
        except (KeyError, ValueError, OSError):
            self._front._drop(waiting)

    def _expire(self, threshold: float) -> None:
        for _, conn in list(self._waiting_on.connections):
            if isinstance(conn, Waiting) and conn.last_used < threshold:
                self._front.forget(conn)
        vars(ConnectionManager)["_expire"](self, threshold)
