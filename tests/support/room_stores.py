"""Helpers for the room store's tests (tests/integration/test_room_store*.py): the stores to
test, made per kind, and small steps every test takes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.relay.config import hash_token
from appliance.relay.store import RelayError, ThreadedRoomStore
from appliance.relay.stores import Store, memory_store, redis_store

BOX_TOKEN = "box-token-" + "s" * 30
BOX = hash_token(BOX_TOKEN)
OTHER_BOX = hash_token("box-token-" + "o" * 30)
ROOM = "Abcdefghijklmnopqrstuv"
ROOM2 = "Zyxwvutsrqponmlkjihgfe"
ADDRESS = "198.51.100.9"


def maker(request: pytest.FixtureRequest, kind: str) -> Iterator[Any]:
    """Makes stores of ``kind``; with Redis, each is another relay process on the same Redis
    (``redis_client``: an emptied database)."""
    made: list[Store] = []

    def make() -> Store:
        if kind == "memory":
            store = memory_store() if not made else made[0]
        else:
            store = redis_store(request.getfixturevalue("redis_client"))
        made.append(store)
        return store

    make.kind = kind  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for store in made:
            store.rooms.close_all()


def refused(call: Any, *args: Any) -> tuple[int, str]:
    """The status and code ``call(*args)`` is refused with."""
    with pytest.raises(RelayError) as caught:
        call(*args)
    return caught.value.status, caught.value.code


def seated(rooms: ThreadedRoomStore, room: str = ROOM) -> tuple[str, str]:
    """A viewer who knocked and was given the seat: (its token, its handle)."""
    token = rooms.knock(room, "knock")
    handle = rooms.box_messages(BOX, room, 0, 0)[-1][1]
    rooms.box_send(BOX, room, handle, "answer", True)
    return token, handle


def in_thread(call: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    """``call(*args)`` started in a thread; the list gets (when it returned, what or its code)."""
    got: list[Any] = []

    def run() -> None:
        try:
            got.append((time.monotonic(), call(*args)))
        except RelayError as exc:
            got.append((time.monotonic(), exc.code))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, got
