"""The sound sources by config string (``audio.source``); ``off`` is no sound at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import AudioConfig, SoundKind
from ..errors import ConfigError
from ..validators import usb_card_missing
from .base import SoundSource

if TYPE_CHECKING:
    from .hdmi import AudioControls

SoundBuilder = Callable[[AudioConfig, "AudioControls | None"], SoundSource]
_BUILDERS: dict[SoundKind, SoundBuilder] = {}


def register(kind: SoundKind) -> Callable[[SoundBuilder], SoundBuilder]:
    """Make ``builder`` the source for ``audio.source = kind.value``."""

    def add(builder: SoundBuilder) -> SoundBuilder:
        _BUILDERS[kind] = builder
        return builder

    return add


def make_sound_source(config: AudioConfig, controls: AudioControls | None = None) -> SoundSource:
    """The configured sound source; a ConfigError names the key to fix (``off`` has none).
    ``controls``: the bridge's audio controls, for ``hdmi`` (the composition root's)."""
    builder = _BUILDERS.get(config.source)
    if builder is None:
        raise ConfigError("config key 'audio.source' is 'off': there is no sound source")
    return builder(config, controls)


@register(SoundKind.SYNTHETIC)
def _synthetic(config: AudioConfig, controls: AudioControls | None) -> SoundSource:
    from .synthetic import SyntheticSound

    return SyntheticSound()


@register(SoundKind.FILE)
def _file(config: AudioConfig, controls: AudioControls | None) -> SoundSource:
    from .file import FileSound

    if not config.file:
        raise ConfigError("config key 'audio.file' must name a clip when source = 'file'")
    return FileSound(config.file)


@register(SoundKind.ALSA)
def _alsa(config: AudioConfig, controls: AudioControls | None) -> SoundSource:
    from .alsa import AlsaSound

    if not config.device:
        raise ConfigError("config key 'audio.device' must name an ALSA PCM when source = 'alsa'")
    return AlsaSound(config.device)


@register(SoundKind.HDMI)
def _hdmi(config: AudioConfig, controls: AudioControls | None) -> SoundSource:
    from .hdmi import DEFAULT_CARD, HdmiSound, card_pcm

    if controls is None:
        raise ConfigError(  # the composition root always gives them: a caller's mistake
            "config key 'audio.source' is 'hdmi': the HDMI sound reads its rate from the "
            "bridge's controls, and none were given",
            key="audio.source",
        )
    return HdmiSound(controls, card_pcm(config.card or DEFAULT_CARD))


@register(SoundKind.USB)
def _usb(config: AudioConfig, controls: AudioControls | None) -> SoundSource:
    from .alsa import AlsaSound
    from .hdmi import card_pcm

    if not config.card:
        raise usb_card_missing()
    return AlsaSound(card_pcm(config.card))
