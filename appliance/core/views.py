"""Typed, read-only snapshots of the core for the pages (no secret but the session's link)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..state import State, viewer_status
from ..vocab import told

if TYPE_CHECKING:
    from ..session.session import Session


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
    #: connected, but the picture is not reaching them: the box waits for the path to recover
    reconnecting: bool = False
    #: When (unix seconds) the current code was made, and whether it replaced an earlier one
    #: (the phone reloaded or reconnected: every connection has a new code)
    code_at: int | None = None
    code_renewed: bool = False
    #: seated, the handshake under way: not yet connected, and never dropped
    connecting: bool = False


@dataclass(frozen=True)
class SessionView:
    """The open session: its link (the QR code's content), expiry and viewer."""

    room_name: str
    url: str
    expires: int
    viewer: ViewerView | None
    #: The session ends within the warning time (10 min): the page and the LED say so.
    expiring: bool = False
    #: The latest expiry "extend" may give (the configured maximum); None: no more extending.
    extend_to: int | None = None
    #: Other phones turned away (the seat was held) since they last held it.
    turned_away: int = 0


@dataclass(frozen=True)
class EndedView:
    """How the last session ended: ``reason`` is the core's word ("expired", "button", "page"),
    ``at`` the time, seconds since the epoch (the page shows it in its local time)."""

    reason: str
    at: int


@dataclass(frozen=True)
class SoundView:
    """Who hears what, for the staff: the switches this box has (by name: ``scanner``,
    ``microphone``, ``talkback``; on or off for the open session) and what is heard now."""

    switches: dict[str, bool]
    #: the scanner's sound reaches the phone now
    scanner: bool = False
    #: the room's microphone reaches the phone now
    microphone: bool = False
    #: the phone's voice is played in the room now
    talkback: bool = False


@dataclass(frozen=True)
class Status:
    """The box's state for the pages: session state, HDMI signal, clock and fault."""

    state: str
    signal: str
    viewers: int
    clock_ok: bool
    error: str | None
    session: SessionView | None = None
    #: The last session's end, until the box restarts (the staff are told why it ended).
    ended: EndedView | None = None
    #: The sound switches and what is heard (None: the box has no sound).
    sound: SoundView | None = None
    #: What the sound source hears (:class:`~appliance.sound.base.SoundSignal`'s values, or
    #: "off" without sound): "no-audio" while the scanner sends none.
    audio: str = "off"

    def to_json(self) -> dict[str, Any]:
        """As the pages' JSON API sends it."""
        return asdict(self)


def viewer_message(state: State, session: Session | None, end_reason: str) -> dict[str, object]:
    """The status the viewer's page is told over its data channel (docs/protocol.md)."""
    viewer = session.viewer if session is not None else None
    message: dict[str, object] = {"type": "status", "state": viewer_status(state).value}
    if viewer is not None and viewer.code is not None:
        message["code"] = viewer.code
    if session is not None:
        message["expires"] = session.expires  # the phone says when the session ends
    if state is State.ENDED and end_reason:
        message["reason"] = told(end_reason).value
    return message


def extend_to(session: Session, max_minutes: int, minutes: int = 0) -> int | None:
    """The expiry the staff's "extend" by ``minutes`` gives (0: the furthest), never past the
    longest a session may last from its opening; None when nothing is left to give."""
    furthest = int(session.opened_wall + max_minutes * 60)
    if furthest <= session.expires:
        return None
    return furthest if minutes <= 0 else min(furthest, session.expires + minutes * 60)


def session_view(
    session: Session, room_name: str, url: str, expiring: bool, extend: int | None
) -> SessionView:
    viewer = session.viewer
    left_s = None
    if viewer is not None and not viewer.connected and viewer.left_at is not None:
        left_s = int(time.monotonic() - viewer.left_at)
    return SessionView(
        room_name=room_name,
        url=url,
        expires=session.expires,
        viewer=None
        if viewer is None
        else ViewerView(
            viewer.name,
            viewer.code,
            viewer.admitted,
            viewer.connected,
            left_s,
            viewer.connected and viewer.stalled,
            None if viewer.code_at is None else int(viewer.code_at),
            viewer.renewed,
            not viewer.connected and viewer.left_at is None and viewer.code is None,
        ),
        expiring=expiring,
        extend_to=extend,
        turned_away=len(session.turned_away),
    )
