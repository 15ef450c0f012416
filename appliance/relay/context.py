"""What every route of the relay shares: the rooms, the limits, and the request read once into
the checks of :mod:`.checks` (the only module here that reads Flask's request)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ..httpd.addresses import client_address, parse_networks
from . import checks
from .config import RelayConfig
from .limits import Bucket, BucketFactory, RelayLimits, memory_buckets
from .store import RelayError, ThreadedRoomStore, UnknownClient

logger = logging.getLogger(__name__)


class RelayContext:
    """The relay's shared state and its request helpers; every refusal is a RelayError."""

    def __init__(
        self,
        config: RelayConfig,
        rooms: ThreadedRoomStore,
        reopen_window: float,
        buckets: BucketFactory = memory_buckets,
    ) -> None:
        self.config = config
        self.rooms = rooms
        self.limits = RelayLimits(buckets)
        self._reopen_window = reopen_window
        self._token_hashes = [bytes.fromhex(h) for h in config.boxes]
        self._trusted = parse_networks(config.trusted_proxies)

    def address(self) -> str:
        """The client's address: behind a trusted proxy, the one it forwarded."""
        forwarded = request.headers.getlist("X-Forwarded-For")
        return client_address(request.remote_addr or "", forwarded, self._trusted)

    def box(self) -> str:
        """The box that sent this request (by its token); 401 for anyone else."""
        return checks.box_owner(request.headers.get("Authorization", ""), self._token_hashes)

    def viewer_token(self) -> str:
        return checks.viewer_token(request.headers.get("Authorization", ""))

    def limited(self, bucket: Bucket) -> None:
        if not bucket.take(self.address()):
            raise RelayError(429, "slow-down")

    def body(self) -> dict[str, Any]:
        return checks.body(request.get_data(cache=True))

    def after(self) -> int:
        return checks.after(request.args.get("after", "0"))

    def wait(self) -> float:
        return checks.wait(request.args.get("wait", "0"))

    def known(self, room: str) -> str:
        """``room`` if it is open; a request to one that is not spends from its own bucket, so
        it cannot use up the requests of a viewer who shares the address."""
        try:
            self.rooms.check(checks.room(room))
        except RelayError:
            self.limited(self.limits.misses)
            raise
        return room

    def restarted(self) -> bool:
        """Whether the relay's rooms are so new that its boxes may reopen rooms it forgot: the
        process's, in memory; with Redis, the shared rooms' (a relay process that restarted on a
        Redis that kept them has forgotten nothing; a Redis that restarted has)."""
        return self._reopen_window > 0 and self.rooms.age() < self._reopen_window

    def register_errors(self, app: Flask) -> None:
        """Every refusal and every HTTP error as a JSON ``{"error": ...}``."""
        app.errorhandler(RelayError)(self.refused)
        app.errorhandler(413)(too_large)
        app.errorhandler(HTTPException)(http_error)
        app.errorhandler(Exception)(unexpected)

    def refused(self, exc: RelayError) -> tuple[Response, int]:
        if isinstance(exc, UnknownClient) and self.restarted():
            # a phone's token from before its room was lost and opened again (a restart): the
            # room as it knew it is gone, and its page knocks again (its seat lets it back in)
            exc = RelayError(404, "unknown")
        answer, status, headers = checks.refusal(exc, exc.code == "unknown" and self.restarted())
        response = jsonify(answer)
        response.headers.update(headers)
        return response, status


def too_large(_: Any) -> tuple[Response, int]:
    return jsonify({"error": "too-large"}), 413


def unexpected(exc: Exception) -> tuple[Response, int]:
    """Anything else (the shared store restarting, say): 503, try again shortly. Flask's own
    handler would log the request's path, which holds the room's id: this logs the error's type
    and the route's pattern only."""
    rule = request.url_rule.rule if request.url_rule is not None else "?"
    logger.error("the relay could not answer %s %s: %s", request.method, rule, type(exc).__name__)
    response = jsonify({"error": "unavailable"})
    response.headers["Retry-After"] = "2"
    return response, 503


def http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    return jsonify({"error": "not-found" if status == 404 else "bad-request"}), status
