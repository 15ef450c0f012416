"""The words the box's parts share, each defined once: why a session ended and what the phone is
told of it, why the relay turns a phone away, the states a session is open in, what the event log
accepts, how long a silent path is "stalled", and the request body's limit.

Imports nothing of the box but the state names and the HTTP package's limit (re-exported, not
copied), so every layer and the relay may import it.
"""

from __future__ import annotations

import enum

from .httpd.request import MAX_BODY
from .state import OPEN_STATES

__all__ = [
    "KINDS",
    "MAX_BODY",
    "OPEN_STATES",
    "STALL_AFTER_S",
    "THROTTLED",
    "EndReason",
    "Refusal",
    "Told",
    "told",
]


class EndReason(enum.StrEnum):
    """Why the core ended a session: the event log's ``ended`` reason, the staff's page."""

    BUTTON = "button"  # a long press
    PAGE = "page"  # the staff's End on the pairing page
    EXPIRED = "expired"  # its validity window ran out
    STAFF = "staff"  # another staff action (the default of the EndSession event)
    SHUTDOWN = "shutdown"  # the box stopped with a session open


class Told(enum.StrEnum):
    """What the phone is told of its session's end (its status, the sealed ``end``, the relay's
    410): docs/protocol.md."""

    ENDED = "ended"
    EXPIRED = "expired"
    REFUSED = "refused"  # the staff refused this phone: its key is banned for the session
    RELEASED = "released"  # the staff let another phone in: this one is dropped, not banned


def told(reason: str) -> Told:
    """The one place an end reason becomes what the phone and the relay are told: "expired" for
    an expiry, "ended" for any other end (the phone is not told who ended it)."""
    return Told.EXPIRED if reason == EndReason.EXPIRED else Told.ENDED


class Refusal(enum.StrEnum):
    """Why the relay turns a phone's knock away (403 with this code; docs/protocol.md)."""

    TAKEN = "taken"  # another phone holds the seat: knock again later
    REFUSED = "refused"  # the staff refused this phone's key
    RELEASED = "released"  # the staff gave this phone's seat to another phone
    BAD = "bad"  # the knock did not open with the link's secret


#: What the event log accepts. Sessions: opened, knock, admitted, refused, tamper (a message that
#: failed its seal or replayed), viewer-left, extended, ended (with a reason: the expiry is one).
#: The staff page: login, login-failed, logout, mask-saved. Who hears what: sound (a sound switch
#: turned, by the staff or by the box at a pause or the end: ``what``, ``on``, ``reason``), talk
#: (the phone's voice began or stopped playing in the room). Every kind the code records is here
#: and nothing else (tests/unit/test_eventlog.py reads the code to check).
KINDS = frozenset(
    {
        "opened",
        "knock",
        "admitted",
        "refused",
        "tamper",
        "viewer-left",
        "extended",
        "ended",
        "login",
        "login-failed",
        "logout",
        "mask-saved",
        "sound",
        "talk",
    }
)
#: Kinds an outsider can cause as often as they like (a wrong password, a refused knock, a
#: tampered message): the event log throttles them (appliance.eventlog).
THROTTLED = frozenset({"login-failed", "refused", "tamper"})

#: No receiver report from a viewer's phone for this long: its path is stalled (the staff's page
#: says "reconnecting", rate control cuts the rate once). The box must notice a dead path within
#: 3 s of the outage; the last report may have come up to a report interval (about 1 s) after
#: it (it still counts the packets that arrived before), so 2 s.
STALL_AFTER_S = 2.0
