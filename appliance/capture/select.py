"""Build the frame source a resolved config asks for (called by the composition root)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..board import Board, Resolved, under
from ..config import Config, SourceKind
from ..errors import ConfigError
from . import edid as edid_mod
from .base import SignalState, Source


def load_edid(config: Config, board: Board) -> bytes:
    """The EDID file named by ``capture.edid``, or the built-in one for the board."""
    path = config.capture.edid
    if not path:
        if board is Board.PI5:
            return edid_mod.build(edid_mod.PI5_MODES, "RGB888")
        return edid_mod.build(edid_mod.PI4_MODES, "UYVY")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"config key 'capture.edid' = {path!r} cannot be read: {exc}") from None
    if not edid_mod.valid(data):
        raise ConfigError(
            f"config key 'capture.edid' = {path!r} is not an EDID (128-byte blocks with valid "
            "checksums): make one with hw/edid/make_edid.py"
        )
    return data


def make_source(
    config: Config,
    resolved: Resolved,
    root: Path = Path("/"),
    on_signal: Callable[[SignalState], None] | None = None,
) -> Source:
    """The source ``resolved.source`` names; ``on_signal`` hears HDMI signal changes."""
    cap = config.capture
    kind = resolved.source
    if kind is SourceKind.HDMI:
        from .bridge import V4L2Bridge, find_bridge
        from .hdmi import HdmiSource

        bridge = V4L2Bridge(
            cap.device or "/dev/video0",
            media_ctl="media-ctl" if root == Path("/") else str(under(root, "usr/bin/media-ctl")),
            discover=lambda: find_bridge(root, cap.device, cap.subdevice),
        )
        return HdmiSource(
            bridge,
            load_edid(config, resolved.board),
            cap.width,
            cap.height,
            cap.fps,
            max_fps=resolved.max_fps,
            on_signal=on_signal,
        )
    if kind is SourceKind.CAMERA:
        from .camera import CameraSource

        return CameraSource(cap.width, cap.height, cap.fps)
    if kind is SourceKind.FILE:
        from .file import FileSource

        if not cap.file:
            raise ConfigError("config key 'capture.file' must name a clip when source = 'file'")
        return FileSource(cap.file, cap.width, cap.height, cap.fps)
    from .synthetic import SyntheticSource

    return SyntheticSource(cap.width, cap.height, cap.fps)
