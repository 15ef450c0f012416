"""The sound sources by config string (``audio.source``); ``off`` is no sound at all."""

from __future__ import annotations

from collections.abc import Callable

from ..config import AudioConfig, SoundKind
from ..errors import ConfigError
from .base import SoundSource

SoundBuilder = Callable[[AudioConfig], SoundSource]
_BUILDERS: dict[SoundKind, SoundBuilder] = {}


def register(kind: SoundKind) -> Callable[[SoundBuilder], SoundBuilder]:
    """Make ``builder`` the source for ``audio.source = kind.value``."""

    def add(builder: SoundBuilder) -> SoundBuilder:
        _BUILDERS[kind] = builder
        return builder

    return add


def make_sound_source(config: AudioConfig) -> SoundSource:
    """The configured sound source; a ConfigError names the key to fix (``off`` has none)."""
    builder = _BUILDERS.get(config.source)
    if builder is None:
        raise ConfigError("config key 'audio.source' is 'off': there is no sound source")
    return builder(config)


@register(SoundKind.SYNTHETIC)
def _synthetic(config: AudioConfig) -> SoundSource:
    from .synthetic import SyntheticSound

    return SyntheticSound()


@register(SoundKind.FILE)
def _file(config: AudioConfig) -> SoundSource:
    from .file import FileSound

    if not config.file:
        raise ConfigError("config key 'audio.file' must name a clip when source = 'file'")
    return FileSound(config.file)


@register(SoundKind.ALSA)
def _alsa(config: AudioConfig) -> SoundSource:
    from .alsa import AlsaSound

    if not config.device:
        raise ConfigError("config key 'audio.device' must name an ALSA PCM when source = 'alsa'")
    return AlsaSound(config.device)
