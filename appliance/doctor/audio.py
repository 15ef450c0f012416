"""The sound's checks: the sound card is there (``/proc/asound/cards``), and for the ``hdmi``
kind what the bridge's controls say: the rate the scanner sends and whether it sends sound."""

from __future__ import annotations

import re

from ..capture.bridge import BridgeAudioControls
from ..config import SoundKind
from ..sound.hdmi import DEFAULT_CARD, AudioControls
from .env import FAIL, OK, WARN, CheckResult, DoctorEnv

#: The rates the box's EDID offers the scanner (2-channel LPCM, hw/edid).
EDID_RATES = (32_000, 44_100, 48_000)
_CARD_LINE = re.compile(r"^\s*(\d+)\s+\[(\S+)\s*\]")


def alsa_cards(env: DoctorEnv) -> dict[str, int]:
    """The ALSA cards by id (the name in brackets), with their numbers."""
    cards: dict[str, int] = {}
    for line in (env.read("proc/asound/cards") or "").splitlines():
        found = _CARD_LINE.match(line)
        if found:
            cards[found.group(2)] = int(found.group(1))
    return cards


def check_audio(env: DoctorEnv) -> list[CheckResult]:
    audio = env.config.audio
    if audio.source not in (SoundKind.HDMI, SoundKind.USB):
        return [CheckResult("sound card", OK, f"not used (audio.source = '{audio.source.value}')")]
    hdmi = audio.source is SoundKind.HDMI
    card = audio.card or (DEFAULT_CARD if hdmi else "")
    cards = alsa_cards(env)
    listed = ", ".join(sorted(cards)) or "none"
    if hdmi:
        fix = (
            "add 'dtoverlay=tc358743-audio' to config.txt, check the four I2S wires "
            "(hw/wiring.svg: LRCK, BCK, DATA, GND), reboot"
        )
    else:
        fix = (
            "plug the USB line-in or speakerphone in; 'arecord -l' lists the cards: "
            "write the name in brackets as [audio] card"
        )
    if card not in cards:
        return [CheckResult("sound card", FAIL, f"no ALSA card '{card}' (cards: {listed})", fix)]
    number = cards[card]
    if not env.path(f"proc/asound/card{number}/pcm0c").exists():
        return [CheckResult("sound card", FAIL, f"card '{card}' has no capture device", fix)]
    out = [CheckResult("sound card", OK, f"'{card}' (card {number}), capture device 0")]
    if hdmi:
        out += _hdmi_sound(env)
    return out


def _hdmi_sound(env: DoctorEnv) -> list[CheckResult]:
    capture = env.config.capture
    controls: AudioControls = env.audio_controls or BridgeAudioControls(
        capture.device, capture.subdevice, env.root
    )
    try:
        rate, present = controls.read_audio()
    except OSError as exc:
        fix = "see the hdmi bridge check; check 'dmesg | grep tc358743'"
        return [CheckResult("hdmi sound", FAIL, f"the bridge's audio controls: {exc}", fix)]
    finally:
        controls.release_audio()
    if rate <= 0:
        fix = "switch the scanner on and enable its HDMI output (see the signal check)"
        return [CheckResult("hdmi sound", WARN, "no HDMI signal: no sound rate", fix)]
    if not present:
        fix = (
            "unmute the scanner's HDMI sound (its Doppler volume, its audio-output setting); "
            "if its sound goes out on an analogue line-out, use a USB line-in adapter: "
            "audio.source = 'usb'"
        )
        return [CheckResult("hdmi sound", WARN, f"{rate} Hz, but the scanner sends no sound", fix)]
    if rate not in EDID_RATES:
        fix = "set the scanner's audio to 48 kHz; the box resamples any rate, but offers these"
        return [CheckResult("hdmi sound", WARN, f"sound at {rate} Hz, not 32/44.1/48 kHz", fix)]
    return [CheckResult("hdmi sound", OK, f"sound present at {rate} Hz")]
