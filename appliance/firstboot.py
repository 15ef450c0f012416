"""First boot (and every boot): take the technician's `appliance.toml` from the boot partition.

- validate it; a bad file leaves a fault note the appliance shows (LED fault pattern, pairing
  page) instead of streaming with a wrong setting;
- move the secrets it holds (the pairing password, hashed; the relay token; the Wi-Fi password) to
  the persistent partition (``<state>/secrets.toml``, 0600) and remove them from the boot file,
  leaving every other setting (and the technician's comments) editable there;
- write the Wi-Fi connection for NetworkManager into the persistent partition;
- make the per-device keys once: the signing identity and the TLS certificate (appliance.crypto),
  and the SSH host keys only when an SSH key is given (SSH stays off otherwise);
- set the host name (the room name: the pairing page answers at ``<name>.local``).

``python -m appliance.firstboot --boot /boot/firmware/appliance.toml --state /var/lib/appliance``
(the image's appliance-firstboot.service). Never prints or logs a secret.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import re
import socket
import subprocess
import sys
import time
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from . import config as config_mod
from . import configcheck, files
from .crypto import KeyFileError
from .errors import ConfigError
from .passwords import hash_password

logger = logging.getLogger(__name__)

BOOT_FILE = Path("/boot/firmware/appliance.toml")
STATE_DIR = Path("/var/lib/appliance")
SECRETS_NAME = "secrets.toml"
FAULT_NAME = "fault"
WIFI_FILE = Path("network") / "appliance-wifi.nmconnection"
#: What in the state directory stays root's when the rest is handed to the app's user.
ROOT_ONLY = ("network", "ssh")
#: (section, key) given in the boot file that must not stay there.
SECRET_KEYS = (("pairing", "password"), ("relay", "token"), ("wifi", "password"))


@dataclass
class Result:
    ok: bool
    fault: str = ""
    moved: list[str] = field(default_factory=list)
    hostname: str = ""


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else _toml_escape(c) for c in escaped)
    return f'"{escaped}"'


def _toml_escape(c: str) -> str:
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def read_secrets(state: Path) -> dict[str, dict[str, str]]:
    """The secrets first boot moved, read without following a link (one is ignored: the box
    then asks for its secrets again)."""
    path = state / SECRETS_NAME
    try:
        raw = files.read_regular(path)
    except FileNotFoundError:
        return {}
    except OSError:
        logger.warning("%s is not a regular file: ignored", SECRETS_NAME)
        return {}
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise ConfigError(f"{SECRETS_NAME} in the state directory is not valid TOML") from None
    return {s: {k: str(v) for k, v in d.items()} for s, d in data.items() if isinstance(d, dict)}


def _write_durably(path: Path, text: str, private: bool = False) -> None:
    """Replace ``path`` by a whole new file (a power cut leaves the old one or the new one),
    never through a link the app's user left there or beside it; mode 0600 (``private`` says
    that it matters: not on the FAT boot partition)."""
    files.write_atomic(path, text.encode("utf-8"), 0o600)


def write_secrets(state: Path, secrets: dict[str, dict[str, str]]) -> None:
    lines = ["# Secrets moved off the boot partition by appliance-firstboot. Do not edit.", ""]
    for section, values in sorted(secrets.items()):
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_string(value)}" for key, value in sorted(values.items())]
        lines.append("")
    _write_durably(state / SECRETS_NAME, "\n".join(lines), private=True)


def strip_secrets(text: str, when: str, moved: list[str] | None = None) -> str:
    """The boot file without the secrets ``moved`` ("pairing.password", ...; default: every
    secret given a value), in whatever form TOML allows them (``[pairing]`` tables however
    spelled, inline tables, dotted and quoted keys, multi-line strings), with a note at the top
    naming exactly those; every other line and comment kept as written (an empty secret's line
    too, for the technician to fill in).

    Fails closed: the result is parsed again and must hold exactly the settings the file held
    minus those secrets; otherwise :class:`ConfigError` (the caller writes nothing back). A
    byte-order mark is dropped."""
    text = text.removeprefix("\ufeff")
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise ConfigError(_UNSTRIPPABLE) from None
    keys = _given_secrets(before) if moved is None else moved
    try:
        doc = tomlkit.parse(text)
        for section, key in SECRET_KEYS:
            table = doc.get(section)
            if f"{section}.{key}" in keys and isinstance(table, dict) and key in table:
                del table[key]
        stripped = tomlkit.dumps(doc)
    except (tomlkit.exceptions.TOMLKitError, KeyError, TypeError, ValueError):
        raise ConfigError(_UNSTRIPPABLE) from None
    if keys:
        stripped = f"# {', '.join(keys)}: {configcheck.MOVED_NOTE} ({when})\n" + stripped
    try:
        after = tomllib.loads(stripped)
    except tomllib.TOMLDecodeError:
        raise ConfigError(_UNSTRIPPABLE) from None
    left = set(_given_secrets(after))
    if _pruned(after) != _pruned(without_secrets(before, keys)) or left & set(keys):
        raise ConfigError(_UNSTRIPPABLE)
    return stripped


_UNSTRIPPABLE = (
    "the secrets in appliance.toml could not be taken out of it safely: move the pairing "
    "password, relay token and Wi-Fi password into plain [pairing], [relay] and [wifi] tables"
)


def without_secrets(data: dict[str, Any], keys: list[str] | None = None) -> dict[str, Any]:
    """A copy of parsed TOML without the secret keys (``keys``: only those; their tables
    kept)."""
    clean = {s: dict(v) if isinstance(v, dict) else v for s, v in data.items()}
    for section, key in SECRET_KEYS:
        if isinstance(clean.get(section), dict) and (keys is None or f"{section}.{key}" in keys):
            clean[section].pop(key, None)
    return clean


def _given_secrets(data: dict[str, Any]) -> list[str]:
    """The secrets parsed TOML gives a value to (an empty one is no secret: it stays)."""
    return [
        f"{s}.{k}"
        for s, k in SECRET_KEYS
        if isinstance(data.get(s), dict) and data[s].get(k) not in (None, "")
    ]


def _pruned(data: Any) -> Any:
    """Parsed TOML without empty tables (removing a table's only key may drop its header)."""
    if not isinstance(data, dict):
        return data
    kept = {k: _pruned(v) for k, v in data.items()}
    return {k: v for k, v in kept.items() if v != {}}


def _redacted(message: str, data: dict[str, Any]) -> str:
    for section, key in SECRET_KEYS:
        value = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
        if value not in (None, ""):
            message = message.replace(repr(value), "<secret>").replace(str(value), "<secret>")
    return message


def apply(boot_file: Path, state: Path, set_hostname: bool = True) -> Result:
    """Do the first-boot work; never raises for a bad file (the fault note says what is wrong)."""
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    fault = state / FAULT_NAME
    if not boot_file.exists():
        return _fault(fault, f"{boot_file.name} is missing from the boot partition: copy one there")
    try:
        text, data = configcheck.read(boot_file)
    except ConfigError as exc:
        return _fault(fault, str(exc))
    secrets = read_secrets(state)
    moved = []
    for section, key in SECRET_KEYS:
        value = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
        if value is None or value == "":
            continue
        if (
            (section, key) == ("pairing", "password")
            and isinstance(value, str)
            and not value.strip()
        ):
            continue  # only spaces: no password (the check says so), nothing to keep
        if not isinstance(value, str):
            return _fault(fault, f"config key '{section}.{key}' must be a string in quotes")
        if (section, key) == ("pairing", "password"):
            secrets.setdefault("pairing", {})["password_hash"] = hash_password(value)
        else:
            secrets.setdefault(section, {})[key] = value
        moved.append(f"{section}.{key}")
    # Every problem at once, the valid parts kept: the secrets leave the boot partition and the
    # keys are made even when another setting is wrong (the box then shows what is wrong).
    report = configcheck.check(effective_data(data, secrets, state), text, data)
    cfg = report.config
    wifi_ok = True
    if cfg.wifi.ssid:
        try:
            wifi_keyfile(cfg.wifi.ssid, cfg.wifi.password)
        except ConfigError as exc:
            report.problems.append(exc)
            wifi_ok = False
    if moved:
        try:
            stripped = strip_secrets(text, time.strftime("%Y-%m-%d"), moved)
        except ConfigError as exc:
            return _fault(fault, str(exc))
        write_secrets(state, secrets)
        _write_durably(boot_file, stripped)
        logger.info("moved %d secret(s) off the boot partition", len(moved))
    if wifi_ok:
        _wifi(cfg, state)
    try:
        _keys(cfg, state)
    except KeyFileError as exc:  # a key file damaged, or something else in its place
        report.problems.append(ConfigError(str(exc)))
    if set_hostname:
        _hostname(cfg.box.name)
    for warning in report.warnings:
        logger.warning("appliance.toml: %s", warning)
    if report.problems:
        result = _fault(fault, _redacted(report.fault, data))
        result.moved, result.hostname = moved, cfg.box.name
        return result
    fault.unlink(missing_ok=True)
    return Result(True, moved=moved, hostname=cfg.box.name)


def effective_data(
    data: dict[str, Any], secrets: dict[str, dict[str, str]], state: Path
) -> dict[str, Any]:
    """The boot file without its secrets, plus the stored secrets, with the state directory
    forced to the persistent partition: what the appliance runs with, as data."""
    merged = config_mod.merge(without_secrets(data), {k: dict(v) for k, v in secrets.items()})
    return config_mod.merge(merged, {"box": {"state_dir": str(state)}})


def effective(data: dict[str, Any], secrets: dict[str, dict[str, str]], state: Path) -> Any:
    """The config the appliance runs with (a :class:`ConfigError` for any problem)."""
    return config_mod.load_dict(effective_data(data, secrets, state))


def load_box_config(boot_file: Path, state: Path) -> tuple[Any, str]:
    """(config, fault) for `appliance run` on the box: see :func:`box_report`."""
    report, fault = box_report(boot_file, state)
    return report.config, fault


def box_report(boot_file: Path, state: Path) -> tuple[configcheck.Report, str]:
    """The report on the box's config, and its fault: every valid part of the file with the
    stored secrets (a typo never loses the password, the name or the web settings, so the page
    that explains the fault is where the staff expect it), every problem in the fault (first
    boot's note, when it left one), the warnings in the report."""
    note = state / FAULT_NAME
    try:
        noted = files.read_regular(note).decode("utf-8", "replace").strip()
    except OSError:  # none, or not a file first boot wrote
        noted = ""
    secrets = read_secrets(state) if state.exists() else {}
    problems: list[ConfigError] = []
    text, data = "", dict[str, Any]()
    try:
        text, data = configcheck.read(boot_file)
    except ConfigError as exc:
        problems.append(exc)
    report = configcheck.check(effective_data(data, secrets, state), text, data)
    report.problems[:0] = problems
    return report, noted or _redacted(report.fault, data)


def _fault(note: Path, message: str) -> Result:
    _write_durably(note, message + "\n")
    logger.error("appliance.toml: %s", message)
    return Result(False, fault=message)


def wifi_keyfile(ssid: str, password: str) -> str:
    """NetworkManager's keyfile for the Wi-Fi: the SSID as its list of bytes (any bytes, nothing
    to escape), the password escaped as GKeyFile reads it back (backslash, newline, tab, CR, and
    spaces at either end). A value NetworkManager or WPA cannot take is a :class:`ConfigError`
    that names the key and never shows the value."""
    raw = ssid.encode("utf-8")
    if not 1 <= len(raw) <= 32:
        raise ConfigError("config key 'wifi.ssid' must be 1 to 32 bytes long (UTF-8)")
    lines = ["[connection]", "id=appliance-wifi", "type=wifi", "autoconnect=true", ""]
    lines += ["[wifi]", "ssid=" + "".join(f"{b};" for b in raw), "mode=infrastructure", ""]
    if password:
        size, hex64 = len(password.encode("utf-8")), re.fullmatch(r"[0-9A-Fa-f]{64}", password)
        if any(unicodedata.category(c) == "Cc" for c in password) or not (8 <= size <= 63 or hex64):
            raise ConfigError(
                "config key 'wifi.password' must be 8 to 63 characters with no control character "
                "(or 64 hexadecimal digits)"
            )
        lines += ["[wifi-security]", "key-mgmt=wpa-psk", f"psk={keyfile_escape(password)}", ""]
    lines += ["[ipv4]", "method=auto", "", "[ipv6]", "method=auto", ""]
    return "\n".join(lines)


def keyfile_escape(value: str) -> str:
    """A string as GKeyFile writes it (g_key_file_set_string), spaces at the end escaped too."""
    for char, escape in (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r")):
        value = value.replace(char, escape)
    core = value.strip(" ")
    lead = len(value) - len(value.lstrip(" "))
    return "\\s" * lead + core + "\\s" * (len(value) - lead - len(core))


def _wifi(cfg: Any, state: Path) -> None:
    path = state / WIFI_FILE
    if not cfg.wifi.ssid:
        path.unlink(missing_ok=True)
        return
    _root_dir(path.parent)
    _write_durably(path, wifi_keyfile(cfg.wifi.ssid, cfg.wifi.password), private=True)


def _root_dir(path: Path) -> None:
    """A directory of :data:`ROOT_ONLY`, root's: never a link, a file or a directory the app's
    user left in its place (with links inside)."""
    files.own_directory(path, 0o700)


def hand_over(state: Path, uid: int, gid: int) -> None:
    """Give the state directory to the app's user, except :data:`ROOT_ONLY`, which stays (or
    becomes again) root's and private: NetworkManager ignores a keyfile another user owns or
    others may read, and sshd wants root's host keys and authorized_keys."""
    os.chown(state, uid, gid, follow_symlinks=False)
    for entry in state.iterdir():
        own = (0, 0) if entry.name in ROOT_ONLY else (uid, gid)
        paths = [entry] if entry.is_symlink() or not entry.is_dir() else [entry, *entry.rglob("*")]
        for path in paths:
            os.chown(path, *own, follow_symlinks=False)
            if entry.name in ROOT_ONLY and not path.is_symlink():
                os.chmod(path, path.stat().st_mode & 0o700)


def _keys(cfg: Any, state: Path) -> None:
    from .crypto import BoxIdentity, load_or_create_tls

    BoxIdentity.load_or_create(state)
    load_or_create_tls(state, [f"{cfg.box.name}.local", cfg.box.name])
    ssh = state / "ssh"
    if cfg.ssh.authorized_keys:
        _root_dir(ssh)
        _write_durably(ssh / "authorized_keys", "\n".join(cfg.ssh.authorized_keys) + "\n")
        keygen = "ssh-keygen"
        for kind in ("ed25519", "ecdsa"):
            key = ssh / f"ssh_host_{kind}_key"
            if not key.exists():
                try:
                    subprocess.run(
                        [keygen, "-q", "-t", kind, "-N", "", "-f", str(key)],
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                except (OSError, subprocess.CalledProcessError):
                    logger.warning("could not make the SSH host key (%s)", kind)
        (ssh / "enabled").touch()
    else:
        (ssh / "enabled").unlink(missing_ok=True)


def _hostname(name: str) -> None:
    try:
        socket.sethostname(name)
    except (OSError, AttributeError):
        logger.warning("could not set the host name (not root?)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="appliance firstboot", description=__doc__)
    parser.add_argument("--boot", type=Path, default=BOOT_FILE)
    parser.add_argument("--state", type=Path, default=STATE_DIR)
    parser.add_argument("--owner", help="hand the state directory to this user (but ROOT_ONLY)")
    parser.add_argument("--no-hostname", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = apply(args.boot, args.state, set_hostname=not args.no_hostname)
    if args.owner:
        user = pwd.getpwnam(args.owner)
        hand_over(args.state, user.pw_uid, user.pw_gid)
    # A fault is reported by the appliance itself (LED, page): the boot goes on.
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
