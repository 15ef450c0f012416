"""Who hears what, through the core's events against in-memory layers (tests/unit/test_state.py's
rig): the privacy defaults, the staff's switches, the microphone going off by itself at a pause
and whenever the picture leaves LIVE, talk-back heard only while allowed, live and held, and each
switch in the event log."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.core import CoreSettings, Pause, Release, Resume, SetSound, ViewerTalk
from appliance.hearing import Hearing, SoundSwitch
from appliance.state import LED_MICROPHONE, LED_PATTERNS, State, led_pattern
from tests.unit import test_state
from tests.unit.test_state import DummyPeer, OpenSessionStep, answered, command, drive, knock

ALL = frozenset(SoundSwitch)


@pytest.fixture(autouse=True)
def every_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A box with the scanner's sound, a room microphone and a speaker."""
    monkeypatch.setattr(
        test_state, "settings", lambda **p: CoreSettings("Room 1", 90, 180, switches=ALL)
    )


def heard(log: list[Hearing]) -> Any:
    return lambda rig: rig.core.add_hearing_listener(log.append)


def live(peer: DummyPeer) -> list[Any]:
    return [OpenSessionStep(), knock(), answered(peer), command(test_state.Admit())]


def sound_events(rig: Any) -> list[tuple[str, bool, str]]:
    return [(e["what"], e["on"], e["reason"]) for e in rig.events.entries() if e["kind"] == "sound"]


async def test_the_defaults_scanner_on_microphone_and_talkback_off() -> None:
    log: list[Hearing] = []
    peer = DummyPeer()
    refused: list[Any] = []
    _, rig = await drive(
        [
            heard(log),
            OpenSessionStep(),
            command(SetSound(switch=SoundSwitch.MICROPHONE, on=True), refused),  # not live yet
            knock(),
            answered(peer),
            command(test_state.Admit()),
            ViewerTalk(on=True),  # talk-back not allowed: refused
        ]
    )
    assert refused == ["the room microphone goes on only while the picture is live"]
    assert log == [Hearing(scanner=True)], "nothing heard before admission; then the scanner only"
    assert rig.core.switches() == {"scanner": True, "microphone": False, "talkback": False}
    assert peer.statuses[-1]["talkback"] is False and peer.statuses[-1]["microphone"] is False
    assert not [e for e in rig.events.entries() if e["kind"] in ("sound", "talk")]


async def test_the_microphone_goes_off_at_a_pause_and_stays_off() -> None:
    log: list[Hearing] = []
    peer = DummyPeer()
    _, rig = await drive(
        [
            heard(log),
            *live(peer),
            command(SetSound(switch=SoundSwitch.MICROPHONE, on=True)),
            command(Pause()),
            command(Resume()),
        ]
    )
    assert log == [
        Hearing(scanner=True),
        Hearing(scanner=True, microphone=True),
        Hearing(),  # paused: nothing heard
        Hearing(scanner=True),  # resumed: the microphone stays off until switched on again
    ]
    assert sound_events(rig) == [("microphone", True, "staff"), ("microphone", False, "paused")]
    assert any(s.get("microphone") for s in peer.statuses), "the phone is told the room is heard"
    assert peer.statuses[-1]["microphone"] is False


async def test_the_microphone_goes_off_when_another_phone_is_let_in_and_at_the_end() -> None:
    peer = DummyPeer()
    _, rig = await drive(
        [
            *live(peer),
            command(SetSound(switch=SoundSwitch.MICROPHONE, on=True)),
            lambda rig: rig.viewers.close_all(),  # the admitted phone drops...
            0.05,
            command(Release()),  # ...and the staff let another phone in: READY
        ]
    )
    assert rig.core.state is State.READY
    assert rig.core.hearing == Hearing()
    assert sound_events(rig)[-1] == ("microphone", False, "not live")


async def test_talkback_is_heard_only_while_allowed_live_and_held() -> None:
    log: list[Hearing] = []
    peer = DummyPeer()
    _, rig = await drive(
        [
            heard(log),
            *live(peer),
            command(SetSound(switch=SoundSwitch.TALKBACK, on=True)),
            ViewerTalk(on=True),
            ViewerTalk(on=False),
            ViewerTalk(on=True),
            command(Pause()),  # stops at a pause
            ViewerTalk(on=True),  # refused while paused
            command(Resume()),
            ViewerTalk(on=True),
            command(SetSound(switch=SoundSwitch.TALKBACK, on=False)),  # the staff withdraw it
            ViewerTalk(on=True),
            command(SetSound(switch=SoundSwitch.SCANNER, on=False)),  # muted
        ]
    )
    talk = Hearing(scanner=True, talkback=True)
    assert log == [
        Hearing(scanner=True),
        talk,
        Hearing(scanner=True),
        talk,
        Hearing(),
        Hearing(scanner=True),
        talk,
        Hearing(scanner=True),
        Hearing(),
    ]
    assert any(s.get("talkback") for s in peer.statuses)
    assert peer.statuses[-1]["talkback"] is False
    assert sound_events(rig) == [
        ("talkback", True, "staff"),
        ("talkback", False, "staff"),
        ("scanner", False, "staff"),
    ]
    talks = [e["on"] for e in rig.events.entries() if e["kind"] == "talk"]
    assert talks == [True, False, True, False, True, False]


async def test_the_end_forgets_every_switch() -> None:
    peer = DummyPeer()
    _, rig = await drive(
        [
            *live(peer),
            command(SetSound(switch=SoundSwitch.SCANNER, on=False)),
            command(SetSound(switch=SoundSwitch.TALKBACK, on=True)),
            command(test_state.End()),
            0.5,
            OpenSessionStep(),
        ]
    )
    assert rig.core.switches() == {"scanner": True, "microphone": False, "talkback": False}


async def test_a_box_without_a_microphone_refuses_the_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        test_state,
        "settings",
        lambda **p: CoreSettings("Room 1", 90, 180, switches=frozenset({SoundSwitch.SCANNER})),
    )
    peer = DummyPeer()
    refused: list[Any] = []
    _, rig = await drive(
        [*live(peer), command(SetSound(switch=SoundSwitch.MICROPHONE, on=True), refused)]
    )
    assert refused == ["this box has no room microphone (config room.microphone)"]
    sound = rig.core.status().sound
    assert sound is not None and sound.switches == {"scanner": True}


def test_the_led_shows_the_live_microphone() -> None:
    assert led_pattern(State.LIVE, microphone=True) == LED_MICROPHONE
    assert led_pattern(State.LIVE, expiring=True, microphone=True) == LED_MICROPHONE
    assert led_pattern(State.PAUSED, microphone=True) == LED_PATTERNS[State.PAUSED]
    assert LED_MICROPHONE not in LED_PATTERNS.values()
