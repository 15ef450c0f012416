"""One exam's session: ids, expiry, the seat and its verdicts, forgetting."""

from __future__ import annotations

from appliance.session.session import Session, Verdict


def test_every_session_has_fresh_random_ids_and_a_window() -> None:
    a = Session.new(b"h" * 32, 90, now=1_000_000)
    b = Session.new(b"h" * 32, 90, now=1_000_000)
    assert a.room != b.room and a.secret != b.secret
    assert len(a.secret) == 32 and len(a.room) >= 22
    assert a.expires == 1_000_000 + 90 * 60
    assert not a.expired(now=a.expires - 1) and a.expired(now=a.expires)
    assert a.short_id not in a.room and len(a.short_id) == 8


def test_the_seat_goes_to_the_first_knock_and_only_comes_back_to_it() -> None:
    s = Session.new(b"h" * 32, 90)
    assert s.judge(b"salt-1", b"phone-A") is Verdict.NEW
    s.seat(b"phone-A", "Alex", "c1")
    assert s.judge(b"salt-2", b"phone-B") is Verdict.TAKEN
    assert s.judge(b"salt-3", b"phone-A") is Verdict.RETURNING
    s.seat(b"phone-A", None, "c2")
    assert s.viewer is not None and s.viewer.name == "Alex" and s.viewer.client == "c2"


def test_a_replayed_salt_is_refused_whoever_sends_it() -> None:
    s = Session.new(b"h" * 32, 90)
    assert s.judge(b"salt", b"phone-A") is Verdict.NEW
    assert s.judge(b"salt", b"phone-A") is Verdict.REPLAY
    assert s.judge(b"salt", b"phone-B") is Verdict.REPLAY


def test_thousands_of_knocks_from_a_leaked_link_never_lock_out_the_seat_s_phone() -> None:
    """Issue 18, item 3: 4,200 valid knocks with fresh keys filled the 4,096 replay slots, after
    which every knock was refused, the real co-parent's included."""
    from appliance.session.session import MAX_SALTS

    s = Session.new(b"h" * 32, 90)
    assert s.judge(b"first", b"phone-A") is Verdict.NEW
    s.seat(b"phone-A", None, "c1")
    for i in range(MAX_SALTS + 104):
        assert s.judge(b"junk-%d" % i, b"key-%d" % i) is Verdict.TAKEN
    assert s.judge(b"again", b"phone-A") is Verdict.RETURNING, "the seat's phone gets back in"
    assert s.judge(b"first", b"phone-A") is Verdict.REPLAY, "its old knock stays a replay"
    assert s.judge(b"again", b"phone-A") is Verdict.REPLAY
    assert s.judge(b"junk-%d" % (MAX_SALTS + 103), b"x") is Verdict.REPLAY, "recent junk too"
    s.release()
    assert s.judge(b"fresh", b"phone-B") is Verdict.NEW, "a new phone after a release"


def test_refusing_frees_the_seat_and_bans_the_key() -> None:
    s = Session.new(b"h" * 32, 90)
    s.judge(b"s1", b"phone-A")
    s.seat(b"phone-A", "X", "c1")
    s.refuse()
    assert s.viewer is None
    assert s.judge(b"s2", b"phone-A") is Verdict.BANNED
    assert s.judge(b"s3", b"phone-B") is Verdict.NEW


def test_forget_drops_the_secret_the_seat_and_the_name() -> None:
    s = Session.new(b"h" * 32, 90)
    s.judge(b"s1", b"phone-A")
    s.seat(b"phone-A", "Alex", "c1")
    s.forget()
    assert s.secret == b"" and s.viewer is None
