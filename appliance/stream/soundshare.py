"""The sound's share of the viewer's link: the sound keeps its bitrate first.

The rate controller decides one bitrate for the encoders (the slowest viewer's estimate less
the packet overhead). The sound is taken out first, at its configured bitrate (``audio.
bitrate``), and the picture gets the rest: as the link narrows the picture gives way (its
quantizer, then its frame rate and size, :mod:`~appliance.stream.ladder`) while the sound stays
whole. Only under a very low estimate (below :data:`SQUEEZE_BELOW_BPS`, the rate controller's
default floor: the picture is already at its smallest) does the sound step down too, to
:data:`SQUEEZED_BPS`: Opus stereo at 16 kbit/s still carries a voice and the Doppler's rhythm.
It comes back above :data:`RESTORE_ABOVE_BPS` (hysteresis: each change opens a new encoder).
Pure: the media port (:class:`~appliance.stream.media.Media`) applies what it decides.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Below this many bit/s for the encoders, the sound steps down (the controller's default floor,
#: ``stream.min_bitrate`` 300 kbit/s, less the overhead, is below it).
SQUEEZE_BELOW_BPS = 300_000
#: ... and comes back above this.
RESTORE_ABOVE_BPS = 360_000
#: The sound's bitrate under a very low estimate.
SQUEEZED_BPS = 16_000


@dataclass(frozen=True)
class Share:
    picture_bps: int
    sound_bps: int


class SoundShare:
    """Splits the encoders' bitrate between the sound (first) and the picture (the rest)."""

    def __init__(self, full_bps: int) -> None:
        self.full_bps = full_bps
        self.squeezed = False

    def split(self, encoder_bps: int) -> Share:
        if encoder_bps < SQUEEZE_BELOW_BPS:
            self.squeezed = True
        elif encoder_bps > RESTORE_ABOVE_BPS:
            self.squeezed = False
        sound = min(self.full_bps, SQUEEZED_BPS) if self.squeezed else self.full_bps
        return Share(max(encoder_bps - sound, 0), sound)
