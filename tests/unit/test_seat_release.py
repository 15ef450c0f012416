"""The seat given up by its holder (Cancel in the waiting room), the phones turned away while it
was held, the code made new at each connection, and the phone told the session's expiry: what the
core does, with in-memory viewers and signalling (tests/unit/test_state.py's rig)."""

from __future__ import annotations

from appliance.core import Extend, OpenSession, ViewerCancel
from appliance.session.session import MAX_TURNED_AWAY, Session
from tests.unit.test_state import DummyPeer, Rig, answered, command, drive, knock


async def test_a_cancel_frees_the_seat_and_the_phone_turned_away_takes_it() -> None:
    first, second = DummyPeer(), DummyPeer()
    views: list = []
    seen, rig = await drive(
        [
            command(OpenSession(consent=True)),
            knock(b"phone-a"),
            answered(first),
            knock(b"phone-b"),  # turned away: A holds the seat
            knock(b"phone-b"),  # B keeps knocking quietly
            lambda r: views.append(r.core.session_view()),
            ViewerCancel(),  # A taps Cancel: its sealed "leave" reached the box
            lambda r: views.append(r.core.session_view()),
            knock(b"phone-b"),  # B's next knock takes the seat
            answered(second, "654321"),
            lambda r: views.append(r.core.session_view()),
            knock(b"phone-a"),  # A's key no longer owns the seat
        ]
    )
    assert [v.value for v in rig.verdicts] == ["new", "taken", "taken", "new", "taken"]
    held, freed, taken = views
    assert held.turned_away == 1, "the staff see that another phone tried (once per phone)"
    assert freed.viewer is None and freed.turned_away == 1
    assert taken.viewer.code == "654321" and taken.turned_away == 0, "B holds the seat now"
    assert first.closed and "refuse" not in rig.signalling.calls, "A is not told it was refused"
    assert seen == [
        ("idle", "ready"),
        ("ready", "waiting"),
        ("waiting", "ready"),
        ("ready", "waiting"),
    ]


async def test_each_connection_s_code_is_new_and_the_staff_see_it() -> None:
    views: list = []
    await drive(
        [
            command(OpenSession(consent=True)),
            knock(),
            answered(DummyPeer(), "111111"),
            lambda r: views.append(r.core.session_view()),
            knock(),  # the same phone reloads: a new connection, new keys, a new code
            answered(DummyPeer(), "222222"),
            lambda r: views.append(r.core.session_view()),
        ]
    )
    first, again = views
    assert first.viewer.code == "111111" and not first.viewer.code_renewed
    assert again.viewer.code == "222222" and again.viewer.code_renewed
    assert again.viewer.code_at is not None and again.viewer.code_at >= first.viewer.code_at


async def test_a_fresh_knock_is_connecting_not_dropped() -> None:
    views: list = []
    await drive(
        [
            command(OpenSession(consent=True)),
            knock(),  # seated; its offer not answered yet
            lambda r: views.append(r.core.session_view()),
            answered(DummyPeer()),
            lambda r: views.append(r.core.session_view()),
        ]
    )
    knocked, connected = views
    assert knocked.viewer.connecting and not knocked.viewer.connected
    assert knocked.viewer.left_s is None
    assert not connected.viewer.connecting and connected.viewer.connected


async def test_the_phone_is_told_the_expiry_and_its_extension() -> None:
    peer = DummyPeer()

    def viewer_sees(r: Rig) -> None:
        assert r.core.session is not None
        assert peer.statuses[-1]["expires"] == r.core.session.expires

    seen, rig = await drive(
        [
            command(OpenSession(consent=True, valid_minutes=5)),
            knock(),
            answered(peer),
            viewer_sees,
            command(Extend()),
            viewer_sees,
        ],
        max_minutes=60,
    )
    expiries = [s["expires"] for s in peer.statuses]
    assert expiries[0] < expiries[-1], "the extension reached the phone"


def test_a_phone_turned_away_is_counted_once_and_not_once_seated() -> None:
    session = Session.new(b"k" * 32, 30)
    assert session.turn_away(b"b") and not session.turn_away(b"b"), "recorded once per phone"
    session.seat(b"b", None, "c1")
    assert session.turned_away == set(), "B holds the seat: not turned away any more"
    for n in range(MAX_TURNED_AWAY + 5):
        session.turn_away(bytes([n]))
    assert len(session.turned_away) == MAX_TURNED_AWAY, "bounded"
    session.forget()
    assert session.turned_away == set()
