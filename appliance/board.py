"""Which board this is, and what "auto" means on it.

Pi 4: HDMI through the TC358743 and the hardware encoder (which manages about 1080p30, so a
50/60 Hz input keeps every other frame). Pi 5: HDMI and the software encoder at 1080p30 (it has
no H.264 hardware). Anything else: the demo's synthetic source and the software encoder. The
board comes from ``<root>/proc/device-tree/model``; tests point ``root`` at a fake tree.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from pathlib import Path

from .config import Config, EncoderKind, SourceKind

logger = logging.getLogger(__name__)

#: The hardware encoder keeps up with this many frames a second (about 1080p30 on a Pi 4).
HARDWARE_MAX_FPS = 30.0


class Board(enum.Enum):
    PI4 = "pi4"
    PI5 = "pi5"
    OTHER = "other"


@dataclass(frozen=True)
class BoardDefaults:
    source: SourceKind
    encoder: EncoderKind
    width: int = 1920
    height: int = 1080
    fps: int = 30


DEFAULTS = {
    Board.PI4: BoardDefaults(SourceKind.HDMI, EncoderKind.HARDWARE),
    Board.PI5: BoardDefaults(SourceKind.HDMI, EncoderKind.SOFTWARE),
    Board.OTHER: BoardDefaults(SourceKind.SYNTHETIC, EncoderKind.SOFTWARE),
}


@dataclass(frozen=True)
class Resolved:
    """The config's "auto" settings made concrete for this board."""

    board: Board
    source: SourceKind
    encoder: EncoderKind
    #: Cap on the capture rate handed to the encoder (None: every frame).
    max_fps: float | None


def model(root: Path = Path("/")) -> str:
    """The device-tree model string ("Raspberry Pi 4 Model B Rev 1.5"), "" when there is none."""
    for rel in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        try:
            return (root / rel).read_bytes().rstrip(b"\x00").decode("ascii", "replace").strip()
        except OSError:
            continue
    return ""


def detect(root: Path = Path("/")) -> Board:
    text = model(root)
    if text.startswith(("Raspberry Pi 4", "Raspberry Pi Compute Module 4", "Raspberry Pi 400")):
        return Board.PI4
    if text.startswith(("Raspberry Pi 5", "Raspberry Pi Compute Module 5", "Raspberry Pi 500")):
        return Board.PI5
    return Board.OTHER


def resolve(config: Config, board: Board | None = None, root: Path = Path("/")) -> Resolved:
    """Resolve ``capture.source`` and ``encode.encoder`` = "auto" for ``board``.

    The hardware encoder is chosen for "auto" only when its device node exists under ``root``;
    an explicit "hardware" stays hardware (and fails clearly later if the node is missing).
    """
    board = detect(root) if board is None else board
    defaults = DEFAULTS[board]
    source = config.capture.source
    if source is SourceKind.AUTO:
        source = defaults.source
    encoder = config.encode.encoder
    if encoder is EncoderKind.AUTO:
        encoder = defaults.encoder
        if encoder is EncoderKind.HARDWARE and not hardware_encoder_present(config, root):
            logger.warning(
                "no hardware encoder at %s: using the software one", config.encode.device
            )
            encoder = EncoderKind.SOFTWARE
    hardware = encoder in (EncoderKind.HARDWARE, EncoderKind.HARDWARE_FAKE)
    max_fps = HARDWARE_MAX_FPS if hardware else None
    return Resolved(board, source, encoder, max_fps)


def hardware_encoder_present(config: Config, root: Path = Path("/")) -> bool:
    return under(root, config.encode.device).exists()


def under(root: Path, path: str) -> Path:
    """``path`` (absolute, as on the box) below ``root``."""
    return root / path.lstrip("/")
