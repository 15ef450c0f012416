"""A stand-in for the media port (:class:`appliance.stream.ports.MediaControl`) that records
what it is asked; the room's speaker as a file; sound clips written for the ``file`` source."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import av
import numpy as np

from appliance.encode.keyframes import KeyframeReason
from appliance.hearing import Hearing
from appliance.stream.ladder import LadderStep
from appliance.stream.pipeline import Mode
from appliance.stream.sound import SoundFanout
from appliance.stream.talkback import TalkBack
from appliance.types import Rect


class RecordingMedia:
    """Implements MediaControl; keeps every request, encodes nothing."""

    def __init__(self, sound: SoundFanout | None = None) -> None:
        self.sound_fanout = sound
        self.room_fanout: SoundFanout | None = None
        self.talkback: TalkBack | None = None
        self.hearings: list[Hearing] = []
        self.keyframes: list[KeyframeReason] = []
        self.rates: list[tuple[int, LadderStep]] = []
        self.counts: list[int] = []
        self.modes: list[Mode] = []
        self.rects: list[Rect] = []

    def keyframe(self, reason: KeyframeReason) -> None:
        self.keyframes.append(reason)

    def set_rate(self, bitrate: int, step: LadderStep) -> None:
        self.rates.append((bitrate, step))

    def set_viewers(self, count: int) -> None:
        self.counts.append(count)

    def set_mode(self, mode: Mode) -> None:
        self.modes.append(mode)

    def set_hearing(self, hearing: Hearing) -> None:
        self.hearings.append(hearing)

    def preview(self, timeout: float = 2.0) -> np.ndarray | None:
        return None

    def mask(self) -> list[Rect]:
        return list(self.rects)

    def set_mask(self, rects: list[Rect]) -> list[Rect]:
        self.rects = list(rects)
        return list(rects)


def room_speaker(tmp_path: Path, monkeypatch: Any) -> Path:
    """The ALSA PCM ``roomspk`` (the box's ``room.speaker`` in the tests): a ``file`` plugin over
    ``null`` that writes what is played into ``played.raw`` in the test's temporary directory, a
    test-only sink. Returns that file."""
    played = tmp_path / "played.raw"
    conf = tmp_path / "asoundrc"
    conf.write_text(
        f'pcm.roomspk {{\n  type file\n  slave.pcm {{ type null }}\n  file "{played}"\n'
        '  format "raw"\n}\n'
    )
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    return played


def write_clip(path: Path, samples: Any, codec: str = "pcm_s16le", rate: int = 48_000) -> Path:
    """``samples`` (int16; one column per channel, or one dimension for mono) as a sound file,
    in 20 ms frames (the only size Opus takes; a tail shorter than a frame is left out)."""
    block = rate // 50
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    layout = "mono" if channels == 1 else "stereo"
    columns = samples.reshape(len(samples), channels)
    with av.open(str(path), "w") as out:
        stream = cast(av.AudioStream, out.add_stream(codec, rate=rate, layout=layout))
        for start in range(0, len(columns) - block + 1, block):
            interleaved = np.ascontiguousarray(columns[start : start + block]).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
