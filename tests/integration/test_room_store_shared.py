"""The relay's Redis store, what only a shared store must do: two relay processes (two stores on
one real redis-server) serve one room, one seat and one rate budget; a poll on one wakes at a
change on the other, even when the subscription drops; Redis holds no room id, token or address,
and every key expires."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.relay import store as store_mod
from appliance.relay.awaitable import drive
from appliance.relay.limits import BURST, KNOCK_BURST, RelayLimits
from appliance.relay.redis_io import BlockingIO
from appliance.relay.redis_rooms import PREFIX, RedisSteps, sha
from appliance.relay.store import RelayError, ThreadedRoomStore
from tests.support.room_stores import (
    ADDRESS,
    BOX,
    BOX_TOKEN,
    ROOM,
    ROOM2,
    in_thread,
    maker,
    refused,
    seated,
)


@pytest.fixture
def shared(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Redis stores: each another relay process on the same Redis."""
    yield from maker(request, "redis")


def test_two_relay_processes_give_an_address_one_budget(shared) -> None:
    first, second = RelayLimits(shared().buckets), RelayLimits(shared().buckets)
    taken = [(first, second)[i % 2].knocks.take("198.51.100.7") for i in range(2 * KNOCK_BURST)]
    assert taken.count(True) == KNOCK_BURST, "the two processes share one bucket"
    v6 = [(first, second)[i % 2].viewers.take(f"2001:db8::{i:x}") for i in range(BURST + 5)]
    assert v6.count(True) == BURST, "an IPv6 client by its /64, across processes"


def test_each_step_of_a_room_is_one_round_trip(shared, redis_client, monkeypatch) -> None:
    """Every step is one command to Redis (a script, atomic there), a refusal too; counted
    the second time round (the first may load the scripts)."""
    import redis.connection

    rooms = shared().rooms
    sent: list[str] = []
    kinds: set[str] = set()
    send = redis.connection.AbstractConnection.send_command
    here = threading.current_thread()

    def counted_send(connection: Any, *args: Any, **options: Any) -> Any:
        if threading.current_thread() is here:  # not the listener's
            sent.append(str(args[0]))
            kinds.add(str(args[0]))
        return send(connection, *args, **options)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", counted_send)

    def commands(step: Any, *args: Any) -> int:
        sent.clear()
        with contextlib.suppress(RelayError):
            step(*args)
        return len(sent)

    for _ in range(2):
        redis_client.flushdb()
        kinds.clear()
        counted = [
            commands(rooms.open, BOX, ROOM, time.time() + 60),
            commands(rooms.extend, BOX, ROOM, time.time() + 120),
            commands(rooms.check, ROOM),
            commands(rooms.expiry, BOX, ROOM),
            commands(rooms.knock, ROOM, "knock"),
            commands(rooms.box_take, BOX, ROOM, 0),
        ]
        handle = rooms.box_take(BOX, ROOM, 0)[-1][1]
        token = rooms.knock(ROOM, "another")
        second = rooms.box_take(BOX, ROOM, 0)[-1][1]
        counted += [
            commands(rooms.box_send, BOX, ROOM, handle, "answer", False),
            commands(rooms.box_refuse, BOX, ROOM, handle, "refused"),
            commands(rooms.box_begin, BOX, ROOM, True),
            commands(rooms.viewer_begin, ROOM, token, True),
            commands(rooms.viewer_send, ROOM, token, "no seat: refused"),
            commands(rooms.close, BOX, ROOM),
            commands(rooms.knock, ROOM, "a closed room: refused"),
        ]
    assert second and counted == [1] * len(counted)
    assert kinds == {"EVALSHA"}


def test_a_long_poll_begins_with_its_first_take_and_ends_with_the_take_that_answers(
    shared, redis_client, monkeypatch
) -> None:
    """The asynchronous relay's long poll (its steps driven here through the plain client): its
    begin takes at once, one round trip, and a poll answered by it is never counted as waiting;
    the take that answers a waiting poll ends it in the same round trip."""
    import redis.connection

    rooms = shared().rooms
    steps = RedisSteps(BlockingIO(redis_client), PREFIX)
    rooms.open(BOX, ROOM, time.time() + 60)
    token, handle = seated(rooms)  # the knock is n=1, the box's answer to the phone n=2
    polls, box_polls = f"{PREFIX}polls:{sha(ROOM)}", f"{PREFIX}boxpolls:{BOX}"
    sent: list[object] = []
    send = redis.connection.AbstractConnection.send_command

    def counted(connection: Any, *args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return send(connection, *args, **options)

    def one_round_trip(step: Any) -> Any:
        sent.clear()
        monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", counted)
        try:
            return drive(step)
        finally:
            monkeypatch.undo()
            assert len(sent) == 1, sent

    warm, _ = drive(steps.viewer_poll(ROOM, token, False, 0))  # the scripts loaded
    drive(steps.viewer_answer(warm, 0, True))
    warm, _ = drive(steps.box_poll(BOX, ROOM, False, 0))
    drive(steps.box_answer(warm, 0, True))
    ticket, first = one_round_trip(steps.viewer_poll(ROOM, token, True, 0))
    assert first == ([(2, "answer")], True) and not ticket.waiting
    assert redis_client.zcard(polls) == 0, "answered at once: never counted as waiting"
    ticket, first = one_round_trip(steps.viewer_poll(ROOM, token, True, 2))
    assert first is None and ticket.waiting and redis_client.zcard(polls) == 1
    assert one_round_trip(steps.viewer_answer(ticket, 2, False)) is None
    rooms.box_send(BOX, ROOM, handle, "ice", False)
    assert one_round_trip(steps.viewer_answer(ticket, 2, False)) == ([(3, "ice")], True)
    assert redis_client.zcard(polls) == 0, "ended by the take that answered it"

    ticket, first = one_round_trip(steps.box_poll(BOX, ROOM, True, 1))
    assert first is None and ticket.waiting and redis_client.zcard(box_polls) == 1
    rooms.viewer_send(ROOM, token, "offer")
    assert one_round_trip(steps.box_answer(ticket, 1, False)) == [(4, handle, "message", "offer")]
    assert redis_client.zcard(box_polls) == 0
    ticket, first = one_round_trip(steps.box_poll(BOX, ROOM, True, 1))
    assert first == [(4, handle, "message", "offer")] and redis_client.zcard(box_polls) == 0


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
    rooms.extend(BOX, ROOM, time.time() + 120)
    rooms.viewer_send(ROOM, token, "sealed-offer")
    read = rooms.box_take(BOX, ROOM, 0)[-1][0]
    assert rooms.box_take(BOX, ROOM, read) == []  # the box has read all: its queue empties
    rooms.viewer_send(ROOM, token, "sealed-ice")  # and fills again
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
    # an address's plain hash could be reversed (2^32 IPv4 addresses): buckets use a keyed one
    assert sha("198.51.100.7") not in everything


def test_a_relay_whose_redis_is_gone_answers_503_and_retry_after(shared, monkeypatch) -> None:
    """Redis unreachable: a long poll (what it waits past is read first), a send and a status
    are each answered 503 with Retry-After, never a crash or a dropped connection."""
    import redis.connection

    from appliance.relay.app import create_relay_app
    from appliance.relay.config import RelayConfig

    store = shared()
    store.rooms.open(BOX, ROOM, time.time() + 60)
    token, _ = seated(store.rooms)
    app = create_relay_app(RelayConfig(boxes=(BOX,)), store.rooms, buckets=store.buckets)
    client = app.test_client()

    def gone(*_: Any, **__: Any) -> None:
        raise redis.ConnectionError("Redis went away")

    box = {"Authorization": f"Bearer {BOX_TOKEN}"}
    viewer = {"Authorization": f"Bearer {token}"}
    with monkeypatch.context() as patched:
        patched.setattr(redis.connection.AbstractConnection, "send_command", gone)
        for method, path, headers in (
            ("GET", f"/api/box/rooms/{ROOM}/messages?after=0&wait=5", box),
            ("GET", f"/api/rooms/{ROOM}/messages?after=0&wait=5", viewer),
            ("POST", f"/api/rooms/{ROOM}/messages", viewer),
            ("GET", f"/api/rooms/{ROOM}", {}),
        ):
            answer = client.open(path, method=method, headers=headers, json={"blob": "x"})
            assert (answer.status_code, answer.get_json()) == (503, {"error": "unavailable"})
            assert answer.headers["Retry-After"] == "2", path


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
    assert redis_client.client_kill_filter(_type="pubsub") >= 1, "its listener cut off"
    sent = time.monotonic()
    viewer_side.viewer_send(ROOM, token, "offer")  # its message may be lost: the wait rechecks
    thread.join(5)
    assert got and [m[3] for m in got[0][1]] == ["offer"]
    assert got[0][0] - sent < 2.5, "within a recheck, not at the poll's end"


def test_the_relay_refuses_a_redis_that_writes_to_disk(redis_url, redis_client) -> None:
    """Debian's redis.conf leaves `save` unset, so Redis snapshots by its own default: the relay
    must refuse to start on it rather than have rooms written to disk (the review's finding)."""
    from appliance.errors import ConfigError
    from appliance.relay.config import RedisConfig, RelayConfig, StoreKind
    from appliance.relay.stores import build_store

    config = RelayConfig(store=StoreKind.REDIS, redis=RedisConfig(url=redis_url))
    build_store(config).rooms.close_all()  # the tests' Redis persists nothing: accepted
    for setting, value in (("save", "3600 1"), ("appendonly", "yes")):
        redis_client.config_set(setting, value)
        try:
            with pytest.raises(ConfigError, match="writes its data to disk"):
                build_store(config)
        finally:
            redis_client.config_set(setting, "" if setting == "save" else "no")


def test_restarted_means_the_shared_rooms_are_new_not_the_relay_process(
    shared, redis_client
) -> None:
    """A relay process that (re)started on a Redis that kept the rooms knows every one of them:
    a room it does not know is unknown, and the phone is told so at once. Only a Redis that lost
    its rooms (restarted: it keeps nothing on disk) makes every process say, for the reopen
    window, that the box may open it again."""
    from appliance.relay.app import create_relay_app
    from appliance.relay.config import RelayConfig
    from appliance.relay.redis_rooms import PREFIX

    def relay_process() -> Any:
        store = shared()
        config = RelayConfig(boxes=(BOX,))
        app = create_relay_app(config, store.rooms, reopen_window=60.0, buckets=store.buckets)
        return app.test_client()

    def unknown(client: Any) -> Any:
        answer = client.get(f"/api/rooms/{ROOM}", environ_base={"REMOTE_ADDR": ADDRESS})
        assert answer.status_code == 404
        return answer.get_json()

    first = relay_process()
    assert unknown(first) == {"error": "unknown", "restarted": True}, "a fresh Redis"
    # a minute and more later (the rooms' birth moved back, as time would move it)
    redis_client.set(f"{PREFIX}epoch:all", repr(time.time() - 61), keepttl=True)
    restarted = relay_process()  # a process started just now, on the Redis that kept the rooms
    assert unknown(first) == unknown(restarted) == {"error": "unknown"}
    redis_client.flushdb()  # Redis restarted: every room is gone, the boxes will reopen theirs
    assert unknown(first) == unknown(restarted) == {"error": "unknown", "restarted": True}


def test_a_phone_whose_token_a_restarted_redis_lost_is_told_to_knock_again(
    shared, redis_client
) -> None:
    """Redis restarted (it keeps nothing): the box opens its room again, and a watching phone's
    next poll, with a token Redis lost, hears "restarted" (its page knocks again with its seat),
    not "refused" (its page would stop as if the staff had refused it)."""
    from appliance.relay.app import create_relay_app
    from appliance.relay.config import RelayConfig
    from appliance.relay.redis_rooms import PREFIX

    store = shared()
    config = RelayConfig(boxes=(BOX,))
    app = create_relay_app(config, store.rooms, reopen_window=60.0, buckets=store.buckets)
    client = app.test_client()
    store.rooms.open(BOX, ROOM, time.time() + 600)
    token, _ = seated(store.rooms)
    redis_client.set(f"{PREFIX}epoch:all", repr(time.time() - 3600), keepttl=True)  # long up

    def poll() -> tuple[int, Any]:
        answer = client.get(
            f"/api/rooms/{ROOM}/messages?after=0&wait=0",
            headers={"Authorization": f"Bearer {token}"},
            environ_base={"REMOTE_ADDR": ADDRESS},
        )
        return answer.status_code, answer.get_json()

    assert poll()[0] == 200
    redis_client.flushdb()  # Redis restarted
    store.rooms.reap()  # a reaping pass notes the rooms' new birth
    store.rooms.open(BOX, ROOM, time.time() + 600)  # the box's next poll: 404, it reopens
    assert poll() == (404, {"error": "unknown", "restarted": True})
