"""The ``file`` sound source closed from the stopping thread while its own thread decodes (what
the sound pipeline's stop does): the read finishes or returns nothing, never a crash. FFmpeg
freed the container under a decode before the source serialised the two (a segfault, seen in
CI at the end of a talk-back test)."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np

from appliance.sound.file import FileSound
from tests.support.media import write_clip

RATE = 48_000


def clip(path: Path) -> Path:
    """Ten seconds of noise in Opus (decoding it takes real work) in an Ogg file."""
    noise = (np.random.default_rng(1).standard_normal(RATE * 10) * 8_000).astype(np.int16)
    return write_clip(path, noise, codec="libopus", rate=RATE)


def test_closing_the_file_source_while_its_thread_decodes_never_crashes(tmp_path: Path) -> None:
    path = str(clip(tmp_path / "noise.ogg"))
    rng = random.Random(7)
    decoded = 0
    for _ in range(60):
        source = FileSound(path)
        source.open()
        source._start -= 3600  # an hour behind the clock: it decodes as fast as it can
        count = [0]

        def read(s: FileSound = source, n: list[int] = count) -> None:
            while s.read(0.5) is not None:
                n[0] += 1

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(rng.uniform(0.0, 0.02))
        source.close()
        reader.join(5)
        assert not reader.is_alive(), "the read did not return after close"
        decoded += count[0]
    assert decoded > 100, "the reads were decoding when the source closed"
