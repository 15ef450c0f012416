"""The relay's limits against abuse, through Flask's test client and the rooms themselves (no
socket): the limiter's memory, clients behind a reverse proxy, requests to rooms that are not
open, long polls, malformed numbers; and what a viewer hears about a room (the viewer contract in
docs/protocol.md, "Relay transport")."""

from __future__ import annotations

import logging
import threading
import time
import types
from typing import Any

import pytest

from appliance.relay import limits as limits_mod
from appliance.relay import rooms as rooms_mod
from appliance.relay.app import create_relay_app
from appliance.relay.config import RelayConfig, hash_token
from appliance.relay.rooms import RelayError, Rooms

TOKEN = "box-token-" + "u" * 30
BOX = {"Authorization": f"Bearer {TOKEN}"}
ROOM = "Abcdefghijklmnopqrstuv"
ROOM2 = "Zyxwvutsrqponmlkjihgfe"
UNKNOWN = "Qwertyuiopasdfghjklzxc"


def make(**config: Any) -> tuple[Any, Rooms]:
    rooms = Rooms()
    app = create_relay_app(RelayConfig(boxes=(hash_token(TOKEN),), **config), rooms)
    return app.test_client(), rooms


def open_room(client: Any, room: str = ROOM, seconds: float = 600) -> None:
    response = client.put(
        f"/api/box/rooms/{room}", json={"expires": time.time() + seconds}, headers=BOX
    )
    assert response.status_code == 201


def knock(client: Any, room: str = ROOM, address: str = "198.51.100.7", **kw: Any) -> Any:
    return client.post(
        f"/api/rooms/{room}/knock", json={"blob": "k"}, environ_base={"REMOTE_ADDR": address}, **kw
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


# -- item 4: the limiter's memory ------------------------------------------------------------------


def test_buckets_are_forgotten_by_time_and_each_take_costs_the_same(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(limits_mod, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    buckets = limits_mod.Buckets(2.0, 40)  # the relay's viewers: refilled after 20 s
    calls = 30_000
    for i in range(calls):  # 30k addresses, 1000 a second: 30 s, past the 20 s a bucket lives
        clock.now += 0.001
        assert buckets.take(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    table = len(buckets._buckets)
    assert table <= 20 * 1000 + 1, f"{table} buckets kept: only the last 20 s of addresses"
    # the cost of a take does not grow with the addresses: every bucket is looked at about twice
    assert buckets.examined <= 2 * calls + 1
    before = buckets.examined
    for i in range(1000):
        clock.now += 0.001
        buckets.take(f"10.200.{i >> 8}.{i & 255}")
    assert buckets.examined - before <= 2 * 1000 + 1
    clock.now += 21
    buckets.take("192.0.2.1")
    assert len(buckets._buckets) == 1, "an idle table forgets every refilled bucket"


def test_the_table_has_a_hard_cap_however_fast_addresses_come(monkeypatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(limits_mod, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    buckets = limits_mod.Buckets(2.0, 40, max_keys=1000)
    for i in range(5000):  # all within the same instant: nothing has refilled
        buckets.take(f"10.0.{i >> 8}.{i & 255}")
    assert len(buckets._buckets) <= 1000


def test_an_ipv6_client_is_limited_per_64() -> None:
    buckets = limits_mod.Buckets(0.001, 5)
    taken = [buckets.take(f"2001:db8:1:2::{i:x}") for i in range(20)]
    assert taken == [True] * 5 + [False] * 15, "one /64 is one client"
    assert buckets.take("2001:db8:1:3::1"), "another /64 is another client"
    from appliance.httpd.addresses import address_key

    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8::1") == "2001:db8::/64"


# -- item 5: behind the reverse proxy, and requests to rooms that are not open -------------------


def test_a_trusted_proxy_s_forwarded_address_is_the_client() -> None:
    from appliance.httpd.addresses import client_address, parse_networks

    trusted = parse_networks(["127.0.0.1", "10.0.0.0/8"])
    assert client_address("127.0.0.1", ["203.0.113.9"], trusted) == "203.0.113.9"
    # a client cannot choose its key by adding entries of its own: the rightmost untrusted counts
    assert client_address("127.0.0.1", ["1.2.3.4, 203.0.113.9"], trusted) == "203.0.113.9"
    assert client_address("127.0.0.1", ["203.0.113.9, 10.1.1.1"], trusted) == "203.0.113.9"
    assert client_address("127.0.0.1", ["garbage"], trusted) == "127.0.0.1"
    assert client_address("198.51.100.1", ["203.0.113.9"], trusted) == "198.51.100.1", (
        "X-Forwarded-For from anyone but a trusted proxy is ignored"
    )
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"


def test_behind_the_proxy_one_viewer_s_abuse_does_not_lock_out_another() -> None:
    client, _ = make(trusted_proxies=("127.0.0.1",))
    open_room(client)
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    for _ in range(60):  # someone hammers the relay through the proxy
        client.get(
            f"/api/rooms/{UNKNOWN}/messages",
            headers={"X-Forwarded-For": "203.0.113.66"},
            environ_base=proxy,
        )
        client.get(f"/v/{ROOM}", headers={"X-Forwarded-For": "203.0.113.66"}, environ_base=proxy)
    response = client.post(
        f"/api/rooms/{ROOM}/knock",
        json={"blob": "k"},
        headers={"X-Forwarded-For": "198.51.100.7"},
        environ_base=proxy,
    )
    assert response.status_code == 202, "the real viewer behind the same proxy gets in"


def test_requests_to_a_room_that_is_not_open_do_not_spend_the_viewer_s_tokens() -> None:
    client, _ = make()
    open_room(client)
    for _ in range(60):  # 3 a second for 20 s, from the viewer's own address (one NAT)
        got = knock(client, UNKNOWN)
        assert got.status_code in (404, 429)
    assert knock(client).status_code == 202, "the real viewer still knocks"


# -- item 3: long polls ---------------------------------------------------------------------------


def test_one_client_holds_one_long_poll_a_new_one_ends_the_one_before() -> None:
    rooms = Rooms()
    rooms.open(hash_token(TOKEN), ROOM, time.time() + 60)
    token = rooms.knock(ROOM, "k")
    ended: list[float] = []

    def poll() -> None:
        try:
            rooms.viewer_messages(ROOM, token, 0, 5)
        except RelayError:  # close_all below
            return
        ended.append(time.monotonic())

    threads = [threading.Thread(target=poll) for _ in range(10)]
    try:
        for thread in threads:
            thread.start()
            time.sleep(0.02)
        deadline = time.monotonic() + 2
        while len(ended) < 9 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(ended) >= 9, f"{10 - len(ended)} polls of one client still waiting"
    finally:
        rooms.close_all()
        for thread in threads:
            thread.join(5)


def test_long_polls_are_bounded_per_room_and_per_address() -> None:
    rooms = Rooms()
    rooms.open(hash_token(TOKEN), ROOM, time.time() + 60)
    box = hash_token(TOKEN)
    tokens = []
    for _ in range(rooms_mod.MAX_POLLS_PER_ROOM + 1):
        tokens.append(rooms.knock(ROOM, "k"))
        handle = rooms.box_messages(box, ROOM, 0, 0)[-1][1]
        rooms.box_send(box, ROOM, handle, "reply", False)  # answered: no longer pending

    def wait(token: str) -> None:
        with pytest.raises(RelayError):  # ended by close_all below
            rooms.viewer_messages(ROOM, token, 1000, 5)

    threads = [threading.Thread(target=wait, args=(t,)) for t in tokens[:-1]]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        with pytest.raises(RelayError) as refused:
            rooms.viewer_messages(ROOM, tokens[-1], 1000, 5)
        assert refused.value.status == 429
    finally:
        rooms.close_all()
        for thread in threads:
            thread.join(5)

    client, rooms = make()
    open_room(client)
    viewers = []
    for i in range(limits_mod.POLLS_PER_ADDRESS + 1):
        got = knock(client, address=f"198.51.100.{i}")  # knocks from several addresses...
        viewers.append(got.get_json()["client"])
        handle = rooms.box_messages(hash_token(TOKEN), ROOM, 0, 0)[-1][1]
        rooms.box_send(hash_token(TOKEN), ROOM, handle, "reply", False)
    statuses: list[int] = []

    def poll(token: str) -> None:
        response = client.get(
            f"/api/rooms/{ROOM}/messages?after=1000&wait=3",
            headers={"Authorization": f"Bearer {token}"},
            environ_base={"REMOTE_ADDR": "203.0.113.5"},  # ...polled from one
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=poll, args=(t,)) for t in viewers[:-1]]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        poll(viewers[-1])
        assert statuses == [429], "one address holds at most POLLS_PER_ADDRESS long polls"
    finally:
        rooms.close_all()
        for thread in threads:
            thread.join(5)


# -- item 7: numbers in the query ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "-1", "1.5", "0x10", "١", ""])
def test_after_and_wait_must_be_plain_numbers(value: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client, rooms = make()
    open_room(client)
    viewer = knock(client).get_json()["client"]
    viewer_auth = {"Authorization": f"Bearer {viewer}"}
    for path, headers in (
        (f"/api/rooms/{ROOM}/messages", viewer_auth),
        (f"/api/box/rooms/{ROOM}/messages", BOX),
    ):
        response = client.get(f"{path}?after={value}", headers=headers)
        assert (response.status_code, response.get_json()) == (400, {"error": "bad-request"})
        if value not in ("-1", "١", "", "1.5", "0x10"):
            response = client.get(f"{path}?after=0&wait={value}", headers=headers)
            assert (response.status_code, response.get_json()) == (400, {"error": "bad-request"})
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


# -- numbers and nesting in a body (issue 18, item 6; httpd/jsonbody.py) ----------------------------

HOSTILE_BODIES = [
    '{"expires": NaN}',
    '{"expires": Infinity}',
    '{"expires": -Infinity}',
    '{"expires": 1e400}',
    '{"expires": ' + "9" * 400 + "}",
    '{"expires": true}',
    '{"expires": "soon"}',
    '{"expires": 1, "x": ' + "[" * 50 + "]" * 50 + "}",
    '{"expires": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}",
    "[1]",
    "not json",
]


@pytest.mark.parametrize("raw", HOSTILE_BODIES)
def test_a_box_body_with_a_number_that_is_not_one_is_a_400(raw: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client, rooms = make()
    open_room(client)
    before = rooms._rooms[ROOM].expires
    for method, path in (
        (client.put, f"/api/box/rooms/{ROOM}/expiry"),
        (client.put, f"/api/box/rooms/{ROOM2}"),
    ):
        response = method(path, data=raw, content_type="application/json", headers=BOX)
        assert (response.status_code, response.get_json()) == (400, {"error": "bad-request"})
    assert rooms._rooms[ROOM].expires == before, "the room's expiry is untouched"
    assert ROOM2 not in rooms._rooms
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


def test_a_later_expiry_in_a_plain_body_still_extends() -> None:
    client, rooms = make()
    open_room(client)
    later = int(time.time()) + 3600
    response = client.put(f"/api/box/rooms/{ROOM}/expiry", json={"expires": later}, headers=BOX)
    assert response.status_code == 204
    assert rooms._rooms[ROOM].expires == later


# -- the viewer contract ----------------------------------------------------------------------------


def poll(client: Any, token: str = "nobody", room: str = ROOM) -> tuple[int, Any]:
    response = client.get(
        f"/api/rooms/{room}/messages?after=0", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.get_json()


def test_what_a_viewer_hears_about_a_room() -> None:
    client, rooms = make()
    assert (knock(client, UNKNOWN).status_code, knock(client, UNKNOWN).get_json()) == (
        404,
        {"error": "unknown"},
    )
    assert poll(client, room=UNKNOWN) == (404, {"error": "unknown"})
    assert poll(client, room="not a room id") == (404, {"error": "unknown"})

    open_room(client)
    viewer = knock(client).get_json()["client"]
    assert client.delete(f"/api/box/rooms/{ROOM}?reason=ended", headers=BOX).status_code == 204
    assert poll(client, viewer) == (410, {"error": "ended"})
    assert knock(client).get_json() == {"error": "ended"}

    open_room(client, ROOM2)
    assert client.delete(f"/api/box/rooms/{ROOM2}?reason=expired", headers=BOX).status_code == 204
    assert poll(client, room=ROOM2) == (410, {"error": "expired"})
    assert knock(client, ROOM2).status_code == 410
    assert (
        client.delete(f"/api/box/rooms/{UNKNOWN}?reason=nonsense", headers=BOX).status_code == 400
    )


def test_a_room_past_its_expiry_is_expired_and_a_refused_knock_says_why() -> None:
    client, rooms = make()
    open_room(client, seconds=0.3)
    time.sleep(0.4)
    assert knock(client).get_json() == {"error": "expired"}
    rooms.reap()
    assert poll(client) == (410, {"error": "expired"})

    open_room(client, ROOM2)
    box = hash_token(TOKEN)
    for reason in ("bad", "refused", "taken", "nonsense"):
        viewer = knock(client, ROOM2).get_json()["client"]
        handle = rooms.box_messages(box, ROOM2, 0, 0)[-1][1]
        response = client.post(
            f"/api/box/rooms/{ROOM2}/refuse", json={"client": handle, "reason": reason}, headers=BOX
        )
        assert response.status_code == 204
        expected = "refused" if reason == "nonsense" else reason
        assert poll(client, viewer, ROOM2) == (403, {"error": expected})


def test_ended_rooms_are_remembered_bounded_and_a_restarted_relay_takes_the_room_again(
    monkeypatch,
) -> None:
    monkeypatch.setattr(rooms_mod, "MAX_GONE", 50)
    rooms = Rooms()
    box = hash_token(TOKEN)
    for i in range(200):
        room = f"room-{i:06d}-abcdefghij"
        rooms.open(box, room, time.time() + 60)
        rooms.close(box, room)
    assert len(rooms._gone) == 50, "at most MAX_GONE outcomes, the oldest forgotten"
    assert all(len(key) == 64 for key in rooms._gone), "kept by hash only"
    with pytest.raises(RelayError) as gone:
        rooms.check("room-000199-abcdefghij")
    assert (gone.value.status, gone.value.code) == (410, "ended")

    restarted = Rooms()  # the relay restarted: it knows nothing, the box opens its room again
    restarted.open(box, "room-000199-abcdefghij", time.time() + 60)
    restarted.check("room-000199-abcdefghij")
    assert restarted.knock("room-000199-abcdefghij", "k")


def test_an_unexpected_failure_is_a_503_and_its_log_holds_no_room_id(caplog, monkeypatch) -> None:
    """The shared store restarting, say: Flask's own handler logged the request's path, which
    holds the room's id (the review's finding); the phone is told to try again."""
    caplog.set_level(logging.DEBUG)
    client, rooms = make()
    open_room(client)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the store went away")

    monkeypatch.setattr(rooms, "knock", broken)
    response = knock(client)
    assert (response.status_code, response.get_json()) == (503, {"error": "unavailable"})
    assert response.headers["Retry-After"] == "2"
    logged = " ".join(r.getMessage() for r in caplog.records) + " ".join(
        str(r.exc_text or "") for r in caplog.records
    )
    assert "ConnectionError" in logged and ROOM not in logged
    assert not [r for r in caplog.records if r.exc_info], "no traceback with the path in it"


def test_the_reaper_outlives_a_store_that_fails_for_a_while(monkeypatch, caplog) -> None:
    """A Redis restart made reap() raise, which ended the reaper thread for good: no process
    ended expired rooms any more (the review's finding)."""
    from appliance.relay import server as server_mod
    from appliance.relay.stores import Store

    monkeypatch.setattr(server_mod, "REAP_EVERY", 0.01)
    rooms = Rooms()
    calls: list[int] = []
    real_reap = rooms.reap

    def flaky() -> None:
        calls.append(1)
        if len(calls) <= 3:
            raise ConnectionError("the store went away")
        real_reap()

    monkeypatch.setattr(rooms, "reap", flaky)
    relay = server_mod.Relay(RelayConfig(boxes=(hash_token(TOKEN),)), store=Store(rooms)).start()
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        relay.stop()
    assert len(calls) >= 6, "the reaper went on after the store failed"
    warnings = [r for r in caplog.records if "could not end expired rooms" in r.getMessage()]
    assert len(warnings) == 1, "one line per outage"
