"""A relay whose rooms are new (its process restarted, or its Redis lost them) and a phone from
before: the phone's client token is one the relay forgot with the room, and it is told so as a
room the box will open again (404 ``unknown``, ``restarted``): its page knocks again with its
seat. Told ``refused`` instead, the page would stop for good, as if the staff had refused it.
Once the rooms are older than the reopen window, an unknown token is refused as before."""

from __future__ import annotations

import time

from appliance.relay.app import create_relay_app
from appliance.relay.config import RelayConfig, hash_token
from appliance.relay.rooms import Rooms

TOKEN = "box-token-" + "r" * 30
ROOM = "Abcdefghijklmnopqrstuv"
BOX = {"Authorization": f"Bearer {TOKEN}"}
PHONE = {"Authorization": "Bearer token-the-relay-forgot-with-its-rooms"}


def test_a_token_from_before_the_rooms_were_lost_is_told_to_knock_again() -> None:
    rooms = Rooms()  # a relay process that has just started
    app = create_relay_app(
        RelayConfig(boxes=(hash_token(TOKEN),)), rooms, reopen_window=60.0
    ).test_client()
    opened = app.put(f"/api/box/rooms/{ROOM}", json={"expires": time.time() + 600}, headers=BOX)
    assert opened.status_code == 201, "the box opened its room again"
    poll = app.get(f"/api/rooms/{ROOM}/messages?after=3&wait=0", headers=PHONE)
    send = app.post(f"/api/rooms/{ROOM}/messages", json={"blob": "x"}, headers=PHONE)
    for answer in (poll, send):
        assert (answer.status_code, answer.get_json()) == (
            404,
            {"error": "unknown", "restarted": True},
        )

    rooms._born -= 61  # a minute later: an unknown token is a forged one
    poll = app.get(f"/api/rooms/{ROOM}/messages?after=3&wait=0", headers=PHONE)
    assert (poll.status_code, poll.get_json()) == (403, {"error": "refused"})


def test_a_box_s_own_relay_never_says_restarted() -> None:
    """The relay built into a box restarts with the box, whose rooms are gone for good."""
    app = create_relay_app(RelayConfig(boxes=(hash_token(TOKEN),)), Rooms()).test_client()
    app.put(f"/api/box/rooms/{ROOM}", json={"expires": time.time() + 600}, headers=BOX)
    poll = app.get(f"/api/rooms/{ROOM}/messages?after=3&wait=0", headers=PHONE)
    assert (poll.status_code, poll.get_json()) == (403, {"error": "refused"})
