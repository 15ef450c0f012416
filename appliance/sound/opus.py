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

    def __init__(self, bitrate: int = 64_000) -> None:
        codec = av.CodecContext.create("libopus", "w")
        assert isinstance(codec, av.AudioCodecContext)
        codec.sample_rate = RATE
        codec.layout = "stereo"
        codec.format = "s16"
        codec.bit_rate = bitrate
        codec.time_base = TIME_BASE
        codec.options = {
            "application": "audio",  # music-like (the Doppler's sound), not speech-tuned
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
        #: samples (at 48 kHz) handed to the resampler and taken out of it
        self._fed = 0.0
        self._taken = 0
        self.bitrate = bitrate

    def restart_at(self, pts: int) -> None:
        """The next frame is at ``pts`` (1/48000 s): after a pause, time has moved on."""
        self._pts = pts

    def encode(self, frame: av.AudioFrame, captured_at: float | None = None) -> list[av.Packet]:
        """Packets for ``frame`` (none while the resampler gathers 20 ms).

        With ``captured_at`` (the wall-clock time of the frame's first sample), every packet
        carries the capture instant of its first sample (``packet.opaque``, read by
        :mod:`appliance.stream.lipsync`); the samples still in the resampler were captured
        just before it."""
        packets: list[av.Packet] = []
        frame.pts = None
        if self._pts is None:
            self._pts = 0
        start = self._pts
        # the capture instant of output sample ``start`` (the oldest sample still buffered)
        first = None if captured_at is None else captured_at - (self._fed - self._taken) / RATE
        self._fed += frame.samples * RATE / (frame.sample_rate or RATE)
        for out in self._resampler.resample(frame):
            out.pts = self._pts
            out.time_base = TIME_BASE
            self._pts += out.samples
            self._taken += out.samples
            packets += self._codec.encode(out)
        for packet in packets:
            packet.time_base = TIME_BASE
            if first is not None:  # pts already counts the codec's pre-skip
                packet.opaque = first + ((packet.pts or 0) - start) / RATE
        return packets

    def close(self) -> None:
        """Nothing to flush: a sound frame not sent is not missed."""
