"""What the front decides from a request's bytes so far (httpd/request.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.httpd.request import COMPLETE, MAX_BODY, MAX_HEAD, WAIT, judge, refusal

HEAD = b"POST /api HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (b"GET / HTTP/1.1\r\nHost: x", WAIT),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", COMPLETE),
        (HEAD + b"Content-Length: 5\r\n\r\nabc", WAIT),
        (HEAD + b"Content-Length: 5\r\n\r\nabcde", COMPLETE),
        (HEAD + b"content-length:5\r\n\r\nabcdeGET", COMPLETE),  # a pipelined request follows
        (HEAD + b"Content-Length: %d\r\n\r\n" % MAX_BODY, WAIT),
        (HEAD + b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1), 413),
        (HEAD + b"Content-Length: " + b"9" * 40 + b"\r\n\r\n", 400),
        (HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nabcde", 400),
        (HEAD + b"Content-Length: -5\r\n\r\n", 400),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", 411),
        (HEAD + b"Transfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\nabc", 411),
        (HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n", 417),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD, 431),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\nHost: x\n\n", COMPLETE),  # bare line ends: cheroot refuses them
    ],
)
def test_wait_hand_on_or_refuse(data: bytes, verdict: int) -> None:
    assert judge(data) == verdict


def test_a_refusal_is_a_whole_response_that_closes() -> None:
    response = refusal(413)
    head, body = response.split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 Request Entity Too Large")
    assert b"Connection: close" in head and b"Content-Length: %d" % len(body) in head
    assert body == b'{"error": "too-large"}'


@given(st.binary(max_size=300))
def test_any_bytes_get_a_verdict_and_a_complete_one_holds_its_whole_body(tail: bytes) -> None:
    verdict = judge(HEAD + tail)
    assert verdict in (WAIT, COMPLETE, 400, 411, 413, 417, 431)
    data = HEAD + b"Content-Length: 10\r\n\r\n" + tail
    assert judge(data) == (COMPLETE if len(tail) >= 10 else WAIT)


def test_an_ipv6_site_holds_at_most_its_share_however_many_64s_it_uses() -> None:
    from appliance.httpd import front

    gate = front.Front(server=None, context=None, env=None, per_address=32, max_open=512)
    admitted = [
        gate._admit(f"2001:db8:0:{prefix:x}::{host + 1:x}")
        for prefix in range(16)  # a /60: sixteen /64s
        for host in range(32)
    ]
    assert sum(key is not None for key in admitted) == front.PER_SITE
    assert gate._admit("2001:db8:1::1") is not None, "another site is not affected"
    assert gate._admit("198.51.100.7") is not None
