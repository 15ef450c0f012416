"""Who hears what, end to end with a real aiortc viewer on loopback; the speaker through the real
ALSA code path (ALSA's userspace ``file`` plugin over ``null``, defined in an asoundrc this test
writes in its temporary directory: no sound card, and nothing of it in the box's config).

- The scanner's sound, muted by the staff: no sound packet arrives while muted (counted).
- The room microphone (a known tone, from a clip): no packet on the room's
  m-line before admission, while off, while paused, nor after a pause until switched on again;
  the LED and the staff's status show it while live; each switch in the event log.
- Talk-back (the viewer sends a known tone on the room's m-line): nothing reaches the speaker
  (the ``file`` PCM's output) unless the staff allowed it, the picture is live and the button is
  held.
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import re
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamTrack

from appliance.core import Pause, Resume, SetSound
from appliance.hearing import SoundSwitch
from appliance.sound.file import FileSound
from appliance.state import LED_MICROPHONE, LED_PATTERNS, State
from tests.support.media import room_speaker, write_clip
from tests.support.viewer_client import AiortcViewer
from tests.support.wait import until_async

ROOM_HZ = 1000  # the room microphone's tone
VOICE_HZ = 440  # the phone's voice
RATE = 48_000


@pytest.fixture
def alsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The PCM ``roomspk``: plays into ``played.raw`` in this test's temporary directory (a
    test-only sink)."""
    return room_speaker(tmp_path, monkeypatch)


@pytest.fixture
def room_clip(tmp_path: Path) -> Any:
    """The room microphone: a clip of a 1 kHz tone (the ``file`` sound source, looped at the
    wall clock's pace). ALSA's ``file`` capture over ``null`` hands out one sample a read here,
    too slow to stand for a microphone; the ALSA source itself is tests/integration/
    test_sound_alsa.py's."""
    path = tmp_path / "room.wav"
    t = np.arange(RATE * 2) / RATE
    tone = (np.sin(2 * np.pi * ROOM_HZ * t) * 12_000).astype(np.int16)
    write_clip(path, tone, rate=RATE)
    return functools.partial(FileSound, str(path))


class Voice(MediaStreamTrack):
    """The phone's microphone: a 440 Hz tone in 20 ms frames at the wall clock's pace."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._n = 0
        self._start = 0.0

    async def recv(self) -> av.AudioFrame:
        if not self._start:
            self._start = time.monotonic()
        wait = self._start + self._n * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        index = np.arange(self._n * 960, (self._n + 1) * 960)
        samples = (np.sin(2 * np.pi * VOICE_HZ * index / RATE) * 10_000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._n * 960
        frame.time_base = fractions.Fraction(1, RATE)
        self._n += 1
        return frame


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    return float(np.argmax(spectrum[1:]) + 1) * RATE / len(samples)


async def _settled(count: Any) -> int:
    await asyncio.sleep(0.3)  # what was in flight has landed
    return int(await count())


async def _switch(box: Any, switch: SoundSwitch, on: bool) -> None:
    await asyncio.to_thread(box.run, box.core.command(SetSound(switch=switch, on=on)))


async def _command(box: Any, command: Any) -> None:
    await asyncio.to_thread(box.run, box.core.command(command))


async def _events(box: Any, kind: str) -> list[dict[str, Any]]:
    return [e for e in await asyncio.to_thread(box.box_events) if e["kind"] == kind]


async def _status(box: Any) -> Any:
    return await asyncio.to_thread(box.call, lambda: box.core.status())


async def _until(check: Any, timeout: float = 5.0) -> None:
    """Wait until ``check()`` (run on the box's loop) is true."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(box_call := check):
        assert time.monotonic() < deadline, f"not within {timeout} s: {box_call}"
        await asyncio.sleep(0.05)


async def _live(box: Any, viewer: AiortcViewer) -> None:
    await viewer.connect()
    await asyncio.sleep(1.0)
    assert await viewer.audio_packets() == 0 and await viewer.room_packets() == 0
    await asyncio.to_thread(box.press)  # admit: LIVE
    await until_async(lambda: "live" in viewer.statuses, timeout=10)


async def test_a_muted_scanner_sends_no_sound_packet(box_factory, alsa: Path) -> None:
    box = box_factory(audio={"source": "synthetic"})
    viewer = AiortcViewer(box.viewer_url, audio=True)
    try:
        await _live(box, viewer)
        await _until(lambda: box.call(lambda: box.core.hearing.scanner))
        await asyncio.sleep(0.5)
        assert await viewer.audio_packets() > 10
        await _switch(box, SoundSwitch.SCANNER, False)
        muted = await _settled(viewer.audio_packets)
        await asyncio.sleep(1.5)
        assert await viewer.audio_packets() == muted, "no sound packet while muted"
        await _command(box, Pause())
        await _command(box, Resume())  # the mute outlives a pause
        await asyncio.sleep(1.0)
        assert await viewer.audio_packets() == muted
        await _switch(box, SoundSwitch.SCANNER, True)
        await asyncio.sleep(1.0)
        assert await viewer.audio_packets() > muted + 20
        sound = [(e["what"], e["on"]) for e in await _events(box, "sound")]
        assert sound == [("scanner", False), ("scanner", True)]
    finally:
        await viewer.close()


async def test_the_room_microphone_is_sent_only_while_switched_on_and_live(
    box_factory, room_clip: Any
) -> None:
    box = box_factory(
        audio={"source": "synthetic"}, room={"microphone": "roommic"}, microphone=room_clip
    )
    viewer = AiortcViewer(box.viewer_url, room_line=True)
    try:
        await _live(box, viewer)
        await asyncio.sleep(1.0)
        assert await viewer.audio_packets() > 20, "the scanner's sound is on"
        assert await viewer.room_packets() == 0, "the room microphone is off by default"
        status = await _status(box)
        assert status.sound.switches == {"scanner": True, "microphone": False}
        assert box.box.panel.pattern == LED_PATTERNS[State.LIVE]

        await _switch(box, SoundSwitch.MICROPHONE, True)
        await until_async(lambda: box.box.panel.pattern == LED_MICROPHONE, timeout=5)
        assert (await _status(box)).sound.microphone
        assert viewer.room_track is not None
        chunks: list[np.ndarray] = []
        while sum(len(c) for c in chunks) < RATE:
            frame = await asyncio.wait_for(viewer.room_track.recv(), 5)
            chunks.append(frame.to_ndarray().reshape(-1, 2)[:, 0])
        assert abs(_dominant_hz(np.concatenate(chunks)[RATE // 10 :]) - ROOM_HZ) < 10
        assert await viewer.room_packets() > 20

        await _command(box, Pause())  # the microphone goes off by itself
        await until_async(lambda: box.box.panel.pattern == LED_PATTERNS[State.PAUSED], timeout=5)
        paused = await _settled(viewer.room_packets)
        await asyncio.sleep(1.5)
        assert await viewer.room_packets() == paused, "no room packet while paused"
        await _command(box, Resume())
        await asyncio.sleep(1.5)
        assert await viewer.room_packets() == paused, "still off after the pause"
        assert box.box.panel.pattern == LED_PATTERNS[State.LIVE]
        sound = [(e["what"], e["on"], e["reason"]) for e in await _events(box, "sound")]
        assert sound == [("microphone", True, "staff"), ("microphone", False, "paused")]
    finally:
        await viewer.close()


async def test_talkback_reaches_the_speaker_only_while_allowed_live_and_held(
    box_factory, alsa: Path
) -> None:
    box = box_factory(audio={"source": "synthetic"}, room={"speaker": "roomspk"})
    viewer = AiortcViewer(box.viewer_url, room_line=True, voice=Voice())
    talkback = box.box.media.talkback
    try:
        await _live(box, viewer)
        viewer.talk(True)  # not allowed: refused
        await until_async(lambda: talkback.received > 25, timeout=5)
        await asyncio.sleep(0.5)
        assert talkback.played == 0, "refused: talk-back is not allowed"

        await _switch(box, SoundSwitch.TALKBACK, True)
        await asyncio.sleep(0.5)
        assert talkback.played == 0, "allowed, but the button is not held"
        viewer.talk(True)
        await until_async(lambda: talkback.played > 50, timeout=5)
        viewer.talk(False)
        await until_async(lambda: not talkback.playing, timeout=5)  # the box took the message
        await asyncio.sleep(0.3)  # the block the speaker thread may be writing
        released = talkback.played
        await asyncio.sleep(1.0)
        assert talkback.played == released, "nothing played once the button is let go"
        # the speaker closed when the button was let go: the ALSA file sink holds that hold
        played = await asyncio.to_thread(alsa.read_bytes)
        pcm = np.frombuffer(played, dtype="<i2").reshape(-1, 2)[:, 0]
        assert len(pcm) >= 40 * 960, "the phone's voice reached the speaker"
        assert abs(_dominant_hz(pcm[RATE // 10 :]) - VOICE_HZ) < 5

        viewer.talk(True)
        await until_async(lambda: talkback.played > released + 10, timeout=5)
        await _command(box, Pause())  # stops at a pause
        await asyncio.sleep(0.3)
        paused = talkback.played
        viewer.talk(True)
        await asyncio.sleep(1.0)
        assert talkback.played == paused, "nothing played while paused"
        talks = [e["on"] for e in await _events(box, "talk")]
        assert talks == [True, False, True, False]
    finally:
        await viewer.close()


async def test_a_box_without_room_sound_answers_the_room_line_inactive(box_factory) -> None:
    """The viewer page always offers the room's line; a box with neither microphone nor speaker
    answers it inactive: it never receives on it (a phone sending anyway is not even read)."""
    box = box_factory(audio={"source": "synthetic"})
    viewer = AiortcViewer(box.viewer_url, room_line=True, voice=Voice())
    try:
        await _live(box, viewer)
        answer = viewer.pc.remoteDescription.sdp  # type: ignore[union-attr]
        audio_lines = answer.split("m=audio")[1:]
        assert len(audio_lines) == 2
        assert "a=sendonly" in audio_lines[0] and "a=inactive" in audio_lines[1]
        await asyncio.sleep(1.0)
        assert await viewer.audio_packets() > 20 and await viewer.room_packets() == 0
    finally:
        await viewer.close()


def chromium_offer_with(kind: str, copies: int) -> str:
    """Chromium's own offer (a fixture) with ``copies`` more of its ``kind`` m-line (new mids,
    in the bundle): an offer aiortc would answer, a transceiver for each."""
    offer = (Path(__file__).parents[1] / "fixtures" / "chromium-156-offer.sdp").read_text()
    head, *sections = offer.strip().split("\nm=")
    line = next(section for section in sections if section.startswith(kind))
    mids = [str(9 + n) for n in range(copies)]
    extra = [re.sub(r"a=mid:\S+", f"a=mid:{mid}", line) for mid in mids]
    head = head.replace("a=group:BUNDLE 0 1 2", " ".join(["a=group:BUNDLE 0 1 2", *mids]))
    return "\nm=".join([head, *sections, *extra]).replace("\n", "\r\n") + "\r\n"


def bare_peer() -> Any:
    """A viewer's peer with nothing behind it (no sound, no ICE servers): what an offer makes."""
    from appliance.encode.keyframes import KeyframePolicy
    from appliance.stream.fanout import PacketFanout
    from appliance.stream.peers import ViewerPeer

    return ViewerPeer(PacketFanout(KeyframePolicy()), None, (), lambda: None, lambda p: None)


async def test_the_viewer_page_s_own_offer_is_answered_line_for_line() -> None:
    """The page's offer: one video line, the scanner's and the room's audio lines, the data
    channel (Chromium's own offer given the room's line): within the limits, answered whole."""
    peer = bare_peer()
    try:
        answer = await peer.answer(chromium_offer_with("audio", 1))
        kinds = re.findall(r"^m=(\S+)", answer, re.MULTILINE)
        assert kinds == ["video", "audio", "application", "audio"]
    finally:
        await peer.close()


@pytest.mark.parametrize(
    ("kind", "copies"),
    [("audio", 2), ("video", 1)],  # a third sound line; a second picture (a decoder each)
)
async def test_an_offer_with_more_media_lines_than_the_box_serves_is_refused(
    kind: str, copies: int
) -> None:
    from appliance.errors import SignallingError

    peer = bare_peer()
    try:
        with pytest.raises(SignallingError, match="more media lines"):
            await peer.answer(chromium_offer_with(kind, copies))
    finally:
        await peer.close()
