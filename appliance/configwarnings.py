"""What the config loader warns about instead of refusing.

A harmless typo never stops the clinic: an unknown key is ignored with a warning that suggests
the key meant (its default applies meanwhile), and so is a key earlier versions took. Only a typo
that would make the box unsafe stays an error: one that loses the privacy mask, the pairing page's
TLS or a secret (which would then stay on the boot partition). The warnings are logged when the
box starts, shown by `appliance check-config` and `appliance doctor`, and counted on the staff's
pairing page after the login.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass
class ConfigWarning:
    """A setting the box runs with but the technician should look at: what and the fix."""

    message: str
    key: str = ""
    fix: str = ""
    #: Its line in the file, when known.
    line: int | None = None

    @property
    def detail(self) -> str:
        """What the warning is about, with its line."""
        return f"line {self.line}: {self.message}" if self.line else self.message

    def __str__(self) -> str:
        return f"{self.detail} (fix: {self.fix})" if self.fix else self.detail


#: Keys earlier versions took and this one ignores (with a warning, never a fault), and why.
RETIRED = {
    "pairing.hangup_grace": "a viewer leaving no longer ends the session (the staff let another "
    "phone in, or end it)",
}

#: Keys (or whole tables) a misspelling of which stops the box, and why: it would run unsafe, or
#: unusable where the staff and the viewer expect it.
GUARDED = {
    "mask.rects": "the privacy mask would not blank what it should",
    "web": "the pairing page would not be where the staff expect it, or not over TLS",
    "relay": "the box would not reach the clinic's relay (and a token would stay on the boot "
    "partition)",
    "pairing.password": "the secret would stay on the boot partition and not apply",
    "wifi": "the box would not join the clinic's Wi-Fi (and a password would stay on the boot "
    "partition)",
}


def retired(key: str) -> ConfigWarning:
    return ConfigWarning(f"config key '{key}' is ignored: {RETIRED[key]}", key, "remove the line")


def unknown(prefix: str, key: str, value: Any, fields: list[str]) -> ConfigError | ConfigWarning:
    """An unknown key ``prefix + key`` among ``fields``: a warning suggesting the closest one,
    or an error when what it holds was meant for a :data:`GUARDED` key."""
    where = prefix.rstrip(".") or "the top level"
    dotted = f"{prefix}{key}"
    close = difflib.get_close_matches(str(key), fields, n=1)
    meant = f"{prefix}{close[0]}" if close else ""
    hint = f"; did you mean '{meant}'?" if meant else ""
    allowed = f"(allowed in {where}: {', '.join(sorted(fields))})"
    why = _guarded(dotted, value) or (_guarded(meant, value) if meant else "")
    if why:
        return ConfigError(f"unknown config key '{dotted}'{hint} {allowed}: {why}", key=dotted)
    if meant:
        fix = f"correct it or remove the line (until then '{meant}' keeps its value) {allowed}"
    else:
        fix = f"remove the line {allowed}"
    return ConfigWarning(f"unknown config key '{dotted}' is ignored{hint}", dotted, fix)


def _guarded(path: str, value: Any) -> str:
    """Why a setting written as ``path`` (and the table it holds) must not be ignored, or ""."""
    plain = re.sub(r"\[\d+\]", "", path)
    for key, why in GUARDED.items():
        if plain == key or plain.startswith(key + "."):
            return why
    if isinstance(value, dict):
        return next((w for k, v in value.items() if (w := _guarded(f"{path}.{k}", v))), "")
    return ""
