"""bench.netbox's box with its speaker timed, for bench.talkback.

Every block the talk-back thread hands to the speaker (appliance.sound.speaker.AlsaSpeaker, the
real ALSA path: the benchmark's PCM is ALSA's ``file`` plugin over ``null``, writing nowhere) is
looked at as it goes: the first sample above ``--level`` in a block, after a quiet of at least
``--quiet`` seconds, is a click's onset, and its instant on the wall clock (when its block was
handed to the PCM, plus the sample's place in the block) is appended to ``--instants`` as a JSON
line. Only instants and levels are written, never a sample. Everything after ``--`` goes to
bench.netbox (its ``--media`` and so on, then ``-- run --demo ...``).

    python -m bench.talkbox --instants out.jsonl -- --media 127.0.0.1 -- run --demo --port 0 ...
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO, Any

import numpy as np


def level_of(frame: Any) -> np.ndarray:
    """The block's samples as one 0..1 level per instant (the loudest channel)."""
    samples = frame.to_ndarray()
    scale = (
        32768.0 if samples.dtype == np.int16 else 2147483648.0 if samples.dtype == np.int32 else 1.0
    )
    channels = len(frame.layout.channels)
    if samples.shape[0] == 1 and channels > 1:  # packed: interleaved
        samples = samples.reshape(-1, channels).T
    return np.abs(samples.astype(np.float64)).max(axis=0) / scale


def instrument(path: str, level: float, quiet: float) -> None:
    """Time every click handed to the speaker; ``path`` gets one JSON line per click."""
    from appliance.sound.speaker import AlsaSpeaker

    out: IO[str] = open(path, "a", buffering=1)  # noqa: SIM115 - for the process's life
    write = AlsaSpeaker.write
    last = [-1e9]

    def timed(self: AlsaSpeaker, frame: Any) -> None:
        handed = time.time()
        levels = level_of(frame)
        rate = float(frame.sample_rate or 48_000)
        write(self, frame)
        loud = np.flatnonzero(levels > level)
        if len(loud):
            at = handed + int(loud[0]) / rate
            if at - last[0] > quiet:
                out.write(json.dumps({"t": at, "level": float(levels.max())}) + "\n")
            last[0] = handed + int(loud[-1]) / rate

    AlsaSpeaker.write = timed  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.talkbox")
    parser.add_argument("--instants", required=True, help="the clicks' instants (JSON lines)")
    parser.add_argument("--level", type=float, default=0.1)
    parser.add_argument("--quiet", type=float, default=0.3)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    instrument(args.instants, args.level, args.quiet)
    from bench import netbox

    rest = list(args.rest)
    if rest and rest[0] == "--":
        rest = rest[1:]
    return netbox.main(rest)


if __name__ == "__main__":
    sys.exit(main())
