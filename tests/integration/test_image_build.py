"""The image's definitions, checked without building an image: the scripts pass shellcheck, the
units pass `systemd-analyze verify` against a root filesystem, config.txt and cmdline.txt hold only
lines the firmware and kernel know, the EDID files are valid, the sample appliance.toml is valid
and holds no default password. (`make image-smoke` builds and boots the layer for real.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from appliance import firstboot
from appliance.capture import edid

IMAGE = Path(__file__).parents[2] / "image-build"
UNITS = IMAGE / "layer" / "files" / "etc" / "systemd" / "system"
SCRIPTS = [
    IMAGE / "layer" / "install.sh",
    IMAGE / "layer" / "files" / "usr" / "lib" / "appliance" / "load-edid",
    IMAGE / "layer" / "files" / "usr" / "lib" / "appliance" / "make-appdata",
    IMAGE / "smoke" / "run.sh",
    IMAGE / "smoke" / "guest-check.sh",
    *sorted((IMAGE / "pi-gen").rglob("*.sh")),
]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (make test installs it as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_every_script_passes_shellcheck() -> None:
    result = subprocess.run(
        [tool("shellcheck"), "-x", *map(str, SCRIPTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    assert all(os.access(s, os.X_OK) for s in SCRIPTS), "scripts are executable"


def fake_root(tmp_path: Path) -> Path:
    """A root with systemd's own units and stand-ins for the programs our units start."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(UNITS, root / "etc/systemd/system")
    for program in (
        "opt/appliance/bin/appliance",
        "usr/lib/appliance/load-edid",
        "usr/lib/appliance/make-appdata",
        "bin/chown",
        "usr/sbin/sshd",
    ):
        path = root / program
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            tool("systemd-analyze"),
            "verify",
            f"--root={root}",
            *(f"/etc/systemd/system/{u}" for u in units),
        ],
        capture_output=True,
        text=True,
    )


def test_the_units_verify_against_a_root_filesystem(tmp_path) -> None:
    if not Path("/usr/lib/systemd/system/sysinit.target").exists():
        message = "this machine has no systemd units to verify against"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = fake_root(tmp_path)
    units = (
        "appliance.service",
        "appliance-firstboot.service",
        "appliance-edid.service",
        "appliance-appdata.service",
    )
    result = verify(root, *units)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    # control: a misspelt setting is reported, so a clean run means something
    bad = root / "etc/systemd/system/appliance.service"
    bad.write_text(bad.read_text().replace("WatchdogSec=", "WatchdogSecs="))
    assert "WatchdogSecs" in verify(root, "appliance.service").stderr


def unit(name: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_service_is_watched_restarted_and_confined() -> None:
    s = unit("appliance.service")
    assert s["Type"] == ["notify"] and s["WatchdogSec"] and s["Restart"] == ["always"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "DevicePolicy": "closed",
        "User": "appliance",
    }.items():
        assert s[key] == [value], key
    assert s["ReadWritePaths"] == ["/var/lib/appliance"]
    # the sound cards: the audio group and ALSA's devices, nothing more
    assert s["SupplementaryGroups"] == ["video gpio audio"]
    assert s["DeviceAllow"] == [
        "char-video4linux rw",
        "char-media rw",
        "char-gpiochip rw",
        "char-alsa rw",
    ]
    assert not any("time-sync" in v for v in s.get("After", []) + s.get("Requires", [])), (
        "an offline box must start: no ordering on time-sync"
    )
    assert "appliance-firstboot.service" in s["After"][0]


def test_config_txt_and_cmdline_hold_known_lines_only() -> None:
    allowed = {"camera_auto_detect", "dtoverlay", "dtparam"}
    text = (IMAGE / "boot" / "config.txt").read_text()
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    for line in lines:
        assert re.fullmatch(r"[a-z_]+=[A-Za-z0-9_,=.-]+", line), line
        assert line.split("=", 1)[0] in allowed, line
    assert "dtoverlay=tc358743" in lines and "camera_auto_detect=0" in lines
    # the bridge's I2S sound card, named as audio.source = "hdmi" expects it by default
    assert "dtoverlay=tc358743-audio" in lines
    assert "dtparam=audio=off" in lines  # the Pi's own headphone jack stays off
    assert any(x.startswith("dtoverlay=vc4-kms-v3d,cma-") for x in lines)
    assert "dtparam=watchdog=on" in lines
    words = (IMAGE / "boot" / "cmdline.txt").read_text().split()
    assert "ro" in words and (IMAGE / "boot" / "cmdline.txt").read_text().count("\n") == 1


def test_the_service_user_may_use_the_sound_cards_and_the_image_has_alsa_utils() -> None:
    install = (IMAGE / "layer" / "install.sh").read_text()
    assert "for group in video gpio audio; do" in install
    assert "--groups video,gpio,audio appliance" in install
    assert "usermod --append --groups video,gpio,audio appliance" in install
    packages = (IMAGE / "pi-gen" / "stage-appliance" / "00-app" / "00-packages").read_text()
    assert "alsa-utils" in packages.split()  # arecord -l: the technician finds the USB card


def test_the_packaged_edids_are_valid() -> None:
    for name in ("appliance-pi4.bin", "appliance-pi5.bin"):
        data = (IMAGE.parent / "hw" / "edid" / name).read_bytes()
        assert len(data) % 128 == 0 and edid.valid(data)
        assert all(sum(data[i : i + 128]) % 256 == 0 for i in range(0, len(data), 128))


def test_the_sample_config_is_valid_and_has_no_default_password(tmp_path) -> None:
    text = (IMAGE / "boot" / "appliance.toml").read_text()
    data = tomllib.loads(text)
    assert data["pairing"]["password"] == "" and data["relay"]["token"] == ""
    cfg = firstboot.effective(data, {}, tmp_path)
    assert cfg.web.tls and cfg.web.port == 443 and not cfg.pairing.pre_admit


def test_the_firewall_allows_only_what_the_box_needs() -> None:
    rules = (IMAGE / "layer" / "files" / "etc" / "nftables.conf").read_text()
    assert "policy drop" in rules and rules.count("policy drop") == 3
    for needed in (
        "tcp dport 443",
        "udp dport 5353",
        "udp dport 123",
        "udp dport 53",
        "udp dport 3478",
    ):
        assert needed in rules, needed
    nft = shutil.which("nft")
    if nft and os.geteuid() == 0:
        result = subprocess.run(
            [nft, "-c", "-f", str(IMAGE / "layer/files/etc/nftables.conf")],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
