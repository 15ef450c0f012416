"""`appliance doctor`'s sound checks against a fake tree and the fake bridge's controls: the card
is there with a capture device, and for HDMI the rate the scanner sends and whether it sends any;
each failure names the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import config as config_mod
from appliance.capture import edid
from appliance.capture.fake_v4l2 import FakeTC358743
from appliance.doctor import CHECKS, FAIL, OK, WARN, DoctorEnv
from appliance.doctor.audio import check_audio

CARDS = (
    " 0 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0\n"
    "                      vc4-hdmi-0\n"
    " 1 [tc358743       ]: simple-card - tc358743\n"
    "                      tc358743\n"
    " 2 [Device         ]: USB-Audio - USB Audio Device\n"
    "                      C-Media USB Audio Device at usb-0000:01:00.0-1.3, full speed\n"
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "proc/asound/card1/pcm0c").mkdir(parents=True)
    (root / "proc/asound/card2/pcm0c").mkdir(parents=True)
    (root / "proc/asound/cards").write_text(CARDS)
    return root


@pytest.fixture
def bridge() -> FakeTC358743:
    fake = FakeTC358743("pi4", "1080p30")
    fake.open()
    fake.set_edid(edid.build())
    return fake


def _check(root: Path, bridge: FakeTC358743, **audio: object) -> dict[str, tuple[object, str]]:
    cfg = config_mod.load_dict({"audio": audio})
    env = DoctorEnv(cfg, root=root, audio_controls=bridge)
    return {r.name: (r.status, f"{r.detail} | {r.fix}") for r in check_audio(env)}


def test_hdmi_sound_present_at_its_rate(tree: Path, bridge: FakeTC358743) -> None:
    bridge.send_audio(44_100)
    got = _check(tree, bridge, source="hdmi")
    assert got["sound card"][0] is OK and "'tc358743' (card 1)" in got["sound card"][1]
    assert got["hdmi sound"] == (OK, "sound present at 44100 Hz | ")
    assert bridge.audio_released == 1  # the doctor leaves no node open


def test_hdmi_sound_absent_names_the_scanner_setting(tree: Path, bridge: FakeTC358743) -> None:
    bridge.stop_audio()
    status, text = _check(tree, bridge, source="hdmi")["hdmi sound"]
    assert status is WARN and "the scanner sends no sound" in text
    assert "audio.source = 'usb'" in text  # a scanner whose Doppler goes out on a line-out
    bridge.unplug()
    status, text = _check(tree, bridge, source="hdmi")["hdmi sound"]
    assert status is WARN and "no HDMI signal" in text
    bridge.remove()
    assert _check(tree, bridge, source="hdmi")["hdmi sound"][0] is FAIL


def test_a_missing_card_names_the_overlay_or_the_usb_name(tree: Path, bridge: FakeTC358743) -> None:
    (tree / "proc/asound/cards").write_text(CARDS.replace("tc358743       ]", "other          ]"))
    status, text = _check(tree, bridge, source="hdmi")["sound card"]
    assert status is FAIL and "dtoverlay=tc358743-audio" in text and "I2S wires" in text
    status, text = _check(tree, bridge, source="usb", card="Speaker")["sound card"]
    assert status is FAIL and "no ALSA card 'Speaker' (cards: Device, other, vc4hdmi0)" in text
    assert "arecord -l" in text
    assert _check(tree, bridge, source="usb", card="Device")["sound card"][0] is OK
    (tree / "proc/asound/card2/pcm0c").rmdir()  # a playback-only device
    status, text = _check(tree, bridge, source="usb", card="Device")["sound card"]
    assert status is FAIL and "no capture device" in text


def test_no_sound_card_is_needed_for_other_sources(tree: Path, bridge: FakeTC358743) -> None:
    assert _check(tree, bridge)["sound card"][0] is OK  # off
    assert _check(tree, bridge, source="synthetic")["sound card"][0] is OK
    assert check_audio in CHECKS  # part of the check-up
