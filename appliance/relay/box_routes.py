"""The box's routes on the relay (authenticated by its token): its rooms, their messages, the
viewers it refuses and the TURN credentials it asks for."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, jsonify, request

from . import checks, paths
from .context import RelayContext
from .rooms import room_hash
from .turn import mint_turn

logger = logging.getLogger(__name__)


class BoxRoutes:
    """``/api/box/...``: every route first checks the box's token (``RelayContext.box``)."""

    def __init__(self, relay: RelayContext) -> None:
        self.relay = relay
        self.rooms = relay.rooms

    def register(self, app: Flask) -> None:
        app.get(paths.box_ping())(self.ping)
        app.put(paths.box_room("<room>"))(self.open_room)
        app.put(paths.box_expiry("<room>"))(self.extend_room)
        app.delete(paths.box_room("<room>"))(self.close_room)
        app.get(paths.box_messages("<room>"))(self.box_messages)
        app.post(paths.box_messages("<room>"))(self.box_send)
        app.post(paths.box_refuse("<room>"))(self.box_refuse)
        app.post(paths.box_turn())(self.turn)

    def ping(self) -> Response:
        self.relay.box()
        return jsonify({"ok": True})

    def open_room(self, room: str) -> tuple[Response, int]:
        owner = self.relay.box()
        expires = checks.seconds(self.relay.body().get("expires"))
        self.rooms.open(owner, checks.room(room), expires)
        logger.info("room %s opened (%d open)", room_hash(room)[:8], self.rooms.count())
        return jsonify({}), 201

    def extend_room(self, room: str) -> tuple[str, int]:
        owner = self.relay.box()
        expires = checks.seconds(self.relay.body().get("expires"))
        self.rooms.extend(owner, checks.room(room), expires)
        return "", 204

    def close_room(self, room: str) -> tuple[str, int]:
        owner = self.relay.box()
        reason = checks.close_reason(request.args.get("reason", "ended"))
        self.rooms.close(owner, checks.room(room), reason)
        logger.info("room %s closed (%s)", room_hash(room)[:8], reason)
        return "", 204

    def box_messages(self, room: str) -> Response:
        owner = self.relay.box()
        messages = self.rooms.box_messages(
            owner, checks.room(room), self.relay.after(), self.relay.wait()
        )
        return jsonify(
            {
                "messages": [
                    {"n": n, "client": client, "kind": kind, "blob": blob}
                    for n, client, kind, blob in messages
                ]
            }
        )

    def box_send(self, room: str) -> tuple[str, int]:
        owner = self.relay.box()
        data = self.relay.body()
        self.rooms.box_send(
            owner,
            checks.room(room),
            str(data.get("client", "")),
            data.get("blob"),
            bool(data.get("seat")),
        )
        return "", 204

    def box_refuse(self, room: str) -> tuple[str, int]:
        owner = self.relay.box()
        data = self.relay.body()
        reason = checks.refusal_reason(data.get("reason", "refused"))
        self.rooms.box_refuse(owner, checks.room(room), str(data.get("client", "")), reason)
        if reason == "bad":
            logger.warning("room %s: the box refused an invalid knock", room_hash(room)[:8])
        return "", 204

    def turn(self) -> Response:
        owner = self.relay.box()
        data = self.relay.body()
        room = checks.room(str(data.get("room", "")))
        left = self.rooms.expiry(owner, room) - time.time()
        config = self.relay.config
        ttl = min(checks.seconds(data.get("ttl", config.turn.ttl)), left)
        return jsonify({"ice_servers": mint_turn(config, room, ttl)})
