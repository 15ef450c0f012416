"""The relay's room store, one suite for both implementations (memory; Redis, on a real
redis-server started by the tests): open, knock, the seat, the queues, long polls, expiry, gone
rooms, limits; and what only the shared store must do (two relay processes on one Redis: one
room, one seat, one budget; nothing identifying in Redis, every key expiring)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.relay import store as store_mod
from appliance.relay.config import hash_token
from appliance.relay.limits import BURST, KNOCK_BURST, RelayLimits
from appliance.relay.redis_rooms import sha
from appliance.relay.store import RelayError, ThreadedRoomStore
from appliance.relay.stores import Store, memory_store, redis_store

BOX_TOKEN = "box-token-" + "s" * 30
BOX = hash_token(BOX_TOKEN)
OTHER_BOX = hash_token("box-token-" + "o" * 30)
ROOM = "Abcdefghijklmnopqrstuv"
ROOM2 = "Zyxwvutsrqponmlkjihgfe"
ADDRESS = "198.51.100.9"


def refused(call: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(RelayError) as caught:
        call(*args)
    return caught.value.status, caught.value.code


def maker(request: pytest.FixtureRequest, kind: str) -> Iterator[Any]:
    """Makes stores of ``kind``; with Redis, each is another relay process on the same Redis."""
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


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from maker(request, request.param)


@pytest.fixture
def shared(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Redis stores only: what several relay processes share."""
    yield from maker(request, "redis")


@pytest.fixture
def rooms(stores: Any) -> ThreadedRoomStore:
    return stores().rooms


def seated(rooms: ThreadedRoomStore, room: str = ROOM) -> tuple[str, str]:
    """A viewer who knocked and was given the seat: (its token, its handle)."""
    token = rooms.knock(room, "knock")
    handle = rooms.box_messages(BOX, room, 0, 0)[-1][1]
    rooms.box_send(BOX, room, handle, "answer", True)
    return token, handle


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


def in_thread(call: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []

    def run() -> None:
        try:
            got.append((time.monotonic(), call(*args)))
        except RelayError as exc:
            got.append((time.monotonic(), exc.code))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, got


def test_a_waiting_poll_wakes_when_the_other_side_sends(stores) -> None:
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
    assert woke - sent < 0.5, "woken, not timed out"

    thread, got = in_thread(viewer_side.viewer_messages, ROOM, token, 1000, 10)
    time.sleep(0.2)
    sent = time.monotonic()
    box_side.close(BOX, ROOM)
    thread.join(5)
    assert got[0][1] == "ended" and got[0][0] - sent < 0.5


def test_a_poll_with_nothing_to_say_ends_at_its_wait(rooms) -> None:
    rooms.open(BOX, ROOM, time.time() + 60)
    started = time.monotonic()
    assert rooms.box_messages(BOX, ROOM, 0, 0.3) == []
    assert 0.25 < time.monotonic() - started < 2


def test_one_client_holds_one_long_poll_a_new_one_ends_the_one_before(stores) -> None:
    first, second = stores().rooms, stores().rooms
    first.open(BOX, ROOM, time.time() + 60)
    token, _ = seated(first)
    thread, got = in_thread(first.viewer_messages, ROOM, token, 1000, 10)
    time.sleep(0.2)
    started = time.monotonic()
    second.viewer_messages(ROOM, token, 1000, 0)
    thread.join(5)
    assert got and got[0][1] == ([], True) and got[0][0] - started < 0.5


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


def test_two_relay_processes_give_an_address_one_budget(shared) -> None:
    first, second = RelayLimits(shared().buckets), RelayLimits(shared().buckets)
    taken = [(first, second)[i % 2].knocks.take("198.51.100.7") for i in range(2 * KNOCK_BURST)]
    assert taken.count(True) == KNOCK_BURST, "the two processes share one bucket"
    v6 = [(first, second)[i % 2].viewers.take(f"2001:db8::{i:x}") for i in range(BURST + 5)]
    assert v6.count(True) == BURST, "an IPv6 client by its /64, across processes"


# -- only the shared store: several processes, and what Redis holds -------------------------------


def test_a_box_on_one_process_and_a_viewer_on_another_share_the_room(shared) -> None:
    box_side, viewer_side = shared().rooms, shared().rooms
    box_side.open(BOX, ROOM, time.time() + 60)
    viewer_side.check(ROOM)
    token = viewer_side.knock(ROOM, "knock")
    handle = box_side.box_messages(BOX, ROOM, 0, 0)[-1][1]
    box_side.box_send(BOX, ROOM, handle, "answer", True)
    assert viewer_side.viewer_messages(ROOM, token, 0, 0) == ([(2, "answer")], True)
    viewer_side.viewer_send(ROOM, token, "offer")
    assert box_side.box_messages(BOX, ROOM, 2, 0) == [(3, handle, "message", "offer")]
    assert box_side.count() == viewer_side.count() == 1
    box_side.close(BOX, ROOM)
    assert refused(viewer_side.check, ROOM) == (410, "ended")


def test_the_seat_is_granted_atomically_across_processes(shared) -> None:
    processes = [shared().rooms for _ in range(4)]
    processes[0].open(BOX, ROOM, time.time() + 60)
    outcomes: list[str] = []
    tokens: list[str] = []
    lock = threading.Lock()

    def knock(rooms: ThreadedRoomStore) -> None:
        for _ in range(5):
            try:
                token = rooms.knock(ROOM, "k")
            except RelayError as exc:
                with lock:
                    outcomes.append(exc.code)
            else:
                with lock:
                    outcomes.append("in")
                    tokens.append(token)

    threads = [threading.Thread(target=knock, args=(p,)) for p in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes.count("in") == store_mod.MAX_PENDING_KNOCKS, "the bound holds across processes"

    handles = [m[1] for m in processes[0].box_messages(BOX, ROOM, 0, 0)]
    grants = [
        in_thread(p.box_send, BOX, ROOM, h, "answer", True)
        for p, h in zip(processes, handles, strict=True)
    ]
    for thread, _ in grants:
        thread.join(10)
    heard = []
    for token in tokens:
        try:
            heard.append(processes[1].viewer_messages(ROOM, token, 1000, 0)[1])
        except RelayError as exc:
            heard.append(exc.code)
    assert sorted(heard, key=str) == sorted([True] + ["taken"] * 3, key=str), heard


def test_redis_holds_no_room_id_token_or_address_and_every_key_expires(
    shared, redis_client
) -> None:
    limits = RelayLimits(shared().buckets)
    rooms = shared().rooms
    rooms.open(BOX, ROOM, time.time() + 60)
    token, _ = seated(rooms)
    rooms.viewer_send(ROOM, token, "sealed-offer")
    limits.viewers.take("198.51.100.7")
    rooms.open(BOX, ROOM2, time.time() + 60)
    rooms.close(BOX, ROOM2)
    keys = redis_client.keys("*")
    assert keys
    everything = " ".join(keys)
    for key in keys:
        assert redis_client.ttl(key) > 0, f"{key} never expires"
        kind = redis_client.type(key)
        if kind == "string":
            everything += " " + redis_client.get(key)
        elif kind == "hash":
            everything += " " + " ".join(redis_client.hgetall(key).values())
        elif kind == "list":
            everything += " " + " ".join(redis_client.lrange(key, 0, -1))
        elif kind == "zset":
            everything += " " + " ".join(redis_client.zrange(key, 0, -1))
    for secret in (ROOM, ROOM2, token, "198.51.100.7"):
        assert secret not in everything
    assert sha(ROOM) in everything, "rooms are named by their hash"


def test_two_relay_apps_on_one_redis_serve_one_room_and_one_knock_budget(shared) -> None:
    from appliance.relay.app import create_relay_app
    from appliance.relay.config import RelayConfig

    config = RelayConfig(boxes=(BOX,))
    apps = []
    for _ in range(2):
        store = shared()
        apps.append(create_relay_app(config, store.rooms, buckets=store.buckets).test_client())
    box = {"Authorization": f"Bearer {BOX_TOKEN}"}
    opened = apps[0].put(f"/api/box/rooms/{ROOM}", json={"expires": time.time() + 60}, headers=box)
    assert opened.status_code == 201
    statuses = []
    for i in range(2 * KNOCK_BURST):  # one address, alternately on either process
        knocked = apps[i % 2].post(
            f"/api/rooms/{ROOM}/knock", json={"blob": "k"}, environ_base={"REMOTE_ADDR": ADDRESS}
        )
        statuses.append(knocked.status_code)
        if knocked.status_code == 202:  # the box refuses it: no knock stays pending
            sent = apps[1 - i % 2].get(f"/api/box/rooms/{ROOM}/messages?after=0", headers=box)
            handle = sent.get_json()["messages"][-1]["client"]
            refusal = {"client": handle, "reason": "bad"}
            apps[0].post(f"/api/box/rooms/{ROOM}/refuse", json=refusal, headers=box)
    assert statuses == [202] * KNOCK_BURST + [429] * KNOCK_BURST, "one budget, not two"


def test_a_poll_still_wakes_when_the_subscription_drops(shared, redis_client) -> None:
    box_side, viewer_side = shared().rooms, shared().rooms
    box_side.open(BOX, ROOM, time.time() + 60)
    token, _ = seated(box_side)
    thread, got = in_thread(box_side.box_messages, BOX, ROOM, 1, 10)
    time.sleep(0.2)
    assert redis_client.client_kill_filter(_type="pubsub") >= 2, "every listener cut off"
    sent = time.monotonic()
    viewer_side.viewer_send(ROOM, token, "offer")  # its message may be lost: the wait rechecks
    thread.join(5)
    assert got and [m[3] for m in got[0][1]] == ["offer"]
    assert got[0][0] - sent < 2.5, "within a recheck, not at the poll's end"
