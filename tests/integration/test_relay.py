"""The relay on loopback, over real HTTP: every endpoint, the seat, the bounds and limits, and
what it must never do (keep files, log tokens or rooms, serve other bytes than the packaged
viewer)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request

import pytest

from appliance.relay import rooms as rooms_mod
from appliance.relay.aioserver import AsyncRelayServer
from appliance.relay.config import (
    RedisConfig,
    RelayConfig,
    StoreKind,
    TurnConfig,
    hash_token,
    load,
)
from appliance.relay.server import RelayServer
from appliance.relay.viewer import VIEWER_CSP, VIEWER_DIR

TOKEN = "box-token-" + "x" * 30
ROOM = "Abcdefghijklmnopqrstuv"  # 22 characters, like a real room id
ROOM2 = "Zyxwvutsrqponmlkjihgfe"


def call(base: str, method: str, path: str, body=None, token: str = "", timeout: float = 40):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            raw = r.read()
            return (
                r.status,
                (
                    json.loads(raw)
                    if raw and r.headers.get_content_type() == "application/json"
                    else raw
                ),
                r.headers,
            )
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw), exc.headers
        except ValueError:
            return exc.code, raw, exc.headers


#: (server, store): `appliance relay serve`'s aiohttp server on each store, and the Flask relay
#: (the one built into a box) on its store, memory.
SERVED = [("aiohttp", "memory"), ("aiohttp", "redis"), ("flask", "memory")]


@pytest.fixture(params=SERVED, ids=["-".join(p) for p in SERVED])
def relay(request: pytest.FixtureRequest):
    """The relay over HTTP on each server and store, chosen as relay.toml chooses it (Redis:
    emptied)."""
    kind, store = request.param
    shared: dict = {}
    if store == "redis":
        request.getfixturevalue("redis_client")  # an empty database
        shared = {
            "store": StoreKind.REDIS,
            "redis": RedisConfig(url=request.getfixturevalue("redis_url")),
        }
    server = (AsyncRelayServer if kind == "aiohttp" else RelayServer)(
        RelayConfig(
            port=0,
            boxes=(hash_token(TOKEN),),
            turn=TurnConfig(secret="turn-secret", urls=("turn:127.0.0.1:3478",), ttl=600),
            **shared,
        )
    ).start()
    try:
        yield server
    finally:
        server.stop()


def open_room(base: str, room: str = ROOM, expires: float | None = None):
    return call(
        base, "PUT", f"/api/box/rooms/{room}", {"expires": expires or time.time() + 600}, TOKEN
    )


def knock(base: str, room: str = ROOM, blob: str = '{"k":1}'):
    return call(base, "POST", f"/api/rooms/{room}/knock", {"blob": blob})


def test_the_box_must_show_its_token(relay) -> None:
    base = relay.url
    assert call(base, "GET", "/api/box/ping", token=TOKEN)[:2] == (200, {"ok": True})
    assert call(base, "GET", "/api/box/ping", token="wrong")[0] == 401
    assert call(base, "GET", "/api/box/ping")[0] == 401
    assert open_room(base)[0] == 201
    assert (
        call(base, "PUT", f"/api/box/rooms/{ROOM2}", {"expires": time.time() + 60}, "nope")[0]
        == 401
    )


def test_a_whole_exchange_and_the_seat_granted_only_by_the_box(relay) -> None:
    base = relay.url
    assert open_room(base)[0] == 201
    assert open_room(base)[:2] == (409, {"error": "exists"}), "a room id is never reused"
    status, answer, _ = knock(base, blob="knock-1")
    assert status == 202
    viewer = answer["client"]
    # before the box seats it, the viewer cannot send
    assert call(base, "POST", f"/api/rooms/{ROOM}/messages", {"blob": "x"}, viewer)[:2] == (
        403,
        {"error": "no-seat"},
    )
    status, got, _ = call(
        base, "GET", f"/api/box/rooms/{ROOM}/messages?after=0&wait=1", token=TOKEN
    )
    (message,) = got["messages"]
    assert message["kind"] == "knock" and message["blob"] == "knock-1"
    assert viewer not in json.dumps(got), "the box sees a handle, never the viewer's token"
    handle = message["client"]
    assert (
        call(
            base,
            "POST",
            f"/api/box/rooms/{ROOM}/messages",
            {"client": handle, "blob": "reply", "seat": True},
            TOKEN,
        )[0]
        == 204
    )
    status, got, _ = call(base, "GET", f"/api/rooms/{ROOM}/messages?after=0&wait=1", token=viewer)
    assert got["seat"] is True and [m["blob"] for m in got["messages"]] == ["reply"]
    assert call(base, "POST", f"/api/rooms/{ROOM}/messages", {"blob": "offer"}, viewer)[0] == 204
    status, got, _ = call(
        base, "GET", f"/api/box/rooms/{ROOM}/messages?after={message['n']}&wait=1", token=TOKEN
    )
    assert [(m["kind"], m["blob"]) for m in got["messages"]] == [("message", "offer")]

    # a second phone knocks: the box refuses it as taken
    _, second, _ = knock(base, blob="knock-2")
    _, got, _ = call(base, "GET", f"/api/box/rooms/{ROOM}/messages?after=0&wait=1", token=TOKEN)
    other = next(m["client"] for m in got["messages"] if m["blob"] == "knock-2")
    assert (
        call(
            base,
            "POST",
            f"/api/box/rooms/{ROOM}/refuse",
            {"client": other, "reason": "taken"},
            TOKEN,
        )[0]
        == 204
    )
    assert call(base, "GET", f"/api/rooms/{ROOM}/messages?after=0&wait=1", token=second["client"])[
        :2
    ] == (403, {"error": "taken"})
    assert (
        call(base, "POST", f"/api/rooms/{ROOM}/messages", {"blob": "x"}, second["client"])[0] == 403
    )

    # the box closes the room: everyone hears "ended", the id is dead
    assert call(base, "DELETE", f"/api/box/rooms/{ROOM}", token=TOKEN)[0] == 204
    assert call(base, "GET", f"/api/rooms/{ROOM}/messages?after=0&wait=1", token=viewer)[:2] == (
        410,
        {"error": "ended"},
    )
    assert knock(base)[:2] == (410, {"error": "ended"})
    assert knock(base, room=ROOM2)[:2] == (404, {"error": "unknown", "restarted": True})


def test_a_long_poll_wakes_on_a_message_and_times_out_empty(relay) -> None:
    base = relay.url
    open_room(base)
    started = time.monotonic()
    assert call(base, "GET", f"/api/box/rooms/{ROOM}/messages?after=0&wait=1", token=TOKEN)[1] == {
        "messages": []
    }
    assert time.monotonic() - started >= 0.9
    threading.Timer(0.3, knock, args=(base,)).start()
    started = time.monotonic()
    _, got, _ = call(base, "GET", f"/api/box/rooms/{ROOM}/messages?after=0&wait=20", token=TOKEN)
    assert len(got["messages"]) == 1 and time.monotonic() - started < 10


def test_oversized_and_empty_blobs_are_refused(relay) -> None:
    base = relay.url
    open_room(base)
    assert knock(base, blob="x" * (rooms_mod.MAX_BLOB + 1))[:2] == (413, {"error": "too-large"})
    assert knock(base, blob="")[:2] == (400, {"error": "bad-request"})
    assert call(base, "POST", f"/api/rooms/{ROOM}/knock", ["not", "an", "object"])[0] == 400


def test_pending_knocks_are_bounded_but_failed_knocks_never_lock_the_room() -> None:
    rooms = rooms_mod.Rooms()
    box = hash_token(TOKEN)
    rooms.open(box, ROOM, time.time() + 60)
    for _ in range(rooms_mod.MAX_PENDING_KNOCKS):
        rooms.knock(ROOM, "k")
    with pytest.raises(rooms_mod.RelayError) as refused:
        rooms.knock(ROOM, "k")
    assert (refused.value.status, refused.value.code) == (429, "slow-down")

    # junk needs only the room id: however much of it the box refuses, the seat's phone (or the
    # first real viewer) can still knock (issue 9 item 5; each address stays rate-limited)
    rooms.open(box, ROOM2, time.time() + 60)
    for _ in range(25):
        rooms.knock(ROOM2, "junk knock")
        handle = rooms.box_messages(box, ROOM2, 0, 0)[-1][1]
        rooms.box_refuse(box, ROOM2, handle, "bad")
    assert rooms.knock(ROOM2, "the real phone's knock")


def test_unauthenticated_requests_are_rate_limited_and_the_box_is_not(relay) -> None:
    base = relay.url
    open_room(base)
    statuses = [call(base, "GET", f"/v/{ROOM}")[0] for _ in range(100)]
    assert statuses[0] == 200 and 429 in statuses
    assert all(call(base, "GET", "/api/box/ping", token=TOKEN)[0] == 200 for _ in range(60))


def test_rooms_are_forgotten_at_expiry(relay) -> None:
    base = relay.url
    assert open_room(base, expires=time.time() + 1)[0] == 201
    assert knock(base)[0] == 202
    time.sleep(1.2)
    relay.rooms.reap()
    assert relay.rooms.count() == 0
    assert knock(base)[0] == 410


def test_turn_credentials_follow_coturns_rest_scheme_and_the_rooms_expiry(relay) -> None:
    import base64
    import hmac

    base = relay.url
    expires = time.time() + 120
    open_room(base, expires=expires)
    status, got, _ = call(base, "POST", "/api/box/turn", {"room": ROOM, "ttl": 3600}, TOKEN)
    (server,) = got["ice_servers"]
    expiry, tag = server["username"].split(":")
    assert int(expiry) <= expires + 1, "credentials die with the room"
    assert tag == hashlib.sha256(ROOM.encode()).hexdigest()[:8]
    assert (
        server["credential"]
        == base64.b64encode(
            hmac.new(b"turn-secret", server["username"].encode(), hashlib.sha1).digest()
        ).decode()
    )
    assert call(base, "POST", "/api/box/turn", {"room": ROOM}, "wrong")[0] == 401


def test_the_viewer_files_are_the_packaged_ones_with_a_strict_csp(relay) -> None:
    base = relay.url
    served = [(f"/v/{ROOM}", "index.html")] + [
        (f"/v/{p.relative_to(VIEWER_DIR)}", str(p.relative_to(VIEWER_DIR)))
        for p in sorted(VIEWER_DIR.rglob("*"))
        if p.is_file() and p.name != "index.html"
    ]
    assert ("/v/lang/fr.json", "lang/fr.json") in served
    for path, name in served:
        with urllib.request.urlopen(base + path, timeout=10) as answer:
            body, headers = answer.read(), answer.headers
        assert body == (VIEWER_DIR / name).read_bytes(), f"{path} differs from the package"
        assert headers["Content-Security-Policy"] == VIEWER_CSP
        assert headers["Referrer-Policy"] == "no-referrer"
    assert call(base, "GET", "/v/..%2fapp.py")[0] == 404


def test_the_viewer_s_languages_are_the_files_present_each_naming_itself(relay) -> None:
    status, listed, headers = call(relay.url, "GET", "/v/lang/")
    assert status == 200 and headers["Content-Security-Policy"] == VIEWER_CSP
    codes = [entry["code"] for entry in listed["languages"]]
    assert codes == sorted(p.stem for p in (VIEWER_DIR / "lang").glob("*.json"))
    assert {"code": "fr", "name": "Français"} in listed["languages"]
    english = json.loads((VIEWER_DIR / "lang" / "en.json").read_text())["text"]
    for entry in listed["languages"]:  # every language has every word English has
        text = json.loads((VIEWER_DIR / "lang" / f"{entry['code']}.json").read_text())["text"]
        assert set(text) == set(english), entry["code"]


def test_a_room_s_status_says_open_unknown_or_over_and_a_fresh_relay_says_it_forgot(
    relay,
) -> None:
    base = relay.url
    status, answer, _ = call(base, "GET", f"/api/rooms/{ROOM}")
    assert (status, answer) == (404, {"error": "unknown", "restarted": True}), (
        "just started: the box may open it again"
    )
    open_room(base)
    assert call(base, "GET", f"/api/rooms/{ROOM}")[0] == 204
    call(base, "DELETE", f"/api/box/rooms/{ROOM}?reason=expired", token=TOKEN)
    assert call(base, "GET", f"/api/rooms/{ROOM}")[:2] == (410, {"error": "expired"})


def test_loading_the_page_does_not_spend_what_the_phone_s_polls_need(relay) -> None:
    base = relay.url
    open_room(base)
    files = [f"/v/{ROOM}", "/v/lang/", "/v/lang/en.json"] + [
        f"/v/{p.name}" for p in VIEWER_DIR.glob("*.*") if p.name != "index.html"
    ]
    for _ in range(4):  # four page loads in a row
        for path in files:
            assert call(base, "GET", path)[0] == 200, path
    for _ in range(30):  # the room's status, as the page and its knocks would spend
        assert call(base, "GET", f"/api/rooms/{ROOM}")[0] == 204


def test_a_box_s_own_relay_knows_an_unknown_room_is_gone() -> None:
    from appliance.relay.server import Relay

    relay = Relay(RelayConfig(boxes=(hash_token(TOKEN),)))  # no reopen window: the box's own
    client = relay.app.test_client()
    answer = client.get(f"/api/rooms/{ROOM}")
    assert answer.status_code == 404 and answer.get_json() == {"error": "unknown"}


def test_no_file_is_written_and_nothing_identifying_is_logged(
    relay, tmp_path, caplog, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    base = relay.url
    open_room(base)
    _, answer, _ = knock(base, blob="secret-blob-content")
    call(base, "GET", f"/api/box/rooms/{ROOM}/messages?after=0", token=TOKEN)
    call(base, "DELETE", f"/api/box/rooms/{ROOM}", token=TOKEN)
    assert not any(tmp_path.iterdir())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (TOKEN, ROOM, answer["client"], "secret-blob-content", "127.0.0.1"):
        assert secret not in logged
    assert hashlib.sha256(ROOM.encode()).hexdigest()[:8] in logged, "the log was captured"


def test_a_relay_config_names_a_bad_token_hash(tmp_path) -> None:
    from appliance.errors import ConfigError

    path = tmp_path / "relay.toml"
    path.write_text('boxes = ["not-a-hash"]\n')
    with pytest.raises(ConfigError, match=r"boxes\[0\].*hash-token"):
        load(path)
    path.write_text(f'port = 0\nboxes = ["{hash_token(TOKEN)}"]\n[turn]\nttl = 5\n')
    with pytest.raises(ConfigError, match="turn.ttl"):
        load(path)


def test_adding_a_language_is_adding_one_file(tmp_path) -> None:
    from appliance.relay.viewer import LANG_DIR, languages

    for path in LANG_DIR.glob("*.json"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "pt-br.json").write_text('{"name": "Português", "text": {}}', encoding="utf-8")
    (tmp_path / "Bad.json").write_text('{"name": "no"}', encoding="utf-8")  # not a code
    listed = languages(tmp_path)
    assert {"code": "pt-br", "name": "Português"} in listed
    assert [entry["code"] for entry in listed] == ["en", "fr", "pt-br"]


def test_a_relay_config_chooses_its_store_and_names_what_is_wrong(tmp_path, redis_url) -> None:
    from appliance.errors import ConfigError

    path = tmp_path / "relay.toml"
    assert load(None).store is StoreKind.MEMORY, "the default: nothing to install"
    for text, wrong in [
        ('store = "disk"\n', "store"),
        ('store = "redis"\n', r"redis\.url.*redis://127\.0\.0\.1:6379/0"),
        ('store = "redis"\n[redis]\nurl = "http://127.0.0.1:6379"\n', r"redis\.url.*redis://"),
        ('[redis]\nurl = "redis://127.0.0.1:6379/0"\n', r"redis\.url.*store = \"redis\""),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=wrong):
            load(path)
    path.write_text(f'store = "redis"\n[redis]\nurl = "{redis_url}"\n')
    assert load(path).redis.url == redis_url
