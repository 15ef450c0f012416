"""The state machine, as whole sequences of transitions driven through the core's events."""

from __future__ import annotations

import asyncio

import pytest

from appliance import config
from appliance.core import (
    Core,
    EndSession,
    Knocked,
    Press,
    ViewerAnswered,
    ViewerBye,
    ViewerLeft,
)
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


class RecordingHost:
    """Stands in for the relay side (appliance.signalling.host, tested end to end elsewhere)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def open(self, session) -> None:
        self.calls.append("open")

    async def refuse(self, session, viewer) -> None:
        self.calls.append("refuse")

    async def close(self, session, reason: str) -> None:
        self.calls.append(f"close:{reason}")


class DummyPeer:
    def __init__(self) -> None:
        self.statuses: list[dict] = []
        self.closed = False

    def send_status(self, status: dict) -> None:
        self.statuses.append(status)

    async def close(self) -> None:
        self.closed = True


def knock(seat: bytes = b"seat-1", name: str | None = "Alex"):
    """What the host does for an accepted knock: seat the viewer, tell the core."""

    def step(core: Core) -> None:
        core.session.seat(seat, name, "client-1")
        core.post(Knocked(returning=False))

    return step


def answered(peer: DummyPeer, code: str = "123456"):
    return lambda core: core.post(ViewerAnswered(peer, code))  # type: ignore[arg-type]


async def drive(steps, clock_ok: bool = True, **pairing) -> tuple[list[tuple[str, str]], Core]:
    cfg = config.load_dict({"pairing": pairing})
    core = Core(cfg, FakePipeline, host=RecordingHost(), clock_ok=lambda: clock_ok)
    seen: list[tuple[str, str]] = []
    core.add_listener(lambda old, new: seen.append((old.value, new.value)))
    started = asyncio.Event()
    task = asyncio.create_task(core.run(started.set))
    await started.wait()
    for step in steps:
        if isinstance(step, float):
            await asyncio.sleep(step)
        elif callable(step):
            step(core)
        else:
            core.post(step)
        await asyncio.sleep(0.01)
    core.stop()
    await task
    return seen, core


async def test_a_whole_exam_with_the_button() -> None:
    peer = DummyPeer()
    seen, core = await drive(
        [
            Press(),  # IDLE -> READY: a session opens
            Press(),  # READY: nobody to admit, nothing happens
            knock(),  # -> WAITING
            answered(peer),
            Press(),  # admit -> LIVE
            Press(),  # -> PAUSED
            Press(),  # -> LIVE
            Press(long=True),  # -> ENDED -> IDLE
            0.5,  # the viewer is given time to read "ended"
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
    assert core.host.calls == ["open", "close:button"]
    assert peer.closed and core.session is None
    # the viewer was told every state, with its code, and "ended" last
    states = [s["state"] for s in peer.statuses]
    assert states[0] == "waiting" and states[-1] == "ended"
    assert peer.statuses[0]["code"] == "123456"


async def test_a_viewer_leaving_before_admission_returns_to_ready() -> None:
    peer = DummyPeer()
    seen, core = await drive(
        [OpenSessionStep(), knock(), answered(peer), lambda c: c.post(ViewerLeft(peer))]
    )
    assert seen == [("idle", "ready"), ("ready", "waiting"), ("waiting", "ready")]


async def test_presses_that_mean_nothing_change_nothing() -> None:
    seen, _ = await drive([Press(long=True), EndSession(), ViewerLeft(DummyPeer())])  # type: ignore[arg-type]
    assert seen == []


async def test_the_page_pauses_resumes_and_ends() -> None:
    results: list = []

    def command(name: str, **args):
        async def run(core: Core) -> None:
            try:
                results.append(await core.command(name, **args))
            except InvalidStateError as exc:
                results.append(str(exc))

        return lambda core: asyncio.ensure_future(run(core))

    peer = DummyPeer()
    seen, _ = await drive(
        [
            command("open", consent=False),
            command("open", consent=True, valid_minutes=30),
            command("admit"),  # nobody yet
            knock(),
            answered(peer),
            command("admit"),
            command("pause"),
            command("resume"),
            command("end"),
            0.5,
            command("end"),
        ]
    )
    assert results[0] == "confirm that the patient agreed first"
    assert results[1].expires > 0 and len(results[1].room) >= 22
    assert results[2] == "nobody is waiting to be admitted"
    assert results[3:7] == [None, None, None, None]
    assert results[7] == "no session is open"
    assert seen[-4:] == [
        ("live", "paused"),
        ("paused", "live"),
        ("live", "ended"),
        ("ended", "idle"),
    ]


async def test_refusing_frees_the_seat_and_bans_that_viewer() -> None:
    peer = DummyPeer()
    sessions: list = []
    seen, core = await drive(
        [
            OpenSessionStep(),
            lambda c: sessions.append(c.session),
            knock(b"seat-1"),
            answered(peer),
            lambda c: asyncio.ensure_future(c.command("refuse")),
            lambda c: sessions.append(c.session.judge(b"another salt", b"seat-1")),
            lambda c: sessions.append(c.session.judge(b"a third salt", b"seat-2")),
        ]
    )
    assert seen == [("idle", "ready"), ("ready", "waiting"), ("waiting", "ready")]
    assert "refuse" in core.host.calls and peer.closed
    assert [v.value for v in sessions[1:]] == ["refused", "new"]
    assert core.session is None and sessions[0].secret == b"", "forgotten at shutdown"


async def test_a_hang_up_ends_the_session_after_the_grace_unless_the_viewer_returns() -> None:
    first, second = DummyPeer(), DummyPeer()
    connected: list = []
    seen, _ = await drive(
        [
            OpenSessionStep(),
            knock(),
            answered(first),
            Press(),
            ViewerBye(),
            0.05,
            answered(second),
            0.3,
            lambda c: connected.extend(c.peers),
        ],
        hangup_grace=0.15,
    )
    assert seen[-1] == ("waiting", "live"), "the session did not end: the viewer came back"
    assert first.closed and connected == [second], "the returning phone replaced the old one"

    seen, _ = await drive(
        [OpenSessionStep(), knock(), answered(DummyPeer()), Press(), ViewerBye(), 0.6],
        hangup_grace=0.1,
    )
    assert seen[-2:] == [("live", "ended"), ("ended", "idle")]


async def test_no_session_opens_until_the_clock_is_synchronised() -> None:
    seen, core = await drive([Press()], clock_ok=False)
    assert seen == [] and core.session is None


async def test_pre_admission_is_only_an_explicit_option() -> None:
    seen, _ = await drive([OpenSessionStep(), knock(), answered(DummyPeer())])
    assert seen[-1] == ("ready", "waiting")
    seen, _ = await drive([OpenSessionStep(), knock(), answered(DummyPeer())], pre_admit=True)
    assert seen[-1] == ("waiting", "live")


def OpenSessionStep():  # noqa: N802 - reads like an event in the step lists
    return lambda core: asyncio.ensure_future(core.command("open", consent=True))


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
