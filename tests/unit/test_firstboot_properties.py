"""First boot on generated boot files (hypothesis): the secrets written in any form TOML allows
(tables however spelled, inline tables, dotted and quoted keys, every string kind) leave the boot
partition and arrive in the persistent one; every other setting stays as it was; the file still
parses."""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import firstboot
from appliance.passwords import hash_password, verify_password

MARK = "Zq9SECRET"
SECRETS = {("pairing", "password"), ("relay", "token"), ("wifi", "password")}
#: Valid non-secret settings for the sections that hold secrets, and one more.
PLAIN: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    # (up to the default pairing.max_minutes: a longer validity is a problem of its own)
    "pairing": {"valid_minutes": st.integers(5, 180), "pre_admit": st.booleans()},
    "relay": {"url": st.sampled_from(["", "https://relay.example", "https://r.example:8443/x"])},
    "wifi": {"country": st.sampled_from(["FR", "DE", ""]), "ssid": st.text(max_size=8)},
    "box": {"name": st.sampled_from(["echo-2", "room-3"])},
}


def basic(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007F")


def literal_ok(s: str) -> bool:
    return not any(c in s for c in "'\n\r\x7f") and all(c == "\t" or c >= " " for c in s)


@st.composite
def strings(draw: st.DrawFn, value: str) -> str:
    """``value`` as a TOML string of a random kind (basic, literal, multi-line either way)."""
    kinds = ["basic", "multi-basic"]
    if literal_ok(value):
        kinds += ["literal", "multi-literal"]
    kind = draw(st.sampled_from(kinds))
    if kind == "basic":
        return basic(value)
    if kind == "literal":
        return f"'{value}'"
    if kind == "multi-literal":
        return f"'''\n{value}'''"
    return '"""\n' + basic(value)[1:-1] + '"""'


def key(draw: st.DrawFn, name: str) -> str:
    return draw(st.sampled_from([name, f'"{name}"', f"'{name}'"]))


def value(draw: st.DrawFn, v: Any) -> str:
    if isinstance(v, str):
        return draw(strings(v))
    return json.dumps(v)  # ints and booleans are written alike


@st.composite
def boot_files(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[tuple[str, str], str]]:
    """(text, the settings without secrets, the secrets)."""
    plain: dict[str, dict[str, Any]] = {}
    for section, keys in PLAIN.items():
        plain[section] = {k: draw(s) for k, s in keys.items() if draw(st.booleans())}
    # a Wi-Fi password must be one WPA takes: no control characters, 8 to 63 bytes
    printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=10)
    secrets = {
        path: MARK + draw(printable if path[0] == "wifi" else st.text(min_size=1, max_size=10))
        for path in sorted(SECRETS)
        if draw(st.booleans())
    }
    top, tables = [], []
    for section in draw(st.permutations(list(PLAIN))):
        items = [(k, v) for k, v in plain[section].items()]
        items += [(k, v) for (s, k), v in secrets.items() if s == section]
        items = draw(st.permutations(items))
        form = draw(st.sampled_from(["table", "inline", "dotted"]))
        comment = draw(st.sampled_from(["", "  # a note"]))
        if form == "table" or not items:
            header = draw(
                st.sampled_from([section, f" {section} ", f'"{section}"', f"'{section}'"])
            )
            lines = [f"[{header}]{comment}"]
            lines += [f"{key(draw, k)} = {value(draw, v)}" for k, v in items]
            tables.append("\n".join(lines) + "\n")
        elif form == "inline":
            inner = ", ".join(f"{key(draw, k)} = {value(draw, v)}" for k, v in items)
            top.append(f"{key(draw, section)} = {{ {inner} }}{comment}\n")
        else:
            dot = draw(st.sampled_from([".", " . "]))
            top += [
                f"{key(draw, section)}{dot}{key(draw, k)} = {value(draw, v)}\n" for k, v in items
            ]
    text = "# appliance.toml\n" + "".join(top) + "\n" + "\n".join(tables)
    return text, plain, secrets


def pruned(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v != {}}


#: The staff's password a box holds from an earlier boot (without one, first boot reports that
#: nobody could log in).
STORED = {"pairing": {"password_hash": hash_password("stored pass phrase")}}


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firstboot, "_keys", lambda cfg, state: None)  # made once, tested elsewhere


# Half the profile's cases: each one writes, syncs and reads back two files (the unit tier's 1 s).
@settings(deadline=None, max_examples=max(1, settings().max_examples // 2))
@given(boot_files())
def test_any_form_of_secret_leaves_the_boot_file_and_nothing_else_does(generated) -> None:
    text, plain, secrets = generated
    assert tomllib.loads(text)  # the generator writes valid TOML
    with tempfile.TemporaryDirectory() as tmp:
        path, state = Path(tmp) / "appliance.toml", Path(tmp) / "state"
        path.write_text(text, encoding="utf-8")
        state.mkdir()
        firstboot.write_secrets(state, STORED)
        result = firstboot.apply(path, state, set_hostname=False)
        assert result.ok, result.fault
        assert sorted(result.moved) == sorted(f"{s}.{k}" for s, k in secrets)
        left = path.read_text(encoding="utf-8")
        assert MARK not in left, "a secret stayed on the boot partition"
        assert pruned(tomllib.loads(left)) == pruned(plain), "a setting was lost or changed"
        stored = firstboot.read_secrets(state)
        for (section, key_), secret in secrets.items():
            if section == "pairing":
                assert verify_password(secret, stored["pairing"]["password_hash"])
            else:
                assert stored[section][key_] == secret
        assert firstboot.apply(path, state, set_hostname=False).ok, "the next boot reads it"
