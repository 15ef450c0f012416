"""`appliance relay serve`: the relay's calls (calls.py) served by aiohttp, where a waiting long
poll is a task awaiting its room's bell and holds no thread (docs/relay.md says why aiohttp).

Its event loop runs in a thread of its own (started and stopped from outside, like the Flask
relay's cheroot server), so the CLI, the tests and the load test drive both alike. Every step of
the store runs on the loop: a store in memory's at once (a few dictionary operations under a lock
no one holds for long), a Redis store's through redis-py's asyncio client, made on this loop, each
round trip awaited (no thread waits on Redis: a pool of threads did, and above a few hundred
steps a second their handing the interpreter's lock to and fro cost more than the steps,
docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Self

from aiohttp import web

from ..httpd.headers import policy
from ..httpd.request import MAX_BODY
from .calls import ROUTES, Route, serve_async
from .config import RelayConfig
from .context import Answer, RelayContext, Req
from .limits import ASYNC_POLLS_TOTAL
from .server import REOPEN_WINDOW, RelayRooms
from .stores import OnLoop, Store
from .viewer import VIEWER_CSP

logger = logging.getLogger(__name__)

#: How long stopping waits for requests in progress (the long polls were woken already).
SHUTDOWN = 3.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AsyncRelayServer(RelayRooms):
    """The relay on aiohttp, on ``config``'s host and port (TLS with its certificate, if set)."""

    def __init__(self, config: RelayConfig, store: Store | None = None) -> None:
        super().__init__(config, store)
        self._on_loop: OnLoop | None = None
        self.context: RelayContext | None = None  # made on the loop, with the store's side there
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- the app ---------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[refusals])
        for route in ROUTES:
            if route.method == "GET":  # and HEAD, as Flask answers it
                app.router.add_get(route.path, self._handler(route))
            else:
                app.router.add_route(route.method, route.path, self._handler(route))
        app.on_response_prepare.append(headers)
        return app

    def _handler(self, route: Route) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                body = await request.read() if request.body_exists else b""
            except web.HTTPRequestEntityTooLarge:
                return respond(Answer(413, {"error": "too-large"}))
            req = Req(
                params=dict(request.match_info),
                query={key: request.query[key] for key in request.query},
                authorization=request.headers.get("Authorization", ""),
                forwarded=tuple(request.headers.getall("X-Forwarded-For", ())),
                remote=request.remote or "",
                body=body,
            )
            assert self.context is not None
            return respond(await serve_async(self.context, route, req))

        return handle

    # -- serving ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self.config.certfile else "http"
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "") else self.config.host  # noqa: S104
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> Self:
        started = threading.Event()
        failed: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # noqa: BLE001 - told to start(), which raises it
                failed.append(exc)
                with contextlib.suppress(Exception):  # what it made: the store's side, the app
                    loop.run_until_complete(self._close())
                loop.close()
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=main, name="relay-aio", daemon=True)
        self._thread.start()
        started.wait()
        if failed:
            self._thread.join()
            raise failed[0]
        super().start()
        logger.info("relay listening on port %d", self.port)
        return self

    async def _open(self) -> None:
        on_loop = self._on_loop = self.store.asynchronous()
        self.context = RelayContext(
            self.config, on_loop.rooms, REOPEN_WINDOW, on_loop.buckets, ASYNC_POLLS_TOTAL
        )
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=SHUTDOWN)
        await self._runner.setup()
        context = None
        if self.config.certfile:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.config.certfile, self.config.keyfile or None)
        site = web.TCPSite(
            self._runner, self.config.host, self.config.port, ssl_context=context, backlog=1024
        )
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port

    async def _close(self) -> None:
        if self._on_loop is not None:
            await self._on_loop.wake()  # the polls answer while the server stops
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._on_loop is not None:
            await self._on_loop.close()
            self._on_loop = None

    def stop(self) -> None:
        """Wake every long poll, stop serving, forget a store in memory. Idempotent."""
        super().stop()
        if self._loop is not None and self._thread is not None:
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=SHUTDOWN + 5)
        self._loop = self._thread = None


def respond(answer: Answer) -> web.StreamResponse:
    if answer.file is not None:
        return web.FileResponse(answer.file, headers=answer.headers)
    if answer.body is None:
        return web.Response(status=answer.status, headers=answer.headers)
    return web.json_response(
        answer.body, status=answer.status, headers=answer.headers, dumps=compact
    )


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@web.middleware
async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (no such path, method, a body too large) as JSON, like Flask's."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not-found", 413: "too-large"}.get(exc.status, "bad-request")
        return respond(Answer(exc.status, {"error": code}))


async def headers(request: web.Request, response: web.StreamResponse) -> None:
    """The one shared policy, with the viewer page's CSP, on every response; the viewer page may
    ask for the microphone (talk-back: only while its button is held)."""
    for name, value in policy(VIEWER_CSP, request.secure, microphone=True).items():
        if name != "Content-Security-Policy" or name not in response.headers:
            response.headers[name] = value
