"""The viewers' routes on the relay (anonymous, rate-limited per address): whether a room is
open, the knock, and the sealed messages both ways."""

from __future__ import annotations

from flask import Flask, Response, jsonify

from . import paths
from .context import RelayContext
from .store import RelayError


class ViewerRoutes:
    """``/api/rooms/<room>...``: a room that is not open spends its own bucket (``known``)."""

    def __init__(self, relay: RelayContext) -> None:
        self.relay = relay
        self.rooms = relay.rooms
        self.limits = relay.limits

    def register(self, app: Flask) -> None:
        app.get(paths.room_status("<room>"))(self.room_status)
        app.post(paths.room_knock("<room>"))(self.knock)
        app.get(paths.room_messages("<room>"))(self.viewer_messages)
        app.post(paths.room_messages("<room>"))(self.viewer_send)

    def room_status(self, room: str) -> tuple[str, int]:
        """Whether the room is open (204), unknown (404) or over (410): nothing sealed, nothing
        secret, so a phone can say at once that a link is dead before asking for a name."""
        self.relay.known(room)
        self.relay.limited(self.limits.viewers)
        return "", 204

    def knock(self, room: str) -> tuple[Response, int]:
        self.relay.known(room)
        self.relay.limited(self.limits.viewers)
        self.relay.limited(self.limits.knocks)
        token = self.rooms.knock(room, self.relay.body().get("blob"))
        return jsonify({"client": token}), 202

    def viewer_messages(self, room: str) -> Response:
        relay = self.relay
        relay.known(room)
        relay.limited(self.limits.viewers)
        token, since, seconds = relay.viewer_token(), relay.after(), relay.wait()
        client = relay.address()
        polls = self.limits.polls
        if seconds > 0 and not polls.acquire(client):
            raise RelayError(429, "slow-down")
        try:
            messages, seat = self.rooms.viewer_messages(room, token, since, seconds)
        finally:
            if seconds > 0:
                polls.release(client)
        return jsonify({"messages": [{"n": n, "blob": b} for n, b in messages], "seat": seat})

    def viewer_send(self, room: str) -> tuple[str, int]:
        self.relay.known(room)
        self.relay.limited(self.limits.viewers)
        self.rooms.viewer_send(room, self.relay.viewer_token(), self.relay.body().get("blob"))
        return "", 204
