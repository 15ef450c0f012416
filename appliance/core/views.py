"""Typed, read-only snapshots of the core for the pages (no secret but the session's link)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ViewerView:
    """Whoever holds the seat, as the staff see them.

    ``left_s``: seconds since the viewer's connection dropped (None while connected, or before
    it ever connected); the seat stays theirs until the staff let another phone in."""

    name: str | None
    code: str | None
    admitted: bool
    connected: bool
    left_s: int | None = None


@dataclass(frozen=True)
class SessionView:
    """The open session: its link (the QR code's content), expiry and viewer."""

    room_name: str
    url: str
    expires: int
    viewer: ViewerView | None
    #: The session ends within the warning time (10 min): the page and the LED say so.
    expiring: bool = False
    #: The latest expiry one "extend" may give (the configured maximum); None: no more extending.
    extend_to: int | None = None


@dataclass(frozen=True)
class Status:
    """The box's state for the pages: session state, HDMI signal, clock and fault."""

    state: str
    signal: str
    viewers: int
    clock_ok: bool
    error: str | None
    session: SessionView | None = None

    def to_json(self) -> dict[str, Any]:
        """As the pages' JSON API sends it."""
        return asdict(self)
