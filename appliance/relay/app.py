"""The relay's calls (calls.py) served by Flask: the relay built into a box, mounted beside its
pairing page in the box's web server (one port, one certificate), where each long poll waits in
one of its server's threads and the store's steps (coroutines that never suspend here: the store
in memory, or Redis through its plain client) run in the request's thread. `appliance relay
serve` serves the same calls with aiohttp (aioserver.py)."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from ..httpd.headers import security_headers
from ..httpd.request import MAX_BODY
from .awaitable import Immediate
from .calls import ROUTES, Route, serve
from .config import RelayConfig
from .context import Answer, RelayContext, Req
from .limits import BucketFactory, memory_buckets
from .store import Bell, RoomStore
from .stores import immediate
from .viewer import VIEWER_CSP

logger = logging.getLogger(__name__)


def create_relay_app(
    config: RelayConfig,
    rooms: RoomStore,
    *,
    reopen_window: float = 0.0,
    buckets: BucketFactory = memory_buckets,
) -> Flask:
    """The relay's app. ``reopen_window``: for this long after it starts, a room it does not
    know may be one it forgot by restarting, which its box will open again (a relay of its own);
    0 for a box's built-in relay, whose restart is the box's (its rooms are gone for good).
    ``buckets`` makes its rate-limit buckets (in memory unless the store is shared)."""
    app = Flask(__name__, static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY)
    relay = RelayContext(config, Immediate(rooms), reopen_window, immediate(buckets))
    for route in ROUTES:
        app.add_url_rule(
            flask_path(route.path), route.name, view(relay, route, rooms), methods=[route.method]
        )
    app.errorhandler(413)(too_large)
    app.errorhandler(HTTPException)(http_error)
    app.errorhandler(Exception)(unexpected)
    app.after_request(relay_headers)
    return app


def flask_path(pattern: str) -> str:
    """``/api/rooms/{room}`` as Flask writes it: ``/api/rooms/<room>``."""
    return re.sub(r"\{(\w+)\}", r"<\1>", pattern)


def view(relay: RelayContext, route: Route, bell: Bell) -> Any:
    def handle(**params: str) -> Response:
        req = Req(
            params=params,
            query=request.args,
            authorization=request.headers.get("Authorization", ""),
            forwarded=tuple(request.headers.getlist("X-Forwarded-For")),
            remote=request.remote_addr or "",
            body=request.get_data(cache=True),
        )
        return flask_response(serve(relay, route, req, bell))

    return handle


def flask_response(answer: Answer) -> Response:
    if answer.file is not None:
        response = send_file(answer.file)
    elif answer.body is None:
        response = Response("", answer.status)
    else:
        response = jsonify(answer.body)
        response.status_code = answer.status
    response.headers.update(answer.headers)
    return response


def relay_headers(response: Response) -> Response:
    """The one shared policy, with the viewer page's CSP, on every response; the viewer page may
    ask for the microphone (talk-back: only while its button is held)."""
    return security_headers(response, VIEWER_CSP, microphone=True)


def too_large(_: Any) -> tuple[Response, int]:
    return jsonify({"error": "too-large"}), 413


def http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    return jsonify({"error": "not-found" if status == 404 else "bad-request"}), status


def unexpected(exc: Exception) -> tuple[Response, int]:
    """Anything the calls did not answer themselves: 503. Flask's own handler would log the
    request's path, which holds the room's id: this logs the error's type and the pattern."""
    rule = request.url_rule.rule if request.url_rule is not None else "?"
    logger.error("the relay could not answer %s %s: %s", request.method, rule, type(exc).__name__)
    response = jsonify({"error": "unavailable"})
    response.headers["Retry-After"] = "2"
    return response, 503
