"""The sound's encoder: Opus at 48 kHz, stereo, 20 ms frames, in-band FEC (PyAV's libopus).

Why not aiortc's own Opus path: its encoder is fixed at 96 kbit/s, ``voip``, without FEC, and
takes raw frames in the sender's executor; encoding here, in the sound thread, lets the box set
the bitrate, FEC and the expected loss, and hands aiortc finished packets as the picture does.

DTX: FFmpeg's libopus wrapper (this PyAV's FFmpeg 8) has no ``dtx`` option; :attr:`dtx` says
whether the encoder took it (it stays False here: silence is sent as small packets).
"""

from __future__ import annotations

import fractions

import av

from .base import FRAME_SAMPLES, RATE

TIME_BASE = fractions.Fraction(1, RATE)
#: The loss (percent) libopus plans its in-band FEC for.
EXPECTED_LOSS = 10


class OpusEncoder:
    """Resamples any frame to 48 kHz stereo s16 in 20 ms frames and encodes them."""

    def __init__(self, bitrate: int = 64_000, application: str = "audio") -> None:
        codec = av.CodecContext.create("libopus", "w")
        assert isinstance(codec, av.AudioCodecContext)
        codec.sample_rate = RATE
        codec.layout = "stereo"
        codec.format = "s16"
        codec.bit_rate = bitrate
        codec.time_base = TIME_BASE
        codec.options = {
            # "audio": music-like (the Doppler's sound); "voip": speech (the room microphone)
            "application": application,
            "frame_duration": "20",
            "fec": "1",
            "packet_loss": str(EXPECTED_LOSS),
            "dtx": "1",
        }
        codec.open()
        #: FFmpeg leaves the options it did not take in the dict
        self.dtx = "dtx" not in codec.options
        self.fec = "fec" not in codec.options
        self._codec = codec
        self._resampler = av.AudioResampler(
            format="s16", layout="stereo", rate=RATE, frame_size=FRAME_SAMPLES
        )
        self._pts: int | None = None
        self.bitrate = bitrate

    def restart_at(self, pts: int) -> None:
        """The next frame is at ``pts`` (1/48000 s): after a pause, time has moved on."""
        self._pts = pts

    def encode(self, frame: av.AudioFrame) -> list[av.Packet]:
        """Packets for ``frame`` (none while the resampler gathers 20 ms)."""
        packets: list[av.Packet] = []
        frame.pts = None
        for out in self._resampler.resample(frame):
            if self._pts is None:
                self._pts = 0
            out.pts = self._pts
            out.time_base = TIME_BASE
            self._pts += out.samples
            packets += self._codec.encode(out)
        for packet in packets:
            packet.time_base = TIME_BASE
        return packets

    def close(self) -> None:
        """Nothing to flush: a sound frame not sent is not missed."""
