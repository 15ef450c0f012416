"""The one validator of appliance.toml (appliance.configcheck), as check-config, doctor and first
boot use it: every problem at once with its line, the valid parts kept, a BOM accepted, the rules
that span keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.configcheck import check, check_file, locate, parse

FAULTY = """\ufeff# written on Windows (a byte-order mark), with two mistakes and a typo
[box]
nmae = "typo"
name = "echo-7"

[web]
host = "0.0.0.0"
port = 99999
tls = true

[panel]
button_pin = 27

[pairing]
password = "s3cret pass phrase"
valid_minutes = 90
"""


def test_every_problem_at_once_with_its_line_and_the_valid_parts_kept() -> None:
    report = check(parse(FAULTY), FAULTY)
    assert [(p.key, p.line) for p in report.problems] == [
        ("web.port", 8),
        ("panel.button_pin", 12),  # the button on the LED's pin (27 by default)
    ]
    assert "line 8" in report.fault
    assert [(w.key, w.line) for w in report.warnings] == [("box.nmae", 3)], "a typo warns"
    assert "did you mean 'box.name'" in str(report.warnings[0])
    cfg = report.config
    assert (cfg.box.name, cfg.web.host, cfg.web.tls) == ("echo-7", "0.0.0.0", True)
    assert cfg.web.port == 8080, "a bad value keeps its default"
    assert cfg.pairing.password == "s3cret pass phrase", "a typo elsewhere never loses it"


def test_an_empty_password_is_a_problem_a_moved_one_is_not() -> None:
    empty = '[pairing]\npassword = ""\n'
    (problem,) = check(parse(empty), empty).problems
    assert problem.key == "pairing.password" and problem.line == 2
    assert "nobody on the staff can log in" in str(problem)
    moved = "# pairing.password: moved to the box's persistent storage (2026-01-02)\n[box]\n"
    assert check(parse(moved), moved).ok, "first boot moved it: fine"
    stored = {"pairing": {"password_hash": "scrypt$x"}}
    assert check(stored, "[box]\n", {}).ok, "the box holds it: fine"


def test_lines_are_found_in_every_toml_form() -> None:
    text = '[ "box" ]\nname = 1\n[[mask.rects]]\nx = 0\n[[mask.rects]]\nx = 7\npanel.led_pin = 3\n'
    assert locate(text, "box.name") == 2
    assert locate(text, "mask.rects[1].x") == 6
    assert locate(text, "mask.rects") == 3
    assert locate(text, "nowhere.key") is None


def test_a_file_that_is_not_toml_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "appliance.toml"
    path.write_text('[box]\nname = "unclosed\n')
    (problem,) = check_file(path).problems
    assert problem.line == 2 and "not valid TOML" in str(problem)


def test_a_huge_file_is_refused_without_being_read(tmp_path: Path) -> None:
    """A 200 MB appliance.toml took first boot 256 s and 1 GB: only the first 512 KiB is read."""
    from appliance import firstboot
    from appliance.config import MAX_CONFIG_BYTES, ConfigError, load
    from appliance.relay import config as relay_config

    path = tmp_path / "appliance.toml"
    with path.open("wb") as file:
        file.write(b'[box]\nname = "echo-7"\n')
        file.truncate(200 * 1024 * 1024)  # sparse: no time, no disk
    for read in (load, relay_config.load):
        with pytest.raises(ConfigError, match="over 512 KiB"):
            read(path)
    assert "over 512 KiB" in check_file(path).fault
    result = firstboot.apply(path, tmp_path / "state", set_hostname=False)
    assert not result.ok and "over 512 KiB" in result.fault
    body = b'[pairing]\npassword = "a long pass phrase"\n'
    path.write_bytes(body + b"#" * (MAX_CONFIG_BYTES - len(body) - 1) + b"\n")
    assert not check_file(path).problems, "a file just under the bound is read"


def test_a_usb_sound_source_needs_its_card_before_the_box_starts() -> None:
    text = '[pairing]\npassword = "s3cret pass phrase"\n\n[audio]\nsource = "usb"\n'
    (problem,) = check(parse(text), text).problems
    assert problem.key == "audio.card" and "arecord -l" in str(problem)
    named = text + 'card = "Device"\n'
    assert check(parse(named), named).ok
    wrong = text + 'card = "hw:1"\n'
    (problem,) = check(parse(wrong), wrong).problems
    assert (problem.key, problem.line) == ("audio.card", 6)
