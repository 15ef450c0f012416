"""The encoders by config string (``encode.encoder``): the Pi 4's hardware encoder, its fake, or
libx264. A registry the composition root asks; each backend builds its own encoder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..board import Board, Resolved, resolve, under
from ..config import Config, EncoderKind
from ..errors import ConfigError, DeviceError
from .base import Encoder, EncoderFactory
from .hardware import MAX_WIDTH

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderWant:
    """What a backend builds its encoder from: the config, the board, the seams, the picture."""

    config: Config
    resolved: Resolved
    #: The M2M encoder's device, given by a test or the demo (None: the real one).
    device: Any
    root: Path
    width: int
    height: int
    fps: float


EncoderBuilder = Callable[[EncoderWant], Encoder]
_BUILDERS: dict[EncoderKind, EncoderBuilder] = {}


def register(kind: EncoderKind) -> Callable[[EncoderBuilder], EncoderBuilder]:
    """Make ``builder`` the encoder for ``encode.encoder = kind.value`` (kvmd-style plugins)."""

    def add(builder: EncoderBuilder) -> EncoderBuilder:
        _BUILDERS[kind] = builder
        return builder

    return add


def make_encoder(
    config: Config,
    width: int,
    height: int,
    fps: float,
    resolved: Resolved | None = None,
    root: Path = Path("/"),
    device: Any = None,
) -> Encoder:
    """An encoder for ``width`` x ``height`` at ``fps`` as the config (and the board) say.

    ``encode.encoder = "hardware"`` with no device raises :class:`DeviceError`; "auto" falls
    back to software when the hardware encoder is missing, fails to open, or the picture is
    wider than it can take. ``device`` stands in for the M2M device (tests).
    """
    resolved = resolved or resolve(config, root=root)
    try:
        builder = _BUILDERS[resolved.encoder]
    except KeyError:
        raise ConfigError(
            f"config key 'encode.encoder' = {resolved.encoder.value!r} has no backend here"
        ) from None
    return builder(EncoderWant(config, resolved, device, root, width, height, fps))


def make_encoder_factory(
    config: Config, resolved: Resolved | None = None, *, device: Any = None, root: Path = Path("/")
) -> EncoderFactory:
    """``make_encoder`` with the board resolved once, as the media pipeline wants it."""
    resolved = resolved or resolve(config, root=root)

    def make(width: int, height: int, fps: float) -> Encoder:
        return make_encoder(config, width, height, fps, resolved, root, device)

    return make


def _hardware_or_fallback(want: EncoderWant, device: Any) -> Encoder:
    enc = want.config.encode
    if want.width <= MAX_WIDTH:
        from .hardware import HardwareEncoder

        try:
            return HardwareEncoder(
                want.width, want.height, want.fps, enc.bitrate, enc.keyframe_interval, device=device
            )
        except DeviceError:
            if enc.encoder is not EncoderKind.AUTO:
                raise
            logger.warning("the hardware encoder failed to start: using the software one")
    else:
        logger.warning(
            "%dx%d is too wide for the hardware encoder: software", want.width, want.height
        )
    return _software(want)


@register(EncoderKind.HARDWARE)
def _hardware(want: EncoderWant) -> Encoder:
    device = want.device
    if device is None:
        from .hardware import V4L2M2MDevice

        path = under(want.root, want.config.encode.device)
        if not path.exists():
            raise DeviceError(
                f"config key 'encode.encoder' = 'hardware' but {want.config.encode.device} does "
                "not exist: use 'software' or 'auto' on a board without the Pi 4's encoder"
            )
        device = V4L2M2MDevice(str(path))
    return _hardware_or_fallback(want, device)


@register(EncoderKind.HARDWARE_FAKE)
def _hardware_fake(want: EncoderWant) -> Encoder:
    """The M2M path over a fake encoder device (demo, bench, image smoke)."""
    device = want.device
    if device is None:
        from .fake_m2m import FakeM2M

        device = FakeM2M()
    return _hardware_or_fallback(want, device)


@register(EncoderKind.SOFTWARE)
def _software(want: EncoderWant) -> Encoder:
    from .software import SoftwareEncoder

    enc = want.config.encode
    threads = enc.threads or (4 if want.resolved.board is Board.PI5 else 1)
    return SoftwareEncoder(
        want.width, want.height, want.fps, enc.bitrate, enc.keyframe_interval, threads
    )
