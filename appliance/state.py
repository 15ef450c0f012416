"""The appliance's states, the allowed moves between them, and what each looks like.

No I/O here: the LED pattern and what the viewer is told are pure functions of the state.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    IDLE = "idle"  # no session
    READY = "ready"  # a session is open, nobody connected yet
    WAITING = "waiting"  # a viewer is connected and waits for the sonographer
    LIVE = "live"  # the scan is streaming
    PAUSED = "paused"  # privacy blackout: a "paused" slate, the connection kept
    ENDED = "ended"  # the session is closing: viewers dropped, keys forgotten
    ERROR = "error"  # a fault (bad config, device missing): see the pairing page and doctor


ALLOWED: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.READY, State.ERROR}),
    State.READY: frozenset({State.WAITING, State.LIVE, State.ENDED, State.ERROR}),
    State.WAITING: frozenset({State.READY, State.LIVE, State.ENDED, State.ERROR}),
    # READY again when the staff let another phone in
    State.LIVE: frozenset({State.PAUSED, State.READY, State.ENDED, State.ERROR}),
    State.PAUSED: frozenset({State.LIVE, State.READY, State.ENDED, State.ERROR}),
    State.ENDED: frozenset({State.IDLE, State.ERROR}),
    State.ERROR: frozenset({State.IDLE}),
}

#: The states a session is open in (the staff may end it; the LED may warn of its expiry).
OPEN_STATES = frozenset({State.READY, State.WAITING, State.LIVE, State.PAUSED})


class ViewerStatus(enum.Enum):
    """What the viewer's page shows."""

    WAITING = "waiting"
    LIVE = "live"
    PAUSED = "paused"
    ENDED = "ended"


def viewer_status(state: State) -> ViewerStatus:
    if state in (State.READY, State.WAITING):
        return ViewerStatus.WAITING
    if state is State.LIVE:
        return ViewerStatus.LIVE
    if state is State.PAUSED:
        return ViewerStatus.PAUSED
    return ViewerStatus.ENDED


#: LED patterns, one character per 100 ms, repeated: "1" on, "0" off (docs/hardware-test.md).
LED_STEP = 0.1
LED_PATTERNS: dict[State, str] = {
    State.IDLE: "0",
    State.READY: "1" * 10 + "0" * 10,  # slow blink: a session is open, nobody yet
    State.WAITING: "10",  # fast blink: someone is waiting for you
    State.LIVE: "1",  # steady: streaming
    State.PAUSED: "1" + "0" * 19,  # a short flash every 2 s: paused
    State.ENDED: "0",
    State.ERROR: "1010000000",  # double blink: a fault
}


#: While a session is within its last minutes (the staff may extend it): on, with a short dark
#: blink every second, whatever the session's state.
LED_EXPIRING = "1" * 9 + "0"


#: While the room microphone is live (the phone hears the room): on, with two short dark blinks
#: every 2 s. It wins over the expiry warning: the room must know it is heard.
LED_MICROPHONE = "1" * 16 + "0101"


def led_pattern(state: State, expiring: bool = False, microphone: bool = False) -> str:
    if microphone and state is State.LIVE:
        return LED_MICROPHONE
    if expiring and state in OPEN_STATES:
        return LED_EXPIRING
    return LED_PATTERNS[state]
