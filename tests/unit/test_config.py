"""The config: defaults run the demo; every bad key or value names itself and the fix."""

from __future__ import annotations

import dataclasses

import pytest

from appliance import config
from appliance.config import ConfigError, EncoderKind, SourceKind


def test_no_file_gives_working_defaults() -> None:
    cfg = config.load(None)
    assert cfg.capture.width == 1920 and cfg.capture.height == 1080 and cfg.capture.fps == 30
    assert cfg.encode.bitrate == 4_000_000
    assert cfg.stream.ice_servers == ()
    assert cfg.web.host == "127.0.0.1"


def test_config_is_frozen() -> None:
    cfg = config.load(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.capture.fps = 60  # type: ignore[misc]


def test_a_full_file_is_read(tmp_path) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text(
        """
[box]
name = "salle-2"
[capture]
source = "hdmi"
fps = 25
[encode]
encoder = "hardware"
bitrate = 3000000
keyframe_interval = 1
[[stream.ice_servers]]
urls = ["turn:relay.example:3478"]
username = "u"
credential = "c"
"""
    )
    cfg = config.load(path)
    assert cfg.box.name == "salle-2"
    assert cfg.capture.source is SourceKind.HDMI and cfg.capture.fps == 25
    assert cfg.encode.encoder is EncoderKind.HARDWARE
    assert cfg.encode.keyframe_interval == 1.0 and isinstance(cfg.encode.keyframe_interval, float)
    assert cfg.stream.ice_servers[0].urls == ("turn:relay.example:3478",)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[capture]\nfps = 0\n",
            r"'capture.fps' has invalid value 0: expected a value from 1 to 60",
        ),
        ('[capture]\nfps = "30"\n', r"'capture.fps' has invalid value '30': expected an integer"),
        (
            "[capture]\nwidth = 1279\n",
            r"'capture.width' has invalid value 1279: expected a multiple of 2",
        ),
        (
            '[capture]\nsource = "usb"\n',
            r"'capture.source' has invalid value 'usb': expected one of 'synthetic', 'file', 'hdmi'",
        ),
        ('[web]\ntls = "yes"\n', r"'web.tls' has invalid value 'yes': expected true or false"),
        (
            '[box]\nname = "Salle 2"\n',
            r"'box.name' has invalid value 'Salle 2': expected a host name label",
        ),
        ("capture = 3\n", r"capture must be a table"),
        (  # a typo that would lose the privacy mask stops the box (a harmless one only warns)
            "[[mask.rects]]\nwidth = 0.5\n",
            r"unknown config key 'mask.rects\[0\].width' \(allowed in mask.rects\[0\]: h, w, x, y\): "
            r"the privacy mask would not blank",
        ),
        (
            '[log]\nlevel = "LOUD"\n',
            r"'log.level' has invalid value 'LOUD': expected one of 'DEBUG'",
        ),
    ],
)
def test_bad_keys_and_values_are_named_with_the_fix(tmp_path, toml: str, expected: str) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=expected):
        config.load(path)


def test_missing_and_malformed_files_are_clear(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[capture\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad)


def test_the_cli_reports_a_bad_key_and_exits_2(tmp_path, capsys) -> None:
    from appliance.__main__ import main

    path = tmp_path / "appliance.toml"
    path.write_text('[pairing]\npassword = "a long pass phrase"\n[web]\npotr = 443\n')
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'web.potr'" in err and "'web.port'" in err


def test_replace_and_round_trip() -> None:
    cfg = config.load(None).replace(web={"port": 0}, capture={"fps": 15})
    assert cfg.web.port == 0 and cfg.capture.fps == 15
    assert config.load_dict(config.to_dict(cfg)) == cfg


def test_the_demo_runs_any_backend_by_name() -> None:
    from appliance.__main__ import _parser, load_config
    from appliance.config import EncoderKind, PinFactoryKind, SourceKind

    args = _parser().parse_args(
        ["run", "--demo", "--source", "hdmi-fake", "--encoder", "hardware-fake"]
    )
    cfg = load_config(args, "demo password")
    assert cfg.capture.source is SourceKind.HDMI_FAKE
    assert cfg.encode.encoder is EncoderKind.HARDWARE_FAKE
    assert cfg.panel.pin_factory is PinFactoryKind.MOCK, "still the demo's stand-in pins"
    plain = load_config(_parser().parse_args(["run", "--demo"]), "demo password")
    assert plain.capture.source is SourceKind.SYNTHETIC


def test_a_picture_too_small_for_the_synthetic_source_names_the_keys() -> None:
    from appliance.board import Board, resolve
    from appliance.capture.registry import make_source
    from appliance.errors import ConfigError

    cfg = config.load_dict({"capture": {"source": "synthetic", "width": 640, "height": 360}})
    with pytest.raises(ConfigError, match=r"capture\.width.*use at least 768x120"):
        make_source(cfg, resolve(cfg, Board.OTHER))
