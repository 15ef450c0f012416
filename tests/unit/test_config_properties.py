"""The config loader on arbitrary input (hypothesis): whatever the technician writes, the loader
returns a config or raises ConfigError, never another exception, and no error message shows a
secret's value (the message is shown on the pairing page and in the journal)."""

from __future__ import annotations

import dataclasses
import tempfile
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appliance import config
from appliance.errors import ConfigError

#: Every secret value the strategies plant carries this mark; no message may show it.
MARK = "Zq9SECRET"
SECRET_PATHS: tuple[tuple[str, str] | tuple[str, str, int, str], ...] = (
    ("pairing", "password"),
    ("relay", "token"),
    ("wifi", "password"),
    ("stream", "ice_servers", 0, "credential"),
)

SECTIONS = {f.name: f.type for f in dataclasses.fields(config.Config)}
HINTS = typing.get_type_hints(config.Config)
#: section -> its keys
FIELDS = {name: [f.name for f in dataclasses.fields(HINTS[name])] for name in SECTIONS}

scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["auto", "hdmi", "mock", "INFO", "echo-2", "", "0", "1e400"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["password", "token", "x", "urls", "credential"]), inner)
    ),
    max_leaves=6,
)
secret = st.text(max_size=8).map(lambda s: MARK + s)
# where a secret is planted: as the value, inside a list, a table, or as the whole section
planted = st.one_of(
    secret,
    secret.map(lambda s: [s]),
    secret.map(lambda s: {"x": s}),
    secret.map(lambda s: [{"password": s, "token": s}]),
    st.integers(),  # a wrong type with no mark: must just fail cleanly
)


@st.composite
def config_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """Plain data as tomllib gives it: mostly real sections and keys, some unknown, some wrong
    types, secrets planted in random forms."""
    data: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "pairng", "x"]), max_size=5)):
        keys = FIELDS.get(section, ["password", "token", "y"])
        table = draw(st.dictionaries(st.sampled_from([*keys, "pasword"]), values, max_size=4))
        data[section] = table if draw(st.integers(0, 9)) else draw(values)
    for path in draw(st.lists(st.sampled_from(SECRET_PATHS), max_size=4)):
        value = draw(planted)
        if path[0] == "stream":
            data["stream"] = {"ice_servers": [{"urls": ["stun:x"], "credential": value}]}
        elif draw(st.booleans()):
            data[path[0]] = value  # the whole section is the secret (a typo'd layout)
        else:
            target = data.get(path[0])
            if not isinstance(target, dict):
                target = data[path[0]] = {}
            target[path[1]] = value
    return data


def check(run: Any) -> None:
    try:
        run()
    except ConfigError as exc:
        message = str(exc)
    else:
        return
    assert MARK not in message, f"a secret in the message: {message}"


# Half the profile's cases: each builds and validates a whole config (the unit tier's 1 s).
@settings(deadline=None, max_examples=max(1, settings().max_examples // 2))
@given(config_dicts())
@example({"pairing": {"password": 12}})
@example({"pairing": {"password": {"x": MARK}}})
@example({"pairing": [{"password": MARK}]})
@example({"wifi": {"password": [MARK]}})
@example({"stream": {"ice_servers": [{"credential": [MARK]}]}})
@example({"encode": {"keyframe_interval": 10**400}})
@example({"encode": {"keyframe_interval": float("nan")}})
def test_load_dict_returns_a_config_or_a_config_error_without_secrets(data: dict) -> None:
    check(lambda: config.load_dict(data))


def test_a_nan_or_huge_number_is_refused_by_name() -> None:
    for value in (float("nan"), 10**400):
        with pytest.raises(ConfigError, match="'panel.hold_time'"):
            config.load_dict({"panel": {"hold_time": value}})


toml_bits = st.sampled_from(
    [
        "[pairing]\n",
        "[ pairing ]\n",
        '["relay"]\n',
        "[[wifi]]\n",
        "[box]\n",
        f'password = "{MARK}"\n',
        f"token = '{MARK}'\n",
        f'pairing.password = "{MARK}"\n',
        f'pairing = {{ password = "{MARK}" }}\n',
        f'wifi = [ "{MARK}" ]\n',
        f'password = """\n{MARK}\n"""\n',
        f"password = {MARK}\n",
        'name = "echo-2"\n',
        "name = 3\n",
        "fps = 1e400\n",
        "hold_time = nan\n",
        "x = 1\n",
        "# comment\n",
        "=\n",
        '"\n',
        "\n",
    ]
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(toml_bits | st.text(max_size=10), max_size=8), st.binary(max_size=4))
@example([f'[pairing]\npassword = "{MARK}"\nvalid_minutes = "x"\n'], b"")
@example(["a = 1\n"], b"\xff")
def test_load_on_toml_ish_text_returns_a_config_or_a_config_error(
    parts: list[str], tail: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "appliance.toml"
        path.write_bytes("".join(parts).encode("utf-8", "surrogatepass") + tail)
        check(lambda: config.load(path))


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        config.load(tmp_path)  # a directory
    (tmp_path / "bad.toml").write_bytes(b'a = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(tmp_path / "bad.toml")
