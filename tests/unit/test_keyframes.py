"""The keyframe policy: who may ask, which requests skip the limiter, the limiter (one forced
keyframe per gap, the rest coalesced into one pending), and the backstop's GOP."""

from __future__ import annotations

import pytest

from appliance import config
from appliance.encode.keyframes import (
    MIN_KEYFRAME_GAP,
    REFUSED_FOR_KEYFRAME,
    URGENT,
    KeyframeLimiter,
    KeyframePolicy,
    KeyframeReason,
    after_round,
    gop_frames,
)


def test_first_request_is_immediate_and_a_burst_is_coalesced() -> None:
    k = KeyframeLimiter(min_gap=0.5)
    assert k.request(10.0)
    assert not k.request(10.1) and not k.request(10.2) and not k.request(10.45)
    assert k.pending
    assert not k.poll(10.49)
    assert k.poll(10.5), "the burst becomes one keyframe when the gap is over"
    assert not k.poll(10.6) and not k.pending
    assert (k.requests, k.forced) == (4, 2)


def test_requests_further_apart_than_the_gap_all_pass() -> None:
    k = KeyframeLimiter(min_gap=0.5)
    assert all(k.request(t) for t in (0.0, 0.5, 1.2, 5.0))
    assert not k.poll(6.0)


def test_an_encoder_idr_answers_a_pending_request() -> None:
    k = KeyframeLimiter(min_gap=1.0)
    assert k.request(0.0)
    assert not k.request(0.3)
    k.note_keyframe(0.6)  # a periodic IDR went out anyway
    assert not k.pending and not k.poll(2.0)
    assert not k.request(1.2), "the gap counts from the encoder's IDR"
    assert k.poll(1.6)


def test_zero_gap_never_holds_and_negative_is_refused() -> None:
    k = KeyframeLimiter(min_gap=0.0)
    assert k.request(1.0) and k.request(1.0)
    with pytest.raises(ValueError):
        KeyframeLimiter(-1.0)


def test_who_skips_the_limiter() -> None:
    assert URGENT == {
        KeyframeReason.NEW_VIEWER,
        KeyframeReason.RESYNC,
        KeyframeReason.PATH_BACK,
        KeyframeReason.SLATE,
    }
    assert KeyframeReason.PLI not in URGENT and KeyframeReason.REFUSED_RTX not in URGENT
    assert KeyframeReason.MODE not in URGENT


def test_a_burst_of_plis_is_one_idr_now_and_one_when_the_gap_is_over() -> None:
    policy = KeyframePolicy()
    assert policy.limiter.min_gap == MIN_KEYFRAME_GAP == 0.5
    forced = [policy.ask(KeyframeReason.PLI, 10.0 + i * 0.01) for i in range(10)]
    assert forced == [True] + [False] * 9
    assert policy.take(10.1), "the first PLI's IDR on the next frame"
    assert not policy.take(10.2), "the rest wait"
    assert policy.take(10.5), "...and become one when the gap is over"
    assert not policy.take(10.6)
    assert policy.asked[KeyframeReason.PLI] == 10 and policy.requests == 10


def test_a_new_viewer_is_never_held_and_restarts_the_gap() -> None:
    policy = KeyframePolicy()
    assert policy.ask(KeyframeReason.PLI, 0.0) and policy.take(0.0)
    assert policy.ask(KeyframeReason.NEW_VIEWER, 0.1), "urgent: within the gap all the same"
    assert policy.take(0.1)
    assert not policy.ask(KeyframeReason.REFUSED_RTX, 0.3), "the gap counts from the urgent one"
    assert not policy.take(0.5) and policy.take(0.6)


def test_an_encoded_keyframe_answers_what_waits() -> None:
    policy = KeyframePolicy()
    assert policy.ask(KeyframeReason.MODE, 0.0) and policy.take(0.0)
    assert not policy.ask(KeyframeReason.PLI, 0.2)
    policy.encoded_keyframe(0.3)  # the backstop's IDR went out
    assert not policy.take(0.9), "nothing left to force"


def test_what_a_rate_round_asks() -> None:
    assert after_round(0, False, False) is None
    assert after_round(REFUSED_FOR_KEYFRAME, False, False) is KeyframeReason.REFUSED_RTX
    assert after_round(REFUSED_FOR_KEYFRAME - 1, False, False) is None, "one refusal: no IDR"
    assert after_round(REFUSED_FOR_KEYFRAME, False, True) is None, "stalled: nobody to send to"
    assert after_round(0, True, False) is KeyframeReason.PATH_BACK
    assert after_round(REFUSED_FOR_KEYFRAME, True, False) is KeyframeReason.PATH_BACK
    assert after_round(0, True, True) is None


def test_the_backstop_has_one_default_and_makes_the_gop() -> None:
    assert config.EncodeConfig().keyframe_interval == 10.0
    assert gop_frames(30, 10.0) == 300
    assert gop_frames(25, 2.0) == 50
    assert gop_frames(1, 0.1) == 1, "at least one frame"
