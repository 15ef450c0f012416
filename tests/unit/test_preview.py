"""The mask editor's shared preview: one picture from the media thread per interval, whatever the
number of requests; requests that come while the next one is made get the last one; the media
thread's picture is an array of its own (no frame is shared with a web thread)."""

from __future__ import annotations

import threading

import numpy as np

from appliance.capture.synthetic import SyntheticSource
from appliance.stream.pipeline import preview_picture
from appliance.web.preview import SharedPreview


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def picture() -> np.ndarray:
    return np.full((36, 64, 3), 128, dtype=np.uint8)


def test_one_picture_per_interval_shared_by_every_request() -> None:
    taken: list[int] = []
    clock = Clock()

    def take() -> np.ndarray:
        taken.append(1)
        return picture()

    preview = SharedPreview(take, interval=0.5, clock=clock)
    first = preview.jpeg()
    assert first is not None and first[:2] == b"\xff\xd8"
    assert all(preview.jpeg() is first for _ in range(50))
    assert len(taken) == 1
    clock.now += 0.6
    assert preview.jpeg() is not first
    assert len(taken) == 2 and preview.made == 2


def test_no_signal_is_remembered_for_the_interval_too() -> None:
    taken: list[int] = []
    clock = Clock()
    preview = SharedPreview(lambda: taken.append(1), interval=0.5, clock=clock)
    assert preview.jpeg() is None and preview.jpeg() is None
    assert len(taken) == 1 and preview.made == 0


def test_a_request_during_a_conversion_gets_the_last_picture_without_waiting() -> None:
    clock = Clock()
    inside, release = threading.Event(), threading.Event()
    calls = [0]

    def take() -> np.ndarray:
        calls[0] += 1
        if calls[0] == 2:  # the second conversion is slow
            inside.set()
            assert release.wait(5)
        return picture()

    preview = SharedPreview(take, interval=0.5, clock=clock)
    first = preview.jpeg()
    clock.now += 1
    slow = threading.Thread(target=preview.jpeg)
    slow.start()
    try:
        assert inside.wait(5)
        assert preview.jpeg() is first, "answered at once with the last picture"
    finally:
        release.set()
        slow.join(5)
    assert calls[0] == 2


def test_the_media_thread_s_picture_shares_nothing_with_the_frame() -> None:
    source = SyntheticSource(1280, 720, 30)
    source.open()
    try:
        captured = source.read(1.0)
    finally:
        source.close()
    assert captured is not None
    small = preview_picture(captured.frame)
    assert small.shape == (360, 640, 3) and small.dtype == np.uint8
    assert small.flags.owndata, "an array of its own"
