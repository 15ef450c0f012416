"""KeyframeLimiter: one forced keyframe per interval, the rest coalesced into one pending."""

from __future__ import annotations

import pytest

from appliance.stream.keyframes import KeyframeLimiter


def test_first_request_is_immediate_and_a_burst_is_coalesced() -> None:
    k = KeyframeLimiter(min_interval=0.5)
    assert k.request(10.0)
    assert not k.request(10.1) and not k.request(10.2) and not k.request(10.45)
    assert k.pending
    assert not k.poll(10.49)
    assert k.poll(10.5), "the burst becomes one keyframe when the interval is over"
    assert not k.poll(10.6) and not k.pending
    assert (k.requests, k.forced) == (4, 2)


def test_requests_further_apart_than_the_interval_all_pass() -> None:
    k = KeyframeLimiter(min_interval=0.5)
    assert all(k.request(t) for t in (0.0, 0.5, 1.2, 5.0))
    assert not k.poll(6.0)


def test_an_encoder_idr_answers_a_pending_request() -> None:
    k = KeyframeLimiter(min_interval=1.0)
    assert k.request(0.0)
    assert not k.request(0.3)
    k.note_keyframe(0.6)  # a periodic IDR went out anyway
    assert not k.pending and not k.poll(2.0)
    assert not k.request(1.2), "the interval counts from the encoder's IDR"
    assert k.poll(1.6)


def test_zero_interval_never_holds_and_negative_is_refused() -> None:
    k = KeyframeLimiter(min_interval=0.0)
    assert k.request(1.0) and k.request(1.0)
    with pytest.raises(ValueError):
        KeyframeLimiter(-1.0)
