"""The relay's URL paths, defined once: the relay's routes, the box's client, the box's
dispatcher and the tests build theirs from these (the viewer page's script names them too)."""

from __future__ import annotations

#: The viewer page: ``/v/<room>`` and its files ``/v/<file>``.
VIEWER = "/v"
#: The box's side (authenticated with its token).
BOX = "/api/box"
#: The viewers' side (anonymous, rate-limited).
ROOMS = "/api/rooms"

#: The reverse proxy's health check: answered by the process itself, never by its store.
HEALTH = "/api/health"

#: Every prefix the relay answers, for a server that mounts it beside other apps.
PREFIXES = (VIEWER + "/", ROOMS + "/", BOX + "/")


def box_ping() -> str:
    return f"{BOX}/ping"


def box_room(room: str) -> str:
    return f"{BOX}/rooms/{room}"


def box_expiry(room: str) -> str:
    return f"{BOX}/rooms/{room}/expiry"


def box_messages(room: str) -> str:
    return f"{BOX}/rooms/{room}/messages"


def box_refuse(room: str) -> str:
    return f"{BOX}/rooms/{room}/refuse"


def box_turn() -> str:
    return f"{BOX}/turn"


def room_status(room: str) -> str:
    return f"{ROOMS}/{room}"


def room_knock(room: str) -> str:
    return f"{ROOMS}/{room}/knock"


def room_messages(room: str) -> str:
    return f"{ROOMS}/{room}/messages"


def viewer_page(room: str) -> str:
    return f"{VIEWER}/{room}"


def viewer_languages() -> str:
    """The viewer page's languages: the list of ``/v/lang/<code>.json`` present."""
    return f"{VIEWER}/lang/"


def every_path(room: str) -> tuple[str, ...]:
    """Every path the relay answers for ``room`` (the fuzzer and the property tests walk them)."""
    return (
        box_room(room),
        box_expiry(room),
        box_messages(room),
        box_refuse(room),
        box_turn(),
        box_ping(),
        room_status(room),
        room_knock(room),
        room_messages(room),
        viewer_page(room),
        viewer_languages(),
        HEALTH,
    )
