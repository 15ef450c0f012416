"""Slow and silent clients against the real servers on loopback: TLS handshakes do not block the
accept loop, dribbled headers hold no worker, connections are capped per address, and a request
that never completes is dropped. Every attacker is a bounded loop from its own loopback address
(127.0.0.2 and up); the honest client speaks from 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.crypto import load_or_create_tls
from appliance.httpd.server import WebServer
from appliance.relay.config import RelayConfig, hash_token
from appliance.relay.server import RelayServer
from tests.support.wait import until

TOKEN = "box-token-" + "s" * 30


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture
def tls(tmp_path: Path):
    return load_or_create_tls(tmp_path, ["localhost", "127.0.0.1"])


@contextlib.contextmanager
def serving(server) -> Iterator:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def attackers(port: int, count: int, first: int = 2, per_address: int = 20) -> list[socket.socket]:
    """``count`` TCP connections that say nothing, ``per_address`` from each of 127.0.0.<first>,
    127.0.0.<first + 1>, ..."""
    socks = []
    for i in range(count):
        s = socket.socket()
        s.bind((f"127.0.0.{first + i // per_address}", 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def get(port: int, path: str = "/", context: ssl.SSLContext | None = None, timeout: float = 3):
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def still_open(socks: list[socket.socket]) -> int:
    """How many of ``socks`` the server has not closed (nothing to read, no EOF)."""
    count = 0
    for s in socks:
        s.setblocking(False)
        try:
            count += s.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            count += 1
        except OSError:
            pass
        s.settimeout(5)
    return count


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


# -- item 1: the TLS handshake is not in the accept loop ------------------------------------------


def test_silent_connections_do_not_hold_up_an_https_request(tls) -> None:
    context = ssl.create_default_context(cafile=str(tls.cert))
    server = WebServer(hello, "127.0.0.1", 0, str(tls.cert), str(tls.key))
    with serving(server):
        silent = attackers(server.port, 30)
        try:
            started = time.monotonic()
            assert get(server.port, context=context) == (200, b"hello")
            assert time.monotonic() - started < 2
            assert still_open(silent) == 30, "the silent ones were not simply dropped"
        finally:
            close_all(silent)


def test_the_relay_served_over_tls_answers_beside_silent_connections(tls) -> None:
    config = RelayConfig(
        port=0, boxes=(hash_token(TOKEN),), certfile=str(tls.cert), keyfile=str(tls.key)
    )
    context = ssl.create_default_context(cafile=str(tls.cert))
    with serving(RelayServer(config)) as relay:
        silent = attackers(relay.port, 60)
        try:
            status, _ = get(relay.port, "/v/Abcdefghijklmnopqrstuv", context=context)
            assert status == 200
            assert still_open(silent) == 60
        finally:
            close_all(silent)


def test_a_handshake_that_never_finishes_is_dropped(tls, monkeypatch) -> None:
    from appliance.httpd import front

    monkeypatch.setattr(front, "HANDSHAKE_TIMEOUT", 0.5)
    server = WebServer(hello, "127.0.0.1", 0, str(tls.cert), str(tls.key))
    with serving(server):
        silent = attackers(server.port, 3)
        try:
            deadline = time.monotonic() + 5
            while still_open(silent) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert still_open(silent) == 0
        finally:
            close_all(silent)


# -- item 2: slow headers ---------------------------------------------------------------------------


def dribble(socks: list[socket.socket], rounds: int) -> None:
    """One more byte of a never-ending request head on every socket, ``rounds`` times."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    for i in range(rounds):
        for s in socks:
            with contextlib.suppress(OSError):
                s.send(head[i : i + 1])


def test_two_hundred_slow_clients_do_not_freeze_the_staff_page() -> None:
    """8 worker threads (the default) and 200 connections dribbling their headers."""
    server = WebServer(hello, "127.0.0.1", 0)
    with serving(server):
        slow = attackers(server.port, 200)
        try:
            for _ in range(5):
                dribble(slow, 4)
                started = time.monotonic()
                assert get(server.port) == (200, b"hello")
                assert time.monotonic() - started < 2
            assert still_open(slow) == 200, "the test held its 200 connections open"
        finally:
            close_all(slow)


def test_one_address_holds_at_most_its_share_of_connections(monkeypatch) -> None:
    from appliance.httpd import front

    server = WebServer(hello, "127.0.0.1", 0)
    with serving(server):
        many = attackers(server.port, 60, per_address=60)  # all from 127.0.0.2
        try:
            # the server accepts (and refuses) them one selector pass at a time
            until(lambda: still_open(many) == front.PER_ADDRESS, 5, what="the address's share")
            assert get(server.port) == (200, b"hello"), "another address is served"
        finally:
            close_all(many)


def test_a_request_head_that_never_completes_is_dropped(monkeypatch) -> None:
    from appliance.httpd import front

    monkeypatch.setattr(front, "HEAD_TIMEOUT", 1.0)
    server = WebServer(hello, "127.0.0.1", 0)
    with serving(server):
        slow = attackers(server.port, 5)
        try:
            deadline = time.monotonic() + 6
            while still_open(slow) and time.monotonic() < deadline:
                dribble(slow, 1)
                time.sleep(0.1)
            assert still_open(slow) == 0, "a dribbling client is dropped at the deadline"
        finally:
            close_all(slow)


def test_keep_alive_and_pipelined_requests_still_work(tls) -> None:
    context = ssl.create_default_context(cafile=str(tls.cert))
    server = WebServer(hello, "127.0.0.1", 0, str(tls.cert), str(tls.key))
    with serving(server):
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=3, context=context)
        try:
            for _ in range(3):
                conn.request("POST", "/", body=b"x" * 5000)
                response = conn.getresponse()
                assert (response.status, response.read()) == (200, b"hello")
        finally:
            conn.close()
        with socket.create_connection(("127.0.0.1", server.port), timeout=3) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
                got = b""
                while got.count(b"hello") < 2:
                    chunk = s.recv(4096)
                    assert chunk
                    got += chunk


# -- issue 18, item 1: slow bodies ----------------------------------------------------------------


def post_head(length: int | None, chunked: bool = False) -> bytes:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if chunked:
        head += b"Transfer-Encoding: chunked\r\n"
    if length is not None:
        head += b"Content-Length: %d\r\n" % length
    return head + b"\r\n"


def held(socks: list[socket.socket]) -> int:
    """How many of ``socks`` (plain or TLS) the server still holds open without answering."""
    count = 0
    for s in socks:
        if not isinstance(s, ssl.SSLSocket):
            count += still_open([s])
            continue
        s.setblocking(False)
        try:
            s.recv(1)  # an answer or the close: not held
        except (ssl.SSLWantReadError, BlockingIOError):
            count += 1
        except OSError:
            pass
        s.settimeout(5)
    return count


def answer(sock: socket.socket) -> bytes:
    """What the server sent before closing (b"" if it closed without a word)."""
    got = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(4096):
            got += chunk
    return got


@pytest.mark.parametrize("over_tls", [False, True], ids=["http", "https"])
def test_slow_bodies_hold_no_worker_and_unbounded_ones_are_refused_at_once(tls, over_tls) -> None:
    """60 connections from 2 addresses: 20 announce a 1 MB body, 20 a chunked one, 20 a 60 KB one
    they dribble a byte at a time. The first 40 are refused before any worker (413, 411); the
    dribblers are held by the front; the staff page answers throughout (8 workers)."""
    context = ssl.create_default_context(cafile=str(tls.cert)) if over_tls else None
    server = WebServer(
        hello, "127.0.0.1", 0, *((str(tls.cert), str(tls.key)) if over_tls else (None, None))
    )
    with serving(server):
        raw = attackers(server.port, 60, per_address=30)
        socks = [
            context.wrap_socket(s, server_hostname="127.0.0.1") if context is not None else s
            for s in raw
        ]
        try:
            for s in socks[:20]:
                s.sendall(post_head(1_000_000) + b"{")
            for s in socks[20:40]:
                s.sendall(post_head(None, chunked=True) + b"1\r\n{\r\n")
            for s in socks[40:]:
                s.sendall(post_head(60_000) + b"{")
            refused = [answer(s) for s in socks[:40]]
            assert all(r.startswith(b"HTTP/1.1 413 ") for r in refused[:20]), refused[0]
            assert all(r.startswith(b"HTTP/1.1 411 ") for r in refused[20:]), refused[20]
            assert b'{"error": "too-large"}' in refused[0]
            for _ in range(5):
                for s in socks[40:]:
                    with contextlib.suppress(OSError):
                        s.send(b" ")
                started = time.monotonic()
                assert get(server.port, context=context) == (200, b"hello")
                assert time.monotonic() - started < 2
            assert held(socks[40:]) == 20, "the dribblers were held, not dropped"
        finally:
            close_all(socks)


def test_a_body_dribbled_past_the_deadline_is_dropped(monkeypatch) -> None:
    """One deadline for the whole request: a byte of body now and then does not extend it."""
    from appliance.httpd import front

    monkeypatch.setattr(front, "HEAD_TIMEOUT", 1.0)
    server = WebServer(hello, "127.0.0.1", 0)
    with serving(server):
        slow = attackers(server.port, 5)
        try:
            for s in slow:
                s.sendall(post_head(1000))
            deadline = time.monotonic() + 6
            while still_open(slow) and time.monotonic() < deadline:
                for s in slow:
                    with contextlib.suppress(OSError):
                        s.send(b"x")
                time.sleep(0.1)
            assert still_open(slow) == 0, "a body dribbled past the deadline is dropped"
        finally:
            close_all(slow)


def test_a_whole_body_within_the_limit_still_reaches_the_app() -> None:
    seen: list[bytes] = []

    def echo(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        seen.append(environ["wsgi.input"].read(size))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"got %d" % size]

    server = WebServer(echo, "127.0.0.1", 0)
    with serving(server):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
        try:
            body = b"y" * (64 * 1024)
            conn.request("POST", "/", body=body)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"got 65536")
            conn.request("POST", "/", body=body + b"y")
            response = conn.getresponse()
            assert response.status == 413
        finally:
            conn.close()
    assert seen == [body]


# -- issue 18, item 2: the connection cap cannot be filled against bystanders ---------------------


def test_at_the_cap_a_bystander_and_the_box_itself_still_get_in() -> None:
    """9 addresses hold 8 silent connections each against a cap of 64 (so: full). A bystander's
    request is served, and so is the box's own client (127.0.0.1), by the oldest connection of
    whoever holds the most giving way; an attacker cannot take more than its share back."""
    server = WebServer(hello, "127.0.0.1", 0, per_address=8)
    server.front._max_open = 64
    with serving(server):
        silent = attackers(server.port, 72, per_address=8)  # 127.0.0.2 .. 127.0.0.10
        try:
            until(lambda: still_open(silent) <= 64, 5, what="the cap holds")
            bystander = socket.socket()
            bystander.bind(("127.0.0.50", 0))
            bystander.settimeout(3)
            bystander.connect(("127.0.0.1", server.port))
            bystander.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = answer(bystander)
            assert reply.startswith(b"HTTP/1.1 200 ") and b"hello" in reply, "a bystander is served"
            bystander.close()
            for _ in range(3):
                assert get(server.port) == (200, b"hello"), "the box's own client gets in"
            more = attackers(server.port, 8, first=2, per_address=8)  # one that gave way, again
            mine = silent[:8] + more  # every connection from 127.0.0.2
            until(lambda: still_open(mine) <= 8, 5, what="no more than the slots it gave up")
            assert still_open(silent + more) <= 64
            close_all(more)
        finally:
            close_all(silent)
