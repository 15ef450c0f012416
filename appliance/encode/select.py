"""Pick the encoder for a resolved config: the Pi 4's hardware encoder or libx264."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..board import Board, Resolved, resolve, under
from ..config import Config, EncoderKind
from ..errors import DeviceError
from .base import Encoder
from .hardware import MAX_WIDTH

logger = logging.getLogger(__name__)

EncoderFactory = Callable[[int, int, float], Encoder]


def make_encoder(
    config: Config,
    width: int,
    height: int,
    fps: float,
    resolved: Resolved | None = None,
    root: Path = Path("/"),
) -> Encoder:
    """An encoder for ``width`` x ``height`` at ``fps`` as the config (and the board) say.

    ``encode.encoder = "hardware"`` with no device raises :class:`DeviceError`; "auto" falls
    back to software when the hardware encoder is missing, fails to open, or the picture is
    wider than it can take.
    """
    enc = config.encode
    resolved = resolved or resolve(config, root=root)
    kind = resolved.encoder
    if kind is EncoderKind.HARDWARE:
        device = under(root, enc.device)
        if not device.exists():
            raise DeviceError(
                f"config key 'encode.encoder' = 'hardware' but {enc.device} does not exist: "
                "use 'software' or 'auto' on a board without the Pi 4's encoder"
            )
        if width <= MAX_WIDTH:
            from .hardware import HardwareEncoder

            try:
                return HardwareEncoder(
                    width, height, fps, enc.bitrate, enc.keyframe_interval, device_path=str(device)
                )
            except DeviceError:
                if config.encode.encoder is EncoderKind.HARDWARE:
                    raise
                logger.warning("the hardware encoder failed to start: using the software one")
        else:
            logger.warning("%dx%d is too wide for the hardware encoder: software", width, height)
    from .software import SoftwareEncoder

    threads = enc.threads or (4 if resolved.board is Board.PI5 else 1)
    return SoftwareEncoder(width, height, fps, enc.bitrate, enc.keyframe_interval, threads)


def make_encoder_factory(config: Config, root: Path = Path("/")) -> EncoderFactory:
    """``make_encoder`` with the board resolved once, as the media pipeline wants it."""
    resolved = resolve(config, root=root)

    def make(width: int, height: int, fps: float) -> Encoder:
        return make_encoder(config, width, height, fps, resolved, root)

    return make
