"""The state machine, as whole sequences of transitions driven through the core's events,
against in-memory stand-ins for the layers below it (the viewers' peers, the signalling gate)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from appliance import config
from appliance.box import core_settings
from appliance.core import (
    Admit,
    Core,
    CoreSettings,
    End,
    EndSession,
    Extend,
    Inbox,
    OpenSession,
    Pause,
    Press,
    Refuse,
    Release,
    Resume,
    VerifiedKnock,
    ViewerAnswered,
    ViewerBye,
    ViewerLeft,
    ViewerLink,
)
from appliance.errors import InvalidStateError
from appliance.eventlog import EventLog
from appliance.state import ALLOWED, LED_PATTERNS, State, ViewerStatus, viewer_status
from appliance.stream.pipeline import Mode, mode_for


class RecordingSignalling:
    """Stands in for the relay side (appliance.signalling.gate, tested on its own)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def open(self, session) -> None:
        self.calls.append("open")

    async def refuse(self, session, viewer) -> None:
        self.calls.append("refuse")

    async def release(self, session, viewer) -> None:
        self.calls.append("release")

    async def close(self, session, reason: str) -> None:
        self.calls.append(f"close:{reason}")

    async def extend(self, session, expires: int) -> None:
        self.calls.append(f"extend:{expires}")


class DummyPeer:
    def __init__(self) -> None:
        self.statuses: list[dict] = []
        self.closed = False

    def send_status(self, status: dict) -> None:
        self.statuses.append(status)


class FakeViewers:
    """An in-memory Viewers: adopts and closes DummyPeers, reports a closed one as gone."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.peers: list[DummyPeer] = []

    @property
    def count(self) -> int:
        return len(self.peers)

    async def adopt(self, peer: DummyPeer) -> bool:
        if peer.closed:
            return False
        for old in list(self.peers):
            if old is not peer:
                await self.close(old)
        if peer not in self.peers:
            self.peers.append(peer)
        return True

    async def release(self, peer: DummyPeer) -> None:
        if peer not in self.peers:
            peer.closed = True

    async def close(self, peer: DummyPeer) -> None:
        peer.closed = True
        if peer in self.peers:
            self.peers.remove(peer)
            if self.inbox.open:
                self.inbox.post(ViewerLeft(peer))  # type: ignore[arg-type]

    async def close_all(self) -> None:
        for peer in list(self.peers):
            await self.close(peer)

    def tell(self, status: dict[str, Any]) -> None:
        for peer in self.peers:
            peer.send_status(status)


class CheckedLog(EventLog):
    """The real event log, in memory, that also keeps every entry its rules refused (the real
    one drops them with a log line): every kind and field the core records must be kept."""

    def __init__(self) -> None:
        super().__init__(None)
        self.refused: list[str] = []

    def record(self, kind: str, **fields: Any) -> None:
        try:
            self.check(kind, **fields)
        except ValueError as exc:
            self.refused.append(str(exc))
        super().record(kind, **fields)


def settings(**pairing: Any) -> CoreSettings:
    """The core's settings from a config, as the composition root makes them."""
    return core_settings(config.load_dict({"pairing": pairing}))


class Rig:
    """A core with its inbox, fake viewers and recording signalling, and the modes it set."""

    def __init__(
        self, clock_ok: bool = True, signalling: Any = None, timeout: float = 0.3, **pairing: Any
    ) -> None:
        self.inbox = Inbox(asyncio.get_running_loop())
        self.viewers = FakeViewers(self.inbox)
        self.signalling = signalling or RecordingSignalling()
        self.events = CheckedLog()  # the real rules
        self.core = Core(
            settings(**pairing),
            self.inbox,
            self.viewers,  # type: ignore[arg-type]
            self.signalling,
            self.events,
            clock_ok=lambda: clock_ok,
            relay_timeout=timeout,
        )
        self.modes: list[Mode] = []
        self.core.add_listener(lambda old, new: self.modes.append(mode_for(new)))
        self.verdicts: list[Any] = []


def knock(seat: bytes = b"seat-1", name: str | None = "Alex", salt: bytes | None = None):
    """What the gate does for a verified knock: ask the core to judge it (and seat it)."""

    def step(rig: Rig) -> None:
        async def ask() -> None:
            event = VerifiedKnock(
                salt or seat + b"-salt-" + bytes([len(rig.verdicts)]), seat, name, "c1"
            )
            rig.verdicts.append(await rig.inbox.ask(event))

        asyncio.ensure_future(ask())

    return step


def answered(peer: DummyPeer, code: str = "123456"):
    return lambda rig: rig.inbox.post(ViewerAnswered(peer, code))  # type: ignore[arg-type]


def command(cmd: Any, results: list | None = None):
    """A staff command through the core's queue; its answer (or refusal) goes to ``results``."""

    async def run(rig: Rig) -> None:
        try:
            answer = await rig.core.command(cmd)
        except InvalidStateError as exc:
            answer = str(exc)
        if results is not None:
            results.append(answer)

    return lambda rig: asyncio.ensure_future(run(rig))


def OpenSessionStep():  # noqa: N802 - reads like an event in the step lists
    return command(OpenSession(consent=True))


async def drive(
    steps, clock_ok: bool = True, signalling: Any = None, **pairing
) -> tuple[list[tuple[str, str]], Rig]:
    rig = Rig(clock_ok, signalling, **pairing)
    core = rig.core
    seen: list[tuple[str, str]] = []
    core.add_listener(lambda old, new: seen.append((old.value, new.value)))
    started = asyncio.Event()
    task = asyncio.create_task(core.run(started.set))
    await started.wait()
    for step in steps:
        if isinstance(step, float):
            await asyncio.sleep(step)
        elif callable(step):
            result = step(rig)
            if asyncio.iscoroutine(result):
                await result
        else:
            rig.inbox.post(step)
        await asyncio.sleep(0.01)
    core.stop()
    await task
    assert rig.events.refused == [], "every kind and field the core records is one the log keeps"
    return seen, rig


async def test_a_whole_exam_with_the_button() -> None:
    peer = DummyPeer()
    seen, rig = await drive(
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
    assert rig.modes == [
        Mode.OFF,
        Mode.OFF,
        Mode.LIVE,
        Mode.PAUSED,
        Mode.LIVE,
        Mode.OFF,
        Mode.OFF,
    ]
    assert rig.signalling.calls == ["open", "close:button"]
    assert peer.closed and rig.core.session is None
    # the viewer was told every state, with its code, and "ended" last
    states = [s["state"] for s in peer.statuses]
    assert states[0] == "waiting" and states[-1] == "ended"
    assert peer.statuses[0]["code"] == "123456"


async def test_a_viewer_leaving_before_admission_returns_to_ready() -> None:
    peer = DummyPeer()
    seen, rig = await drive(
        [OpenSessionStep(), knock(), answered(peer), lambda r: r.viewers.close(peer)]
    )
    assert seen == [("idle", "ready"), ("ready", "waiting"), ("waiting", "ready")]


async def test_presses_that_mean_nothing_change_nothing() -> None:
    seen, _ = await drive(
        [Press(long=True), EndSession(), ViewerLeft(DummyPeer()), command(Admit())]  # type: ignore[arg-type]
    )
    assert seen == []


async def test_the_page_pauses_resumes_and_ends() -> None:
    results: list = []
    peer = DummyPeer()
    seen, _ = await drive(
        [
            command(OpenSession(consent=False), results),
            command(OpenSession(consent=True, valid_minutes=30), results),
            command(Admit(), results),  # nobody yet
            knock(),
            answered(peer),
            command(Admit(), results),
            command(Pause(), results),
            command(Resume(), results),
            command(End(), results),
            0.5,
            command(End(), results),
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
    seen, rig = await drive(
        [
            OpenSessionStep(),
            lambda r: sessions.append(r.core.session),
            knock(b"seat-1"),
            answered(peer),
            command(Refuse()),
            knock(b"seat-1", salt=b"another salt"),
            knock(b"seat-2", salt=b"a third salt"),
        ]
    )
    # the refused key is refused again; another phone may take the freed seat
    assert seen == [
        ("idle", "ready"),
        ("ready", "waiting"),
        ("waiting", "ready"),
        ("ready", "waiting"),
    ]
    assert "refuse" in rig.signalling.calls and peer.closed
    assert [v.value for v in rig.verdicts] == ["new", "banned", "new"]
    assert rig.core.session is None and sessions[0].secret == b"", "forgotten at shutdown"


async def test_a_viewer_leaving_frees_nothing_and_ends_nothing() -> None:
    """A co-parent who closes the tab keeps the seat: the exam goes on, the staff see since
    when the phone is gone, and the same phone comes back without a new admission."""
    first, second = DummyPeer(), DummyPeer()
    views: list = []
    peers: list = []
    seen, rig = await drive(
        [
            OpenSessionStep(),
            knock(),
            answered(first),
            Press(),  # admitted: LIVE
            ViewerBye(),  # the page was closed
            lambda r: r.viewers.close(first),
            0.05,
            lambda r: views.append(r.core.session_view()),
            knock(),  # the same phone (same seat key) comes back
            answered(second),
            lambda r: views.append(r.core.session_view()),
            lambda r: peers.extend(r.viewers.peers),
        ]
    )
    assert seen == [("idle", "ready"), ("ready", "waiting"), ("waiting", "live")], "nothing ended"
    gone, back = views
    assert gone.viewer.connected is False and gone.viewer.left_s is not None
    assert gone.viewer.admitted, "still admitted: coming back needs no new admission"
    assert back.viewer.connected and back.viewer.left_s is None and back.viewer.admitted
    assert peers == [second] and "close:viewer-hangup" not in rig.signalling.calls


async def test_the_staff_see_when_the_picture_stops_reaching_the_viewer() -> None:
    """The box hears nothing from the viewer's phone for 2 s: the staff's page says it is
    reconnecting (not "Live" alone) until reports come again or the phone reconnects."""
    peer, again = DummyPeer(), DummyPeer()
    views: list = []

    def look(r: Any) -> None:
        views.append(r.core.session_view().viewer.reconnecting)

    await drive(
        [
            OpenSessionStep(),
            knock(),
            answered(peer),
            Press(),  # LIVE
            look,
            ViewerLink(peer, stalled=True),  # type: ignore[arg-type]
            look,
            ViewerLink(peer, stalled=False),  # type: ignore[arg-type]
            look,
            ViewerLink(peer, stalled=True),  # type: ignore[arg-type]
            knock(),  # the phone rebuilt its connection
            answered(again),
            look,
        ]
    )
    assert views == [False, True, False, False]


async def test_the_staff_let_another_phone_in_when_the_viewer_is_gone() -> None:
    first, other = DummyPeer(), DummyPeer()
    results: list = []
    seen, rig = await drive(
        [
            OpenSessionStep(),
            knock(b"seat-1"),
            answered(first),
            Press(),  # LIVE
            command(Release(), results),  # still watching: refused
            lambda r: r.viewers.close(first),
            command(Release(), results),  # gone: the seat is free
            knock(b"seat-2", name="Other"),
            answered(other, code="654321"),
        ]
    )
    assert results[0] == "the viewer is watching: pause or end instead" and results[1] is None
    assert seen[-2:] == [("live", "ready"), ("ready", "waiting")]
    assert [v.value for v in rig.verdicts] == ["new", "new"], "the next phone took the seat"
    view = rig.core.session_view()
    assert view is None or view.viewer is None, "forgotten at shutdown"
    assert "release" in rig.signalling.calls, "the released phone is told and dropped"
    assert "refuse" not in rig.signalling.calls, "not told it was refused: it is not banned"


async def test_refuse_works_on_any_seat_holder_not_admitted_and_admit_needs_the_code() -> None:
    results: list = []
    seen, rig = await drive(
        [
            OpenSessionStep(),
            knock(b"stranger"),  # knocked, then dropped before any answer: no code yet
            command(Admit(), results),
            Press(),  # the button cannot admit without a code either
            command(Refuse(), results),  # the staff can still refuse that seat holder
            knock(b"stranger", salt=b"again"),
        ]
    )
    assert results == ["wait until the viewer's code is shown, then compare", None]
    assert seen == [("idle", "ready"), ("ready", "waiting"), ("waiting", "ready")]
    assert [v.value for v in rig.verdicts] == ["new", "banned"], "the refused key stays out"


async def test_the_staff_are_warned_before_the_expiry_and_extend_by_what_they_choose() -> None:
    """+15 min, +30 min, +1 h as the staff choose, as often as they like, never past the longest
    a session may last (``pairing.max_minutes`` from its opening); each one logged."""
    results: list = []
    expiring: list = []
    views: list = []

    def watch(r: Rig) -> None:
        r.core.add_expiry_listener(expiring.append)

    def view(r: Rig) -> None:
        views.append(r.core.session_view())

    seen, rig = await drive(
        [
            watch,
            command(OpenSession(consent=True, valid_minutes=5)),  # within the 10 min warning
            0.05,
            view,
            command(Extend(minutes=15), results),
            view,
            command(Extend(minutes=30), results),
            view,
            command(Extend(minutes=60), results),  # capped at the maximum
            view,
            command(Extend(minutes=15), results),  # nothing left to give
        ],
        max_minutes=60,
    )
    first, fifteen, thirty, capped = views
    assert first.expiring and first.extend_to is not None
    assert first.extend_to - first.expires == 55 * 60, "the maximum counts from the opening"
    assert fifteen.expires - first.expires == 15 * 60, "not straight to the maximum"
    assert thirty.expires - fifteen.expires == 30 * 60
    assert capped.expires == first.extend_to and capped.extend_to is None
    assert results == [None, None, None, "this session cannot be extended"]
    assert not fifteen.expiring and fifteen.extend_to == first.extend_to
    assert expiring == [True, False], "the LED warned, then stopped warning"
    assert f"extend:{capped.expires}" in rig.signalling.calls, "the relay keeps the room as long"
    logged = [e["valid_minutes"] for e in rig.events.entries() if e["kind"] == "extended"]
    assert logged == [15, 30, 10], "every extension is in the event log"


async def test_the_staff_s_status_says_how_and_when_the_last_session_ended() -> None:
    import time

    ends: list = []

    def ended(r: Rig) -> None:
        status = r.core.status()
        ends.append(None if status.ended is None else (status.state, status.ended.reason))
        assert status.ended is None or abs(status.ended.at - time.time()) < 5

    def expire_now(r: Rig) -> None:
        r.core._timers.start("expiry", 0.05, EndSession("expired"))

    _, rig = await drive(
        [
            ended,
            OpenSessionStep(),
            Press(long=True),
            ended,
            OpenSessionStep(),
            ended,  # a new session: the last one's end is still known
            command(End(reason="page")),
            ended,
            OpenSessionStep(),
            expire_now,
            0.2,
            ended,
        ]
    )
    assert ends == [
        None,
        ("idle", "button"),
        ("ready", "button"),
        ("idle", "page"),
        ("idle", "expired"),
    ]


async def test_at_the_expiry_the_viewer_is_told_it_expired() -> None:
    peer = DummyPeer()

    def expire_now(r: Rig) -> None:
        r.core._timers.start("expiry", 0.05, EndSession("expired"))

    seen, rig = await drive([OpenSessionStep(), knock(), answered(peer), Press(), expire_now, 0.6])
    assert seen[-2:] == [("live", "ended"), ("ended", "idle")]
    last = peer.statuses[-1]
    assert (last["state"], last["reason"]) == ("ended", "expired"), "not a plain 'ended'"
    assert "close:expired" in rig.signalling.calls


async def test_no_session_opens_until_the_clock_is_synchronised() -> None:
    seen, rig = await drive([Press()], clock_ok=False)
    assert seen == [] and rig.core.session is None


async def test_pre_admission_is_only_an_explicit_option() -> None:
    seen, _ = await drive([OpenSessionStep(), knock(), answered(DummyPeer())])
    assert seen[-1] == ("ready", "waiting")
    seen, _ = await drive([OpenSessionStep(), knock(), answered(DummyPeer())], pre_admit=True)
    assert seen[-1] == ("waiting", "live")


def test_illegal_moves_are_refused() -> None:
    inbox = Inbox(asyncio.new_event_loop())
    viewers = FakeViewers(inbox)
    core = Core(settings(), inbox, viewers, RecordingSignalling(), EventLog(None))  # type: ignore[arg-type]
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


# -- issue 15, item 1: the core never waits on the network -----------------------------------------


class HangingSignalling(RecordingSignalling):
    """A relay that never answers the calls named in ``hang`` (an Event never set); the others
    are recorded; ``fail`` names the calls that fail at once."""

    def __init__(self, hang: set[str] = frozenset(), fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        super().__init__()
        self.hang, self.fail = hang, fail
        self.never = asyncio.Event()

    async def _call(self, name: str) -> None:
        if name in self.fail:
            raise ConnectionError("the relay is down")
        if name in self.hang:
            self.calls.append(f"hanging:{name}")
            await self.never.wait()

    async def open(self, session) -> None:
        await self._call("open")
        await super().open(session)

    async def close(self, session, reason: str) -> None:
        await self._call("close")
        await super().close(session, reason)

    async def extend(self, session, expires: int) -> None:
        await self._call("extend")
        await super().extend(session, expires)


async def test_a_press_and_a_staff_command_are_handled_while_a_relay_call_hangs() -> None:
    peer = DummyPeer()
    results: list = []
    seen, rig = await drive(
        [
            OpenSessionStep(),
            knock(),
            answered(peer),
            Press(),  # LIVE
            command(Extend(minutes=15), results),  # the relay never answers it
            Press(),  # -> PAUSED: handled meanwhile
            command(Resume(), results),  # -> LIVE: answered meanwhile
            command(Extend(minutes=15), results),  # one extension at a time
            Press(long=True),  # -> ENDED -> IDLE, though closing the room hangs too
            0.4,
            Press(),  # a new session opens meanwhile
        ],
        signalling=HangingSignalling(hang={"extend", "close"}),
    )
    assert results[:2] == [None, "an extension is under way: wait a moment"]
    assert results[2] == "the session ended", "the hanging Extend is answered at the end"
    assert seen == [
        ("idle", "ready"),
        ("ready", "waiting"),
        ("waiting", "live"),
        ("live", "paused"),
        ("paused", "live"),
        ("live", "ended"),
        ("ended", "idle"),
        ("idle", "ready"),
    ]
    assert rig.signalling.calls.count("open") == 2 and "hanging:close" in rig.signalling.calls


async def test_a_hanging_open_answers_nothing_until_the_relay_does_and_blocks_nothing() -> None:
    results: list = []
    states: list = []
    seen, rig = await drive(
        [
            command(OpenSession(consent=True), results),  # the relay never answers
            lambda r: states.append(r.core.status().state),
            command(OpenSession(consent=True), results),
            Press(),  # a press while it is being opened: nothing more opens
            lambda r: states.append(r.core.status().state),
            0.35,  # the call's time is up (the rig's relay timeout: 0.3 s)
        ],
        signalling=HangingSignalling(hang={"open"}),
    )
    assert results == [
        "a session is being opened: wait a moment",
        "the relay cannot be reached: try again shortly",
    ]
    assert states == ["idle", "idle"] and seen == [] and rig.core.session is None


async def test_with_a_failing_relay_the_staff_are_told_as_before() -> None:
    results: list = []
    views: list = []
    _, rig = await drive(
        [command(OpenSession(consent=True), results)],
        signalling=HangingSignalling(fail={"open"}),
    )
    assert results == ["the relay cannot be reached: try again shortly"]
    assert rig.core.session is None and not rig.events.entries()
    seen, rig = await drive(
        [
            OpenSessionStep(),
            lambda r: views.append(r.core.session_view()),
            command(Extend(minutes=15), results),
            lambda r: views.append(r.core.session_view()),
        ],
        signalling=HangingSignalling(fail={"extend"}),
    )
    assert results[1] == "the relay cannot be reached: try again shortly"
    assert views[0].expires == views[1].expires, "the expiry stays as it was"
    assert "extended" not in [e["kind"] for e in rig.events.entries()]


async def test_every_kind_the_core_records_is_kept_by_the_event_log() -> None:
    """The real event log's rules (drive() also checks that none was refused)."""
    peer, other = DummyPeer(), DummyPeer()
    _, rig = await drive(
        [
            OpenSessionStep(),
            knock(b"seat-1"),
            answered(peer),
            knock(b"seat-2", salt=b"other"),  # turned away: taken
            command(Admit()),
            command(Extend(minutes=15)),
            ViewerBye(),
            lambda r: r.viewers.close(peer),
            command(Release()),
            knock(b"seat-3", salt=b"third"),
            answered(other),
            command(Refuse()),
            command(End()),
            0.4,
        ]
    )
    kinds = [e["kind"] for e in rig.events.entries()]
    assert set(kinds) == {
        "opened",
        "knock",
        "refused",
        "admitted",
        "extended",
        "viewer-left",
        "ended",
    }
    assert kinds.count("extended") == 1, "an Extend appears in the event log"
