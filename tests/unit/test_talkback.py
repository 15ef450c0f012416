"""Talk-back's player against a fake speaker (the hardware boundary) and a track of known frames:
frames reach the speaker only while playing and only from the current connection; the speaker is
open only while the phone talks; a speaker that will not open is reported, not fatal."""

from __future__ import annotations

import asyncio

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.errors import DeviceError
from appliance.stream.talkback import TalkBack
from tests.support.wait import until_async


class FakeSpeaker:
    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log = log
        self.fail = fail

    def open(self) -> None:
        if self.fail:
            raise DeviceError("the ALSA playback device 'x' cannot be opened")
        self.log.append("open")

    def write(self, frame: av.AudioFrame) -> None:
        self.log.append("write")

    def close(self) -> None:
        self.log.append("close")


class Frames(MediaStreamTrack):
    """20 ms blocks, every 5 ms (fast), until stopped."""

    kind = "audio"

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await asyncio.sleep(0.005)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 960), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 48_000
        return frame


async def test_frames_play_only_while_playing_and_from_the_current_connection() -> None:
    log: list[str] = []
    talkback = TalkBack(lambda: FakeSpeaker(log))
    talkback.start()
    track, current = Frames(), [False]
    try:
        talkback.attach(track, lambda: current[0])
        await until_async(lambda: talkback.received > 10, timeout=5)
        talkback.set_playing(True)
        await asyncio.sleep(0.2)
        assert talkback.played == 0, "a connection that is not the seated viewer's is not heard"
        current[0] = True
        await until_async(lambda: talkback.played > 10, timeout=5)
        assert log[0] == "open"
        talkback.set_playing(False)
        await until_async(lambda: "close" in log, timeout=5)
        stopped = talkback.played
        await asyncio.sleep(0.2)
        assert talkback.played == stopped and talkback.received > stopped
    finally:
        track.stop()
        await asyncio.to_thread(talkback.stop)
    assert log.count("open") == log.count("close") == 1


async def test_a_speaker_that_will_not_open_is_not_fatal() -> None:
    log: list[str] = []
    talkback = TalkBack(lambda: FakeSpeaker(log, fail=True))
    talkback.start()
    track = Frames()
    try:
        talkback.attach(track, lambda: True)
        talkback.set_playing(True)
        await until_async(lambda: talkback.received > 10, timeout=5)
        await asyncio.sleep(0.1)
        assert talkback.played == 0 and log == []
        talkback.set_playing(False)  # the next talk tries the speaker again
        talkback.set_playing(True)
        await until_async(lambda: talkback.received > 20, timeout=5)
    finally:
        track.stop()
        await asyncio.to_thread(talkback.stop)
