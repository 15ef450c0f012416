"""Value rules shared by the config, the pages and the tools (kvmd's validators): each raises a
:class:`~appliance.errors.ConfigError` naming the key and the fix, or answers yes or no."""

from __future__ import annotations

import urllib.parse

from .errors import ConfigError


def is_hostname_label(value: str) -> bool:
    """A host name label: 1-63 lowercase letters, digits or '-', not starting with '-'."""
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    return 0 < len(value) <= 63 and set(value) <= allowed and not value.startswith("-")


def is_alsa_card(value: str) -> bool:
    """An ALSA card id (the name in ``/proc/asound/cards``' brackets): letters, digits, '_', '-'."""
    return 0 < len(value) <= 15 and all(c.isascii() and (c.isalnum() or c in "_-") for c in value)


def usb_card_missing() -> ConfigError:
    """``audio.source = "usb"`` without ``audio.card``: which card, and where to find its name."""
    return ConfigError(
        "config key 'audio.card' must name the USB sound card when audio.source = 'usb': run "
        "'arecord -l' on the box and write the name in brackets, e.g. [audio] card = \"Device\"",
        key="audio.card",
    )


def check_relay_url(url: str) -> None:
    """The box's token travels to the relay in every request: only over HTTPS (plain HTTP only
    to this machine, for tests). Shows the URL's scheme and host, never the rest."""
    if not url:
        return
    try:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        parts, host = urllib.parse.urlsplit(""), ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in ("127.0.0.1", "localhost", "::1"):
        return
    shown = f"{parts.scheme}://{host}" if parts.scheme and host else "this value"
    raise ConfigError(
        f"config key 'relay.url' has invalid value {shown!r}: the box's token travels in it, "
        "so it must be an https:// URL such as 'https://relay.clinic.example' (plain http:// "
        "only for 127.0.0.1 or localhost)",
        key="relay.url",
    )
