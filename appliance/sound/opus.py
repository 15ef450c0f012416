"""The sound's encoder: Opus at 48 kHz, stereo, 20 ms frames, in-band FEC (PyAV's libopus).

Why not aiortc's own Opus path: its encoder is fixed at 96 kbit/s, ``voip``, without FEC, and
takes raw frames in the sender's executor; encoding here, in the sound thread, lets the box set
the bitrate, FEC and the expected loss, and hands aiortc finished packets as the picture does.

DTX: FFmpeg's libopus wrapper (this PyAV's FFmpeg 8) has no ``dtx`` option, so a silence gate
(:mod:`appliance.sound.dtx`) holds back silent frames after the encoder (:attr:`dtx`: whether
the gate is on). The bitrate follows the rate controller (:meth:`set_bitrate`): the wrapper
takes it only when the codec opens, so a new bitrate opens a new encoder at the next frame (the
decoder takes a new encoder's packets as they come).
"""

from __future__ import annotations

import fractions

import av

from .base import FRAME_SAMPLES, RATE
from .dtx import SilenceGate

TIME_BASE = fractions.Fraction(1, RATE)
#: The loss (percent) libopus plans its in-band FEC for.
EXPECTED_LOSS = 10


class OpusEncoder:
    """Resamples any frame to 48 kHz stereo s16 in 20 ms frames and encodes them."""

    def __init__(self, bitrate: int = 64_000, dtx: bool = True, application: str = "audio") -> None:
        self._application = application
        self._codec = self._open(bitrate, application)
        self.fec = True
        self._gate = SilenceGate() if dtx else None
        self._resampler = av.AudioResampler(
            format="s16", layout="stereo", rate=RATE, frame_size=FRAME_SAMPLES
        )
        self._pts: int | None = None
        #: samples (at 48 kHz) handed to the resampler and taken out of it
        self._fed = 0.0
        self._taken = 0
        self.bitrate = bitrate
        self._wanted = bitrate  # set from the loop, taken at the next frame

    @property
    def dtx(self) -> bool:
        return self._gate is not None

    @property
    def gate(self) -> SilenceGate | None:
        return self._gate

    @property
    def target_bitrate(self) -> int:
        """The bitrate last asked for (:attr:`bitrate` takes it at the next frame)."""
        return self._wanted

    def set_bitrate(self, bitrate: int) -> None:
        """The rate controller's share for the sound (any thread; applied at the next frame)."""
        self._wanted = bitrate

    @staticmethod
    def _open(bitrate: int, application: str) -> av.AudioCodecContext:
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
        }
        codec.open()
        return codec

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
        if self._wanted != self.bitrate:
            self.bitrate = self._wanted
            self._codec = self._open(self.bitrate, self._application)
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
            encoded = self._codec.encode(out)
            if self._gate is None:
                packets += encoded
            elif self._gate.send(out.to_ndarray()):
                packets += [dtx_frame(p) for p in encoded] if self._gate.closed else encoded
        for packet in packets:
            packet.time_base = TIME_BASE
            if first is not None:  # pts already counts the codec's pre-skip
                packet.opaque = first + ((packet.pts or 0) - start) / RATE
        return packets

    def close(self) -> None:
        """Nothing to flush: a sound frame not sent is not missed."""


def dtx_frame(packet: av.Packet) -> av.Packet:
    """``packet`` as Opus DTX sends silence: its TOC byte alone, one frame of length 0 (RFC 6716,
    3.2.1), which a decoder plays as silence and WebRTC's jitter buffer takes as DTX (comfort
    noise), not as a loss to conceal."""
    toc = bytes(packet)[:1] or b"\x78"
    frame = av.Packet(bytes([toc[0] & 0xFC]))  # code 0: one frame, here empty
    frame.pts = packet.pts
    return frame
