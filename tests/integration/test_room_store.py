"""The relay's room store, one suite for both implementations (memory; Redis, on a real
redis-server started by the tests): open, knock, the seat, the queues, long polls, expiry, gone
rooms, limits. What only the shared store must do: test_room_store_shared.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.relay import redis_bell, redis_rooms
from appliance.relay import rooms as rooms_mod
from appliance.relay import store as store_mod
from appliance.relay.limits import KNOCK_BURST, RelayLimits
from appliance.relay.store import ThreadedRoomStore
from tests.support.room_stores import (
    BOX,
    OTHER_BOX,
    ROOM,
    ROOM2,
    in_thread,
    maker,
    refused,
    seated,
)


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from maker(request, request.param)


@pytest.fixture
def rooms(stores: Any) -> ThreadedRoomStore:
    return stores().rooms


# -- open, extend, close ---------------------------------------------------------------------------


def test_a_room_opens_once_for_its_box_and_lives_until_its_expiry(rooms) -> None:
    expires = time.time() + 60
    rooms.open(BOX, ROOM, expires)
    rooms.check(ROOM)
    assert rooms.count() == 1
    assert rooms.expiry(BOX, ROOM) == pytest.approx(expires)
    assert refused(rooms.open, BOX, ROOM, expires) == (409, "exists")
    assert refused(rooms.expiry, OTHER_BOX, ROOM) == (404, "unknown"), "another box's room"
    assert refused(rooms.open, BOX, ROOM2, time.time() - 1) == (400, "expired")
    rooms.extend(BOX, ROOM, expires + 600)
    assert rooms.expiry(BOX, ROOM) == pytest.approx(expires + 600)
    assert refused(rooms.extend, BOX, ROOM, expires) == (400, "bad-request"), "only later"
    far = rooms.open(BOX, ROOM2, time.time() + 10 * store_mod.MAX_EXPIRY)
    assert far is None and rooms.expiry(BOX, ROOM2) <= time.time() + store_mod.MAX_EXPIRY + 1


def test_a_box_opens_a_bounded_number_of_rooms(rooms) -> None:
    for i in range(store_mod.MAX_ROOMS_PER_BOX):
        rooms.open(BOX, f"room-{i:06d}-abcdefghij", time.time() + 60)
    assert refused(rooms.open, BOX, ROOM, time.time() + 60) == (429, "too-many-rooms")
    rooms.open(OTHER_BOX, ROOM, time.time() + 60)


def test_a_closed_room_says_how_it_ended_and_never_opens_again(rooms) -> None:
    assert refused(rooms.check, ROOM) == (404, "unknown")
    rooms.open(BOX, ROOM, time.time() + 60)
    rooms.open(BOX, ROOM2, time.time() + 60)
    token = rooms.knock(ROOM, "knock")
    rooms.close(BOX, ROOM)
    rooms.close(BOX, ROOM2, "expired")
    assert refused(rooms.check, ROOM) == (410, "ended")
    assert refused(rooms.check, ROOM2) == (410, "expired")
    assert refused(rooms.viewer_messages, ROOM, token, 0, 0) == (410, "ended")
    assert refused(rooms.knock, ROOM, "late") == (410, "ended")
    assert refused(rooms.open, BOX, ROOM, time.time() + 60) == (409, "exists")
    assert rooms.count() == 0


def test_a_room_past_its_expiry_is_expired_then_reaped(rooms) -> None:
    rooms.open(BOX, ROOM, time.time() + 0.3)
    rooms.knock(ROOM, "knock")
    time.sleep(0.4)
    assert refused(rooms.check, ROOM) == (410, "expired")
    assert refused(rooms.knock, ROOM, "late") == (410, "expired")
    rooms.reap()
    assert rooms.count() == 0
    assert refused(rooms.check, ROOM) == (410, "expired")
    assert refused(rooms.open, BOX, ROOM, time.time() + 60) == (409, "exists")


# -- knocks, the seat, the queues -----------------------------------------------------------------


def test_a_knock_reaches_the_box_and_the_seated_viewer_talks_both_ways(rooms) -> None:
    rooms.open(BOX, ROOM, time.time() + 60)
    token = rooms.knock(ROOM, "knock")
    ((n, handle, kind, blob),) = rooms.box_messages(BOX, ROOM, 0, 0)
    assert (kind, blob) == ("knock", "knock")
    assert refused(rooms.viewer_send, ROOM, token, "offer") == (403, "no-seat")
    rooms.box_send(BOX, ROOM, handle, "answer", True)
    messages, seat = rooms.viewer_messages(ROOM, token, 0, 0)
    assert seat and [b for _, b in messages] == ["answer"]
    rooms.viewer_send(ROOM, token, "offer")
    later = rooms.box_messages(BOX, ROOM, n, 0)
    assert [(m[1], m[2], m[3]) for m in later] == [(handle, "message", "offer")]
    assert rooms.box_messages(BOX, ROOM, later[-1][0], 0) == [], "acknowledged by after"
    assert rooms.viewer_messages(ROOM, token, messages[-1][0], 0) == ([], True)
    assert refused(rooms.viewer_messages, ROOM, "not-a-token", 0, 0) == (403, "refused")
    assert refused(rooms.box_send, BOX, ROOM, "nobody", "x", False) == (404, "no-client")


def test_blobs_are_bounded(rooms) -> None:
    rooms.open(BOX, ROOM, time.time() + 60)
    assert refused(rooms.knock, ROOM, "x" * (store_mod.MAX_BLOB + 1)) == (413, "too-large")
    assert refused(rooms.knock, ROOM, "") == (400, "bad-request")
    token, handle = seated(rooms)
    for _ in range(store_mod.MAX_QUEUE - 1):
        rooms.box_send(BOX, ROOM, handle, "more", False)
    assert refused(rooms.box_send, BOX, ROOM, handle, "one too many", False) == (
        429,
        "queue-full",
    )
    rooms.box_messages(BOX, ROOM, 1000, 0)  # the box read the knock
    for _ in range(store_mod.MAX_QUEUE):
        rooms.viewer_send(ROOM, token, "up")
    assert refused(rooms.viewer_send, ROOM, token, "one too many") == (429, "queue-full")


def test_the_seat_moves_only_when_the_box_says_and_the_one_before_hears_taken(rooms) -> None:
    rooms.open(BOX, ROOM, time.time() + 60)
    first, _ = seated(rooms)
    second, handle = seated(rooms)
    assert refused(rooms.viewer_messages, ROOM, first, 1000, 0) == (403, "taken")
    assert refused(rooms.viewer_send, ROOM, first, "x") == (403, "no-seat")
    assert rooms.viewer_messages(ROOM, second, 1000, 0) == ([], True)
    rooms.box_refuse(BOX, ROOM, handle, "released")
    assert refused(rooms.viewer_messages, ROOM, second, 1000, 0) == (403, "released")
    third = rooms.knock(ROOM, "knock")
    rooms.box_refuse(BOX, ROOM, rooms.box_messages(BOX, ROOM, 0, 0)[-1][1], "nonsense")
    assert refused(rooms.viewer_messages, ROOM, third, 0, 0) == (403, "refused")


def test_pending_knocks_are_bounded_but_failed_knocks_never_lock_the_room(rooms) -> None:
    rooms.open(BOX, ROOM, time.time() + 60)
    for _ in range(store_mod.MAX_PENDING_KNOCKS):
        rooms.knock(ROOM, "k")
    assert refused(rooms.knock, ROOM, "k") == (429, "slow-down")
    rooms.open(BOX, ROOM2, time.time() + 60)
    for _ in range(25):
        rooms.knock(ROOM2, "junk knock")
        rooms.box_refuse(BOX, ROOM2, rooms.box_messages(BOX, ROOM2, 0, 0)[-1][1], "bad")
    assert rooms.knock(ROOM2, "the real phone's knock")


# -- long polls -------------------------------------------------------------------------------------


def test_a_waiting_poll_wakes_when_the_other_side_sends(stores, monkeypatch) -> None:
    monkeypatch.setattr(redis_bell, "RECHECK", 30.0)  # woken by the bell, never by a recheck
    box_side, viewer_side = stores().rooms, stores().rooms  # with Redis: two processes
    box_side.open(BOX, ROOM, time.time() + 60)
    token, _ = seated(box_side)
    thread, got = in_thread(box_side.box_messages, BOX, ROOM, 1, 10)
    time.sleep(0.2)
    sent = time.monotonic()
    viewer_side.viewer_send(ROOM, token, "offer")
    thread.join(5)
    woke, messages = got[0]
    assert [m[3] for m in messages if m[2] == "message"] == ["offer"]
    assert woke - sent < 3.0, "woken, not timed out (10 s)"

    thread, got = in_thread(viewer_side.viewer_messages, ROOM, token, 1000, 10)
    time.sleep(0.2)
    sent = time.monotonic()
    box_side.close(BOX, ROOM)
    thread.join(5)
    assert got[0][1] == "ended" and got[0][0] - sent < 3.0


def test_a_poll_with_nothing_to_say_ends_at_its_wait(rooms) -> None:
    rooms.open(BOX, ROOM, time.time() + 60)
    started = time.monotonic()
    assert rooms.box_messages(BOX, ROOM, 0, 0.3) == []
    assert 0.25 < time.monotonic() - started < 2


def test_one_client_holds_one_long_poll_a_new_one_ends_the_one_before(stores, monkeypatch) -> None:
    monkeypatch.setattr(redis_bell, "RECHECK", 30.0)  # ended by the bell, never by a recheck
    first, second = stores().rooms, stores().rooms
    first.open(BOX, ROOM, time.time() + 60)
    token, _ = seated(first)
    thread, got = in_thread(first.viewer_messages, ROOM, token, 1000, 10)
    time.sleep(0.2)
    started = time.monotonic()
    second.viewer_messages(ROOM, token, 1000, 0)
    thread.join(5)
    assert got and got[0][1] == ([], True) and got[0][0] - started < 3.0


def test_long_polls_are_bounded_per_room(stores) -> None:
    rooms = stores().rooms
    rooms.open(BOX, ROOM, time.time() + 60)
    tokens = []
    for _ in range(store_mod.MAX_POLLS_PER_ROOM + 1):
        tokens.append(rooms.knock(ROOM, "k"))
        rooms.box_send(BOX, ROOM, rooms.box_messages(BOX, ROOM, 0, 0)[-1][1], "reply", False)
    waiting = [in_thread(rooms.viewer_messages, ROOM, t, 1000, 10) for t in tokens[:-1]]
    try:
        time.sleep(0.5)
        other = stores().rooms  # another process counts the same polls
        assert refused(other.viewer_messages, ROOM, tokens[-1], 1000, 5) == (429, "slow-down")
    finally:
        rooms.close(BOX, ROOM)
        for thread, _ in waiting:
            thread.join(5)
    assert all(got[0][1] == "ended" for _, got in waiting)


def test_a_box_token_s_own_long_polls_are_bounded(stores) -> None:
    rooms = stores().rooms
    mine = [f"room-{i:06d}-abcdefghij" for i in range(store_mod.MAX_ROOMS_PER_BOX)]
    for room in mine:
        rooms.open(BOX, room, time.time() + 60)
    rooms.open(OTHER_BOX, ROOM2, time.time() + 60)
    cap = store_mod.MAX_POLLS_PER_BOX
    waiting = [in_thread(rooms.box_messages, BOX, mine[i % len(mine)], 0, 10) for i in range(cap)]
    try:
        time.sleep(0.5)
        other = stores().rooms  # another process counts the same polls
        assert refused(other.box_messages, BOX, mine[0], 0, 5) == (429, "slow-down")
        assert other.box_messages(BOX, mine[0], 0, 0) == [], "a look without waiting is not capped"
        assert other.box_messages(OTHER_BOX, ROOM2, 0, 0.2) == [], "another box has its own"
    finally:
        for room in mine:
            rooms.close(BOX, room)
        for thread, _ in waiting:
            thread.join(5)
    assert all(got[0][1] == "ended" for _, got in waiting)
    rooms.open(BOX, ROOM, time.time() + 60)
    assert rooms.box_messages(BOX, ROOM, 0, 0.2) == [], "the ended polls no longer count"


def test_stopping_wakes_every_poll(stores) -> None:
    rooms = stores().rooms
    rooms.open(BOX, ROOM, time.time() + 60)
    thread, got = in_thread(rooms.box_messages, BOX, ROOM, 0, 10)
    time.sleep(0.2)
    started = time.monotonic()
    rooms.close_all()
    thread.join(5)
    assert got and got[0][0] - started < 1.5
    if stores.kind == "redis":  # the rooms are shared: another process still serves them
        stores().rooms.check(ROOM)


# -- limits ---------------------------------------------------------------------------------------


def test_a_bucket_gives_its_burst_then_refuses(stores) -> None:
    limits = RelayLimits(stores().buckets)
    taken = [limits.knocks.take("198.51.100.7") for _ in range(KNOCK_BURST + 3)]
    assert taken == [True] * KNOCK_BURST + [False] * 3
    assert limits.knocks.take("198.51.100.8"), "another address has its own bucket"


def test_closed_rooms_are_remembered_bounded(stores, monkeypatch) -> None:
    for module in (rooms_mod, redis_rooms):
        monkeypatch.setattr(module, "MAX_GONE", 3)
    rooms = stores().rooms
    for i in range(6):
        room = f"room-{i:06d}-abcdefghij"
        rooms.open(BOX, room, time.time() + 60)
        rooms.close(BOX, room)
    rooms.reap()
    assert refused(rooms.check, "room-000005-abcdefghij") == (410, "ended")
    assert refused(rooms.check, "room-000000-abcdefghij") == (404, "unknown"), "the oldest gone"
    rooms.open(BOX, "room-000000-abcdefghij", time.time() + 60)
