"""What the front decides from the bytes of a request that is still arriving: wait for more, hand
it to a worker (its head and whole body are here), or refuse it at once.

A worker thread must never wait on a client, so everything a client controls the pace of arrives
before a worker sees it: the head (at most :data:`MAX_HEAD` bytes) and a body whose size is
announced by one Content-Length of at most :data:`MAX_BODY`. What cannot be bounded that way is
refused here, before any worker is involved: a chunked (or otherwise transfer-coded) body, an
announced body over the limit, two Content-Length headers, an ``Expect`` (a client waiting for a
go-ahead before sending its body), a head over the limit.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus

#: The largest request head.
MAX_HEAD = 16 * 1024
#: The largest request body, on every route of the box's pages and of the relay (the protocol's
#: sealed blobs and the staff's forms are a few KiB).
MAX_BODY = 64 * 1024

#: Keep waiting: the request has not all arrived.
WAIT = 0
#: The head and the whole body are here: hand it to a worker.
COMPLETE = 200

_HEADER = re.compile(rb"\n([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*([^\r\n]*)")


def judge(data: bytes | bytearray) -> int:
    """:data:`WAIT`, :data:`COMPLETE`, or the HTTP status to refuse the request with."""
    end = data.find(b"\r\n\r\n")
    end = end + 4 if end >= 0 else -1
    if end < 0:
        bare = data.find(b"\n\n")  # cheroot refuses a head with bare line ends: hand it on
        end = bare + 2 if bare >= 0 else -1
    if end < 0:
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE if len(data) > MAX_HEAD else WAIT
    if end > MAX_HEAD:
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    lengths: list[bytes] = []
    for name, value in _HEADER.findall(b"\n" + bytes(data[:end])):
        field = name.lower()
        if field == b"transfer-encoding":
            return HTTPStatus.LENGTH_REQUIRED
        if field == b"expect":
            return HTTPStatus.EXPECTATION_FAILED
        if field == b"content-length":
            lengths.append(value.strip())
    if not lengths:
        return COMPLETE
    if len(lengths) > 1 or not lengths[0].isdigit() or len(lengths[0]) > 12:
        return HTTPStatus.BAD_REQUEST
    size = int(lengths[0])
    if size > MAX_BODY:
        return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    return COMPLETE if len(data) >= end + size else WAIT


def refusal(status: int) -> bytes:
    """The whole response the front sends for a refused request (then it closes)."""
    phrase = HTTPStatus(status).phrase
    error = {413: "too-large", 411: "length-required", 417: "expectation-failed"}
    body = json.dumps({"error": error.get(status, "bad-request")}).encode()
    return (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii") + body
