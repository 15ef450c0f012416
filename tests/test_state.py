"""The state machine, as whole sequences of transitions driven through the core's events."""

from __future__ import annotations

import asyncio

import pytest

from appliance import config
from appliance.core import Core, EndSession, OpenSession, Press, ViewerJoined, ViewerLeft
from appliance.errors import InvalidStateError
from appliance.state import ALLOWED, LED_PATTERNS, State, ViewerStatus, viewer_status
from appliance.stream.pipeline import Mode


class FakePipeline:
    """Records the modes the core asks for (the media thread is tested on its own)."""

    def __init__(self, publish) -> None:
        self.modes: list[Mode] = []
        self.viewers = 0

    def set_mode(self, mode: Mode) -> None:
        self.modes.append(mode)

    def set_viewers(self, n: int) -> None:
        self.viewers = n

    def request_keyframe(self) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


async def drive(events) -> tuple[list[tuple[str, str]], Core]:
    core = Core(config.load(None), FakePipeline)
    seen: list[tuple[str, str]] = []
    core.add_listener(lambda old, new: seen.append((old.value, new.value)))
    started = asyncio.Event()
    task = asyncio.create_task(core.run(started.set))
    await started.wait()
    for event in events:
        core.post(event)
        await asyncio.sleep(0.01)
    core.stop()
    await task
    return seen, core


class DummyPeer:
    pass


async def test_a_whole_exam_with_the_button() -> None:
    peer = DummyPeer()
    seen, core = await drive(
        [
            Press(),  # IDLE -> READY
            ViewerJoined(peer),  # -> WAITING
            Press(),  # -> LIVE
            Press(),  # -> PAUSED
            Press(),  # -> LIVE
            Press(long=True),  # -> ENDED -> IDLE
        ]
    )
    assert seen == [
        ("idle", "ready"),
        ("ready", "waiting"),
        ("waiting", "live"),
        ("live", "paused"),
        ("paused", "live"),
        ("live", "ended"),
        ("ended", "idle"),
    ]
    assert core.pipeline.modes == [
        Mode.OFF,
        Mode.OFF,
        Mode.LIVE,
        Mode.PAUSED,
        Mode.LIVE,
        Mode.OFF,
        Mode.OFF,
    ]


async def test_a_viewer_leaving_before_the_exam_starts_returns_to_ready() -> None:
    seen, _ = await drive([OpenSession(), ViewerJoined(DummyPeer()), ViewerLeft(DummyPeer())])
    assert seen == [("idle", "ready"), ("ready", "waiting"), ("waiting", "ready")]


async def test_presses_that_mean_nothing_change_nothing() -> None:
    seen, _ = await drive([Press(long=True), EndSession(), ViewerLeft(DummyPeer())])
    assert seen == []


async def test_the_page_can_end_a_paused_session() -> None:
    seen, _ = await drive([OpenSession(), Press(), Press(), EndSession("page")])
    assert seen[-3:] == [("live", "paused"), ("paused", "ended"), ("ended", "idle")]


def test_illegal_moves_are_refused() -> None:
    core = Core(config.load(None), FakePipeline)
    with pytest.raises(InvalidStateError, match="cannot go from idle to live"):
        core._set_state(State.LIVE)
    assert core.state is State.IDLE


def test_every_state_has_a_pattern_a_viewer_status_and_a_way_out() -> None:
    for state in State:
        assert set(LED_PATTERNS[state]) <= {"0", "1"}
        assert isinstance(viewer_status(state), ViewerStatus)
        assert ALLOWED[state], f"{state} is a dead end"
    assert viewer_status(State.WAITING) is ViewerStatus.WAITING
    assert LED_PATTERNS[State.LIVE] == "1" and LED_PATTERNS[State.IDLE] == "0"
