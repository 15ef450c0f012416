"""First boot on sample boot partitions: a good file, a bad key, a missing file; secrets moved
to the persistent place and gone from the boot partition, everything else left editable."""

from __future__ import annotations

import configparser
import json
import os
import re
import stat
import tomllib
from pathlib import Path

import pytest

from appliance import firstboot
from appliance.passwords import hash_password, verify_password

SAMPLE = Path(__file__).parents[2] / "image-build" / "boot" / "appliance.toml"

GOOD = """# appliance.toml for the exam room
[box]
name = "echo-2"   # the room

[relay]
url = "https://relay.clinic.example"
token = "box-token-0123456789abcdefghij"

[pairing]
password = "s3cret pass phrase"

[wifi]
country = "FR"
ssid = "Clinic"
password = "wifi-pass-123"
"""


def boot(tmp_path, text: str | None):
    path = tmp_path / "bootfs" / "appliance.toml"
    path.parent.mkdir()
    if text is not None:
        path.write_text(text)
    return path, tmp_path / "state"


STORED_HASH = hash_password("stored pass phrase")


def has_password(state) -> None:
    """The box holds the staff's password from an earlier boot (without one, first boot reports
    that nobody could log in)."""
    state.mkdir(mode=0o700)
    firstboot.write_secrets(state, {"pairing": {"password_hash": STORED_HASH}})


def test_a_good_file_moves_its_secrets_and_keeps_the_rest(tmp_path) -> None:
    path, state = boot(tmp_path, GOOD)
    result = firstboot.apply(path, state, set_hostname=False)
    assert result.ok and result.hostname == "echo-2"
    assert sorted(result.moved) == ["pairing.password", "relay.token", "wifi.password"]

    left = path.read_text()
    for secret in ("s3cret pass phrase", "box-token-0123456789abcdefghij", "wifi-pass-123"):
        assert secret not in left, "a secret stayed on the boot partition"
    assert 'url = "https://relay.clinic.example"' in left and "# the room" in left
    assert "moved to the box's persistent storage" in left

    secrets = state / "secrets.toml"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    stored = firstboot.read_secrets(state)
    assert "s3cret pass phrase" not in secrets.read_text(), "the password is stored hashed"
    assert verify_password("s3cret pass phrase", stored["pairing"]["password_hash"])
    assert stored["relay"]["token"] == "box-token-0123456789abcdefghij"

    cfg, fault = firstboot.load_box_config(path, state)
    assert fault == "" and cfg.relay.token == "box-token-0123456789abcdefghij"
    assert cfg.pairing.password == "" and cfg.pairing.password_hash.startswith("scrypt$")
    assert cfg.box.state_dir == str(state)
    wifi = (state / "network" / "appliance-wifi.nmconnection").read_text()
    assert "ssid=67;108;105;110;105;99;" in wifi and "psk=wifi-pass-123" in wifi  # "Clinic"
    assert (state / "identity.key").exists() and (state / "tls.crt").exists()
    assert not (state / "ssh" / "enabled").exists(), "no SSH key given: SSH stays off"

    # the next boot finds nothing to move and keeps the secrets
    again = firstboot.apply(path, state, set_hostname=False)
    assert again.ok and again.moved == []
    assert firstboot.read_secrets(state) == stored


def test_a_bad_key_is_a_fault_that_names_it_and_leaks_no_secret(tmp_path) -> None:
    path, state = boot(tmp_path, GOOD.replace("[wifi]", "[wifi]\npasword = 'typo'"))
    result = firstboot.apply(path, state, set_hostname=False)
    assert not result.ok and "wifi.pasword" in result.fault and "password" in result.fault
    assert "s3cret" not in result.fault
    cfg, fault = firstboot.load_box_config(path, state)
    assert fault == result.fault, "the appliance shows the fault"
    assert cfg.box.state_dir == str(state)
    # one typo loses nothing: the secrets still leave the boot partition and the password works
    assert "s3cret pass phrase" not in path.read_text(), "the secrets left despite the typo"
    assert verify_password("s3cret pass phrase", cfg.pairing.password_hash)
    assert cfg.relay.url == "https://relay.clinic.example" and cfg.box.name == "echo-2"


def test_a_missing_file_is_a_fault(tmp_path) -> None:
    path, state = boot(tmp_path, None)
    result = firstboot.apply(path, state, set_hostname=False)
    assert not result.ok and "missing" in result.fault
    assert firstboot.load_box_config(path, state)[1] == result.fault


def test_a_fixed_file_clears_the_fault(tmp_path) -> None:
    path, state = boot(tmp_path, "[box]\nname = 'Bad Name!'\n")
    has_password(state)
    assert not firstboot.apply(path, state, set_hostname=False).ok
    path.write_text("[box]\nname = 'room-3'\n")
    assert firstboot.apply(path, state, set_hostname=False).ok
    assert firstboot.load_box_config(path, state)[1] == ""


def test_an_ssh_key_turns_ssh_on(tmp_path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE tech"
    path, state = boot(tmp_path, f'[ssh]\nauthorized_keys = ["{key}"]\n')
    has_password(state)
    assert firstboot.apply(path, state, set_hostname=False).ok
    assert (state / "ssh" / "enabled").exists()
    assert key in (state / "ssh" / "authorized_keys").read_text()


def test_the_box_runs_in_error_with_a_bad_file_and_says_why(tmp_path) -> None:
    """The appliance started on a faulty appliance.toml: ERROR state, the fault LED pattern, the
    message on the pairing page's status, no session opens with the button."""
    from appliance.state import LED_PATTERNS, State

    path, state = boot(tmp_path, "[box]\nname = 'Bad Name!'\n")
    has_password(state)
    result = firstboot.apply(path, state, set_hostname=False)
    cfg, fault = firstboot.load_box_config(path, state)
    assert fault == result.fault and "box.name" in fault
    from tests.conftest import RunningBox, make_config

    rb = RunningBox(make_config(box={"state_dir": str(state)}), False)
    rb._fault = fault  # passed to Box.build like `appliance run --boot-config` does
    rb.start()
    try:
        rb.wait_state("error")
        assert rb.call(lambda: rb.core.status().error) == fault
        assert rb.box is not None and rb.box.panel.pattern == LED_PATTERNS[State.ERROR]
        rb.press()
        import time

        time.sleep(0.3)
        assert rb.state() == "error" and rb.call(lambda: rb.core.session) is None
    finally:
        rb.stop()


def test_the_service_command_line_loads_the_boot_file_and_the_stored_secrets(tmp_path) -> None:
    from appliance import __main__ as cli

    path, state = boot(tmp_path, GOOD)
    assert firstboot.apply(path, state, set_hostname=False).ok
    args = cli._parser().parse_args(["run", "--boot-config", str(path), "--state-dir", str(state)])
    cfg = cli.load_config(args)
    assert cfg.box.name == "echo-2" and cfg.relay.token.startswith("box-token")
    assert cfg.pairing.password_hash and args.fault == ""
    # with --demo (the image's smoke test): the same file and its backends, the demo's pins
    args = cli._parser().parse_args(
        ["run", "--demo", "--boot-config", str(path), "--state-dir", str(state)]
    )
    cfg = cli.load_config(args)
    assert cfg.box.name == "echo-2" and cfg.panel.pin_factory.value == "mock"
    assert cfg.capture.source.value == "auto" and cfg.web.host == "127.0.0.1"
    args = cli._parser().parse_args(
        ["run", "--demo", "--boot-config", str(path), "--state-dir", str(state)]
        + ["--source", "hdmi-fake", "--encoder", "hardware-fake"]
    )
    cfg = cli.load_config(args)
    assert (cfg.capture.source.value, cfg.encode.encoder.value) == ("hdmi-fake", "hardware-fake")


SECRET_FORMS = {
    "spaced header": '[ pairing ]\npassword = "pw-spaced-1"\n',
    "quoted header": '["pairing"]\n"password" = "pw-quoted-1"\n',
    "literal-quoted header": "['pairing']\n'password' = 'pw-literal-1'\n",
    "inline table": 'pairing = { password = "pw-inline-1", valid_minutes = 30 }\n',
    "dotted key": 'pairing.password = "pw-dotted-1"\npairing.valid_minutes = 30\n',
    "quoted dotted key": 'pairing."password" = "pw-dotted-2"\n',
    "spaced dotted key": '"pairing" . password = "pw-dotted-3"\n',
    "multi-line string": '[pairing]\npassword = """\npw-multi-1\nname = "x"\n"""\nvalid_minutes = 30\n',
    "multi-line literal": "[relay]\ntoken = '''tok-multi-1\n[box]\nname = \"evil\"'''\nurl = \"https://r.example\"\n",
}


@pytest.mark.parametrize("form", SECRET_FORMS)
def test_a_secret_in_any_toml_form_leaves_the_boot_partition(tmp_path, form) -> None:
    text = "# the technician's note\n" + SECRET_FORMS[form] + '\n[box]\nname = "echo-2"  # room\n'
    path, state = boot(tmp_path, text)
    has_password(state)
    before = tomllib.loads(text)
    result = firstboot.apply(path, state, set_hostname=False)
    assert result.ok, result.fault
    assert len(result.moved) == 1
    left = path.read_text()
    for secret in ("pw-", "tok-"):
        assert secret not in left, "a secret stayed on the boot partition"
    after = tomllib.loads(left)
    assert after["box"] == {"name": "echo-2"} and "# room" in left and "the technician's" in left
    assert after.get("pairing", {}).get("valid_minutes") == before.get("pairing", {}).get(
        "valid_minutes"
    )
    assert after.get("relay", {}).get("url") == before.get("relay", {}).get("url")
    assert "moved to the box's persistent storage" in left
    stored = firstboot.read_secrets(state)
    assert stored.get("pairing", {}).get("password_hash") or stored["relay"]["token"].startswith(
        "tok-multi-1\n"
    )
    again = firstboot.apply(path, state, set_hostname=False)  # the next boot reads it
    assert again.ok and again.moved == [] and firstboot.read_secrets(state) == stored


def test_a_file_the_secrets_cannot_be_taken_from_is_refused_and_left_alone(
    tmp_path, monkeypatch
) -> None:
    """Fail closed: if the rewritten file still held a secret, nothing is written back."""
    path, state = boot(tmp_path, GOOD)
    monkeypatch.setattr(firstboot.tomlkit, "dumps", lambda doc: GOOD)  # a stripper that misses
    result = firstboot.apply(path, state, set_hostname=False)
    assert not result.ok and "could not be taken out" in result.fault
    assert "s3cret" not in result.fault
    assert path.read_text() == GOOD and not (state / "secrets.toml").exists()
    assert (state / "fault").read_text().startswith("the secrets in appliance.toml")


def test_a_secret_beyond_the_basic_plane_is_stored_exactly(tmp_path) -> None:
    token = "tok-\U0001b2fc-\x7f-\u2028"  # unassigned, a control, a separator: all escaped
    path, state = boot(tmp_path, '[relay]\ntoken = "tok-\\U0001b2fc-\\u007f-\\u2028"\n')
    has_password(state)
    assert firstboot.apply(path, state, set_hostname=False).ok
    assert firstboot.read_secrets(state)["relay"]["token"] == token


def read_keyfile(text: str) -> dict[str, dict[str, str]]:
    """The keyfile as NetworkManager reads it: GKeyFile sections and keys (a duplicate is an
    error), values unescaped; the SSID from its byte list."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    escapes = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r", "s": " "}

    def unescape(raw: str) -> str:
        return re.sub(r"\\(.)", lambda m: escapes[m.group(1)], raw)

    out = {s: {k: unescape(v) for k, v in parser[s].items()} for s in parser.sections()}
    ssid = out["wifi"]["ssid"]
    assert re.fullmatch(r"(\d{1,3};)+", ssid), "the SSID is written as bytes"
    out["wifi"]["ssid"] = bytes(int(b) for b in ssid.split(";")[:-1]).decode()
    return out


NASTY = [
    "Clinic",
    "a\nb",
    "x\n[wifi-security]\npsk=evil",
    "[ipv4]",
    "k=v;w",
    "#not a comment",
    ";also not",
    "back\\slash\\n",
    "  spaced  ",
    "Salle d'échographie ☃",
    "1;2;3;",
]


@pytest.mark.parametrize("ssid", NASTY)
def test_the_wifi_keyfile_holds_any_ssid_and_password_exactly(tmp_path, ssid) -> None:
    password = ssid.replace("\n", " ") + " =;#[x]\\ pass "  # no control characters
    text = f"[wifi]\nssid = {json.dumps(ssid)}\npassword = {json.dumps(password)}\n"
    path, state = boot(tmp_path, text)
    has_password(state)
    assert firstboot.apply(path, state, set_hostname=False).ok
    keyfile = state / "network" / "appliance-wifi.nmconnection"
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    raw = keyfile.read_text()
    headers = [line for line in raw.splitlines() if line.startswith("[")]
    assert headers == ["[connection]", "[wifi]", "[wifi-security]", "[ipv4]", "[ipv6]"]
    got = read_keyfile(raw)
    assert list(got) == ["connection", "wifi", "wifi-security", "ipv4", "ipv6"]
    assert got["wifi"] == {"ssid": ssid, "mode": "infrastructure"}
    assert got["wifi-security"] == {"key-mgmt": "wpa-psk", "psk": password}


@pytest.mark.parametrize(
    ("ssid", "password", "key"),
    [
        ("Clinic", "new\nline-pass", "wifi.password"),
        ("Clinic", "tab\tpass-word", "wifi.password"),
        ("Clinic", "short", "wifi.password"),
        ("Clinic", "x" * 64, "wifi.password"),
        ("é" * 17, "good-password", "wifi.ssid"),
    ],
)
def test_a_wifi_setting_wpa_cannot_take_is_a_fault_that_hides_it(
    tmp_path, ssid, password, key
) -> None:
    path, state = boot(
        tmp_path, f"[wifi]\nssid = {json.dumps(ssid)}\npassword = {json.dumps(password)}\n"
    )
    result = firstboot.apply(path, state, set_hostname=False)
    assert not result.ok and key in result.fault and password not in result.fault
    assert not (state / "network" / "appliance-wifi.nmconnection").exists()
    assert json.dumps(password) not in path.read_text(), "even a wrong secret leaves the boot file"


def test_64_hex_digits_are_a_raw_wpa_key() -> None:
    key = "0123456789abcdef" * 4
    assert read_keyfile(firstboot.wifi_keyfile("Clinic", key))["wifi-security"]["psk"] == key


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_the_state_goes_to_the_app_user_but_the_wifi_and_ssh_stay_roots(tmp_path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE tech"
    path, state = boot(tmp_path, GOOD + f'\n[ssh]\nauthorized_keys = ["{key}"]\n')
    assert firstboot.apply(path, state, set_hostname=False).ok
    keyfile = state / "network" / "appliance-wifi.nmconnection"
    os.chown(keyfile, 4321, 4321)  # as the old unit's chown -R left it
    os.chmod(keyfile, 0o644)
    (state / "elsewhere").mkdir()
    (state / "elsewhere" / "x").write_text("x")
    os.symlink(tmp_path / "bootfs", state / "link")
    firstboot.hand_over(state, 4321, 4322)
    for item in (state, state / "secrets.toml", state / "identity.key", state / "elsewhere" / "x"):
        assert (item.stat().st_uid, item.stat().st_gid) == (4321, 4322), item
    for item in (keyfile, keyfile.parent, state / "ssh" / "authorized_keys", state / "ssh"):
        st = item.stat()
        assert (st.st_uid, st.st_gid) == (0, 0) and not st.st_mode & 0o077, item
    assert (tmp_path / "bootfs").stat().st_uid == 0, "a link is not followed"


def test_the_note_names_exactly_what_was_moved_and_the_empty_lines_stay(tmp_path) -> None:
    """The shipped file with only the password filled in: the note says the password was moved
    (not the relay token or the Wi-Fi password, which were empty), and their lines stay for the
    technician to fill in later."""
    sample = SAMPLE.read_text(encoding="utf-8")
    path, state = boot(tmp_path, sample.replace('password = ""', 'password = "staff pass"', 1))
    result = firstboot.apply(path, state, set_hostname=False)
    assert result.ok and result.moved == ["pairing.password"]
    left = path.read_text()
    (note,) = [line for line in left.splitlines() if "moved to the box's" in line]
    assert note.startswith("# pairing.password: moved to the box's persistent storage (")
    assert "relay.token" not in note and "wifi.password" not in note
    assert 'token = ""                   # this box\'s token at the relay' in left
    assert left.count('password = ""') == 1, "the Wi-Fi password's empty line stays"
    assert left.replace(note + "\n", "", 1) == sample.replace(
        'password = ""                # the staff\'s password for the pairing page (required)\n', ""
    ), "every other line kept as written"


# -- issue 18, item 4: links the app's user plants in its state directory --------------------------


def planted(tmp_path: Path, name: str = "victim") -> Path:
    """A file root's first boot must never touch (as /boot/firmware/cmdline.txt), 0644."""
    victim = tmp_path / name
    victim.write_text("console=serial0 root=PARTUUID=1\n")
    victim.chmod(0o644)
    return victim


def untouched(victim: Path) -> None:
    assert victim.read_text() == "console=serial0 root=PARTUUID=1\n", "written through a link"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644, "its mode changed through a link"


def test_first_boot_writes_no_fault_through_a_link(tmp_path) -> None:
    victim = planted(tmp_path)
    path, state = boot(tmp_path, '[box]\nname = "init=/bin/sh"\n')  # a fault naming this text
    has_password(state)
    os.symlink(victim, state / "fault")
    os.symlink(victim, state / "fault.new")
    result = firstboot.apply(path, state, set_hostname=False)
    assert not result.ok
    untouched(victim)
    assert not (state / "fault").is_symlink() and (state / "fault").read_text().strip()


def test_first_boot_writes_no_secret_through_a_link(tmp_path) -> None:
    victim = planted(tmp_path)
    path, state = boot(tmp_path, GOOD)
    state.mkdir(mode=0o700)
    for name in ("secrets.toml.new", "identity.key.new", "tls.key.new", "tls.crt.new"):
        os.symlink(victim, state / name)
    assert firstboot.apply(path, state, set_hostname=False).ok
    untouched(victim)
    assert verify_password(
        "s3cret pass phrase", firstboot.read_secrets(state)["pairing"]["password_hash"]
    )


def test_first_boot_changes_no_mode_and_reads_no_key_through_a_link(tmp_path) -> None:
    victim = planted(tmp_path)
    path, state = boot(tmp_path, GOOD)
    state.mkdir(mode=0o700)
    os.symlink(victim, state / "identity.key")
    os.symlink(victim, state / "secrets.toml")
    result = firstboot.apply(path, state, set_hostname=False)
    untouched(victim)
    assert not result.ok and "identity.key" in result.fault, "the box says what to remove"


def test_an_ssh_directory_the_app_user_made_is_replaced_not_written_into(tmp_path) -> None:
    victim = planted(tmp_path)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE tech"
    path, state = boot(tmp_path, f'[ssh]\nauthorized_keys = ["{key}"]\n')
    has_password(state)
    (state / "ssh").mkdir()
    os.symlink(victim, state / "ssh" / "authorized_keys")
    os.symlink(victim, state / "ssh" / "authorized_keys.new")
    os.chown(state / "ssh", 4321, 4321, follow_symlinks=False)
    assert firstboot.apply(path, state, set_hostname=False).ok
    untouched(victim)
    assert (state / "ssh").stat().st_uid == 0
    assert key in (state / "ssh" / "authorized_keys").read_text()
