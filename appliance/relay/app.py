"""The relay's HTTP side (docs/protocol.md, "Relay transport"): Flask, JSON, no sessions.

The box authenticates with its token (compared by hash, in constant time); viewers are anonymous
and rate-limited per address (the one a trusted reverse proxy forwarded, behind one). Every
refusal is a JSON ``{"error": ...}`` with a 4xx status. Nothing here logs a blob, a token, a room
id or an address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import time
from typing import Any

from flask import Flask, Response, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from ..httpd import jsonbody
from ..httpd.addresses import client_address, parse_networks
from ..httpd.headers import security_headers
from ..httpd.request import MAX_BODY
from . import paths
from .config import RelayConfig
from .limits import Buckets, InFlight
from .rooms import MAX_WAIT, REFUSALS, RelayError, Rooms, room_hash
from .viewer import LANG_DIR, VIEWER_CSP, VIEWER_DIR, languages

logger = logging.getLogger(__name__)

#: Unauthenticated requests per client address: a bucket of BURST refilled at RATE per second.
RATE, BURST = 2.0, 40
KNOCK_RATE, KNOCK_BURST = 0.2, 5  # knocks: one every 5 s after a burst of 5
#: The viewer page's own files (about a dozen per load), in a bucket of their own: a phone that
#: reloads never spends what its polls and knocks need.
FILES_RATE, FILES_BURST = 4.0, 60
MISS_RATE, MISS_BURST = 1.0, 20  # requests to a room that is not open (unknown, ended)
#: Viewers' long polls waiting at once per client address, and in all (the server has more
#: threads than that, so the box and the staff always find one).
POLLS_PER_ADDRESS, POLLS_TOTAL = 4, 24
#: The largest ``after`` a viewer or the box may send: JavaScript's safe integers.
MAX_AFTER = 2**53 - 1
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


def create_relay_app(config: RelayConfig, rooms: Rooms, *, reopen_window: float = 0.0) -> Flask:
    """The relay's app. ``reopen_window``: for this long after it starts, a room it does not
    know may be one it forgot by restarting, which its box will open again (a relay of its own);
    0 for a box's built-in relay, whose restart is the box's (its rooms are gone for good)."""
    app = Flask(__name__, static_folder=None)
    started = time.monotonic()
    listed = {"languages": languages()}
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY)
    token_hashes = [bytes.fromhex(h) for h in config.boxes]
    trusted = parse_networks(config.trusted_proxies)
    viewers = Buckets(RATE, BURST)
    knocks = Buckets(KNOCK_RATE, KNOCK_BURST)
    misses = Buckets(MISS_RATE, MISS_BURST)
    files = Buckets(FILES_RATE, FILES_BURST)
    polls = InFlight(POLLS_PER_ADDRESS, POLLS_TOTAL)

    def address() -> str:
        """The client's address: behind a trusted proxy, the one it forwarded."""
        forwarded = request.headers.getlist("X-Forwarded-For")
        return client_address(request.remote_addr or "", forwarded, trusted)

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
        if not bucket.take(address()):
            raise RelayError(429, "slow-down")

    def body() -> dict[str, Any]:
        """The request's JSON object, its numbers finite and bounded (httpd.jsonbody)."""
        try:
            return jsonbody.load_object(request.get_data(cache=True))
        except jsonbody.BodyError:
            raise RelayError(400, "bad-request") from None

    def after() -> int:
        """``after``: a non-negative integer, written in decimal digits."""
        raw = request.args.get("after", "0")
        if not raw.isascii() or not raw.isdigit() or len(raw) > 16 or int(raw) > MAX_AFTER:
            raise RelayError(400, "bad-request")
        return int(raw)

    def wait() -> float:
        """``wait``: seconds, a finite number (at most MAX_WAIT is waited)."""
        try:
            value = float(request.args.get("wait", "0"))
        except ValueError:
            raise RelayError(400, "bad-request") from None
        if not math.isfinite(value) or value < 0:
            raise RelayError(400, "bad-request")
        return min(value, MAX_WAIT)

    def seconds(value: object) -> float:
        """A number from a JSON body: finite, bounded, not a boolean."""
        try:
            return jsonbody.number(value)
        except jsonbody.BodyError:
            raise RelayError(400, "bad-request") from None

    def checked(room: str) -> str:
        if not 16 <= len(room) <= 64 or not set(room) <= _ROOM_CHARS:
            raise RelayError(404, "unknown")
        return room

    def known(room: str) -> str:
        """``room`` if it is open; a request to one that is not spends from its own bucket, so
        it cannot use up the requests of a viewer who shares the address."""
        try:
            rooms.check(checked(room))
        except RelayError:
            limited(misses)
            raise
        return room

    @app.errorhandler(RelayError)
    def refused(exc: RelayError) -> tuple[Response, int]:
        answer: dict[str, Any] = {"error": exc.code}
        if exc.code == "unknown" and time.monotonic() - started < reopen_window:
            answer["restarted"] = True  # the box may open it again: not known to be gone
        response = jsonify(answer)
        if exc.status == 429:
            response.headers["Retry-After"] = "5"
        return response, exc.status

    @app.errorhandler(413)
    def too_large(_: Any) -> tuple[Response, int]:
        return jsonify({"error": "too-large"}), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        return jsonify({"error": "not-found" if status == 404 else "bad-request"}), status

    # -- the viewer page -----------------------------------------------------------------------

    @app.get(paths.VIEWER + "/<name>")
    def viewer_page(name: str) -> Response:
        limited(files)
        if "." in name:
            return send_from_directory(VIEWER_DIR, name)
        checked(name)
        return send_from_directory(VIEWER_DIR, "index.html")

    @app.get(paths.viewer_languages())
    def viewer_languages() -> Response:
        limited(files)
        return jsonify(listed)

    @app.get(paths.VIEWER + "/lang/<name>")
    def viewer_language(name: str) -> Response:
        limited(files)
        return send_from_directory(LANG_DIR, name)

    # -- the box -------------------------------------------------------------------------------

    @app.get(paths.box_ping())
    def ping() -> Response:
        box()
        return jsonify({"ok": True})

    @app.put(paths.box_room("<room>"))
    def open_room(room: str) -> tuple[Response, int]:
        owner = box()
        expires = seconds(body().get("expires"))
        rooms.open(owner, checked(room), expires)
        logger.info("room %s opened (%d open)", room_hash(room)[:8], rooms.count())
        return jsonify({}), 201

    @app.put(paths.box_expiry("<room>"))
    def extend_room(room: str) -> tuple[str, int]:
        owner = box()
        expires = seconds(body().get("expires"))
        rooms.extend(owner, checked(room), expires)
        return "", 204

    @app.delete(paths.box_room("<room>"))
    def close_room(room: str) -> tuple[str, int]:
        owner = box()
        reason = request.args.get("reason", "ended")
        if reason not in ("ended", "expired"):
            raise RelayError(400, "bad-request")
        rooms.close(owner, checked(room), reason)
        logger.info("room %s closed (%s)", room_hash(room)[:8], reason)
        return "", 204

    @app.get(paths.box_messages("<room>"))
    def box_messages(room: str) -> Response:
        owner = box()
        messages = rooms.box_messages(owner, checked(room), after(), wait())
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
        reason = data.get("reason", "refused")
        reason = reason if reason in REFUSALS else "refused"
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
        ttl = min(seconds(data.get("ttl", config.turn.ttl)), left)
        return jsonify({"ice_servers": mint_turn(config, room, ttl)})

    # -- viewers -------------------------------------------------------------------------------

    @app.get(paths.room_status("<room>"))
    def room_status(room: str) -> tuple[str, int]:
        """Whether the room is open (204), unknown (404) or over (410): nothing sealed, nothing
        secret, so a phone can say at once that a link is dead before asking for a name."""
        known(room)
        limited(viewers)
        return "", 204

    @app.post(paths.room_knock("<room>"))
    def knock(room: str) -> tuple[Response, int]:
        known(room)
        limited(viewers)
        limited(knocks)
        token = rooms.knock(room, body().get("blob"))
        return jsonify({"client": token}), 202

    @app.get(paths.room_messages("<room>"))
    def viewer_messages(room: str) -> Response:
        known(room)
        limited(viewers)
        token, since, seconds_ = viewer_token(), after(), wait()
        client = address()
        if seconds_ > 0 and not polls.acquire(client):
            raise RelayError(429, "slow-down")
        try:
            messages, seat = rooms.viewer_messages(room, token, since, seconds_)
        finally:
            if seconds_ > 0:
                polls.release(client)
        return jsonify({"messages": [{"n": n, "blob": b} for n, b in messages], "seat": seat})

    @app.post(paths.room_messages("<room>"))
    def viewer_send(room: str) -> tuple[str, int]:
        known(room)
        limited(viewers)
        rooms.viewer_send(room, viewer_token(), body().get("blob"))
        return "", 204

    @app.after_request
    def headers(response: Response) -> Response:
        return security_headers(response, VIEWER_CSP)

    return app
