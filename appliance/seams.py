"""What stands at the hardware boundary, handed to :meth:`appliance.box.Box.build`.

:class:`Seams` is the composition root's single injection point (gpiozero's ``pin_factory``
idea): tests, the demo and the benchmarks hand fakes there, and the code above runs unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .capture.base import Source
from .capture.bridge import Bridge
from .encode.hardware import M2MDevice
from .panel import PinFactory
from .sound.base import SoundSource


@dataclass(frozen=True)
class Seams:
    """What stands at the hardware boundary; None means the real thing the config names.

    :param source: a frame source to use instead of the config's ``capture.source``.
    :param pin_factory: gpiozero's pin factory (tests: ``MockFactory()``).
    :param clock_ok: whether sessions may open (default: the system clock is synchronised).
    :param bridge: the TC358743's V4L2 device for ``capture.source = "hdmi"`` (a FakeTC358743);
        its audio controls also serve ``audio.source = "hdmi"``.
    :param encoder_device: the Pi 4's M2M encoder device for ``encode.encoder = "hardware"``
        (a FakeM2M).
    :param root: where /dev, /proc and /sys are looked for (tests: a fake tree).
    :param microphone: makes the room microphone's source instead of ALSA's ``room.microphone``
        PCM (tests: a clip's sound); used only when ``room.microphone`` is set.
    """

    source: Source | None = None
    pin_factory: PinFactory | None = None
    clock_ok: Callable[[], bool] | None = None
    bridge: Bridge | None = None
    encoder_device: M2MDevice | None = None
    root: Path = Path("/")
    microphone: Callable[[], SoundSource] | None = None
