"""The one validator of the box's appliance.toml: `appliance check-config`, `appliance doctor` and
first boot all use it, and so the box itself when it starts.

Every problem is found at once, each with its key, its line in the file when it can be found, and
the fix; what is valid is kept (a typo in one key never loses the password, the name or the web
settings), so a box with a faulty file still serves its pairing page where the technician expects
it and says what is wrong there. A UTF-8 byte-order mark (some Windows editors write one) is
accepted. Rules that span keys (the button and the LED on one pin, no pairing password, a session
that could not last as long as its link is valid, a USB sound source without its card) are here
too, and the warnings about settings that work but are risky (pre-admission) or ignored (an
unknown key: a typo never stops the box).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, SoundKind, explain, merge, read_text, salvage
from .configwarnings import ConfigWarning
from .errors import ConfigError
from .validators import usb_card_missing

#: A rule over the whole config: (config, the file's data as the technician wrote it, its text)
#: -> its problems.
Rule = Callable[[Config, dict[str, Any], str], list[ConfigError]]
#: What first boot writes at the top of the file for the secrets it moved (firstboot.py).
MOVED_NOTE = "moved to the box's persistent storage"


def _pins(config: Config, data: dict[str, Any], text: str) -> list[ConfigError]:
    panel = config.panel
    section = data.get("panel")
    written: dict[str, Any] = section if isinstance(section, dict) else {}
    if panel.button_pin == panel.led_pin:
        return [
            ConfigError(
                f"config keys 'panel.button_pin' and 'panel.led_pin' are both {panel.led_pin}: "
                "the button and the LED need a pin each (docs/technician.md, the pin map)",
                key="panel.led_pin" if "led_pin" in written else "panel.button_pin",
            )
        ]
    return []


def _password(config: Config, data: dict[str, Any], text: str) -> list[ConfigError]:
    """No password to log in with: nobody on the staff can use the box. A file first boot went
    through holds none (it was moved, and the box keeps its hash): its note says so."""
    pairing = config.pairing
    if pairing.password.strip() or pairing.password_hash or moved(text, "pairing.password"):
        return []
    section = data.get("pairing")
    given = isinstance(section, dict) and "password" in section
    return [
        ConfigError(
            "config key 'pairing.password' "
            + ("is empty or only spaces" if given else "is missing (no pairing password)")
            + ": nobody on the staff can log in to the pairing page, so the box cannot be used; "
            'write the staff\'s password in appliance.toml: [pairing] password = "..." (first '
            "boot then moves it off the boot partition)",
            key="pairing.password" if given else "pairing",
        )
    ]


def _minutes(config: Config, data: dict[str, Any], text: str) -> list[ConfigError]:
    """A session's longest life shorter than its link's validity."""
    longest, valid = config.pairing.max_minutes, config.pairing.valid_minutes
    if longest >= valid:
        return []
    section = data.get("pairing")
    written = section if isinstance(section, dict) else {}
    return [
        ConfigError(
            f"config key 'pairing.max_minutes' ({longest}) is less than 'pairing.valid_minutes' "
            f"({valid}): a session would end before its link expires; raise "
            f"pairing.max_minutes to at least {valid}, or lower pairing.valid_minutes",
            key="pairing.max_minutes" if "max_minutes" in written else "pairing.valid_minutes",
        )
    ]


def _sound_card(config: Config, data: dict[str, Any], text: str) -> list[ConfigError]:
    """A USB sound source without the card's name: the sound could never start."""
    if config.audio.source is SoundKind.USB and not config.audio.card:
        return [usb_card_missing()]
    return []


def moved(text: str, key: str) -> bool:
    """Whether first boot's note in ``text`` says it moved ``key`` off the boot partition."""
    return any(
        line.startswith("#") and MOVED_NOTE in line and key in line.split(":")[0]
        for line in text.removeprefix("\ufeff").splitlines()
    )


RULES: list[Rule] = [_pins, _password, _minutes, _sound_card]


def _pre_admit(config: Config) -> list[ConfigWarning]:
    if not config.pairing.pre_admit:
        return []
    return [
        ConfigWarning(
            "config key 'pairing.pre_admit' is on: a viewer who knocks is let in and sees the "
            "scan without the staff comparing the verification code, so anyone holding the link "
            "can watch",
            "pairing.pre_admit",
            "set pairing.pre_admit = false (or remove the line) unless the clinic decided so",
        )
    ]


#: Settings that work but that the technician should know about: config -> its warnings.
ADVICE: list[Callable[[Config], list[ConfigWarning]]] = [_pre_admit]


@dataclass
class Report:
    """What a config file holds: the config from its valid parts and every problem."""

    config: Config
    problems: list[ConfigError] = field(default_factory=list)
    #: What works but the technician should look at (logged at start, shown by check-config and
    #: doctor, counted on the pairing page).
    warnings: list[ConfigWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def fault(self) -> str:
        """The problems as one message ("" when there are none)."""
        return explain(self.problems) if self.problems else ""


def parse(text: str) -> dict[str, Any]:
    """TOML text as data; a file that is not TOML is a :class:`ConfigError` with its line."""
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise ConfigError(
            f"appliance.toml is not valid TOML: {exc}", line=int(found[1]) if found else None
        ) from None


def check(data: dict[str, Any], text: str = "", written: dict[str, Any] | None = None) -> Report:
    """Check parsed data; ``text`` is the file as written (to find each problem's line) and
    ``written`` its data when ``data`` has more merged in (the box's stored secrets)."""
    config, problems, warnings = salvage(data)
    for rule in RULES:
        found = rule(config, data if written is None else written, text)
        problems += [p for p in found if p.key not in {q.key for q in problems}]
    for advise in ADVICE:
        warnings += advise(config)
    found_in_file: list[ConfigError | ConfigWarning] = [*problems, *warnings]
    for item in found_in_file:
        if item.line is None and item.key and text:
            item.line = locate(text, item.key)
    return Report(config, problems, warnings)


def read(path: Path) -> tuple[str, dict[str, Any]]:
    """A config file's text and data; a :class:`ConfigError` (with its line when it is not
    TOML) for a file that is missing, unreadable, not UTF-8 or not TOML."""
    text = read_text(path)
    return text, parse(text)


def check_file(path: Path, overrides: dict[str, Any] | None = None) -> Report:
    """Check ``path`` (plus ``overrides``, e.g. the stored secrets, merged over it). A file that
    cannot be read or parsed gives the defaults and that one problem."""
    try:
        text, data = read(path)
    except ConfigError as exc:
        return Report(salvage(overrides or {})[0], [exc])
    return check(merge(data, overrides or {}), text)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*="""
)


def _parts(dotted: str) -> list[str]:
    return [p.strip().strip("\"'") for p in re.findall(r"""("[^"]*"|'[^']*'|[^.]+)""", dotted)]


def locate(text: str, key: str) -> int | None:
    """The line (from 1) where ``key`` ("box.nmae", "mask.rects[1].x") is written, if found."""
    wanted = [p for p in re.split(r"\.|\[\d+\]", key) if p]
    indexes = [int(i) for i in re.findall(r"\[(\d+)\]", key)]
    table: list[str] = []
    seen_arrays: dict[str, int] = {}
    index_of_table: int | None = None
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            table = _parts(header[1])
            if line.lstrip().startswith("[["):
                name = ".".join(table)
                seen_arrays[name] = seen_arrays.get(name, -1) + 1
                index_of_table = seen_arrays[name]
            else:
                index_of_table = None
            if table == wanted:
                return number
            continue
        match = _KEY.match(line)
        if not match:
            continue
        if table + _parts(match[1]) == wanted and (
            index_of_table is None or not indexes or index_of_table == indexes[0]
        ):
            return number
    return None
