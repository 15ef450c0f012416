"""A silence gate: Opus DTX done outside the codec.

FFmpeg's libopus wrapper (this PyAV's FFmpeg 8) has no ``dtx`` option, so the gate does what
libopus's DTX does: after :data:`HANGOVER_FRAMES` frames of silence in a row, only one frame in
:data:`KEEPALIVE_FRAMES` is sent (every 400 ms), as a DTX frame (the TOC byte alone, 1 byte:
:func:`~appliance.sound.opus.dtx_frame`, what libopus's DTX sends), and the first frame with
sound in it is sent at once. Every frame is still encoded (the encoder's state stays
continuous); only the sending stops. The RTP timestamps of what is sent keep their gaps, and
WebRTC's jitter buffer takes packets of 2 bytes or less as DTX: it plays comfort noise instead
of concealing a loss, as for any Opus DTX sender. Silence is a 20 ms frame's RMS below
:data:`THRESHOLD_DBFS`: digital silence from HDMI, the noise floor of a quiet line-in; the
heartbeat's pause between beats is far shorter than the hangover, so the Doppler sound is never
cut.
"""

from __future__ import annotations

import math

import numpy as np

#: A 20 ms frame whose RMS is below this (dB relative to full scale) is silence.
THRESHOLD_DBFS = -60.0
#: Silent frames sent as they are before the gate closes (200 ms: libopus waits as long).
HANGOVER_FRAMES = 10
#: While closed, one frame in this many is sent (20 ms x 20 = 400 ms, libopus's DTX interval).
KEEPALIVE_FRAMES = 20


def level_dbfs(samples: np.ndarray) -> float:
    """The RMS level of int16 samples in dB relative to full scale (-inf for digital zero)."""
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return 20 * math.log10(rms / 32768) if rms > 0 else -math.inf


class SilenceGate:
    """Says, frame by frame, whether an encoded 20 ms frame is sent."""

    def __init__(self, threshold_dbfs: float = THRESHOLD_DBFS) -> None:
        self.threshold_dbfs = threshold_dbfs
        self._silent_run = 0  # silent frames in a row
        self.sent = 0
        self.held = 0

    @property
    def closed(self) -> bool:
        return self._silent_run > HANGOVER_FRAMES

    def send(self, samples: np.ndarray) -> bool:
        """Whether the frame holding ``samples`` (int16) goes out."""
        if level_dbfs(samples) >= self.threshold_dbfs:
            self._silent_run = 0
        else:
            self._silent_run += 1
        into = self._silent_run - HANGOVER_FRAMES
        go = into <= 0 or into % KEEPALIVE_FRAMES == 0
        if go:
            self.sent += 1
        else:
            self.held += 1
        return go
