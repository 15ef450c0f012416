"""The relay's request checks, apart from the web framework: each takes what the request
carried (a header, a query value, a body's bytes) and returns the checked value or raises the
protocol's :class:`RelayError`. The HTTP side (``context.py``) only reads the request."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Set as AbstractSet
from typing import Any

from ..httpd import jsonbody
from .store import MAX_WAIT, REFUSALS, RelayError

#: The largest ``after`` a viewer or the box may send: JavaScript's safe integers.
MAX_AFTER = 2**53 - 1
_ROOM_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
#: How the box may close a room.
CLOSE_REASONS = ("ended", "expired")


def box_owner(header: str, token_hashes: AbstractSet[bytes]) -> str:
    """The box behind ``Authorization: Bearer <token>``: its token's hash (hex), looked up among
    the known hashes; 401 otherwise. The look-up's time can depend only on SHA-256 digests, never
    on a token (finding a token from a digest is a preimage), so a table serves where a constant
    time comparison with each known hash cost the relay a loop over every box per request."""
    presented = hashlib.sha256(header.removeprefix("Bearer ").encode()).digest()
    if not header.startswith("Bearer ") or presented not in token_hashes:
        raise RelayError(401, "unauthorized")
    return presented.hex()


def viewer_token(header: str) -> str:
    """A viewer's client token from ``Authorization: Bearer <token>``; 403 without one."""
    if not header.startswith("Bearer "):
        raise RelayError(403, "refused")
    return header.removeprefix("Bearer ")


def body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object, its numbers finite and bounded (httpd.jsonbody)."""
    try:
        return jsonbody.load_object(raw)
    except jsonbody.BodyError:
        raise RelayError(400, "bad-request") from None


def seconds(value: object) -> float:
    """A number from a JSON body: finite, bounded, not a boolean."""
    try:
        return jsonbody.number(value)
    except jsonbody.BodyError:
        raise RelayError(400, "bad-request") from None


def after(raw: str) -> int:
    """``after``: a non-negative integer, written in decimal digits."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 16 or int(raw) > MAX_AFTER:
        raise RelayError(400, "bad-request")
    return int(raw)


def wait(raw: str) -> float:
    """``wait``: seconds, a finite number (at most MAX_WAIT is waited)."""
    try:
        value = float(raw)
    except ValueError:
        raise RelayError(400, "bad-request") from None
    if not math.isfinite(value) or value < 0:
        raise RelayError(400, "bad-request")
    return min(value, MAX_WAIT)


def room(name: str) -> str:
    """``name`` if it can be a room id; 404 (``unknown``) otherwise."""
    if not 16 <= len(name) <= 64 or not set(name) <= _ROOM_CHARS:
        raise RelayError(404, "unknown")
    return name


def close_reason(raw: str) -> str:
    """Why the box closes a room: ``ended`` or ``expired``."""
    if raw not in CLOSE_REASONS:
        raise RelayError(400, "bad-request")
    return raw


def refusal_reason(value: object) -> str:
    """What the box tells a refused viewer: one of REFUSALS (else ``refused``)."""
    return value if isinstance(value, str) and value in REFUSALS else "refused"


def refusal(exc: RelayError, restarted: bool) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The answer to a refusal: its JSON body, status and headers. ``restarted``: the relay
    started so recently that an unknown room may be one its box will open again."""
    answer: dict[str, Any] = {"error": exc.code}
    if exc.code == "unknown" and restarted:
        answer["restarted"] = True  # the box may open it again: not known to be gone
    headers = {"Retry-After": "5"} if exc.status == 429 else {}
    return answer, exc.status, headers
