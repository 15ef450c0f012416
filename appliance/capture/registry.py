"""The frame sources by config string (``capture.source``): a registry the composition root
asks; each backend builds its own source from the config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class SourceWant:
    """What a backend builds its source from: the config, the board, and the seams."""

    config: Config
    resolved: Resolved
    #: The TC358743's device, given by a test or the demo (None: the real one).
    bridge: Any = None
    root: Path = Path("/")
    on_signal: Callable[[SignalState], None] | None = None


SourceBuilder = Callable[[SourceWant], Source]
_BUILDERS: dict[SourceKind, SourceBuilder] = {}


def register(kind: SourceKind) -> Callable[[SourceBuilder], SourceBuilder]:
    """Make ``builder`` the source for ``capture.source = kind.value`` (kvmd-style plugins)."""

    def add(builder: SourceBuilder) -> SourceBuilder:
        _BUILDERS[kind] = builder
        return builder

    return add


def make_source(
    config: Config,
    resolved: Resolved,
    *,
    bridge: Any = None,
    root: Path = Path("/"),
    on_signal: Callable[[SignalState], None] | None = None,
) -> Source:
    """The source ``resolved.source`` names; ``bridge`` stands in for the TC358743's device
    (tests); ``on_signal`` hears HDMI signal changes."""
    try:
        builder = _BUILDERS[resolved.source]
    except KeyError:
        raise ConfigError(
            f"config key 'capture.source' = {resolved.source.value!r} has no backend here"
        ) from None
    return builder(SourceWant(config, resolved, bridge, root, on_signal))


def _hdmi(want: SourceWant, bridge: Any) -> Source:
    from .hdmi import HdmiSource

    cap = want.config.capture
    return HdmiSource(
        bridge,
        load_edid(want.config, want.resolved.board),
        cap.width,
        cap.height,
        cap.fps,
        max_fps=want.resolved.max_fps,
        on_signal=want.on_signal,
    )


@register(SourceKind.HDMI)
def _real_hdmi(want: SourceWant) -> Source:
    bridge = want.bridge
    if bridge is None:
        from .bridge import V4L2Bridge, find_bridge

        cap, root = want.config.capture, want.root
        bridge = V4L2Bridge(
            cap.device or "/dev/video0",
            media_ctl="media-ctl" if root == Path("/") else str(under(root, "usr/bin/media-ctl")),
            discover=lambda: find_bridge(root, cap.device, cap.subdevice),
        )
    return _hdmi(want, bridge)


@register(SourceKind.HDMI_FAKE)
def _fake_hdmi(want: SourceWant) -> Source:
    """The HDMI path over a fake TC358743 with a scanner plugged in (demo, bench, image smoke)."""
    bridge = want.bridge
    if bridge is None:
        from .fake_v4l2 import FakeTC358743

        bridge = FakeTC358743("pi5" if want.resolved.board is Board.PI5 else "pi4", "1080p30")
    return _hdmi(want, bridge)


@register(SourceKind.CAMERA)
def _camera(want: SourceWant) -> Source:
    from .camera import CameraSource

    cap = want.config.capture
    return CameraSource(cap.width, cap.height, cap.fps)


@register(SourceKind.FILE)
def _file(want: SourceWant) -> Source:
    from .file import FileSource

    cap = want.config.capture
    if not cap.file:
        raise ConfigError("config key 'capture.file' must name a clip when source = 'file'")
    return FileSource(cap.file, cap.width, cap.height, cap.fps)


@register(SourceKind.SYNTHETIC)
def _synthetic(want: SourceWant) -> Source:
    from .synthetic import SyntheticSource

    cap = want.config.capture
    try:
        return SyntheticSource(cap.width, cap.height, cap.fps)
    except ValueError as exc:  # the phantom's time strip needs the width
        raise ConfigError(
            f"config keys 'capture.width' and 'capture.height' = {cap.width}x{cap.height} are too "
            f"small for the synthetic source: {exc}; use at least 768x120",
            key="capture.width",
        ) from None
