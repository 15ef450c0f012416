"""What the technician's checks say about risky settings and typos (issue 14, items 11 and 12).

A harmless typo never stops the clinic: an unknown key is a warning with a suggestion, its default
kept and the box working. Only what makes the box unsafe or unusable stops it: no pairing password
(nobody on the staff could log in), a session that could never last as long as its link is valid,
a wrong value of a real key, a typo that would lose the privacy mask, TLS or a secret. check-config,
doctor and first boot say the same, each warning with its key, what it means and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import doctor, firstboot
from appliance.__main__ import main
from appliance.configcheck import check_file
from tests.unit import test_configcheck

PASSWORD = '[pairing]\npassword = "a long pass phrase"\n'
TYPOS = '[box]\nnmae = "echo-3"\nname = "echo-3"\n\n' + PASSWORD + "valid_minuts = 60\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bootfs" / "appliance.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["check-config", str(path)])
    out = capsys.readouterr()
    return status, out.out + out.err


def run_doctor(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    doctor.main(["--config", str(path), "--root", str(tmp_path / "root")])
    return capsys.readouterr().out


# -- item 12: a typo is a warning, the box works ----------------------------------------------


def test_check_config_passes_a_typo_with_a_warning_and_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = check_config(write(tmp_path, TYPOS), capsys)
    assert status == 0, out
    assert "line 2: unknown config key 'box.nmae' is ignored; did you mean 'box.name'?" in out
    assert "line 7: unknown config key 'pairing.valid_minuts'" in out
    assert "did you mean 'pairing.valid_minutes'?" in out
    assert "2 warnings" in out


def test_doctor_shows_the_typo_as_a_warning_not_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_doctor(write(tmp_path, TYPOS), tmp_path, capsys)
    assert "WARN  config: line 2: unknown config key 'box.nmae'" in out
    assert "FAIL  config" not in out


def test_the_box_runs_on_a_file_with_a_typo_with_the_defaults_kept(tmp_path: Path) -> None:
    path, state = write(tmp_path, TYPOS), tmp_path / "state"
    result = firstboot.apply(path, state, set_hostname=False)
    assert result.ok, result.fault
    cfg, fault = firstboot.load_box_config(path, state)
    assert fault == "", "a typo never puts the box in its fault state"
    assert cfg.box.name == "echo-3" and cfg.pairing.valid_minutes == 90


def test_the_box_logs_its_warnings_at_start_and_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from appliance import __main__ as cli
    from tests.conftest import RunningBox, make_config

    args = cli._parser().parse_args(["run", "--config", str(write(tmp_path, TYPOS))])
    cli.load_config(args)
    assert [w.key for w in args.warnings] == ["box.nmae", "pairing.valid_minuts"]
    box = RunningBox(make_config(box={"state_dir": str(tmp_path / "state")}), False)
    box._warnings = tuple(args.warnings)
    with caplog.at_level("WARNING", logger="appliance"):
        box.start()
        try:
            assert box.state() == "idle", "a typo never stops the box"
        finally:
            box.stop()
    logged = caplog.text
    assert "appliance.toml: line 2: unknown config key 'box.nmae' is ignored" in logged
    assert "did you mean 'pairing.valid_minutes'?" in logged


@pytest.mark.parametrize(
    ("toml", "key", "suggested"),
    [
        # the privacy mask would blank nothing: the patient's name would be streamed
        ("[[mask.rects]]\nx = 0.1\ny = 0.1\nwidth = 0.5\nh = 0.1\n", "mask.rects[0].width", "w"),
        ("[masks]\nrects = [{x = 0.1, y = 0.1, w = 0.5, h = 0.1}]\n", "masks", "mask"),
        # the pairing page would be plain HTTP on the LAN
        ("[web]\ntsl = true\n", "web.tsl", "web.tls"),
        # a secret would stay on the boot partition (and the password would not apply)
        ('[pairing]\npasword = "a long pass phrase"\n', "pairing.pasword", "pairing.password"),
        ('[relay]\ntoke = "tok-1234567890"\n', "relay.toke", "relay.token"),
    ],
)
def test_a_typo_that_makes_the_box_unsafe_still_stops_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, key: str, suggested: str
) -> None:
    text = toml + ("" if "pairing" in toml else PASSWORD)
    status, out = check_config(write(tmp_path, text), capsys)
    assert status == 2
    assert f"unknown config key '{key}'" in out and suggested in out
    assert "a long pass phrase" not in out and "tok-1234567890" not in out


def test_a_wrong_value_of_a_real_key_still_stops_the_box(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = check_config(write(tmp_path, PASSWORD + '[web]\nport = "443"\n'), capsys)
    assert status == 2 and "'web.port' has invalid value '443': expected an integer" in out


# -- item 11: the risky settings ----------------------------------------------------------------


def test_pre_admit_is_a_clear_warning_in_check_config_and_doctor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, PASSWORD + "pre_admit = true\n")
    status, out = check_config(path, capsys)
    assert status == 0, out
    assert "'pairing.pre_admit' is on" in out
    assert "without the staff" in out and "verification code" in out
    assert "pre_admit = false" in out, "how to turn it off"
    doctored = run_doctor(path, tmp_path, capsys)
    assert "WARN  config: line 3: config key 'pairing.pre_admit' is on" in doctored
    assert "fix: set pairing.pre_admit = false" in doctored


NO_PASSWORD = {
    "no password": '[box]\nname = "echo-3"\n',
    "an empty file": "",
    "an empty password": '[pairing]\npassword = ""\n',
    "a password of spaces": '[pairing]\npassword = "   "\n',
}


@pytest.mark.parametrize("case", NO_PASSWORD)
def test_no_usable_password_is_a_problem_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path = write(tmp_path, NO_PASSWORD[case])
    status, out = check_config(path, capsys)
    assert status == 2, out
    assert "'pairing.password'" in out and "nobody on the staff can log in" in out
    assert 'password = "' in out, "the fix"
    doctored = run_doctor(path, tmp_path, capsys)
    assert "FAIL  config:" in doctored and "nobody on the staff can log in" in doctored
    result = firstboot.apply(path, tmp_path / "state", set_hostname=False)
    assert not result.ok and "nobody on the staff can log in" in result.fault, "the box says so"


def test_a_password_first_boot_moved_away_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, PASSWORD + '[box]\nname = "echo-3"\n')
    assert firstboot.apply(path, tmp_path / "state", set_hostname=False).ok
    assert "a long pass phrase" not in path.read_text()
    status, out = check_config(path, capsys)
    assert status == 0, out


def test_a_session_longer_than_its_maximum_is_a_problem_naming_both_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, PASSWORD + "valid_minutes = 240\nmax_minutes = 120\n")
    status, out = check_config(path, capsys)
    assert status == 2, out
    assert "'pairing.max_minutes' (120)" in out and "'pairing.valid_minutes' (240)" in out
    assert "raise pairing.max_minutes to at least 240" in out
    assert "FAIL  config:" in run_doctor(path, tmp_path, capsys)


def test_check_config_doctor_and_first_boot_say_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bootfs" / "appliance.toml"
    path.parent.mkdir()
    path.write_text(test_configcheck.FAULTY, encoding="utf-8")
    expected = check_file(path).fault

    assert main(["check-config", str(path)]) == 2
    assert expected in capsys.readouterr().err

    assert doctor.main(["--config", str(path), "--root", str(tmp_path / "root")]) == 1
    assert f"FAIL  config: {expected}" in capsys.readouterr().out

    state = tmp_path / "state"
    result = firstboot.apply(path, state, set_hostname=False)
    assert not result.ok and result.fault == expected
    assert "s3cret" not in path.read_text(), "the secrets moved all the same"
    cfg, fault = firstboot.load_box_config(path, state)
    assert fault == expected
    assert (cfg.box.name, cfg.web.host, cfg.web.port) == ("echo-7", "0.0.0.0", 8080)
    assert cfg.pairing.password_hash, "the box keeps its password through the fault"
