"""The loader's side of issue 14 items 11 and 12: an unknown optional key is a warning (with the
key meant), its default kept; a pairing password of only spaces is refused at load, unshown.
What the technician sees of it (check-config, doctor, first boot, the box) is checked in
tests/integration/test_technician_checks.py."""

from __future__ import annotations

import tomllib

import pytest

from appliance import config
from appliance.errors import ConfigError


@pytest.mark.parametrize(
    ("toml", "loud"),
    [
        ("[capture]\nfsp = 30\n", "did you mean 'capture.fps'?"),
        ("[captur]\nfps = 30\n", "did you mean 'capture'?"),
        ('[[stream.ice_servers]]\nurl = "x"\n', "did you mean 'stream.ice_servers[0].urls'?"),
        ("[box]\ncolour = 'blue'\n", "unknown config key 'box.colour' is ignored"),
    ],
)
def test_an_unknown_optional_key_loads_with_a_warning(toml: str, loud: str) -> None:
    cfg, problems, warnings = config.salvage(tomllib.loads(toml))
    assert problems == [] and cfg.capture == config.load_dict({}).capture, "defaults kept"
    (warning,) = warnings
    assert loud in str(warning)


def test_a_password_of_spaces_is_refused_at_load_without_showing_it() -> None:
    with pytest.raises(ConfigError, match="'pairing.password'") as caught:
        config.load_dict({"pairing": {"password": " \t "}})
    assert "only spaces" in str(caught.value) and "' \\t '" not in str(caught.value)
