"""The media pipeline follows the rate decision: the encoder's bitrate, every other frame dropped at
the half-rate step, frames scaled at the smaller step (with the time strip kept for measuring),
and keyframe requests through the limiter."""

from __future__ import annotations

import threading
import time
from typing import Any

import av

from appliance.capture import timestrip
from appliance.capture.synthetic import SyntheticSource
from appliance.encode.keyframes import KeyframeReason
from appliance.stream.ladder import LADDER_720P30
from appliance.stream.pipeline import MediaPipeline, Mode
from tests.support.wait import until

FULL, HALF, SMALLER = LADDER_720P30.steps()


class RecordingEncoder:
    """Stands in for an encoder: records what it is given and told."""

    def __init__(self) -> None:
        self.bitrate = 4_000_000
        self.divisor = 1
        self.sizes: list[tuple[int, int, float]] = []
        self.strips: list[int | None] = []
        self.keyframes = 0
        self._force = False
        self.lock = threading.Lock()

    def encode(self, frame: av.VideoFrame, pts: int) -> list[Any]:
        with self.lock:
            self.sizes.append((frame.width, frame.height, time.monotonic()))
            self.strips.append(timestrip.read(frame.to_ndarray(format="gray")))
            if self._force:
                self.keyframes += 1
                self._force = False
        return []

    def request_keyframe(self) -> None:
        self._force = True

    def set_frame_divisor(self, divisor: int) -> None:
        self.divisor = divisor

    def close(self) -> None:
        pass


def frames_since(enc: RecordingEncoder, since: float) -> list[tuple[int, int, float]]:
    with enc.lock:
        return [s for s in enc.sizes if s[2] >= since]


def counted(pipeline: MediaPipeline, seconds: float) -> tuple[int, int]:
    """The frames the pipeline encoded and dropped (the half-rate step's) in ``seconds``."""
    encoded, dropped = pipeline.frames_encoded, pipeline.frames_dropped
    time.sleep(seconds)
    return pipeline.frames_encoded - encoded, pipeline.frames_dropped - dropped


def test_the_pipeline_follows_the_bitrate_the_half_rate_and_the_smaller_step() -> None:
    enc = RecordingEncoder()
    pipeline = MediaPipeline(
        SyntheticSource(1280, 720, 30), lambda w, h, fps: enc, lambda p: None, keep_time_strip=True
    )
    pipeline.set_mode(Mode.LIVE)
    pipeline.set_viewers(1)
    pipeline.start()
    try:
        until(lambda: len(enc.sizes) > 5, 5.0)
        pipeline.set_rate(1_500_000, FULL)
        until(lambda: enc.bitrate == 1_500_000, 2.0)
        encoded, dropped = counted(pipeline, 1.0)  # frames, not time: a busy machine skips some
        assert enc.divisor == 1 and encoded > 5 and dropped == 0, (encoded, dropped)

        pipeline.set_rate(600_000, HALF)
        until(lambda: enc.divisor == 2, 2.0)
        encoded, dropped = counted(pipeline, 1.0)
        assert enc.bitrate == 600_000
        assert encoded > 3 and abs(encoded - dropped) <= 1, (encoded, dropped)  # every other

        pipeline.set_rate(300_000, SMALLER)
        time.sleep(0.3)
        t = time.monotonic()
        time.sleep(0.5)
        small = frames_since(enc, t)
        assert small and all((w, h) == (852, 480) for w, h, _ in small)
        with enc.lock:
            assert enc.strips[-1] is not None, "the scaled frame keeps a readable time strip"
    finally:
        pipeline.stop()


def test_keyframe_requests_are_limited_and_coalesced() -> None:
    enc = RecordingEncoder()
    pipeline = MediaPipeline(SyntheticSource(800, 450, 30), lambda w, h, fps: enc, lambda p: None)
    pipeline.set_mode(Mode.LIVE)
    pipeline.set_viewers(1)
    pipeline.start()
    try:
        until(lambda: len(enc.sizes) > 20, 5.0)  # past the first keyframe's interval
        before = enc.keyframes
        for _ in range(10):  # a burst of PLIs
            pipeline.keyframe(KeyframeReason.PLI)
        until(lambda: enc.keyframes > before, 2.0, what="the first at once")
        assert enc.keyframes == before + 1, "the rest wait for the gap"
        until(lambda: enc.keyframes == before + 2, 2.0, what="the rest coalesced into one")
        time.sleep(0.7)
        assert enc.keyframes == before + 2
        assert pipeline.keyframes.requests >= 10
    finally:
        pipeline.stop()


def test_the_memory_freed_by_a_change_of_size_is_released(monkeypatch) -> None:
    from appliance import allocator

    released: list[float] = []

    def release() -> bool:
        released.append(time.monotonic())
        return True

    monkeypatch.setattr(allocator, "release_free_memory", release)
    enc = RecordingEncoder()
    pipeline = MediaPipeline(SyntheticSource(800, 450, 30), lambda w, h, fps: enc, lambda p: None)
    pipeline.set_mode(Mode.LIVE)
    pipeline.set_viewers(1)
    pipeline.start()
    try:
        until(lambda: len(enc.sizes) > 3, 5.0)
        pipeline.set_rate(1_000_000, HALF)  # the same size: nothing to release
        until(lambda: enc.divisor == 2, 2.0)
        time.sleep(0.2)
        assert released == []
        pipeline.set_rate(300_000, SMALLER)
        until(lambda: len(released) == 1, 2.0, what="released after the restart at 532x300")
        pipeline.set_rate(2_000_000, FULL)
        until(lambda: len(released) == 2, 2.0, what="and after the one back to full size")
        assert pipeline.memory_releases == 2
    finally:
        pipeline.stop()
