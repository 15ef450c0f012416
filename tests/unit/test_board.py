"""Board detection from a fake device tree, and what "auto" resolves to on each board."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import board
from appliance import config as config_mod
from appliance.board import Board
from appliance.config import EncoderKind, SourceKind


def fake_root(tmp_path: Path, model: str | None, encoder: bool = False) -> Path:
    if model is not None:
        (tmp_path / "proc/device-tree").mkdir(parents=True)
        (tmp_path / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    if encoder:
        (tmp_path / "dev").mkdir(exist_ok=True)
        (tmp_path / "dev/video11").write_text("")
    return tmp_path


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("Raspberry Pi 4 Model B Rev 1.5", Board.PI4),
        ("Raspberry Pi Compute Module 4 Rev 1.1", Board.PI4),
        ("Raspberry Pi 5 Model B Rev 1.0", Board.PI5),
        ("Raspberry Pi 3 Model B Plus Rev 1.3", Board.OTHER),
        ("", Board.OTHER),
        (None, Board.OTHER),
    ],
)
def test_detect(tmp_path: Path, model: str | None, expected: Board) -> None:
    assert board.detect(fake_root(tmp_path, model)) is expected


def test_model_falls_back_to_sysfs(tmp_path: Path) -> None:
    p = tmp_path / "sys/firmware/devicetree/base"
    p.mkdir(parents=True)
    (p / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert board.model(tmp_path) == "Raspberry Pi 5 Model B Rev 1.0"
    assert board.detect(tmp_path) is Board.PI5


AUTO = config_mod.load_dict({})


def test_pi4_auto_is_hdmi_and_hardware_at_30_fps(tmp_path: Path) -> None:
    r = board.resolve(
        AUTO, root=fake_root(tmp_path, "Raspberry Pi 4 Model B Rev 1.4", encoder=True)
    )
    assert (r.board, r.source, r.encoder, r.max_fps) == (
        Board.PI4,
        SourceKind.HDMI,
        EncoderKind.HARDWARE,
        30.0,
    )


def test_pi4_without_the_encoder_node_falls_back_to_software(tmp_path: Path) -> None:
    r = board.resolve(AUTO, root=fake_root(tmp_path, "Raspberry Pi 4 Model B Rev 1.4"))
    assert (r.source, r.encoder, r.max_fps) == (SourceKind.HDMI, EncoderKind.SOFTWARE, None)


def test_pi5_auto_is_hdmi_and_software_1080p30(tmp_path: Path) -> None:
    root = fake_root(tmp_path, "Raspberry Pi 5 Model B Rev 1.0", encoder=True)
    r = board.resolve(AUTO, root=root)
    assert (r.source, r.encoder, r.max_fps) == (SourceKind.HDMI, EncoderKind.SOFTWARE, None)
    d = board.DEFAULTS[Board.PI5]
    assert (d.width, d.height, d.fps) == (1920, 1080, 30)


def test_elsewhere_auto_is_the_demo(tmp_path: Path) -> None:
    r = board.resolve(AUTO, root=fake_root(tmp_path, None))
    assert (r.source, r.encoder) == (SourceKind.SYNTHETIC, EncoderKind.SOFTWARE)


def test_config_overrides_the_board(tmp_path: Path) -> None:
    root = fake_root(tmp_path, "Raspberry Pi 4 Model B Rev 1.4", encoder=True)
    cfg = config_mod.load_dict({"capture": {"source": "camera"}, "encode": {"encoder": "software"}})
    r = board.resolve(cfg, root=root)
    assert (r.source, r.encoder, r.max_fps) == (SourceKind.CAMERA, EncoderKind.SOFTWARE, None)
    # explicit hardware stays hardware even where the node is missing (make_encoder fails clearly)
    cfg = config_mod.load_dict({"encode": {"encoder": "hardware"}})
    assert board.resolve(cfg, Board.OTHER, tmp_path / "empty").encoder is EncoderKind.HARDWARE
    # the encoder node path comes from the config
    cfg = config_mod.load_dict({"encode": {"device": "/dev/video31"}})
    assert board.resolve(cfg, root=root).encoder is EncoderKind.SOFTWARE
