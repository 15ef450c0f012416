"""The relay's HTTP side (docs/protocol.md, "Relay transport"): Flask, JSON, no sessions.

The box authenticates with its token (compared by hash, in constant time); viewers are anonymous
and rate-limited per address (the one a trusted reverse proxy forwarded, behind one). Every
refusal is a JSON ``{"error": ...}`` with a 4xx status. Nothing here logs a blob, a token, a room
id or an address.

The route tables are by concern: ``page_routes`` (the viewer page and its languages),
``box_routes`` (the box's side), ``room_routes`` (the viewers' side), sharing one
:class:`~.context.RelayContext`; the request checks (``checks``), the limits (``limits``) and
TURN minting (``turn``) do not depend on Flask.
"""

from __future__ import annotations

from flask import Flask, Response

from ..httpd.headers import security_headers
from ..httpd.request import MAX_BODY
from .box_routes import BoxRoutes
from .config import RelayConfig
from .context import RelayContext
from .limits import BucketFactory, memory_buckets
from .page_routes import ViewerPageRoutes
from .room_routes import ViewerRoutes
from .store import ThreadedRoomStore
from .viewer import VIEWER_CSP


def create_relay_app(
    config: RelayConfig,
    rooms: ThreadedRoomStore,
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
    relay = RelayContext(config, rooms, reopen_window, buckets)
    relay.register_errors(app)
    for routes in (ViewerPageRoutes(relay), BoxRoutes(relay), ViewerRoutes(relay)):
        routes.register(app)
    app.after_request(relay_headers)
    return app


def relay_headers(response: Response) -> Response:
    """The one shared policy, with the viewer page's CSP, on every response; the viewer page may
    ask for the microphone (talk-back: only while its button is held)."""
    return security_headers(response, VIEWER_CSP, microphone=True)
