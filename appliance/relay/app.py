"""The relay's HTTP side (docs/protocol.md, "Relay transport"): Flask, JSON, no sessions.

The box authenticates with its token (compared by hash, in constant time); viewers are anonymous
and rate-limited per address. Nothing here logs a blob, a token, a room id or an address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from typing import Any

from flask import Flask, Response, jsonify, request, send_from_directory

from ..httpd.headers import security_headers
from . import paths
from .config import RelayConfig
from .limits import Buckets
from .rooms import RelayError, Rooms, room_hash
from .viewer import VIEWER_CSP, VIEWER_DIR

logger = logging.getLogger(__name__)

#: Unauthenticated requests per client address: a bucket of BURST refilled at RATE per second.
RATE, BURST = 2.0, 40
KNOCK_RATE, KNOCK_BURST = 0.2, 5  # knocks: one every 5 s after a burst of 5
_ROOM_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def mint_turn(config: RelayConfig, room: str, ttl: float) -> list[dict[str, Any]]:
    """coturn's REST scheme (``use-auth-secret``): username ``<expiry>:<tag>``, password
    base64(HMAC-SHA1(secret, username))."""
    if not config.turn.secret or not config.turn.urls:
        return []
    expiry = int(time.time() + max(1.0, min(ttl, config.turn.ttl)))
    username = f"{expiry}:{room_hash(room)[:8]}"
    digest = hmac.new(config.turn.secret.encode(), username.encode(), hashlib.sha1).digest()
    credential = base64.b64encode(digest).decode()
    return [{"urls": list(config.turn.urls), "username": username, "credential": credential}]


def create_relay_app(config: RelayConfig, rooms: Rooms) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    token_hashes = [bytes.fromhex(h) for h in config.boxes]
    viewers = Buckets(RATE, BURST)
    knocks = Buckets(KNOCK_RATE, KNOCK_BURST)

    def box() -> str:
        header = request.headers.get("Authorization", "")
        presented = hashlib.sha256(header.removeprefix("Bearer ").encode()).digest()
        ok = False
        for known in token_hashes:
            ok |= hmac.compare_digest(presented, known)
        if not header.startswith("Bearer ") or not ok:
            raise RelayError(401, "unauthorized")
        return presented.hex()

    def viewer_token() -> str:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise RelayError(403, "refused")
        return header.removeprefix("Bearer ")

    def limited(bucket: Buckets) -> None:
        if not bucket.take(request.remote_addr or ""):
            raise RelayError(429, "slow-down")

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise RelayError(400, "bad-request")
        return data

    def number(name: str, default: float) -> float:
        try:
            return float(request.args.get(name, default))
        except ValueError:
            raise RelayError(400, "bad-request") from None

    def checked(room: str) -> str:
        if not 16 <= len(room) <= 64 or not set(room) <= _ROOM_CHARS:
            raise RelayError(404, "no-room")
        return room

    @app.errorhandler(RelayError)
    def refused(exc: RelayError) -> tuple[Response, int]:
        response = jsonify({"error": exc.code})
        if exc.status == 429:
            response.headers["Retry-After"] = "5"
        return response, exc.status

    @app.errorhandler(413)
    def too_large(_: Any) -> tuple[Response, int]:
        return jsonify({"error": "too-large"}), 413

    # -- the viewer page -----------------------------------------------------------------------

    @app.get(paths.VIEWER + "/<name>")
    def viewer_page(name: str) -> Response:
        limited(viewers)
        if "." in name:
            return send_from_directory(VIEWER_DIR, name)
        checked(name)
        return send_from_directory(VIEWER_DIR, "index.html")

    # -- the box -------------------------------------------------------------------------------

    @app.get(paths.box_ping())
    def ping() -> Response:
        box()
        return jsonify({"ok": True})

    @app.put(paths.box_room("<room>"))
    def open_room(room: str) -> tuple[Response, int]:
        owner = box()
        expires = body().get("expires")
        if not isinstance(expires, int | float):
            raise RelayError(400, "bad-request")
        rooms.open(owner, checked(room), float(expires))
        logger.info("room %s opened (%d open)", room_hash(room)[:8], rooms.count())
        return jsonify({}), 201

    @app.put(paths.box_expiry("<room>"))
    def extend_room(room: str) -> tuple[str, int]:
        owner = box()
        expires = body().get("expires")
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            raise RelayError(400, "bad-request")
        rooms.extend(owner, checked(room), float(expires))
        return "", 204

    @app.delete(paths.box_room("<room>"))
    def close_room(room: str) -> tuple[str, int]:
        rooms.close(box(), checked(room))
        logger.info("room %s closed", room_hash(room)[:8])
        return "", 204

    @app.get(paths.box_messages("<room>"))
    def box_messages(room: str) -> Response:
        owner = box()
        messages = rooms.box_messages(
            owner, checked(room), int(number("after", 0)), number("wait", 0)
        )
        return jsonify(
            {
                "messages": [
                    {"n": n, "client": client, "kind": kind, "blob": blob}
                    for n, client, kind, blob in messages
                ]
            }
        )

    @app.post(paths.box_messages("<room>"))
    def box_send(room: str) -> tuple[str, int]:
        owner = box()
        data = body()
        rooms.box_send(
            owner,
            checked(room),
            str(data.get("client", "")),
            data.get("blob"),
            bool(data.get("seat")),
        )
        return "", 204

    @app.post(paths.box_refuse("<room>"))
    def box_refuse(room: str) -> tuple[str, int]:
        owner = box()
        data = body()
        reason = str(data.get("reason", "refused"))
        rooms.box_refuse(owner, checked(room), str(data.get("client", "")), reason)
        if reason == "bad":
            logger.warning("room %s: the box refused an invalid knock", room_hash(room)[:8])
        return "", 204

    @app.post(paths.box_turn())
    def turn() -> Response:
        owner = box()
        data = body()
        room = checked(str(data.get("room", "")))
        left = rooms.expiry(owner, room) - time.time()
        ttl = min(float(data.get("ttl", config.turn.ttl)), left)
        return jsonify({"ice_servers": mint_turn(config, room, ttl)})

    # -- viewers -------------------------------------------------------------------------------

    @app.post(paths.room_knock("<room>"))
    def knock(room: str) -> tuple[Response, int]:
        limited(viewers)
        limited(knocks)
        token = rooms.knock(checked(room), body().get("blob"))
        return jsonify({"client": token}), 202

    @app.get(paths.room_messages("<room>"))
    def viewer_messages(room: str) -> Response:
        limited(viewers)
        messages, seat = rooms.viewer_messages(
            checked(room), viewer_token(), int(number("after", 0)), number("wait", 0)
        )
        return jsonify({"messages": [{"n": n, "blob": b} for n, b in messages], "seat": seat})

    @app.post(paths.room_messages("<room>"))
    def viewer_send(room: str) -> tuple[str, int]:
        limited(viewers)
        rooms.viewer_send(checked(room), viewer_token(), body().get("blob"))
        return "", 204

    @app.after_request
    def headers(response: Response) -> Response:
        return security_headers(response, VIEWER_CSP)

    return app
